//! Flint's worker: registers with the master, heartbeats, and runs executors and drivers
//! as child processes.

pub mod config;
pub mod fetch;
pub mod launcher;
pub mod logs;
pub mod process;
pub mod resources;
pub mod runner;
pub mod session;
pub mod spark_jvm;
pub mod web;

use std::future::Future;
use std::sync::Arc;

use bytes::BytesMut;
use flint_domain::types::WorkerId;
use flint_spark_proto::{
    Frame, FrameDecoder, MessageEncoder, RequestMessage, SparkLine, SparkMessage, decode_message,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{debug, info};

pub use config::{WorkerArgs, WorkerConfig};
use flint_worker_core::CoreConfig;
use launcher::ProcessLauncher;
use runner::WorkerEnv;
use session::ShellSettings;
pub use session::WorkerStatus;

/// The sockets the worker serves, bound by the caller.
pub struct Listeners {
    /// The worker's endpoint (`spark://Worker@host:port`): executors connect here and the
    /// connection lives as long as they do.
    pub rpc: TcpListener,
    pub web: Option<TcpListener>,
}

fn worker_id(host: &str, port: u16) -> WorkerId {
    WorkerId(flint_domain::ids::worker_id(
        flint_domain::time::wall_ms(),
        host,
        port,
    ))
}

/// Holds executors' liveness connections until they close or the worker stops, answering
/// Spark's endpoint check (`CheckExistence("Worker")` → `true`) on them: a Spark executor's
/// `WorkerWatcher` asks it once and then only watches the connection.
async fn serve_endpoint(listener: TcpListener, mut stop: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = crate::session::stopped(&mut stop) => break,
        };
        match accepted {
            Ok((sock, peer)) => {
                let stop = stop.clone();
                tokio::spawn(async move {
                    debug!(%peer, "endpoint connection");
                    endpoint_connection(sock, stop).await;
                    debug!(%peer, "endpoint connection closed");
                });
            }
            Err(e) => {
                debug!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// The reply to one Spark frame sent to the worker's endpoint, if it needs one.
fn endpoint_reply(frame: Frame) -> Option<Frame> {
    let Frame::RpcRequest { request_id, body } = frame else {
        return None;
    };
    let reply = (|| {
        let request = RequestMessage::decode(&body).ok()?;
        let decoded = decode_message(&request.payload).ok()?;
        let SparkMessage::CheckExistence { name } = &decoded.message else {
            return None;
        };
        let mut encoder = MessageEncoder::new(decoded.spark_line().unwrap_or(SparkLine::V3_5));
        encoder.learn(&decoded.stream);
        encoder
            .encode(&SparkMessage::Boolean(name == "Worker"))
            .ok()
    })();
    Some(match reply {
        Some(body) => Frame::RpcResponse {
            request_id,
            body: body.into(),
        },
        None => Frame::RpcFailure {
            request_id,
            error: "flint-worker only answers CheckExistence".into(),
        },
    })
}

async fn endpoint_connection(mut sock: tokio::net::TcpStream, mut stop: watch::Receiver<bool>) {
    let decoder = FrameDecoder::new();
    let mut buf = BytesMut::with_capacity(4096);
    // After bytes that are not Spark frames, only hold the connection (it is still a
    // liveness link for whoever opened it).
    let mut framed = true;
    loop {
        while framed {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    if let Some(reply) = endpoint_reply(frame).and_then(|f| f.to_bytes().ok())
                        && sock.write_all(&reply).await.is_err()
                    {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    debug!(error = %e, "endpoint connection is not Spark RPC");
                    framed = false;
                }
            }
        }
        if !framed {
            buf.clear();
        }
        tokio::select! {
            n = sock.read_buf(&mut buf) => match n { Ok(0) | Err(_) => return, Ok(_) => {} },
            _ = crate::session::stopped(&mut stop) => return,
        }
    }
}

/// Runs the worker until `shutdown` resolves, then kills its children and returns.
/// `cfg.port` must be the bound port of `listeners.rpc`.
pub async fn run(
    cfg: WorkerConfig,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    std::fs::create_dir_all(&cfg.work_dir)
        .map_err(|e| format!("cannot create work dir {}: {e}", cfg.work_dir.display()))?;
    let work_dir = std::fs::canonicalize(&cfg.work_dir)?;
    let launcher = process::Launcher::new()?;
    let id = worker_id(&cfg.host, cfg.port);
    let env = WorkerEnv {
        worker_id: id.clone(),
        host: cfg.host.clone(),
        worker_url: format!("spark://Worker@{}:{}", cfg.host, cfg.port),
        webui_url: format!("http://{}:{}", cfg.host, cfg.webui_port),
        work_dir,
        kill_grace: cfg.kill_grace,
    };
    info!(
        worker_id = %id, master = %cfg.master_url, cores = cfg.cores, memory_mb = cfg.memory_mb,
        work_dir = %env.work_dir.display(), webui_url = %env.webui_url, "Starting Flint worker"
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let core = CoreConfig {
        worker_id: id.clone(),
        host: cfg.host.clone(),
        port: cfg.port,
        cores: cfg.cores,
        memory_mb: cfg.memory_mb,
        webui_url: env.webui_url.clone(),
        work_dir: env.work_dir.clone(),
        master_url: cfg.master_url.clone(),
        max_backoff_ms: cfg.max_backoff.as_millis() as u64,
        seed: fastrand::u64(..),
    };
    let settings = ShellSettings {
        masters: cfg.masters.clone(),
        kill_grace: cfg.kill_grace,
        work_dir: env.work_dir.clone(),
    };
    let launcher = ProcessLauncher::new(Arc::new(env.clone()), launcher);
    let (worker, status_rx) = session::Worker::new(core, settings, launcher);
    let web_task = listeners
        .web
        .map(|l| web::spawn(l, status_rx, env.work_dir.clone(), stop_rx.clone()));
    let endpoint = tokio::spawn(serve_endpoint(listeners.rpc, stop_rx.clone()));
    let worker_task = tokio::spawn(worker.run(stop_rx));
    shutdown.await;
    info!("shutting down: stopping executors and drivers");
    let _ = stop_tx.send(true);
    let _ = worker_task.await;
    let _ = endpoint.await;
    if let Some(t) = web_task {
        // Slow HTTP clients must not hold up the exit.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), t).await;
    }
    Ok(())
}
