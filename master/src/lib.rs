//! Flint's master: the sans-IO [`core`] that makes every decision, the [`actor`] that owns
//! it, and thin network front ends around it.

pub mod actor;
pub mod artifacts;
pub mod config;
pub use flint_master_core as core;
pub mod grpc;
pub mod in_process;
pub mod metrics;
pub mod outbox;
pub mod rest;
pub mod spark_rpc;
pub mod web;

use std::future::Future;
use std::time::Duration;

use flint_spark_proto::{Protocol, detect_protocol};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{debug, info};

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
        let rest_cfg = rest::RestConfig::new(&cfg.core.master_url, cfg.port, rest_port);
        http_tasks.push(tokio::spawn(rest::serve(
            rest,
            handle.clone(),
            rest_cfg,
            stop_rx.clone(),
        )));
    }
    let mut grpc_stop = stop_rx.clone();
    // One port, two protocols: `accept_rpc` peeks at each connection's first bytes and hands
    // gRPC (HTTP/2) ones to tonic through this channel, Spark RPC ones to `spark_rpc`.
    // No HTTP/2 keepalive pings from the master: worker heartbeats already catch half-open
    // connections, and at 10,000 workers pings would cost more than the heartbeats.
    let (grpc_tx, grpc_rx) = mpsc::channel::<TcpStream>(256);
    let spark_cfg = spark_rpc::SparkRpcConfig {
        host: cfg.host.clone(),
        port: cfg.port,
    };
    let accept_task = tokio::spawn(accept_rpc(
        listeners.rpc,
        grpc_tx,
        handle.clone(),
        spark_cfg,
        stop_rx.clone(),
    ));
    let incoming = ReceiverStream::new(grpc_rx).map(Ok::<TcpStream, std::io::Error>);
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
    let _ = tokio::time::timeout(Duration::from_secs(1), accept_task).await;
    // Slow HTTP clients must not hold up the exit either.
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        futures::future::join_all(http_tasks),
    )
    .await;
    let _ = actor_task.await;
    Ok(())
}

/// How long a new connection may take to show which protocol it speaks.
const DETECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts on the master's RPC port and sorts connections by their first bytes: gRPC goes to
/// `grpc`, Spark RPC to [`spark_rpc::serve_connection`]. Connections that close or stay
/// silent before telling are dropped.
async fn accept_rpc(
    listener: TcpListener,
    grpc: mpsc::Sender<TcpStream>,
    handle: MasterHandle,
    spark_cfg: spark_rpc::SparkRpcConfig,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off a little instead of spinning.
                debug!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let grpc = grpc.clone();
        let handle = handle.clone();
        let spark_cfg = spark_cfg.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(DETECT_TIMEOUT, sniff(&stream)).await {
                Ok(Some(Protocol::Grpc)) => {
                    let _ = grpc.send(stream).await;
                }
                Ok(Some(_)) => spark_rpc::serve_connection(stream, handle, spark_cfg, stop).await,
                Ok(None) => debug!(%peer, "connection closed before saying anything"),
                Err(_) => debug!(%peer, "connection silent for too long; dropped"),
            }
        });
    }
}

/// Peeks (without consuming) until the first bytes tell gRPC from Spark RPC; `None` when the
/// peer closes first.
async fn sniff(stream: &TcpStream) -> Option<Protocol> {
    let mut buf = [0u8; 32];
    let mut last = 0;
    loop {
        let n = stream.peek(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        match detect_protocol(&buf[..n]) {
            Protocol::NeedMoreBytes => {
                if n == last {
                    // `peek` returns at once while bytes are waiting: poll gently for more.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                last = n;
            }
            p => return Some(p),
        }
    }
}
