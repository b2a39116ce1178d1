//! The worker's IO shell around its core: it owns the gRPC session to the master, the clock,
//! the children's handles and the published status, and does what the core's outputs say.
//! Every decision — registering, heartbeats, what to launch, kill or relaunch, what the UI
//! shows — is `flint-worker-core`'s.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use flint_domain::time::Clock;
use flint_domain::types::*;
use flint_proto::channel::connect_channel;
use flint_proto::pb;
use flint_proto::pb::master_client::MasterClient;
use flint_worker_core::{ChildEvent, ChildKey, CoreConfig, Output, WorkerCore};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{debug, warn};

use crate::launcher::{ChildControl, ChildLauncher};

pub use flint_worker_core::{DriverStatus, ExecutorStatus, WorkerStatus};

/// Messages queued towards the master before the session counts as stuck. A master that
/// stops reading holds the worker back (backpressure) instead of growing its memory.
const OUTBOX: usize = 1024;
/// Child events queued towards the core; runners wait when it is full.
const CHILD_EVENTS: usize = 1024;
/// Orders queued to one child (at most a kill and a release are ever outstanding).
const CHILD_CONTROL: usize = 4;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Resolves once the watch says stop (its guard never lives across an await, so select!
/// futures using it stay `Send`).
pub async fn stopped(w: &mut watch::Receiver<bool>) {
    let _ = w.wait_for(|s| *s).await;
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

struct Session {
    tx: mpsc::Sender<pb::WorkerToMaster>,
    /// Set once the master accepted the stream.
    inbound: Option<tonic::Streaming<pb::MasterToWorker>>,
}

async fn next_command(
    session: &mut Option<Session>,
) -> Result<Option<pb::MasterToWorker>, tonic::Status> {
    match session.as_mut().and_then(|s| s.inbound.as_mut()) {
        Some(inbound) => inbound.message().await,
        None => std::future::pending().await,
    }
}

/// How the shell reaches the master and stops children.
#[derive(Clone, Debug)]
pub struct ShellSettings {
    /// Masters to try in order (`spark://h1:p1,h2:p2`).
    pub masters: Vec<(String, u16)>,
    /// `spark.worker.killGracePeriod`: how long a child may take to stop.
    pub kill_grace: Duration,
    /// Where log reads are served from.
    pub work_dir: PathBuf,
}

pub struct Worker<L: ChildLauncher> {
    core: WorkerCore,
    clock: Clock,
    settings: ShellSettings,
    launcher: L,
    children: HashMap<ChildKey, mpsc::Sender<ChildControl>>,
    events_tx: mpsc::Sender<ChildEvent>,
    events_rx: mpsc::Receiver<ChildEvent>,
    status: watch::Sender<WorkerStatus>,
    session: Option<Session>,
    reconnect_at: Option<Instant>,
}

impl<L: ChildLauncher> Worker<L> {
    /// The worker and the status it publishes (for its UI, `/json` and readiness).
    pub fn new(
        core: CoreConfig,
        settings: ShellSettings,
        launcher: L,
    ) -> (Self, watch::Receiver<WorkerStatus>) {
        let (events_tx, events_rx) = mpsc::channel(CHILD_EVENTS);
        let mut core = WorkerCore::new(core);
        core.take_status_dirty();
        let (status, status_rx) = watch::channel(core.status().clone());
        let worker = Self {
            core,
            clock: Clock::new(),
            settings,
            launcher,
            children: HashMap::new(),
            events_tx,
            events_rx,
            status,
            session: None,
            reconnect_at: Some(Instant::now()),
        };
        (worker, status_rx)
    }

    /// Runs until `shutdown` fires; then kills every child, reports it, and returns.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut stop_deadline: Option<Instant> = None;
        loop {
            self.apply_outputs().await;
            self.publish();
            if stop_deadline.is_some() && self.core.running() == 0 {
                break;
            }
            let tick_at = self
                .core
                .next_deadline()
                .map(|ms| Instant::from_std(self.clock.instant_at(ms)));
            let connect_at = match (&self.session, stop_deadline) {
                (None, None) => self.reconnect_at,
                _ => None,
            };
            let reading = stop_deadline.is_none();
            tokio::select! {
                _ = sleep_until(connect_at) => {
                    self.reconnect_at = None;
                    self.connect().await;
                }
                msg = next_command(&mut self.session), if reading => {
                    let now = self.clock.now();
                    match msg {
                        Ok(Some(m)) => match WorkerCommand::try_from(m) {
                            Ok(cmd) => self.core.master_command(now, cmd),
                            Err(e) => warn!(error = %e, "ignoring invalid command from master"),
                        },
                        Ok(None) => self.end_session("master closed the session"),
                        Err(e) => self.end_session(&format!("{}: {}", e.code(), e.message())),
                    }
                }
                Some(ev) = self.events_rx.recv() => self.core.child_event(self.clock.now(), ev),
                _ = sleep_until(tick_at) => self.core.tick(self.clock.now()),
                _ = stopped(&mut shutdown), if stop_deadline.is_none() => {
                    self.core.shutdown(self.clock.now());
                    stop_deadline = Some(Instant::now() + self.settings.kill_grace + Duration::from_secs(1));
                }
                _ = sleep_until(stop_deadline) => break,
            }
        }
        self.apply_outputs().await;
        self.publish();
        if let Some(Session { tx, inbound }) = self.session.take() {
            drop(tx);
            // Let the master see the end of our stream before we go.
            if let Some(mut inbound) = inbound {
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    while let Ok(Some(_)) = inbound.message().await {}
                })
                .await;
            }
        }
    }

    fn end_session(&mut self, reason: &str) {
        self.session = None;
        self.core.session_ended(self.clock.now(), reason);
    }

    fn publish(&mut self) {
        if self.core.take_status_dirty() {
            self.status.send_replace(self.core.status().clone());
        }
    }

    /// Opens a session to the first reachable master and registers on it.
    async fn connect(&mut self) {
        let mut last_err = String::from("no master configured");
        let mut found = None;
        for (host, port) in self.settings.masters.clone() {
            let url = format!("spark://{host}:{port}");
            match connect_channel(&url, CONNECT_TIMEOUT).await {
                Ok(ch) => {
                    found = Some((url, ch));
                    break;
                }
                Err(e) => last_err = e.to_string(),
            }
        }
        let Some((url, channel)) = found else {
            self.core.session_ended(self.clock.now(), &last_err);
            return;
        };
        let (tx, rx) = mpsc::channel(OUTBOX);
        self.session = Some(Session { tx, inbound: None });
        self.core.session_opened(self.clock.now(), &url);
        // The registration goes into the stream before the call: the master reads it first.
        self.apply_outputs().await;
        let mut client = MasterClient::new(channel);
        match client.worker_session(ReceiverStream::new(rx)).await {
            Ok(r) => {
                if let Some(s) = self.session.as_mut() {
                    s.inbound = Some(r.into_inner());
                }
            }
            Err(e) => {
                if self.session.is_some() {
                    self.end_session(e.message());
                }
            }
        }
    }

    fn control(&mut self, key: &ChildKey, order: ChildControl) {
        match self.children.get(key) {
            Some(tx) => {
                if tx.try_send(order).is_err() {
                    debug!(?key, ?order, "child no longer takes orders");
                }
            }
            None => debug!(?key, ?order, "no such child"),
        }
    }

    /// Does what the core decided, until it has nothing more to say.
    async fn apply_outputs(&mut self) {
        loop {
            let outputs = self.core.take_outputs();
            if outputs.is_empty() {
                return;
            }
            for out in outputs {
                self.apply(out).await;
            }
        }
    }

    async fn apply(&mut self, out: Output) {
        match out {
            Output::Send(ev) => {
                let Some(session) = &self.session else {
                    debug!("no session: report dropped");
                    return;
                };
                if session.tx.send(ev.into()).await.is_err() {
                    self.end_session("session closed");
                }
            }
            Output::CloseSession { reason } => {
                if self.session.is_some() {
                    self.end_session(&reason);
                }
            }
            Output::Reconnect { after_ms } => {
                self.reconnect_at = Some(Instant::now() + Duration::from_millis(after_ms));
            }
            Output::StartExecutor { launch, master_url } => {
                let key = ChildKey::Executor(launch.app_id.clone(), launch.executor_id);
                let (tx, rx) = mpsc::channel(CHILD_CONTROL);
                self.children.insert(key, tx);
                self.launcher
                    .start_executor(*launch, master_url, self.events_tx.clone(), rx);
            }
            Output::StartDriver {
                driver_id,
                driver,
                master_url,
            } => {
                let (tx, rx) = mpsc::channel(CHILD_CONTROL);
                self.children
                    .insert(ChildKey::Driver(driver_id.clone()), tx);
                self.launcher.start_driver(
                    driver_id,
                    *driver,
                    master_url,
                    self.events_tx.clone(),
                    rx,
                );
            }
            Output::RelaunchDriver { driver_id, attempt } => self.control(
                &ChildKey::Driver(driver_id),
                ChildControl::Relaunch { attempt },
            ),
            Output::Kill(key) => self.control(&key, ChildControl::Kill),
            Output::Release(key) => {
                if let Some(tx) = self.children.remove(&key) {
                    let _ = tx.try_send(ChildControl::Release);
                }
            }
            Output::ReadLog {
                request_id,
                request,
            } => {
                let work_dir = self.settings.work_dir.clone();
                let events = self.events_tx.clone();
                tokio::task::spawn_blocking(move || {
                    let result = crate::logs::read_log(&work_dir, &request);
                    let _ = events.blocking_send(ChildEvent::LogRead { request_id, result });
                });
            }
        }
    }
}
