//! The worker's life with its master: connect (with backoff and jitter, re-resolving the
//! master's name every time), register, heartbeat, carry out commands, report what the
//! children do, and start over whenever the session breaks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use flint_domain::types::*;
use flint_proto::channel::connect_channel;
use flint_proto::pb;
use flint_proto::pb::master_client::MasterClient;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tracing::{debug, info, warn};

use crate::config::WorkerConfig;
use crate::process::Launcher;
use crate::runner::{self, KillSwitch, WorkerEnv};

/// Exponential backoff with jitter: 100 ms doubling up to `max`, each wait scaled by a
/// random factor in [0.5, 1.5) so a fleet of workers does not reconnect in lockstep.
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(max: Duration) -> Self {
        Self {
            next: Duration::from_millis(100),
            max,
        }
    }

    pub fn reset(&mut self) {
        self.next = Duration::from_millis(100);
    }

    pub fn next_wait(&mut self) -> Duration {
        let base = self.next.min(self.max);
        self.next = (self.next * 2).min(self.max);
        base.mul_f64(0.5 + fastrand::f64())
    }
}

/// One executor as the worker's UI shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutorStatus {
    pub app_id: AppId,
    pub executor_id: ExecutorId,
    pub app_name: String,
    pub user: String,
    pub cores: u32,
    pub memory_mb: u64,
    pub state: ExecutorState,
    pub exit_status: Option<i32>,
    pub message: Option<String>,
    /// Program and arguments, placeholders not substituted.
    pub command: String,
    pub start_ms: i64,
    pub end_ms: Option<i64>,
}

/// One driver as the worker's UI shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriverStatus {
    pub driver_id: DriverId,
    pub name: String,
    pub cores: u32,
    pub memory_mb: u64,
    pub state: DriverState,
    pub exit_status: Option<i32>,
    pub message: Option<String>,
    pub app_resource: String,
    pub start_ms: i64,
    pub end_ms: Option<i64>,
}

/// What the worker publishes about itself (for its UI, `/json` and readiness).
#[derive(Clone, Debug, Default)]
pub struct WorkerStatus {
    pub worker_id: String,
    pub host: String,
    pub port: u16,
    pub webui_url: String,
    pub cores: u32,
    pub memory_mb: u64,
    pub work_dir: std::path::PathBuf,
    pub registered: bool,
    pub master_url: Option<String>,
    pub master_webui_url: Option<String>,
    pub executors: Vec<ExecutorStatus>,
    pub finished_executors: Vec<ExecutorStatus>,
    pub drivers: Vec<DriverStatus>,
    pub finished_drivers: Vec<DriverStatus>,
}

/// `spark.worker.ui.retainedExecutors` / `retainedDrivers`.
const RETAINED: usize = 1000;

impl WorkerStatus {
    pub fn cores_used(&self) -> u32 {
        self.executors.iter().map(|e| e.cores).sum::<u32>()
            + self.drivers.iter().map(|d| d.cores).sum::<u32>()
    }

    pub fn memory_used_mb(&self) -> u64 {
        self.executors.iter().map(|e| e.memory_mb).sum::<u64>()
            + self.drivers.iter().map(|d| d.memory_mb).sum::<u64>()
    }

    fn executor_event(
        &mut self,
        app_id: &AppId,
        id: ExecutorId,
        state: ExecutorState,
        message: &Option<String>,
        exit_status: Option<i32>,
    ) {
        let Some(pos) = self
            .executors
            .iter()
            .position(|e| &e.app_id == app_id && e.executor_id == id)
        else {
            return;
        };
        let e = &mut self.executors[pos];
        e.state = state;
        e.message = message.clone();
        e.exit_status = exit_status;
        if state.is_finished() {
            let mut e = self.executors.remove(pos);
            e.end_ms = Some(wall_ms());
            if self.finished_executors.len() >= RETAINED {
                self.finished_executors.remove(0);
            }
            self.finished_executors.push(e);
        }
    }

    fn driver_event(
        &mut self,
        id: &DriverId,
        state: DriverState,
        message: &Option<String>,
        exit_status: Option<i32>,
    ) {
        let Some(pos) = self.drivers.iter().position(|d| &d.driver_id == id) else {
            return;
        };
        let d = &mut self.drivers[pos];
        d.state = state;
        d.message = message.clone();
        d.exit_status = exit_status;
        if state.is_finished() {
            let mut d = self.drivers.remove(pos);
            d.end_ms = Some(wall_ms());
            if self.finished_drivers.len() >= RETAINED {
                self.finished_drivers.remove(0);
            }
            self.finished_drivers.push(d);
        }
    }
}

pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Resolves once the watch says stop (its guard never lives across an await, so select!
/// futures using it stay `Send`).
pub async fn stopped(w: &mut watch::Receiver<bool>) {
    let _ = w.wait_for(|s| *s).await;
}

enum SessionEnd {
    Shutdown,
    Broken(String),
}

pub struct Worker {
    cfg: WorkerConfig,
    env: Arc<WorkerEnv>,
    launcher: Arc<Launcher>,
    executors: HashMap<(AppId, ExecutorId), KillSwitch>,
    drivers: HashMap<DriverId, KillSwitch>,
    events_tx: mpsc::UnboundedSender<WorkerEvent>,
    events_rx: mpsc::UnboundedReceiver<WorkerEvent>,
    status: watch::Sender<WorkerStatus>,
    active_master_url: String,
}

impl Worker {
    pub fn new(
        cfg: WorkerConfig,
        env: WorkerEnv,
        launcher: Launcher,
        status: watch::Sender<WorkerStatus>,
    ) -> Self {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let active_master_url = cfg.master_url.clone();
        Self {
            cfg,
            env: Arc::new(env),
            launcher: Arc::new(launcher),
            executors: HashMap::new(),
            drivers: HashMap::new(),
            events_tx,
            events_rx,
            status,
            active_master_url,
        }
    }

    fn registration(&self) -> WorkerEvent {
        WorkerEvent::Register(WorkerRegistration {
            id: self.env.worker_id.clone(),
            host: self.env.host.clone(),
            port: self.cfg.port,
            cores: self.cfg.cores,
            memory_mb: self.cfg.memory_mb,
            webui_url: self.env.webui_url.clone(),
        })
    }

    /// Runs until `shutdown` fires; then kills every child, reports it, and returns.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Backoff::new(self.cfg.max_backoff);
        let mut attempt = 0u32;
        loop {
            if *shutdown.borrow() {
                break;
            }
            attempt += 1;
            match self.session(&mut shutdown, &mut backoff).await {
                SessionEnd::Shutdown => break,
                SessionEnd::Broken(why) => {
                    self.status.send_modify(|s| s.registered = false);
                    let wait = backoff.next_wait();
                    if attempt == 1 || attempt.is_multiple_of(10) {
                        warn!(attempt, reason = %why, retry_in_ms = wait.as_millis() as u64, "cannot reach the master; retrying");
                    } else {
                        debug!(attempt, reason = %why, "master session ended; retrying");
                    }
                    // Children finishing while we are disconnected are forgotten by the
                    // master anyway; just keep our own maps right.
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stopped(&mut shutdown) => break,
                    }
                    while let Ok(ev) = self.events_rx.try_recv() {
                        self.note_event(&ev);
                    }
                }
            }
        }
        self.stop_children().await;
    }

    /// One connection to the master, from connect to break.
    async fn session(
        &mut self,
        shutdown: &mut watch::Receiver<bool>,
        backoff: &mut Backoff,
    ) -> SessionEnd {
        let mut last_err = String::new();
        let mut channel = None;
        for (host, port) in self.cfg.masters.clone() {
            let url = format!("spark://{host}:{port}");
            match connect_channel(&url, Duration::from_secs(3)).await {
                Ok(ch) => {
                    self.active_master_url = url;
                    channel = Some(ch);
                    break;
                }
                Err(e) => last_err = e.to_string(),
            }
        }
        let Some(channel) = channel else {
            return SessionEnd::Broken(last_err);
        };
        let (tx, rx) = mpsc::channel::<pb::WorkerToMaster>(1024);
        if tx.send(self.registration().into()).await.is_err() {
            return SessionEnd::Broken("session closed".into());
        }
        let mut client = MasterClient::new(channel);
        let mut inbound = match client.worker_session(ReceiverStream::new(rx)).await {
            Ok(r) => r.into_inner(),
            Err(e) => return SessionEnd::Broken(e.message().to_owned()),
        };
        let mut heartbeat = tokio::time::interval(Duration::from_secs(3600));
        let mut registered = false;
        loop {
            tokio::select! {
                msg = inbound.message() => {
                    let cmd = match msg {
                        Ok(Some(m)) => match WorkerCommand::try_from(m) {
                            Ok(c) => c,
                            Err(e) => { warn!(error = %e, "ignoring invalid command from master"); continue; }
                        },
                        Ok(None) => return SessionEnd::Broken("master closed the session".into()),
                        Err(e) => return SessionEnd::Broken(format!("{}: {}", e.code(), e.message())),
                    };
                    match cmd {
                        WorkerCommand::Registered { worker_id, master_url, master_webui_url, duplicate, heartbeat_interval_ms } => {
                            info!(%worker_id, %master_url, duplicate, "Successfully registered with master");
                            registered = true;
                            backoff.reset();
                            heartbeat = tokio::time::interval(Duration::from_millis(heartbeat_interval_ms.max(1)));
                            heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                            self.status.send_modify(|s| {
                                s.registered = true;
                                s.master_url = Some(master_url.clone());
                                s.master_webui_url = Some(master_webui_url.clone());
                            });
                            let latest = WorkerEvent::LatestState {
                                worker_id: self.env.worker_id.clone(),
                                executors: self.executors.keys().cloned().collect(),
                                drivers: self.drivers.keys().cloned().collect(),
                            };
                            if tx.send(latest.into()).await.is_err() {
                                return SessionEnd::Broken("session closed".into());
                            }
                        }
                        WorkerCommand::RegisterFailed { message } => {
                            return SessionEnd::Broken(format!("registration refused: {message}"));
                        }
                        WorkerCommand::Reconnect { master_url } => {
                            info!(%master_url, "master asked us to re-register");
                            registered = false;
                            if tx.send(self.registration().into()).await.is_err() {
                                return SessionEnd::Broken("session closed".into());
                            }
                        }
                        other => self.handle_command(other),
                    }
                }
                _ = heartbeat.tick(), if registered => {
                    let hb = WorkerEvent::Heartbeat { worker_id: self.env.worker_id.clone() };
                    if tx.send(hb.into()).await.is_err() {
                        return SessionEnd::Broken("session closed".into());
                    }
                }
                Some(ev) = self.events_rx.recv() => {
                    self.note_event(&ev);
                    if tx.send(ev.into()).await.is_err() {
                        return SessionEnd::Broken("session closed".into());
                    }
                }
                _ = stopped(shutdown) => {
                    self.stop_children_reporting(&tx).await;
                    drop(tx);
                    // Let the master see the end of our stream before we go.
                    let _ = tokio::time::timeout(Duration::from_secs(1), async {
                        while let Ok(Some(_)) = inbound.message().await {}
                    }).await;
                    return SessionEnd::Shutdown;
                }
            }
        }
    }

    fn handle_command(&mut self, cmd: WorkerCommand) {
        match cmd {
            WorkerCommand::LaunchExecutor(l) => {
                let key = (l.app_id.clone(), l.executor_id);
                info!(app_id = %l.app_id, exec_id = l.executor_id, cores = l.cores, memory_mb = l.memory_mb, "Asked to launch executor");
                if l.master_url != self.active_master_url {
                    debug!(from = %l.master_url, ours = %self.active_master_url, "launch from a master URL spelled differently");
                }
                let command = std::iter::once(l.app.command.program.as_str())
                    .chain(l.app.command.args.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(" ");
                let st = ExecutorStatus {
                    app_id: l.app_id.clone(),
                    executor_id: l.executor_id,
                    app_name: l.app.name.clone(),
                    user: l.app.user.clone(),
                    cores: l.cores,
                    memory_mb: l.memory_mb,
                    state: ExecutorState::Launching,
                    exit_status: None,
                    message: None,
                    command,
                    start_ms: wall_ms(),
                    end_ms: None,
                };
                self.status.send_modify(|s| s.executors.push(st));
                let ks = runner::spawn_executor(
                    self.env.clone(),
                    self.launcher.clone(),
                    self.active_master_url.clone(),
                    *l,
                    self.events_tx.clone(),
                );
                self.executors.insert(key, ks);
            }
            WorkerCommand::KillExecutor {
                app_id,
                executor_id,
            } => match self.executors.get_mut(&(app_id.clone(), executor_id)) {
                Some(ks) => {
                    info!(%app_id, executor_id, "Asked to kill executor");
                    ks.kill();
                }
                None => debug!(%app_id, executor_id, "asked to kill an executor we do not run"),
            },
            WorkerCommand::LaunchDriver { driver_id, driver } => {
                info!(%driver_id, "Asked to launch driver");
                let st = DriverStatus {
                    driver_id: driver_id.clone(),
                    name: driver.name.clone(),
                    cores: driver.cores,
                    memory_mb: driver.memory_mb,
                    state: DriverState::Submitted,
                    exit_status: None,
                    message: None,
                    app_resource: driver.app_resource.clone(),
                    start_ms: wall_ms(),
                    end_ms: None,
                };
                self.status.send_modify(|s| s.drivers.push(st));
                let ks = runner::spawn_driver(
                    self.env.clone(),
                    self.launcher.clone(),
                    self.active_master_url.clone(),
                    driver_id.clone(),
                    *driver,
                    self.events_tx.clone(),
                );
                self.drivers.insert(driver_id, ks);
            }
            WorkerCommand::KillDriver { driver_id } => match self.drivers.get_mut(&driver_id) {
                Some(ks) => {
                    info!(%driver_id, "Asked to kill driver");
                    ks.kill();
                }
                None => debug!(%driver_id, "asked to kill a driver we do not run"),
            },
            WorkerCommand::ApplicationFinished { app_id } => {
                for ((a, _), ks) in self.executors.iter_mut() {
                    if *a == app_id {
                        ks.kill();
                    }
                }
                debug!(%app_id, "application finished");
            }
            WorkerCommand::ReadLog {
                request_id,
                request,
            } => {
                let work_dir = self.env.work_dir.clone();
                let events = self.events_tx.clone();
                tokio::task::spawn_blocking(move || {
                    let result = crate::logs::read_log(&work_dir, &request);
                    let _ = events.send(WorkerEvent::LogSlice { request_id, result });
                });
            }
            WorkerCommand::Registered { .. }
            | WorkerCommand::RegisterFailed { .. }
            | WorkerCommand::Reconnect { .. } => {}
        }
    }

    /// Keeps the maps of running children in step with what they report.
    fn note_event(&mut self, ev: &WorkerEvent) {
        self.status.send_modify(|s| match ev {
            WorkerEvent::ExecutorStateChanged {
                app_id,
                executor_id,
                state,
                message,
                exit_status,
            } => s.executor_event(app_id, *executor_id, *state, message, *exit_status),
            WorkerEvent::DriverStateChanged {
                driver_id,
                state,
                message,
                exit_status,
            } => s.driver_event(driver_id, *state, message, *exit_status),
            _ => {}
        });
        match ev {
            WorkerEvent::ExecutorStateChanged {
                app_id,
                executor_id,
                state,
                ..
            } if state.is_finished() => {
                self.executors.remove(&(app_id.clone(), *executor_id));
            }
            WorkerEvent::DriverStateChanged {
                driver_id, state, ..
            } if state.is_finished() => {
                self.drivers.remove(driver_id);
            }
            _ => {}
        }
    }

    fn running(&self) -> usize {
        self.executors.len() + self.drivers.len()
    }

    fn kill_all(&mut self) {
        for ks in self.executors.values_mut() {
            ks.kill();
        }
        for ks in self.drivers.values_mut() {
            ks.kill();
        }
    }

    /// On shutdown while connected: kill everything and tell the master how it ended.
    async fn stop_children_reporting(&mut self, tx: &mpsc::Sender<pb::WorkerToMaster>) {
        self.kill_all();
        let deadline = tokio::time::Instant::now() + self.env.kill_grace + Duration::from_secs(1);
        while self.running() > 0 {
            match tokio::time::timeout_at(deadline, self.events_rx.recv()).await {
                Ok(Some(ev)) => {
                    self.note_event(&ev);
                    let _ = tx.send(ev.into()).await;
                }
                _ => break,
            }
        }
    }

    async fn stop_children(&mut self) {
        self.kill_all();
        let deadline = tokio::time::Instant::now() + self.env.kill_grace + Duration::from_secs(1);
        while self.running() > 0 {
            match tokio::time::timeout_at(deadline, self.events_rx.recv()).await {
                Ok(Some(ev)) => self.note_event(&ev),
                _ => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_with_jitter() {
        let mut b = Backoff::new(Duration::from_secs(2));
        let waits: Vec<Duration> = (0..10).map(|_| b.next_wait()).collect();
        assert!(waits[0] >= Duration::from_millis(50) && waits[0] < Duration::from_millis(150));
        for w in &waits {
            assert!(*w < Duration::from_secs(3));
        }
        assert!(waits[9] >= Duration::from_secs(1));
        b.reset();
        assert!(b.next_wait() < Duration::from_millis(150));
    }
}
