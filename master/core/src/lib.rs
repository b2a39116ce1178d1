//! The master's decisions, without I/O (sans-IO, in the manner of raft-rs).
//!
//! [`MasterState`] is plain data. Front ends call one method per event (a worker
//! registered, a heartbeat, an application asked for executors, a timer tick…), always
//! passing the current time, and then drain [`MasterState::take_outputs`]: the messages to
//! send down the sessions. Nothing here knows about gRPC, sockets, clocks or tasks, so the
//! same core can be driven by Spark's own RPC protocol and tested without a runtime.

pub use flint_domain::ids;
pub mod model;
pub mod schedule;
mod view;

use std::collections::{BTreeMap, HashMap, VecDeque};

use flint_domain::error::ErrorCode;
use flint_domain::replies;
use flint_domain::types::*;
use tracing::{debug, info, warn};

use model::{AppInfo, DriverInfo, ExecutorInfo, WorkerInfo, retain_completed};

/// Puts an application back among those that may receive cores (Spark's waitingApps).
fn requeue(waiting: &mut Vec<AppId>, app_id: &AppId) {
    if !waiting.contains(app_id) {
        waiting.push(app_id.clone());
    }
}
pub use model::{ConnId, Now};
use schedule::{Ask, Offer};

/// Settings the core needs (resolved from `spark.*` properties by the binary).
#[derive(Clone, Debug)]
pub struct CoreConfig {
    pub master_url: String,
    pub webui_url: String,
    /// `spark.worker.timeout` (default 60 s).
    pub worker_timeout_ms: u64,
    /// `spark.dead.worker.persistence` (default 15).
    pub dead_worker_persistence: u32,
    /// `spark.deploy.spreadOut` (default true).
    pub spread_out: bool,
    /// `spark.deploy.defaultCores` (default unlimited).
    pub default_cores: u32,
    /// `spark.deploy.maxExecutorRetries` (default 10; negative disables).
    pub max_executor_retries: i32,
    /// `spark.deploy.maxExecutorRetries.resetAfter` (default 5 s): an executor RUNNING this
    /// long is healthy. Only consecutive failures without a healthy executor count toward
    /// the limit. (Spark resets the count on every RUNNING report, which a process that
    /// starts and then crashes always sends, so a crash-looping app never fails there.)
    pub executor_healthy_after_ms: u64,
    /// `spark.deploy.retainedApplications` (default 200).
    pub retained_applications: usize,
    /// `spark.deploy.retainedDrivers` (default 200).
    pub retained_drivers: usize,
    /// Seed for the driver placement shuffle.
    pub seed: u64,
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            master_url: "spark://localhost:7077".into(),
            webui_url: "http://localhost:8080".into(),
            worker_timeout_ms: 60_000,
            dead_worker_persistence: 15,
            spread_out: true,
            default_cores: u32::MAX,
            max_executor_retries: 10,
            executor_healthy_after_ms: 5_000,
            retained_applications: 200,
            retained_drivers: 200,
            seed: 0x5eed,
        }
    }
}

impl CoreConfig {
    /// Workers heartbeat four times per timeout, as in Spark.
    pub fn heartbeat_interval_ms(&self) -> u64 {
        (self.worker_timeout_ms / 4).max(1)
    }
}

/// A message for one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    ToWorker {
        conn: ConnId,
        cmd: WorkerCommand,
    },
    ToApp {
        conn: ConnId,
        event: AppEvent,
    },
    /// The application is over: end its session after the events above.
    CloseApp {
        conn: ConnId,
    },
}

/// The one outcome of an application's dynamic-allocation request: the front end that
/// carried it tells the application (a `RequestResult` event, or Spark's `Boolean` reply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestOutcome {
    pub ok: bool,
    pub message: String,
}

/// Why a request was refused. Each maps to one [`ErrorCode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("master is not ALIVE (status {0})")]
    NotAlive(MasterStatus),
    #[error("{0}")]
    Unavailable(String),
}

impl From<flint_domain::validate::Invalid> for CoreError {
    fn from(e: flint_domain::validate::Invalid) -> Self {
        Self::InvalidArgument(e.to_string())
    }
}

impl CoreError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::InvalidArgument(_) => ErrorCode::InvalidArgument,
            Self::FailedPrecondition(_) => ErrorCode::FailedPrecondition,
            Self::NotAlive(_) | Self::Unavailable(_) => ErrorCode::Unavailable,
        }
    }
}

pub struct MasterState {
    cfg: CoreConfig,
    status: MasterStatus,
    workers: BTreeMap<WorkerId, WorkerInfo>,
    worker_by_conn: HashMap<ConnId, WorkerId>,
    apps: HashMap<AppId, AppInfo>,
    app_by_conn: HashMap<ConnId, AppId>,
    /// Applications in registration order that may still receive cores (Spark's waitingApps).
    waiting_apps: Vec<AppId>,
    completed_apps: VecDeque<AppInfo>,
    drivers: BTreeMap<DriverId, DriverInfo>,
    waiting_drivers: Vec<DriverId>,
    completed_drivers: VecDeque<DriverInfo>,
    next_app_number: u32,
    next_driver_number: u32,
    /// While > 0, `schedule` is deferred (several removals are processed as one step).
    schedule_suspended: u32,
    rng: fastrand::Rng,
    outputs: Vec<Output>,
}

impl MasterState {
    pub fn new(cfg: CoreConfig) -> Self {
        let rng = fastrand::Rng::with_seed(cfg.seed);
        Self {
            cfg,
            status: MasterStatus::Alive,
            workers: BTreeMap::new(),
            worker_by_conn: HashMap::new(),
            apps: HashMap::new(),
            app_by_conn: HashMap::new(),
            waiting_apps: Vec::new(),
            completed_apps: VecDeque::new(),
            drivers: BTreeMap::new(),
            waiting_drivers: Vec::new(),
            completed_drivers: VecDeque::new(),
            next_app_number: 0,
            next_driver_number: 0,
            schedule_suspended: 0,
            rng,
            outputs: Vec::new(),
        }
    }

    pub fn config(&self) -> &CoreConfig {
        &self.cfg
    }

    pub fn status(&self) -> MasterStatus {
        self.status
    }

    /// The messages produced since the last call, in order.
    pub fn take_outputs(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.outputs)
    }

    fn send_worker(&mut self, conn: ConnId, cmd: WorkerCommand) {
        self.outputs.push(Output::ToWorker { conn, cmd });
    }

    fn send_app(&mut self, conn: ConnId, event: AppEvent) {
        self.outputs.push(Output::ToApp { conn, event });
    }

    fn ensure_alive(&self) -> Result<(), CoreError> {
        if self.status == MasterStatus::Alive {
            Ok(())
        } else {
            Err(CoreError::NotAlive(self.status))
        }
    }

    // ------------------------------------------------------------------ workers

    /// A worker (re-)registers on session `conn`.
    pub fn register_worker(&mut self, now: Now, conn: ConnId, reg: WorkerRegistration) {
        if self.status != MasterStatus::Alive {
            self.send_worker(
                conn,
                WorkerCommand::RegisterFailed {
                    message: format!("master is in {} state", self.status),
                },
            );
            return;
        }
        let heartbeat_interval_ms = self.cfg.heartbeat_interval_ms();
        // The same worker again (its stream was re-opened): keep its state, bind the new session.
        if let Some(w) = self.workers.get_mut(&reg.id)
            && w.state == WorkerState::Alive
        {
            let old = std::mem::replace(&mut w.conn, conn);
            w.last_heartbeat_mono = now.mono_ms;
            w.last_heartbeat_wall = now.wall_ms;
            self.worker_by_conn.remove(&old);
            self.worker_by_conn.insert(conn, reg.id.clone());
            info!(worker_id = %reg.id, "worker re-registered on a new session (duplicate)");
            self.send_worker(
                conn,
                WorkerCommand::Registered {
                    worker_id: reg.id,
                    master_url: self.cfg.master_url.clone(),
                    master_webui_url: self.cfg.webui_url.clone(),
                    duplicate: true,
                    heartbeat_interval_ms,
                },
            );
            return;
        }
        // An ALIVE worker at the same address under another id: refuse, as Spark does.
        if let Some(other) = self.workers.values().find(|w| {
            w.state == WorkerState::Alive && w.reg.host == reg.host && w.reg.port == reg.port
        }) {
            let message = format!(
                "Attempted to re-register worker at same address: {}:{} (registered as {})",
                reg.host, reg.port, other.reg.id
            );
            warn!(worker_id = %reg.id, %message, "worker registration refused");
            self.send_worker(conn, WorkerCommand::RegisterFailed { message });
            return;
        }
        // DEAD workers at the same address (or with the same id) are replaced.
        self.workers.retain(|id, w| {
            !(w.state == WorkerState::Dead
                && (id == &reg.id || (w.reg.host == reg.host && w.reg.port == reg.port)))
        });
        info!(
            worker_id = %reg.id, host = %reg.host, port = reg.port, cores = reg.cores,
            memory_mb = reg.memory_mb, "registering worker"
        );
        self.worker_by_conn.insert(conn, reg.id.clone());
        let id = reg.id.clone();
        self.workers.insert(
            id.clone(),
            WorkerInfo {
                reg,
                conn,
                state: WorkerState::Alive,
                last_heartbeat_mono: now.mono_ms,
                last_heartbeat_wall: now.wall_ms,
                cores_used: 0,
                memory_used_mb: 0,
                executors: Default::default(),
                drivers: Default::default(),
            },
        );
        self.send_worker(
            conn,
            WorkerCommand::Registered {
                worker_id: id,
                master_url: self.cfg.master_url.clone(),
                master_webui_url: self.cfg.webui_url.clone(),
                duplicate: false,
                heartbeat_interval_ms,
            },
        );
        self.schedule(now);
    }

    pub fn worker_heartbeat(&mut self, now: Now, conn: ConnId, worker_id: &WorkerId) {
        match self.workers.get_mut(worker_id) {
            Some(w) if w.state == WorkerState::Alive => {
                w.last_heartbeat_mono = now.mono_ms;
                w.last_heartbeat_wall = now.wall_ms;
            }
            _ => {
                debug!(%worker_id, "heartbeat from unknown or dead worker, asking it to reconnect");
                self.send_worker(
                    conn,
                    WorkerCommand::Reconnect {
                        master_url: self.cfg.master_url.clone(),
                    },
                );
            }
        }
    }

    /// After registering, a worker reports what it still runs; anything the master does not
    /// know is killed.
    pub fn worker_latest_state(
        &mut self,
        conn: ConnId,
        worker_id: &WorkerId,
        executors: &[(AppId, ExecutorId)],
        drivers: &[DriverId],
    ) {
        let Some(w) = self.workers.get(worker_id) else {
            return;
        };
        if w.state != WorkerState::Alive {
            return;
        }
        let mut kills = Vec::new();
        for (app_id, exec_id) in executors {
            if !w.executors.contains(&(app_id.clone(), *exec_id)) {
                kills.push(WorkerCommand::KillExecutor {
                    app_id: app_id.clone(),
                    executor_id: *exec_id,
                });
            }
        }
        for d in drivers {
            if !w.drivers.contains(d) {
                kills.push(WorkerCommand::KillDriver {
                    driver_id: d.clone(),
                });
            }
        }
        for k in kills {
            info!(%worker_id, command = ?k, "killing what the master does not know");
            self.send_worker(conn, k);
        }
    }

    /// A worker's session ended (the worker exited, or its connection broke).
    pub fn worker_disconnected(&mut self, now: Now, conn: ConnId) {
        if let Some(id) = self.worker_by_conn.get(&conn).cloned() {
            info!(worker_id = %id, "worker disconnected");
            self.remove_worker(now, &id, "worker lost: disconnected");
        }
    }

    fn remove_worker(&mut self, now: Now, worker_id: &WorkerId, msg: &str) {
        let Some(w) = self.workers.get_mut(worker_id) else {
            return;
        };
        if w.state == WorkerState::Dead {
            return;
        }
        info!(%worker_id, reason = msg, "removing worker");
        w.state = WorkerState::Dead;
        self.schedule_suspended += 1;
        let conn = w.conn;
        let host = w.reg.host.clone();
        let executors = std::mem::take(&mut w.executors);
        let drivers = std::mem::take(&mut w.drivers);
        w.cores_used = 0;
        w.memory_used_mb = 0;
        self.worker_by_conn.remove(&conn);

        for (app_id, exec_id) in executors {
            if let Some(app) = self.apps.get_mut(&app_id)
                && let Some(mut e) = app.take_executor(exec_id)
            {
                e.state = ExecutorState::Lost;
                e.message = Some(msg.to_owned());
                let app_conn = app.conn;
                app.removed_executors.push(e);
                requeue(&mut self.waiting_apps, &app_id);
                self.send_app(
                    app_conn,
                    AppEvent::ExecutorUpdated {
                        executor_id: exec_id,
                        state: ExecutorState::Lost,
                        message: Some(msg.to_owned()),
                        exit_status: None,
                        worker_host: Some(host.clone()),
                    },
                );
            }
        }
        for d in drivers {
            let supervise = self.drivers.get(&d).is_some_and(|d| d.desc.supervise);
            if supervise {
                self.relaunch_driver(now, &d);
            } else {
                self.remove_driver(now, &d, DriverState::Error, Some(msg.to_owned()), None);
            }
        }
        let app_conns: Vec<ConnId> = self.apps.values().map(|a| a.conn).collect();
        for c in app_conns {
            self.send_app(
                c,
                AppEvent::WorkerRemoved {
                    worker_id: worker_id.clone(),
                    host: host.clone(),
                    message: msg.to_owned(),
                },
            );
        }
        self.schedule_suspended -= 1;
        self.schedule(now);
    }

    // ------------------------------------------------------------------ timers

    /// Periodic check (every heartbeat interval is plenty): workers silent for
    /// `spark.worker.timeout` become DEAD; DEAD workers are forgotten after
    /// `(spark.dead.worker.persistence + 1)` timeouts.
    pub fn tick(&mut self, now: Now) {
        let timeout = self.cfg.worker_timeout_ms;
        let expired: Vec<WorkerId> = self
            .workers
            .values()
            .filter(|w| {
                w.state == WorkerState::Alive
                    && now.mono_ms.saturating_sub(w.last_heartbeat_mono) > timeout
            })
            .map(|w| w.reg.id.clone())
            .collect();
        // Every expired worker is removed before anything is rescheduled, so no work is
        // sent to a worker that is about to be declared dead in the same tick.
        for id in &expired {
            if let Some(w) = self.workers.get_mut(id) {
                w.state = WorkerState::Unknown;
            }
        }
        self.schedule_suspended += 1;
        for id in expired {
            warn!(worker_id = %id, timeout_ms = timeout, "removing worker: no heartbeat within spark.worker.timeout");
            let msg = format!(
                "worker lost: no heartbeat in {} ms",
                self.cfg.worker_timeout_ms
            );
            self.remove_worker(now, &id, &msg);
        }
        self.schedule_suspended -= 1;
        self.schedule(now);
        let forget_after = timeout.saturating_mul(u64::from(self.cfg.dead_worker_persistence) + 1);
        self.workers.retain(|_, w| {
            !(w.state == WorkerState::Dead
                && now.mono_ms.saturating_sub(w.last_heartbeat_mono) > forget_after)
        });
    }

    // ------------------------------------------------------------------ executors

    pub fn executor_state_changed(
        &mut self,
        now: Now,
        app_id: &AppId,
        exec_id: ExecutorId,
        state: ExecutorState,
        message: Option<String>,
        exit_status: Option<i32>,
    ) {
        let max_retries = self.cfg.max_executor_retries;
        let Some(app) = self.apps.get_mut(app_id) else {
            debug!(%app_id, exec_id, %state, "status update for an unknown application");
            return;
        };
        let Some(e) = app.executors.get_mut(&exec_id) else {
            debug!(%app_id, exec_id, %state, "status update for an unknown executor");
            return;
        };
        let old_state = e.state;
        e.state = state;
        e.exit_status = exit_status;
        e.message = message.clone();
        let app_conn = app.conn;
        if state == ExecutorState::Running {
            e.running_since_mono = Some(now.mono_ms);
            if app.time_to_running_ms.is_none()
                && app
                    .executors
                    .values()
                    .all(|e| e.state == ExecutorState::Running)
            {
                app.time_to_running_ms = Some(now.mono_ms.saturating_sub(app.registered_mono));
            }
        }
        self.send_app(
            app_conn,
            AppEvent::ExecutorUpdated {
                executor_id: exec_id,
                state,
                message: message.clone(),
                exit_status,
                worker_host: None,
            },
        );
        if !state.is_finished() {
            return;
        }
        info!(%app_id, exec_id, %state, ?exit_status, "executor finished");
        let Some(app) = self.apps.get_mut(app_id) else {
            return;
        };
        let Some(e) = app.take_executor(exec_id) else {
            return;
        };
        let worker_id = e.worker_id.clone();
        let (cores, mem) = (e.cores, e.memory_mb);
        app.removed_executors.push(e);
        let normal_exit = exit_status == Some(0);
        let healthy_after = self.cfg.executor_healthy_after_ms;
        let was_healthy = |e: &ExecutorInfo| {
            e.state == ExecutorState::Running
                && e.running_since_mono
                    .is_some_and(|t| now.mono_ms.saturating_sub(t) >= healthy_after)
        };
        let ran_long = app
            .removed_executors
            .last()
            .and_then(|e| e.running_since_mono)
            .is_some_and(|t| now.mono_ms.saturating_sub(t) >= healthy_after);
        let mut fail_app = false;
        if !normal_exit && old_state != ExecutorState::Decommissioned {
            if ran_long {
                app.retry_count = 0;
            }
            app.retry_count += 1;
            let any_healthy = app.executors.values().any(was_healthy);
            if max_retries >= 0 && app.retry_count >= max_retries as u32 && !any_healthy {
                fail_app = true;
            }
        }
        requeue(&mut self.waiting_apps, app_id);
        if let Some(w) = self.workers.get_mut(&worker_id) {
            w.release_executor(&(app_id.clone(), exec_id), cores, mem);
        }
        if fail_app {
            let msg = format!(
                "Application {app_id} failed {max_retries} times; removing it (spark.deploy.maxExecutorRetries)"
            );
            warn!(%app_id, "{msg}");
            self.remove_application(now, app_id, ApplicationState::Failed, &msg);
        } else {
            self.schedule(now);
        }
    }

    // ------------------------------------------------------------------ applications

    /// A driver registers its application on session `conn`.
    pub fn register_application(
        &mut self,
        now: Now,
        conn: ConnId,
        desc: AppDescription,
        driver_url: String,
    ) -> Result<AppId, CoreError> {
        self.ensure_alive()?;
        desc.validate()?;
        if let Some(existing) = self.app_by_conn.get(&conn) {
            return Err(CoreError::FailedPrecondition(format!(
                "this session already registered application {existing}"
            )));
        }
        let id = AppId(ids::app_id(now.wall_ms, self.next_app_number));
        self.next_app_number += 1;
        info!(app_id = %id, name = %desc.name, cores_per_executor = ?desc.cores_per_executor,
              memory_mb = desc.memory_per_executor_mb, max_cores = ?desc.max_cores, "registering application");
        let executor_limit = desc.initial_executor_limit.unwrap_or(u32::MAX);
        self.apps.insert(
            id.clone(),
            AppInfo {
                id: id.clone(),
                desc,
                driver_url,
                conn,
                state: ApplicationState::Waiting,
                start_wall: now.wall_ms,
                registered_mono: now.mono_ms,
                end_wall: None,
                executors: BTreeMap::new(),
                removed_executors: Vec::new(),
                next_executor_id: 0,
                cores_granted: 0,
                executor_limit,
                retry_count: 0,
                time_to_running_ms: None,
            },
        );
        self.app_by_conn.insert(conn, id.clone());
        self.waiting_apps.push(id.clone());
        self.send_app(
            conn,
            AppEvent::Registered {
                app_id: id.clone(),
                master_url: self.cfg.master_url.clone(),
            },
        );
        self.schedule(now);
        Ok(id)
    }

    fn app_of_conn(&self, conn: ConnId) -> Result<AppId, CoreError> {
        self.app_by_conn.get(&conn).cloned().ok_or_else(|| {
            CoreError::FailedPrecondition("no application registered on this session".into())
        })
    }

    /// Dynamic allocation: the application now wants `total` executors in all.
    pub fn request_executors(
        &mut self,
        now: Now,
        conn: ConnId,
        total: u32,
    ) -> Result<RequestOutcome, CoreError> {
        let app_id = self.app_of_conn(conn)?;
        if let Some(app) = self.apps.get_mut(&app_id) {
            info!(%app_id, total, "application requested executors");
            app.executor_limit = total;
        }
        requeue(&mut self.waiting_apps, &app_id);
        self.schedule(now);
        Ok(RequestOutcome {
            ok: true,
            message: format!("executor limit set to {total}"),
        })
    }

    /// Dynamic allocation: kill these executors of the application.
    pub fn kill_executors(
        &mut self,
        now: Now,
        conn: ConnId,
        executor_ids: &[ExecutorId],
    ) -> Result<RequestOutcome, CoreError> {
        let app_id = self.app_of_conn(conn)?;
        let mut unknown = Vec::new();
        for &exec_id in executor_ids {
            let Some(app) = self.apps.get_mut(&app_id) else {
                break;
            };
            let Some(mut e) = app.take_executor(exec_id) else {
                unknown.push(exec_id);
                continue;
            };
            e.state = ExecutorState::Killed;
            let worker_id = e.worker_id.clone();
            let (cores, mem) = (e.cores, e.memory_mb);
            app.removed_executors.push(e);
            if let Some(w) = self.workers.get_mut(&worker_id) {
                w.release_executor(&(app_id.clone(), exec_id), cores, mem);
                let wconn = w.conn;
                if w.state == WorkerState::Alive {
                    self.send_worker(
                        wconn,
                        WorkerCommand::KillExecutor {
                            app_id: app_id.clone(),
                            executor_id: exec_id,
                        },
                    );
                }
            }
        }
        let outcome = if unknown.is_empty() {
            RequestOutcome {
                ok: true,
                message: format!("killed {} executor(s)", executor_ids.len()),
            }
        } else {
            RequestOutcome {
                ok: false,
                message: format!("unknown executor id(s): {unknown:?}"),
            }
        };
        requeue(&mut self.waiting_apps, &app_id);
        self.schedule(now);
        Ok(outcome)
    }

    /// The driver said it is done.
    pub fn unregister_application(&mut self, now: Now, conn: ConnId) -> Result<(), CoreError> {
        let app_id = self.app_of_conn(conn)?;
        info!(%app_id, "received unregister request from application");
        self.remove_application(now, &app_id, ApplicationState::Finished, "unregistered");
        Ok(())
    }

    /// The application's session ended: the application is over.
    pub fn application_disconnected(&mut self, now: Now, conn: ConnId) {
        if let Some(app_id) = self.app_by_conn.get(&conn).cloned() {
            info!(%app_id, "application's driver disconnected");
            self.remove_application(
                now,
                &app_id,
                ApplicationState::Finished,
                "driver disconnected",
            );
        }
    }

    /// Kill from the UI or a client.
    pub fn kill_application(&mut self, now: Now, app_id: &AppId) -> Result<(), CoreError> {
        if !self.apps.contains_key(app_id) {
            return Err(if self.completed_apps.iter().any(|a| &a.id == app_id) {
                CoreError::FailedPrecondition(format!("application {app_id} has already finished"))
            } else {
                CoreError::NotFound(format!("unknown application {app_id}"))
            });
        }
        self.remove_application(now, app_id, ApplicationState::Killed, "killed by request");
        Ok(())
    }

    fn remove_application(&mut self, now: Now, app_id: &AppId, state: ApplicationState, msg: &str) {
        let Some(mut app) = self.apps.remove(app_id) else {
            return;
        };
        info!(%app_id, %state, reason = msg, "removing application");
        self.app_by_conn.remove(&app.conn);
        self.waiting_apps.retain(|a| a != app_id);
        for (exec_id, mut e) in std::mem::take(&mut app.executors) {
            if let Some(w) = self.workers.get_mut(&e.worker_id) {
                w.release_executor(&(app_id.clone(), exec_id), e.cores, e.memory_mb);
                if w.state == WorkerState::Alive {
                    let conn = w.conn;
                    self.send_worker(
                        conn,
                        WorkerCommand::KillExecutor {
                            app_id: app_id.clone(),
                            executor_id: exec_id,
                        },
                    );
                }
            }
            e.state = ExecutorState::Killed;
            app.removed_executors.push(e);
        }
        app.cores_granted = 0;
        let alive: Vec<ConnId> = self
            .workers
            .values()
            .filter(|w| w.state == WorkerState::Alive)
            .map(|w| w.conn)
            .collect();
        for conn in alive {
            self.send_worker(
                conn,
                WorkerCommand::ApplicationFinished {
                    app_id: app_id.clone(),
                },
            );
        }
        if state != ApplicationState::Finished {
            self.send_app(
                app.conn,
                AppEvent::ApplicationRemoved {
                    state,
                    message: msg.to_owned(),
                },
            );
        }
        self.outputs.push(Output::CloseApp { conn: app.conn });
        app.state = state;
        app.end_wall = Some(now.wall_ms);
        retain_completed(
            &mut self.completed_apps,
            app,
            self.cfg.retained_applications,
        );
        self.schedule(now);
    }

    // ------------------------------------------------------------------ drivers

    pub fn submit_driver(
        &mut self,
        now: Now,
        desc: DriverDescription,
    ) -> Result<DriverId, CoreError> {
        self.ensure_alive()?;
        desc.validate()?;
        let id = self.new_driver(now, desc);
        info!(driver_id = %id, "driver submitted");
        self.schedule(now);
        Ok(id)
    }

    fn new_driver(&mut self, now: Now, desc: DriverDescription) -> DriverId {
        let id = DriverId(ids::driver_id(now.wall_ms, self.next_driver_number));
        self.next_driver_number += 1;
        self.drivers.insert(
            id.clone(),
            DriverInfo {
                id: id.clone(),
                desc,
                state: DriverState::Submitted,
                worker: None,
                worker_host_port: None,
                start_wall: now.wall_ms,
                message: None,
                exit_status: None,
                relaunched_as: None,
            },
        );
        self.waiting_drivers.push(id.clone());
        id
    }

    /// Returns the message to show the user.
    pub fn kill_driver(&mut self, now: Now, id: &DriverId) -> Result<String, CoreError> {
        self.ensure_alive()?;
        let Some(d) = self.drivers.get(id) else {
            return Err(if self.completed_drivers.iter().any(|d| &d.id == id) {
                CoreError::FailedPrecondition(format!("Driver {id} has already finished"))
            } else {
                CoreError::NotFound(format!("Driver {id} does not exist"))
            });
        };
        match d.worker.clone() {
            None => {
                self.remove_driver(
                    now,
                    id,
                    DriverState::Killed,
                    Some("killed before it started".into()),
                    None,
                );
            }
            Some(w) => {
                if let Some(conn) = self
                    .workers
                    .get(&w)
                    .filter(|w| w.state == WorkerState::Alive)
                    .map(|w| w.conn)
                {
                    self.send_worker(
                        conn,
                        WorkerCommand::KillDriver {
                            driver_id: id.clone(),
                        },
                    );
                } else {
                    self.remove_driver(now, id, DriverState::Killed, None, None);
                }
            }
        }
        Ok(replies::kill_submitted(id))
    }

    pub fn driver_status(&self, id: &DriverId) -> Result<DriverView, CoreError> {
        self.drivers
            .get(id)
            .or_else(|| self.completed_drivers.iter().find(|d| &d.id == id))
            .map(view::driver_view)
            .ok_or_else(|| CoreError::NotFound(format!("Driver {id} does not exist")))
    }

    pub fn driver_state_changed(
        &mut self,
        now: Now,
        id: &DriverId,
        state: DriverState,
        message: Option<String>,
        exit_status: Option<i32>,
    ) {
        match state {
            DriverState::Error
            | DriverState::Finished
            | DriverState::Killed
            | DriverState::Failed => self.remove_driver(now, id, state, message, exit_status),
            DriverState::Running => {
                // Only a placed driver can be running; a stale report for a queued one is ignored.
                if let Some(d) = self.drivers.get_mut(id).filter(|d| d.worker.is_some()) {
                    d.state = DriverState::Running;
                    if message.is_some() {
                        d.message = message;
                    }
                }
            }
            other => debug!(driver_id = %id, state = %other, "ignoring driver state"),
        }
    }

    fn remove_driver(
        &mut self,
        now: Now,
        id: &DriverId,
        state: DriverState,
        message: Option<String>,
        exit_status: Option<i32>,
    ) {
        let Some(mut d) = self.drivers.remove(id) else {
            return;
        };
        info!(driver_id = %id, %state, ?exit_status, "removing driver");
        self.waiting_drivers.retain(|x| x != id);
        if let Some(w) = d.worker.as_ref().and_then(|w| self.workers.get_mut(w)) {
            w.release_driver(id, d.desc.cores, d.desc.memory_mb);
        }
        d.state = state;
        if message.is_some() {
            d.message = message;
        }
        d.exit_status = exit_status;
        retain_completed(&mut self.completed_drivers, d, self.cfg.retained_drivers);
        self.schedule(now);
    }

    /// The worker of a supervised driver was lost: run it again under a new id.
    fn relaunch_driver(&mut self, now: Now, id: &DriverId) {
        let Some(desc) = self.drivers.get(id).map(|d| d.desc.clone()) else {
            return;
        };
        let new_id = self.new_driver(now, desc);
        info!(old = %id, new = %new_id, "relaunching supervised driver");
        if let Some(d) = self.drivers.get_mut(id) {
            d.relaunched_as = Some(new_id.clone());
            d.worker = None; // its worker is gone; nothing to free
        }
        self.remove_driver(
            now,
            id,
            DriverState::Relaunching,
            Some(format!("worker lost; relaunched as {new_id}")),
            None,
        );
    }

    // ------------------------------------------------------------------ scheduling

    /// Places waiting drivers, then executors of waiting applications (Spark's `schedule()`).
    fn schedule(&mut self, now: Now) {
        if self.status != MasterStatus::Alive || self.schedule_suspended > 0 {
            return;
        }
        if !self.waiting_drivers.is_empty() {
            self.schedule_drivers();
        }
        if !self.waiting_apps.is_empty() {
            self.schedule_executors(now);
        }
    }

    fn schedule_drivers(&mut self) {
        let mut alive: Vec<WorkerId> = self
            .workers
            .values()
            .filter(|w| w.state == WorkerState::Alive)
            .map(|w| w.reg.id.clone())
            .collect();
        if alive.is_empty() {
            return;
        }
        self.rng.shuffle(&mut alive);
        let n = alive.len();
        let mut cur = 0usize;
        for driver_id in self.waiting_drivers.clone() {
            let Some((cores, mem)) = self
                .drivers
                .get(&driver_id)
                .map(|d| (d.desc.cores, d.desc.memory_mb))
            else {
                continue;
            };
            for _ in 0..n {
                let wid = &alive[cur];
                cur = (cur + 1) % n;
                let Some(w) = self.workers.get_mut(wid) else {
                    continue;
                };
                if w.cores_free() >= cores && w.memory_free_mb() >= mem {
                    w.cores_used += cores;
                    w.memory_used_mb += mem;
                    w.drivers.insert(driver_id.clone());
                    let conn = w.conn;
                    let host_port = w.host_port();
                    let Some(d) = self.drivers.get_mut(&driver_id) else {
                        break;
                    };
                    d.worker = Some(wid.clone());
                    d.worker_host_port = Some(host_port);
                    d.state = DriverState::Running;
                    info!(%driver_id, worker_id = %wid, "launching driver");
                    let desc = Box::new(d.desc.clone());
                    self.waiting_drivers.retain(|x| x != &driver_id);
                    self.send_worker(
                        conn,
                        WorkerCommand::LaunchDriver {
                            driver_id: driver_id.clone(),
                            driver: desc,
                        },
                    );
                    break;
                }
            }
        }
    }

    fn schedule_executors(&mut self, _now: Now) {
        let default_cores = self.cfg.default_cores;
        let spread_out = self.cfg.spread_out;
        for app_id in self.waiting_apps.clone() {
            let Some(app) = self.apps.get(&app_id) else {
                continue;
            };
            let cores_left = app.cores_left(default_cores);
            let cpe = app.desc.cores_per_executor;
            let min_cores = cpe.unwrap_or(1);
            if cores_left < min_cores {
                continue;
            }
            let mem = app.desc.memory_per_executor_mb;
            let mut usable: Vec<&WorkerInfo> = self
                .workers
                .values()
                .filter(|w| {
                    w.state == WorkerState::Alive
                        && w.memory_free_mb() >= mem
                        && w.cores_free() >= min_cores
                })
                .collect();
            if usable.is_empty() {
                continue;
            }
            usable.sort_by(|a, b| {
                b.cores_free()
                    .cmp(&a.cores_free())
                    .then(a.reg.id.cmp(&b.reg.id))
            });
            let offers: Vec<Offer> = usable
                .iter()
                .map(|w| Offer {
                    cores_free: w.cores_free(),
                    memory_free_mb: w.memory_free_mb(),
                })
                .collect();
            let ask = Ask {
                cores_left,
                cores_per_executor: cpe,
                memory_per_executor_mb: mem,
                existing_executors: app.executors.len() as u32,
                executor_limit: app.executor_limit,
            };
            let assigned = schedule::schedule_executors_on_workers(&ask, &offers, spread_out);
            let targets: Vec<(WorkerId, u32)> = usable
                .iter()
                .zip(assigned)
                .filter(|(_, c)| *c > 0)
                .map(|(w, c)| (w.reg.id.clone(), c))
                .collect();
            for (wid, cores) in targets {
                for exec_cores in schedule::executors_for(cores, cpe) {
                    self.launch_executor(&app_id, &wid, exec_cores);
                }
            }
        }
        let default_cores = self.cfg.default_cores;
        let apps = &self.apps;
        self.waiting_apps.retain(|id| {
            apps.get(id)
                .is_some_and(|a| a.cores_left(default_cores) > 0)
        });
    }

    fn launch_executor(&mut self, app_id: &AppId, worker_id: &WorkerId, cores: u32) {
        let master_url = self.cfg.master_url.clone();
        let (Some(app), Some(w)) = (self.apps.get_mut(app_id), self.workers.get_mut(worker_id))
        else {
            return;
        };
        let exec_id = app.next_executor_id;
        app.next_executor_id += 1;
        let mem = app.desc.memory_per_executor_mb;
        let host_port = w.host_port();
        w.cores_used += cores;
        w.memory_used_mb += mem;
        w.executors.insert((app_id.clone(), exec_id));
        app.cores_granted += cores;
        app.state = ApplicationState::Running;
        app.executors.insert(
            exec_id,
            ExecutorInfo {
                id: exec_id,
                worker_id: worker_id.clone(),
                host_port: host_port.clone(),
                cores,
                memory_mb: mem,
                state: ExecutorState::Launching,
                exit_status: None,
                message: None,
                running_since_mono: None,
            },
        );
        info!(%app_id, exec_id, %worker_id, cores, memory_mb = mem, "launching executor");
        let wconn = w.conn;
        let aconn = app.conn;
        let launch = LaunchExecutor {
            master_url,
            app_id: app_id.clone(),
            executor_id: exec_id,
            cores,
            memory_mb: mem,
            app: app.desc.clone(),
            resource_profile_id: 0,
        };
        self.send_worker(wconn, WorkerCommand::LaunchExecutor(Box::new(launch)));
        self.send_app(
            aconn,
            AppEvent::ExecutorAdded {
                executor_id: exec_id,
                worker_id: worker_id.clone(),
                host_port,
                cores,
                memory_mb: mem,
            },
        );
    }

    // ------------------------------------------------------------------ views

    /// A copy of everything readers may show.
    pub fn snapshot(&self) -> ClusterSnapshot {
        view::snapshot(self)
    }

    /// Registration → all executors RUNNING, for each application that got there.
    pub fn app_time_to_running_ms(&self, app_id: &AppId) -> Option<u64> {
        self.apps
            .get(app_id)
            .or_else(|| self.completed_apps.iter().find(|a| &a.id == app_id))
            .and_then(|a| a.time_to_running_ms)
    }

    /// Which ALIVE worker holds this driver's or executor's logs, and its session.
    pub fn log_location(&self, target: &LogTarget) -> Result<(WorkerId, ConnId), CoreError> {
        let worker = match target {
            LogTarget::Driver(id) => {
                let d = self
                    .drivers
                    .get(id)
                    .or_else(|| self.completed_drivers.iter().find(|d| &d.id == id))
                    .ok_or_else(|| CoreError::NotFound(format!("Driver {id} does not exist")))?;
                d.worker.clone().ok_or_else(|| {
                    CoreError::FailedPrecondition(format!(
                        "driver {id} has not run on a worker yet"
                    ))
                })?
            }
            LogTarget::Executor(app_id, exec_id) => {
                let app = self
                    .apps
                    .get(app_id)
                    .or_else(|| self.completed_apps.iter().find(|a| &a.id == app_id))
                    .ok_or_else(|| CoreError::NotFound(format!("unknown application {app_id}")))?;
                app.executors
                    .get(exec_id)
                    .or_else(|| {
                        app.removed_executors
                            .iter()
                            .rev()
                            .find(|e| e.id == *exec_id)
                    })
                    .map(|e| e.worker_id.clone())
                    .ok_or_else(|| {
                        CoreError::NotFound(format!(
                            "application {app_id} has no executor {exec_id}"
                        ))
                    })?
            }
        };
        match self.workers.get(&worker) {
            Some(w) if w.state == WorkerState::Alive => Ok((worker, w.conn)),
            _ => Err(CoreError::Unavailable(format!(
                "worker {worker} is not connected; its logs cannot be read"
            ))),
        }
    }

    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }
}

#[cfg(test)]
mod tests;
