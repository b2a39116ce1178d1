//! Driver mode: the gRPC server executors dial, the session with the master, and the actor
//! that owns the [`Scheduler`] and turns its decisions into messages.
//!
//! One task (the actor) owns every piece of state. The gRPC handlers, the master session
//! and the application's [`Context`](super::Context) only send it [`Cmd`]s.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use flint_domain::types::{AppDescription, AppEvent, AppId, CommandSpec, ExecutorId};
use flint_proto::pb_driver as pb;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::{TcpListenerStream, UnboundedReceiverStream};
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, info, warn};

use super::JobError;
use super::allocation::{AllocAction, Allocator};
use super::conf::{DriverConf, ExecutorBinary};
use super::message::*;
use super::progress::Progress;
use super::scheduler::{JobFailure, JobOutcome, Scheduler, SchedulerConfig};
use super::task::MAX_MESSAGE_BYTES;
use crate::{AppSession, MasterClient};

/// The command that starts an executor of this application: this same binary, told where
/// its driver is through `FLINT_DRIVER_URL` (the worker adds `FLINT_ROLE=executor` and the
/// rest of the executor environment).
///
/// With `spark.flint.executor.binary=ship` (the default) the program is a URI the workers
/// fetch and verify: the artifact this driver was itself started from (cluster mode), or
/// else this binary, uploaded to the master once (the master keeps it by SHA-256). With
/// `local` it is this binary's absolute path, for workers that share the driver's
/// filesystem.
pub async fn executor_command(
    conf: &DriverConf,
    client: &mut MasterClient,
    driver_url: &str,
) -> Result<CommandSpec, String> {
    let exe = || {
        std::env::current_exe()
            .map_err(|e| format!("cannot find this program's path for the executors: {e}"))
    };
    let program = match (&conf.executor_binary, &conf.app_resource) {
        (ExecutorBinary::Local, _) => exe()?.display().to_string(),
        (ExecutorBinary::Ship, Some(resource)) => resource.clone(),
        (ExecutorBinary::Ship, None) => {
            let path = exe()?;
            let (uri, _sha) = client
                .upload_artifact(&path)
                .await
                .map_err(|e| format!("cannot ship {} to the master: {e}", path.display()))?;
            uri
        }
    };
    let mut env = BTreeMap::new();
    env.insert("FLINT_DRIVER_URL".to_owned(), driver_url.to_owned());
    Ok(CommandSpec {
        program,
        args: Vec::new(),
        env,
        ..Default::default()
    })
}

/// What the application description asks of the master.
pub fn app_description(conf: &DriverConf, command: CommandSpec) -> AppDescription {
    AppDescription {
        name: conf.app_name.clone(),
        user: conf.user.clone(),
        cores_per_executor: conf.executor_cores,
        memory_per_executor_mb: conf.executor_memory_mb,
        max_cores: conf.cores_max,
        command,
        initial_executor_limit: conf
            .dynamic_allocation
            .as_ref()
            .map(|d| d.initial_executors),
        app_ui_url: String::new(),
    }
}

type ConnId = u64;
type Outbox = mpsc::UnboundedSender<Result<pb::DriverToExecutor, Status>>;

pub(crate) enum Cmd {
    Register {
        reg: ExecutorRegistration,
        conn: ConnId,
        out: Outbox,
    },
    Report {
        conn: ConnId,
        executor: ExecutorId,
        report: TaskReport,
    },
    Disconnected {
        conn: ConnId,
        executor: ExecutorId,
        reason: String,
    },
    Submit {
        task_name: String,
        partitions: Vec<Vec<u8>>,
        reply: oneshot::Sender<Result<Vec<Vec<u8>>, JobError>>,
    },
    TotalCores {
        reply: oneshot::Sender<u32>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// The `flint.driver.v1.Driver` service: a thin adapter that forwards to the actor.
pub(crate) struct DriverService {
    cmds: mpsc::UnboundedSender<Cmd>,
    next_conn: Arc<AtomicU64>,
}

type SessionStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::DriverToExecutor, Status>> + Send>>;

#[tonic::async_trait]
impl pb::driver_server::Driver for DriverService {
    type ExecutorSessionStream = SessionStream;

    async fn executor_session(
        &self,
        req: Request<Streaming<pb::ExecutorToDriver>>,
    ) -> Result<Response<SessionStream>, Status> {
        let mut inbound = req.into_inner();
        let first = inbound
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("stream ended before register"))?;
        let reg = match ExecutorMessage::try_from(first)
            .map_err(|e| Status::invalid_argument(e.to_string()))?
        {
            ExecutorMessage::Register(r) => r,
            ExecutorMessage::TaskFinished(_) => {
                return Err(Status::invalid_argument(
                    "the first message must be register",
                ));
            }
        };
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let executor = reg.executor_id;
        let (out, out_rx) = mpsc::unbounded_channel();
        self.cmds
            .send(Cmd::Register { reg, conn, out })
            .map_err(|_| Status::unavailable("the driver is stopping"))?;
        let cmds = self.cmds.clone();
        tokio::spawn(async move {
            let reason = loop {
                match inbound.message().await {
                    Ok(Some(m)) => match ExecutorMessage::try_from(m) {
                        Ok(ExecutorMessage::TaskFinished(report)) => {
                            if cmds
                                .send(Cmd::Report {
                                    conn,
                                    executor,
                                    report,
                                })
                                .is_err()
                            {
                                return;
                            }
                        }
                        Ok(ExecutorMessage::Register(_)) => {
                            break "protocol error: register sent twice".to_owned();
                        }
                        Err(e) => break format!("protocol error: {e}"),
                    },
                    Ok(None) => break "the executor closed its connection".to_owned(),
                    Err(s) => break format!("its connection broke ({})", s.message()),
                }
            };
            let _ = cmds.send(Cmd::Disconnected {
                conn,
                executor,
                reason,
            });
        });
        Ok(Response::new(Box::pin(UnboundedReceiverStream::new(
            out_rx,
        ))))
    }
}

/// A running driver: its gRPC server, its master session and the actor.
pub(crate) struct Driver {
    pub cmds: mpsc::UnboundedSender<Cmd>,
    pub app_id: AppId,
    actor: tokio::task::JoinHandle<()>,
    server: tokio::task::JoinHandle<()>,
    stop_server: oneshot::Sender<()>,
}

impl Driver {
    /// Starts the executors' server, registers the application and starts the actor.
    pub async fn start(conf: Arc<DriverConf>) -> Result<Self, String> {
        let bind: SocketAddr = ([0, 0, 0, 0], conf.driver_port).into();
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|e| format!("cannot listen on {bind} (spark.driver.port): {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("cannot read the driver's address: {e}"))?
            .port();
        let driver_url = format!("http://{}:{port}", conf.driver_host);
        let (cmds, rx) = mpsc::unbounded_channel();
        let service = DriverService {
            cmds: cmds.clone(),
            next_conn: Arc::new(AtomicU64::new(0)),
        };
        let (stop_server, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let svc = pb::driver_server::DriverServer::new(service)
                .max_decoding_message_size(MAX_MESSAGE_BYTES + (1 << 20))
                .max_encoding_message_size(MAX_MESSAGE_BYTES + (1 << 20));
            let r = tonic::transport::Server::builder()
                .http2_keepalive_interval(Some(Duration::from_secs(10)))
                .http2_keepalive_timeout(Some(Duration::from_secs(20)))
                .tcp_nodelay(true)
                .add_service(svc)
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = r {
                warn!(error = %e, "the driver's executor server stopped");
            }
        });
        info!("Driver service for executors listening at {driver_url}");
        let mut client = MasterClient::connect(&conf.master_url)
            .await
            .map_err(|e| e.to_string())?;
        let command = executor_command(&conf, &mut client, &driver_url).await?;
        let desc = app_description(&conf, command);
        let session = client
            .register_application(desc, &driver_url)
            .await
            .map_err(|e| {
                format!(
                    "cannot register the application with {}: {e}",
                    conf.master_url
                )
            })?;
        let app_id = session.app_id().clone();
        info!(master = %conf.master_url, "Connected to the Flint cluster with app ID {app_id}");
        let tty = std::io::stderr().is_terminal();
        let width = super::progress::terminal_width();
        let actor = Actor {
            sched: Scheduler::new(SchedulerConfig {
                task_cpus: conf.task_cpus,
                max_failures: conf.max_failures,
            }),
            allocator: conf.dynamic_allocation.clone().map(Allocator::new),
            conf,
            app_id: app_id.clone(),
            session: Some(session),
            ended: None,
            executors: BTreeMap::new(),
            jobs: BTreeMap::new(),
            progress: Progress::new(tty, width),
            starved_since: None,
            rx,
        };
        let actor = tokio::spawn(actor.run());
        Ok(Self {
            cmds,
            app_id,
            actor,
            server,
            stop_server,
        })
    }

    /// Unregisters the application, stops the executors and the server.
    pub async fn stop(self) {
        let (reply, done) = oneshot::channel();
        if self.cmds.send(Cmd::Shutdown { reply }).is_ok() {
            let _ = done.await;
        }
        let _ = self.actor.await;
        let _ = self.stop_server.send(());
        // Executor streams end as their processes exit; do not wait for stragglers.
        let server = self.server;
        if tokio::time::timeout(Duration::from_secs(2), server)
            .await
            .is_err()
        {
            debug!("executor server still draining; leaving it");
        }
    }
}

struct Conn {
    conn: ConnId,
    out: Outbox,
    host: String,
}

struct Job {
    reply: oneshot::Sender<Result<Vec<Vec<u8>>, JobError>>,
    task_name: String,
    tasks: usize,
    started: Instant,
}

struct Actor {
    sched: Scheduler,
    allocator: Option<Allocator>,
    conf: Arc<DriverConf>,
    app_id: AppId,
    session: Option<AppSession>,
    /// Set when the application ended (removed by the master, or the session broke).
    ended: Option<String>,
    executors: BTreeMap<ExecutorId, Conn>,
    jobs: BTreeMap<StageId, Job>,
    progress: Progress,
    /// Since when jobs have been waiting with no executor at all.
    starved_since: Option<Instant>,
    rx: mpsc::UnboundedReceiver<Cmd>,
}

fn send(out: &Outbox, m: DriverMessage) -> bool {
    out.send(Ok(m.into())).is_ok()
}

async fn next_master_event(
    session: &mut Option<AppSession>,
) -> Result<Option<AppEvent>, crate::ClientError> {
    match session {
        Some(s) => s.next_event().await,
        None => std::future::pending().await,
    }
}

impl Actor {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                cmd = self.rx.recv() => match cmd {
                    Some(Cmd::Shutdown { reply }) => {
                        self.shutdown().await;
                        let _ = reply.send(());
                        return;
                    }
                    Some(cmd) => self.handle(cmd),
                    None => {
                        self.shutdown().await;
                        return;
                    }
                },
                ev = next_master_event(&mut self.session) => self.on_master(ev),
                _ = tick.tick() => self.on_tick().await,
            }
            self.dispatch();
        }
    }

    fn handle(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Register { reg, conn, out } => self.register(reg, conn, out),
            Cmd::Report {
                conn,
                executor,
                report,
            } => {
                if self.executors.get(&executor).map(|c| c.conn) != Some(conn) {
                    return;
                }
                if let Err(e) = &report.outcome {
                    warn!(
                        executor,
                        task_id = report.task_id,
                        attempt = report.attempt,
                        "task failed: {e}"
                    );
                }
                self.sched.task_finished(executor, report);
            }
            Cmd::Disconnected {
                conn,
                executor,
                reason,
            } => {
                if self.executors.get(&executor).map(|c| c.conn) == Some(conn) {
                    self.lose_executor(executor, &reason);
                }
            }
            Cmd::Submit {
                task_name,
                partitions,
                reply,
            } => {
                if let Some(why) = &self.ended {
                    let _ = reply.send(Err(JobError::AppEnded(why.clone())));
                    return;
                }
                let tasks = partitions.len();
                let stage = self.sched.submit(&task_name, partitions);
                info!("Starting job {stage} ({tasks} tasks of '{task_name}')");
                self.jobs.insert(
                    stage,
                    Job {
                        reply,
                        task_name,
                        tasks,
                        started: Instant::now(),
                    },
                );
            }
            Cmd::TotalCores { reply } => {
                let _ = reply.send(self.sched.total_cores());
            }
            Cmd::Shutdown { .. } => {}
        }
    }

    fn register(&mut self, reg: ExecutorRegistration, conn: ConnId, out: Outbox) {
        let id = reg.executor_id;
        let reject = if reg.app_id != self.app_id {
            Some(format!(
                "executor of application {} connected to the driver of {}",
                reg.app_id, self.app_id
            ))
        } else if let Some(why) = &self.ended {
            Some(format!("the application has ended: {why}"))
        } else if self.sched.is_dead(id) {
            Some(format!("executor {id} was already lost"))
        } else if self.executors.contains_key(&id) {
            Some(format!("executor {id} is already registered"))
        } else {
            None
        };
        if let Some(message) = reject {
            warn!(host = %reg.host, "Refusing executor {id}: {message}");
            send(&out, DriverMessage::Rejected { message });
            return; // dropping `out` ends the stream after the rejection
        }
        self.sched.add_executor(id, &reg.host, reg.cores);
        if !send(
            &out,
            DriverMessage::Registered {
                task_cpus: self.conf.task_cpus,
            },
        ) {
            self.sched.executor_lost(id, "gone while registering");
            return;
        }
        info!(
            pid = reg.pid,
            "Registered executor {id} ({}) with {} core(s)", reg.host, reg.cores
        );
        self.executors.insert(
            id,
            Conn {
                conn,
                out,
                host: reg.host,
            },
        );
    }

    fn lose_executor(&mut self, id: ExecutorId, reason: &str) {
        let host = self
            .executors
            .remove(&id)
            .map(|c| {
                // If the process is still there, it must not keep running orphan tasks.
                send(
                    &c.out,
                    DriverMessage::Stop {
                        reason: format!("removed by the driver: {reason}"),
                    },
                );
                c.host
            })
            .unwrap_or_default();
        let resubmitted = self.sched.executor_lost(id, reason);
        if !resubmitted.is_empty() {
            self.progress.clear();
            warn!(
                "Lost executor {id} ({host}): {reason}; resubmitting its {} running task(s)",
                resubmitted.len()
            );
        } else if !host.is_empty() {
            info!("Removed executor {id} ({host}): {reason}");
        }
    }

    fn on_master(&mut self, ev: Result<Option<AppEvent>, crate::ClientError>) {
        match ev {
            Ok(Some(AppEvent::ExecutorAdded {
                executor_id,
                host_port,
                cores,
                memory_mb,
                ..
            })) => {
                info!(
                    "Granted executor ID {}/{executor_id} on hostPort {host_port} with {cores} core(s), {memory_mb} MiB RAM",
                    self.app_id
                );
            }
            Ok(Some(AppEvent::ExecutorUpdated {
                executor_id,
                state,
                message,
                exit_status,
                ..
            })) => {
                debug!(
                    ?message,
                    ?exit_status,
                    "executor {executor_id} is now {state}"
                );
                if state.is_finished() {
                    let mut why = format!("executor {state}");
                    if let Some(m) = message.filter(|m| !m.is_empty()) {
                        why.push_str(&format!(" ({m})"));
                    }
                    self.lose_executor(executor_id, &why);
                }
            }
            Ok(Some(AppEvent::WorkerRemoved {
                worker_id,
                host,
                message,
            })) => {
                info!("Worker {worker_id} ({host}) removed: {message}");
            }
            Ok(Some(AppEvent::ApplicationRemoved { state, message })) => {
                self.end(format!(
                    "the master removed the application ({state}): {message}"
                ));
            }
            Ok(Some(AppEvent::RequestResult {
                request_id,
                ok,
                message,
            })) => {
                if ok {
                    debug!(request_id, "{message}");
                } else {
                    warn!(request_id, "the master refused a request: {message}");
                }
            }
            Ok(Some(AppEvent::Registered { .. })) => {}
            Ok(None) => self.end("the master ended the application's session".into()),
            Err(e) => self.end(format!("lost the connection to the master: {e}")),
        }
    }

    /// The application is over: fail every job, now and later.
    fn end(&mut self, why: String) {
        self.progress.clear();
        warn!("{why}");
        self.session = None;
        self.sched.cancel_all(&why);
        self.ended = Some(why);
    }

    async fn on_tick(&mut self) {
        self.progress.update(&self.sched.progress());
        let now = Instant::now();
        if self.sched.has_active_jobs() && self.sched.executor_count() == 0 {
            let since = *self.starved_since.get_or_insert(now);
            if now.duration_since(since) >= Duration::from_secs(15) {
                self.progress.clear();
                warn!(
                    "Initial job has not accepted any resources; check the master's UI to ensure that workers are registered and have sufficient resources"
                );
                self.starved_since = Some(now);
            }
        } else {
            self.starved_since = None;
        }
        self.allocate(now).await;
    }

    async fn allocate(&mut self, now: Instant) {
        if self.session.is_none() {
            return;
        }
        let Some(alloc) = self.allocator.as_mut() else {
            return;
        };
        let idle = self.sched.idle_executors();
        let executors: Vec<(ExecutorId, bool)> = self
            .executors
            .keys()
            .map(|id| (*id, idle.contains(id)))
            .collect();
        let cpe = self.conf.executor_cores.unwrap_or_else(|| {
            let n = self.sched.executor_count().max(1) as u32;
            (self.sched.total_cores() / n).max(1)
        });
        let actions = alloc.update(now, self.sched.demanded_cores(), cpe, &executors);
        for action in actions {
            let Some(session) = self.session.as_mut() else {
                return;
            };
            match action {
                AllocAction::SetTotal(total) => {
                    info!("Requesting {total} executor(s) in all (dynamic allocation)");
                    if let Err(e) = session.request_executors(total).await {
                        warn!(error = %e, "cannot request executors");
                    }
                }
                AllocAction::Kill(ids) => {
                    info!("Releasing idle executors {ids:?} (dynamic allocation)");
                    if let Err(e) = session.kill_executors(ids.clone()).await {
                        warn!(error = %e, "cannot release executors");
                        continue;
                    }
                    for id in ids {
                        self.lose_executor(id, "idle (dynamic allocation)");
                    }
                }
            }
        }
    }

    /// Sends the scheduler's launches and answers finished jobs.
    fn dispatch(&mut self) {
        loop {
            let mut broken = Vec::new();
            for l in self.sched.offers() {
                let sent = self
                    .executors
                    .get(&l.executor)
                    .is_some_and(|c| send(&c.out, DriverMessage::Launch(l.task)));
                if !sent {
                    broken.push(l.executor);
                }
            }
            if broken.is_empty() {
                break;
            }
            for id in broken {
                self.lose_executor(id, "its connection is closed");
            }
        }
        for outcome in self.sched.take_outcomes() {
            let (stage, result) = match outcome {
                JobOutcome::Succeeded { stage, results } => (stage, Ok(results)),
                JobOutcome::Failed { stage, failure } => (
                    stage,
                    Err(match failure {
                        JobFailure::TaskFailed {
                            partition,
                            failures,
                            last_error,
                        } => JobError::Aborted {
                            stage,
                            partition,
                            failures,
                            message: last_error,
                        },
                        JobFailure::Cancelled(why) => JobError::AppEnded(why),
                    }),
                ),
            };
            let Some(job) = self.jobs.remove(&stage) else {
                continue;
            };
            self.progress.clear();
            let secs = job.started.elapsed().as_secs_f64();
            match &result {
                Ok(_) => info!(
                    "Job {stage} finished: {} tasks of '{}' took {secs:.3} s",
                    job.tasks, job.task_name
                ),
                Err(e) => warn!("Job {stage} failed after {secs:.3} s: {e}"),
            }
            let _ = job.reply.send(result);
        }
    }

    async fn shutdown(&mut self) {
        self.progress.clear();
        self.sched.cancel_all("the driver is stopping");
        self.dispatch();
        if let Some(session) = self.session.take() {
            match tokio::time::timeout(Duration::from_secs(10), session.unregister()).await {
                Ok(Ok(())) => info!("Application {} unregistered", self.app_id),
                Ok(Err(e)) => warn!(error = %e, "cannot unregister the application"),
                Err(_) => warn!("the master did not confirm the unregistration in time"),
            }
        }
        for (_, c) in std::mem::take(&mut self.executors) {
            send(
                &c.out,
                DriverMessage::Stop {
                    reason: "the application finished".into(),
                },
            );
        }
    }
}
