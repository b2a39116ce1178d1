//! The single owner of [`MasterState`]. Front ends (gRPC, Spark RPC, HTTP)
//! talk to it through a [`MasterHandle`]; it feeds their events to the core with the
//! current time, delivers the core's outputs to the sessions, runs the timer, and
//! publishes read-only snapshots so readers never touch the live state.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use flint_domain::time::Clock;

use flint_domain::types::*;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, warn};

use crate::core::{ConnId, CoreError, MasterState, Now, Output, RequestOutcome};

/// Delivers commands to one worker session without waiting; returns false once the session
/// is gone or cut off (its peer stopped reading), and the actor then closes it.
pub type WorkerSink = Box<dyn Fn(WorkerCommand) -> bool + Send>;
/// Delivers events to one application session, as [`WorkerSink`] does.
pub type AppSink = Box<dyn Fn(AppEvent) -> bool + Send>;

/// Messages queued for the actor. Front ends wait when it is full, so a flood of requests
/// slows its senders down instead of growing the master's memory.
pub const INBOX: usize = 4096;

type Reply<T> = oneshot::Sender<Result<T, CoreError>>;

enum Msg {
    OpenWorker(ConnId, WorkerSink),
    OpenApp(ConnId, AppSink),
    Close(ConnId),
    Worker(ConnId, WorkerEvent),
    App(ConnId, AppRequest, Reply<RequestOutcome>),
    SubmitDriver(Box<DriverDescription>, Reply<DriverId>),
    KillDriver(DriverId, Reply<String>),
    DriverStatus(DriverId, Reply<DriverView>),
    KillApp(AppId, Reply<()>),
    Snapshot(Reply<ClusterSnapshot>),
    AppTimeToRunning(AppId, oneshot::Sender<Option<u64>>),
    ReadLog(LogRequest, Reply<(WorkerId, LogSlice)>),
}

/// A log read relayed to a worker, waiting for its answer.
struct PendingLog {
    conn: ConnId,
    worker: WorkerId,
    since_mono_ms: u64,
    reply: Reply<(WorkerId, LogSlice)>,
}

/// Log reads unanswered after this long are dropped (the caller has given up by then).
const LOG_READ_TTL_MS: u64 = 30_000;

enum Session {
    Worker(WorkerSink),
    App(AppSink),
}

/// Cheap to clone; every front end holds one.
#[derive(Clone)]
pub struct MasterHandle {
    tx: mpsc::Sender<Msg>,
    next_conn: Arc<AtomicU64>,
    snapshots: watch::Receiver<Arc<ClusterSnapshot>>,
}

fn gone() -> CoreError {
    CoreError::Unavailable("master is shutting down".into())
}

impl MasterHandle {
    pub fn new_conn(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Queues a message; only when the inbox is full does the caller wait, on a boxed
    /// future, so a session's reader does not carry a message-sized wait in its own state
    /// (10,000 worker sessions each have one).
    fn post(&self, msg: Msg) -> impl Future<Output = ()> + Send + 'static {
        let slow = match self.tx.try_send(msg) {
            Err(mpsc::error::TrySendError::Full(msg)) => {
                let tx = self.tx.clone();
                Some(Box::pin(async move {
                    let _ = tx.send(msg).await;
                }))
            }
            _ => None,
        };
        async move {
            if let Some(wait) = slow {
                wait.await;
            }
        }
    }

    pub fn open_worker_session(
        &self,
        conn: ConnId,
        sink: WorkerSink,
    ) -> impl Future<Output = ()> + Send + 'static {
        self.post(Msg::OpenWorker(conn, sink))
    }

    pub fn open_app_session(
        &self,
        conn: ConnId,
        sink: AppSink,
    ) -> impl Future<Output = ()> + Send + 'static {
        self.post(Msg::OpenApp(conn, sink))
    }

    /// The session's transport ended (or was refused): the core is told at once.
    pub fn close_session(&self, conn: ConnId) -> impl Future<Output = ()> + Send + 'static {
        self.post(Msg::Close(conn))
    }

    pub fn worker_event(
        &self,
        conn: ConnId,
        event: WorkerEvent,
    ) -> impl Future<Output = ()> + Send + 'static {
        self.post(Msg::Worker(conn, event))
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Msg) -> Result<T, CoreError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).await.map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    /// An application's request and its one outcome (the session also gets a
    /// `RequestResult` event for dynamic-allocation requests, which is what Flint's runtime
    /// waits for; Spark's front end answers with the outcome's `ok`).
    pub async fn app_request(
        &self,
        conn: ConnId,
        req: AppRequest,
    ) -> Result<RequestOutcome, CoreError> {
        self.ask(|r| Msg::App(conn, req, r)).await
    }

    pub async fn submit_driver(&self, desc: DriverDescription) -> Result<DriverId, CoreError> {
        self.ask(|r| Msg::SubmitDriver(Box::new(desc), r)).await
    }

    pub async fn kill_driver(&self, id: DriverId) -> Result<String, CoreError> {
        self.ask(|r| Msg::KillDriver(id, r)).await
    }

    pub async fn driver_status(&self, id: DriverId) -> Result<DriverView, CoreError> {
        self.ask(|r| Msg::DriverStatus(id, r)).await
    }

    pub async fn kill_application(&self, id: AppId) -> Result<(), CoreError> {
        self.ask(|r| Msg::KillApp(id, r)).await
    }

    /// A snapshot taken now, in order with every event sent before.
    pub async fn snapshot(&self) -> Result<ClusterSnapshot, CoreError> {
        self.ask(Msg::Snapshot).await
    }

    /// Registration → all executors RUNNING, once that happened.
    pub async fn app_time_to_running_ms(&self, id: AppId) -> Option<u64> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Msg::AppTimeToRunning(id, tx)).await.ok()?;
        rx.await.ok().flatten()
    }

    /// Reads a slice of a driver's or executor's log through the worker that holds it.
    pub async fn read_log(&self, req: LogRequest) -> Result<(WorkerId, LogSlice), CoreError> {
        self.ask(|r| Msg::ReadLog(req, r)).await
    }

    /// Snapshots published at most every [`SNAPSHOT_INTERVAL`] while something changes:
    /// what pages render, so a slow reader never holds up scheduling.
    pub fn snapshots(&self) -> watch::Receiver<Arc<ClusterSnapshot>> {
        self.snapshots.clone()
    }
}

pub const SNAPSHOT_INTERVAL: Duration = Duration::from_millis(200);

/// A snapshot is republished at least every 10 × [`SNAPSHOT_INTERVAL`] (2 s).
const QUIET_REPUBLISH_TICKS: u32 = 10;

struct Actor {
    state: MasterState,
    sessions: HashMap<ConnId, Session>,
    clock: Clock,
    dirty: bool,
    snapshots: watch::Sender<Arc<ClusterSnapshot>>,
    pending_logs: HashMap<u64, PendingLog>,
    next_log_request: u64,
}

/// Starts the actor; it stops when `shutdown` resolves (or every handle is dropped).
pub fn spawn(
    state: MasterState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> (MasterHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(INBOX);
    let (snap_tx, snap_rx) = watch::channel(Arc::new(state.snapshot()));
    let handle = MasterHandle {
        tx,
        next_conn: Arc::new(AtomicU64::new(1)),
        snapshots: snap_rx,
    };
    let actor = Actor {
        state,
        sessions: HashMap::new(),
        clock: Clock::new(),
        dirty: false,
        snapshots: snap_tx,
        pending_logs: HashMap::new(),
        next_log_request: 1,
    };
    let task = tokio::spawn(actor.run(rx, shutdown));
    (handle, task)
}

impl Actor {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Msg>,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) {
        let tick_every = Duration::from_millis(
            self.state
                .config()
                .heartbeat_interval_ms()
                .clamp(10, 15_000),
        );
        let mut tick = tokio::time::interval(tick_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut publish = tokio::time::interval(SNAPSHOT_INTERVAL);
        publish.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        let mut quiet_ticks = 0u32;
        loop {
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                msg = rx.recv() => {
                    let Some(msg) = msg else { break };
                    self.handle(msg);
                    // Drain what is already queued before flushing side effects.
                    for _ in 0..256 {
                        match rx.try_recv() {
                            Ok(m) => self.handle(m),
                            Err(_) => break,
                        }
                    }
                }
                _ = tick.tick() => {
                    let now = self.clock.now();
                    self.state.tick(now);
                    self.flush();
                    self.expire_log_reads(now);
                }
                _ = publish.tick() => {
                    // Heartbeats alone do not mark the state dirty (at 10,000 workers that
                    // would mean a snapshot per message); a quiet cluster is still
                    // republished every few seconds so `lastheartbeat` stays fresh.
                    quiet_ticks += 1;
                    if self.dirty || quiet_ticks >= QUIET_REPUBLISH_TICKS {
                        self.dirty = false;
                        quiet_ticks = 0;
                        let _ = self.snapshots.send(Arc::new(self.state.snapshot()));
                    }
                }
            }
        }
        debug!("master actor stopped");
    }

    fn handle(&mut self, msg: Msg) {
        let now = self.clock.now();
        match msg {
            Msg::OpenWorker(conn, sink) => {
                self.sessions.insert(conn, Session::Worker(sink));
            }
            Msg::OpenApp(conn, sink) => {
                self.sessions.insert(conn, Session::App(sink));
            }
            Msg::Close(conn) => self.close(now, conn),
            Msg::Worker(conn, ev) => self.worker_event(now, conn, ev),
            Msg::App(conn, req, reply) => {
                let done = |message: &str| RequestOutcome {
                    ok: true,
                    message: message.to_owned(),
                };
                let (request_id, r) = match req {
                    AppRequest::Register { app, driver_url } => (
                        None,
                        self.state
                            .register_application(now, conn, app, driver_url)
                            .map(|id| done(&format!("registered as {id}"))),
                    ),
                    AppRequest::RequestExecutors { request_id, total } => (
                        Some(request_id),
                        self.state.request_executors(now, conn, total),
                    ),
                    AppRequest::KillExecutors {
                        request_id,
                        executor_ids,
                    } => (
                        Some(request_id),
                        self.state.kill_executors(now, conn, &executor_ids),
                    ),
                    AppRequest::Unregister => (
                        None,
                        self.state
                            .unregister_application(now, conn)
                            .map(|()| done("unregistered")),
                    ),
                };
                // The outcome goes to the session before whatever the request set off.
                if let (Some(request_id), Ok(outcome)) = (request_id, &r)
                    && let Some(Session::App(sink)) = self.sessions.get(&conn)
                    && !sink(AppEvent::RequestResult {
                        request_id,
                        ok: outcome.ok,
                        message: outcome.message.clone(),
                    })
                {
                    self.close(now, conn);
                }
                let _ = reply.send(r);
            }
            Msg::SubmitDriver(desc, reply) => {
                let _ = reply.send(self.state.submit_driver(now, *desc));
            }
            Msg::KillDriver(id, reply) => {
                let _ = reply.send(self.state.kill_driver(now, &id));
            }
            Msg::DriverStatus(id, reply) => {
                let _ = reply.send(self.state.driver_status(&id));
            }
            Msg::KillApp(id, reply) => {
                let _ = reply.send(self.state.kill_application(now, &id));
            }
            Msg::Snapshot(reply) => {
                let _ = reply.send(Ok(self.state.snapshot()));
            }
            Msg::AppTimeToRunning(id, reply) => {
                let _ = reply.send(self.state.app_time_to_running_ms(&id));
            }
            Msg::ReadLog(req, reply) => self.read_log(now, req, reply),
        }
        self.flush();
    }

    fn read_log(&mut self, now: Now, request: LogRequest, reply: Reply<(WorkerId, LogSlice)>) {
        let (worker, conn) = match self.state.log_location(&request.target) {
            Ok(x) => x,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let Some(Session::Worker(sink)) = self.sessions.get(&conn) else {
            let _ = reply.send(Err(CoreError::Unavailable(format!(
                "worker {worker} is not connected"
            ))));
            return;
        };
        let request_id = self.next_log_request;
        self.next_log_request += 1;
        if !sink(WorkerCommand::ReadLog {
            request_id,
            request,
        }) {
            let _ = reply.send(Err(CoreError::Unavailable(format!(
                "worker {worker} is not connected"
            ))));
            return;
        }
        self.pending_logs.insert(
            request_id,
            PendingLog {
                conn,
                worker,
                since_mono_ms: now.mono_ms,
                reply,
            },
        );
    }

    fn fail_log_reads(&mut self, which: impl Fn(&PendingLog) -> bool, why: &str) {
        let ids: Vec<u64> = self
            .pending_logs
            .iter()
            .filter(|(_, p)| which(p))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(p) = self.pending_logs.remove(&id) {
                let _ = p
                    .reply
                    .send(Err(CoreError::Unavailable(format!("{}: {why}", p.worker))));
            }
        }
    }

    fn expire_log_reads(&mut self, now: Now) {
        self.fail_log_reads(
            |p| now.mono_ms.saturating_sub(p.since_mono_ms) > LOG_READ_TTL_MS,
            "no answer from the worker",
        );
    }

    fn worker_event(&mut self, now: Now, conn: ConnId, ev: WorkerEvent) {
        match ev {
            WorkerEvent::LogSlice { request_id, result } => {
                if let Some(p) = self.pending_logs.remove(&request_id) {
                    let _ = p.reply.send(
                        result
                            .map(|s| (p.worker, s))
                            .map_err(CoreError::FailedPrecondition),
                    );
                }
                return;
            }
            WorkerEvent::Register(reg) => self.state.register_worker(now, conn, reg),
            WorkerEvent::Heartbeat { worker_id } => {
                self.state.worker_heartbeat(now, conn, &worker_id);
                return; // nothing visible changes but the heartbeat time
            }
            WorkerEvent::LatestState {
                worker_id,
                executors,
                drivers,
            } => self
                .state
                .worker_latest_state(conn, &worker_id, &executors, &drivers),
            WorkerEvent::ExecutorStateChanged {
                app_id,
                executor_id,
                state,
                message,
                exit_status,
            } => self.state.executor_state_changed(
                now,
                &app_id,
                executor_id,
                state,
                message,
                exit_status,
            ),
            WorkerEvent::DriverStateChanged {
                driver_id,
                state,
                message,
                exit_status,
            } => self
                .state
                .driver_state_changed(now, &driver_id, state, message, exit_status),
        }
        self.dirty = true;
    }

    /// A session ended: its transport closed, or its peer stopped reading.
    fn close(&mut self, now: Now, conn: ConnId) {
        match self.sessions.remove(&conn) {
            Some(Session::Worker(_)) => {
                self.fail_log_reads(|p| p.conn == conn, "worker disconnected");
                self.state.worker_disconnected(now, conn)
            }
            Some(Session::App(_)) => self.state.application_disconnected(now, conn),
            None => {}
        }
    }

    fn flush(&mut self) {
        loop {
            let outputs = self.state.take_outputs();
            if outputs.is_empty() {
                return;
            }
            self.dirty = true;
            let mut cut = Vec::new();
            for out in outputs {
                match out {
                    Output::ToWorker { conn, cmd } => match self.sessions.get(&conn) {
                        Some(Session::Worker(sink)) => {
                            if !sink(cmd) {
                                debug!(conn, "worker session gone or cut off while sending");
                                cut.push(conn);
                            }
                        }
                        _ => warn!(conn, "no worker session for command"),
                    },
                    Output::ToApp { conn, event } => {
                        if let Some(Session::App(sink)) = self.sessions.get(&conn)
                            && !sink(event)
                        {
                            cut.push(conn);
                        }
                    }
                    Output::CloseApp { conn } => {
                        // Dropping the sink ends the application's stream.
                        self.sessions.remove(&conn);
                    }
                }
            }
            if cut.is_empty() {
                return;
            }
            let now = self.clock.now();
            cut.dedup();
            for conn in cut {
                self.close(now, conn);
            }
        }
    }
}
