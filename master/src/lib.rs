//! Flint's master: the sans-IO [`core`] that makes every decision, the [`actor`] that owns
//! it, and thin network front ends around it.

pub mod actor;
pub mod artifacts;
pub mod config;
pub mod core;
pub mod grpc;

use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tracing::info;

pub use actor::MasterHandle;
pub use config::{MasterArgs, MasterConfig};

/// The sockets the master serves, bound by the caller (port 0 in tests).
pub struct Listeners {
    pub rpc: TcpListener,
    pub web: Option<TcpListener>,
}

/// Serves until `shutdown` resolves. `cfg` must already carry the bound ports
/// ([`MasterConfig::with_bound_ports`]).
pub async fn run(
    cfg: MasterConfig,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let state = core::MasterState::new(cfg.core.clone());
    let mut actor_stop = stop_rx.clone();
    let (handle, actor_task) = actor::spawn(state, async move {
        let _ = actor_stop.wait_for(|s| *s).await;
    });
    info!(
        master_url = %cfg.core.master_url,
        webui_url = %cfg.core.webui_url,
        worker_timeout_ms = cfg.core.worker_timeout_ms,
        spread_out = cfg.core.spread_out,
        "Starting Flint master"
    );
    drop(listeners.web); // the web UI is served by a later front end
    let mut grpc_stop = stop_rx.clone();
    // No HTTP/2 keepalive pings from the master: worker heartbeats already catch half-open
    // connections, and at 10,000 workers pings would cost more than the heartbeats.
    let incoming = TcpIncoming::from(listeners.rpc).with_nodelay(Some(true));
    let server = tonic::transport::Server::builder()
        .add_service(grpc::MasterGrpc::new(handle.clone(), cfg.artifacts.clone()).into_server())
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = grpc_stop.wait_for(|s| *s).await;
        });
    let server_task = tokio::spawn(server);
    shutdown.await;
    info!("shutting down");
    let _ = stop_tx.send(true);
    // Streams are long-lived: give the server a moment to close them, then go.
    let _ = tokio::time::timeout(Duration::from_secs(3), server_task).await;
    let _ = actor_task.await;
    Ok(())
}
