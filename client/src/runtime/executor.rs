//! Executor mode: connect to the driver at `FLINT_DRIVER_URL`, register, run the tasks it
//! sends (at most `cores / spark.task.cpus` at a time, each on a blocking thread), report
//! their outcomes, and exit when told to stop or when the driver connection ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flint_proto::pb_driver as pb;
use flint_proto::pb_driver::driver_client::DriverClient;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::{Channel, Endpoint};
use tracing::{info, warn};

use super::conf::ExecutorConf;
use super::message::*;
use super::task::{MAX_MESSAGE_BYTES, TaskRegistry};

/// How long an executor keeps trying to reach its driver before giving up.
const CONNECT_FOR: Duration = Duration::from_secs(30);

async fn connect(url: &str) -> Result<Channel, String> {
    let ep = Endpoint::from_shared(url.to_owned())
        .map_err(|e| format!("invalid FLINT_DRIVER_URL '{url}': {e}"))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(20))
        .keep_alive_while_idle(true);
    let deadline = Instant::now() + CONNECT_FOR;
    let mut backoff = Duration::from_millis(100);
    loop {
        match ep.connect().await {
            Ok(ch) => return Ok(ch),
            Err(e) if Instant::now() + backoff > deadline => {
                let src = std::error::Error::source(&e)
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default();
                return Err(format!(
                    "cannot connect to the driver at {url} within {CONNECT_FOR:?}: {e}{src}"
                ));
            }
            Err(e) => {
                warn!(error = %e, "cannot reach the driver yet; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// Runs the executor until the driver stops it or goes away (`Ok`), or it cannot work
/// with the driver at all (`Err`: unreachable, refused, broken protocol).
pub async fn run(conf: ExecutorConf, tasks: Arc<TaskRegistry>) -> Result<(), String> {
    info!(
        cores = conf.cores,
        "Executor {} of {} connecting to driver {}", conf.executor_id, conf.app_id, conf.driver_url
    );
    let channel = connect(&conf.driver_url).await?;
    let mut client = DriverClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES + (1 << 20))
        .max_encoding_message_size(MAX_MESSAGE_BYTES + (1 << 20));
    let (tx, rx) = mpsc::unbounded_channel::<pb::ExecutorToDriver>();
    let reg = ExecutorRegistration {
        app_id: conf.app_id.clone(),
        executor_id: conf.executor_id,
        cores: conf.cores,
        host: conf.host.clone(),
        pid: std::process::id(),
    };
    let _ = tx.send(ExecutorMessage::Register(reg).into());
    let mut inbound = client
        .executor_session(UnboundedReceiverStream::new(rx))
        .await
        .map_err(|s| format!("the driver refused the session: {}", s.message()))?
        .into_inner();
    let first = inbound
        .message()
        .await
        .map_err(|s| format!("lost the driver while registering: {}", s.message()))?
        .ok_or_else(|| "the driver closed the session while registering".to_owned())?;
    let slots = match DriverMessage::try_from(first)
        .map_err(|e| format!("protocol error from the driver: {e}"))?
    {
        DriverMessage::Registered { task_cpus } => (conf.cores / task_cpus).max(1),
        DriverMessage::Rejected { message } => {
            return Err(format!("the driver refused this executor: {message}"));
        }
        other => {
            return Err(format!(
                "protocol error from the driver: expected registered, got {other:?}"
            ));
        }
    };
    info!("Successfully registered with the driver; running up to {slots} task(s) at a time");
    let slots = Arc::new(Semaphore::new(slots as usize));
    loop {
        let msg = match inbound.message().await {
            Ok(Some(m)) => m,
            Ok(None) => {
                info!("the driver closed the connection; exiting");
                return Ok(());
            }
            Err(s) => {
                info!("lost the driver connection ({}); exiting", s.message());
                return Ok(());
            }
        };
        match DriverMessage::try_from(msg) {
            Ok(DriverMessage::Launch(launch)) => {
                let tx = tx.clone();
                let tasks = tasks.clone();
                let slots = slots.clone();
                tokio::spawn(async move {
                    let Ok(_permit) = slots.acquire_owned().await else {
                        return;
                    };
                    let (task_id, attempt) = (launch.task_id, launch.attempt);
                    info!(
                        "Running task {}.{attempt} in stage {} (TID {task_id})",
                        launch.partition, launch.stage_id
                    );
                    let outcome = tokio::task::spawn_blocking(move || {
                        tasks.run(&launch.task_name, &launch.payload)
                    })
                    .await
                    .unwrap_or_else(|e| Err(format!("task thread failed: {e}")));
                    if let Err(e) = &outcome {
                        warn!(task_id, attempt, "task failed: {e}");
                    }
                    let _ = tx.send(
                        ExecutorMessage::TaskFinished(TaskReport {
                            task_id,
                            attempt,
                            outcome,
                        })
                        .into(),
                    );
                });
            }
            Ok(DriverMessage::Stop { reason }) => {
                info!("Driver commanded a shutdown: {reason}");
                return Ok(());
            }
            Ok(other) => warn!("ignoring an unexpected message from the driver: {other:?}"),
            Err(e) => return Err(format!("protocol error from the driver: {e}")),
        }
    }
}
