//! Flint's master: the sans-IO [`core`] that makes every decision, the [`actor`] that owns
//! it, and thin network front ends around it.

pub mod actor;
pub mod artifacts;
pub mod config;
pub mod core;
pub mod grpc;
pub mod metrics;
pub mod rest;
pub mod web;

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
    /// Spark's REST submission server (`spark.master.rest.enabled`), when enabled.
    pub rest: Option<TcpListener>,
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
    let rest_port = listeners
        .rest
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .map(|a| a.port());
    let rest_url = rest_port.map(|p| format!("spark://{}:{p}", cfg.host));
    let web_cfg = web::WebConfig::from_conf(&cfg.conf, rest_url.clone())?;
    info!(
        master_url = %cfg.core.master_url,
        webui_url = %cfg.core.webui_url,
        rest_url = rest_url.as_deref().unwrap_or("-"),
        worker_timeout_ms = cfg.core.worker_timeout_ms,
        spread_out = cfg.core.spread_out,
        "Starting Flint master"
    );
    let mut http_tasks = Vec::new();
    if let Some(web) = listeners.web {
        http_tasks.extend(web::spawn(web, handle.clone(), web_cfg, stop_rx.clone()));
    }
    if let (Some(rest), Some(rest_port)) = (listeners.rest, rest_port) {
        let rest_cfg =
            rest::RestConfig::from_conf(&cfg.conf, &cfg.core.master_url, cfg.port, rest_port);
        http_tasks.push(tokio::spawn(rest::serve(
            rest,
            handle.clone(),
            rest_cfg,
            stop_rx.clone(),
        )));
    }
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
    // Slow HTTP clients must not hold up the exit either.
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        futures::future::join_all(http_tasks),
    )
    .await;
    let _ = actor_task.await;
    Ok(())
}
