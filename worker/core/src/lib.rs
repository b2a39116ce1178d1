//! The worker's decisions, without I/O (sans-IO, as the master's core and raft-rs).
//!
//! [`WorkerCore`] is plain data. The IO shell (`flint-worker`'s session) calls one method per
//! event — a session to the master opened or ended, a command from the master, a child
//! process started or ended, a timer — always passing the current time, and then drains
//! [`WorkerCore::take_outputs`]: what to send to the master, which children to start, kill,
//! relaunch or release, when to reconnect. The core owns registration and reconnect state,
//! heartbeats, the latest-state report, driver supervision and what the worker's UI shows
//! ([`WorkerStatus`]); it never reads a clock, opens a socket or starts a process.

pub mod backoff;
pub mod status;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;

use flint_domain::types::*;
use tracing::{debug, info, warn};

use backoff::{Backoff, next_supervise_backoff_ms};
pub use flint_domain::time::Now;
pub use status::{DriverStatus, ExecutorStatus, WorkerStatus};

/// Who the worker is and what it offers (resolved from `spark.*` settings by the binary).
#[derive(Clone, Debug)]
pub struct CoreConfig {
    pub worker_id: WorkerId,
    pub host: String,
    /// The worker's endpoint port (`spark://Worker@host:port`).
    pub port: u16,
    pub cores: u32,
    pub memory_mb: u64,
    pub webui_url: String,
    pub work_dir: PathBuf,
    /// The configured master URL, used for children until a session names the master.
    pub master_url: String,
    /// Cap of the reconnect backoff.
    pub max_backoff_ms: u64,
    /// Seed of the reconnect jitter.
    pub seed: u64,
}

/// One child process of the worker.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChildKey {
    Executor(AppId, ExecutorId),
    Driver(DriverId),
}

/// What a child's runner (or a log read) reports back to the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChildEvent {
    /// An executor changed state (`Running`, then one of the finished states).
    Executor {
        app_id: AppId,
        executor_id: ExecutorId,
        state: ExecutorState,
        message: Option<String>,
        exit_status: Option<i32>,
    },
    /// A driver process started (attempt 1, or a supervised relaunch).
    DriverStarted { driver_id: DriverId, attempt: u32 },
    /// A driver process exited by itself; the core decides what follows.
    DriverExited {
        driver_id: DriverId,
        success: bool,
        exit_status: i32,
        description: String,
        run_ms: u64,
    },
    /// A driver ended without a decision to make: it could not be prepared or started
    /// (`Error`), or it was killed (`Killed`). Its runner is done.
    DriverEnded {
        driver_id: DriverId,
        state: DriverState,
        message: Option<String>,
        exit_status: Option<i32>,
    },
    /// A log read asked for by the master is ready.
    LogRead {
        request_id: u64,
        result: Result<LogSlice, String>,
    },
}

/// What the shell must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send to the master on the current session.
    Send(WorkerEvent),
    /// End the current session; the shell then reports [`WorkerCore::session_ended`].
    CloseSession { reason: String },
    /// Connect to the master (again) after this wait.
    Reconnect { after_ms: u64 },
    StartExecutor {
        launch: Box<LaunchExecutor>,
        master_url: String,
    },
    StartDriver {
        driver_id: DriverId,
        driver: Box<DriverDescription>,
        master_url: String,
    },
    /// Start a supervised driver's process again (its runner kept the prepared command).
    RelaunchDriver { driver_id: DriverId, attempt: u32 },
    /// Stop the child (SIGTERM to its group, SIGKILL after the grace period); its runner
    /// reports how it ended.
    Kill(ChildKey),
    /// Nothing more will be asked of this child's runner: it may end.
    Release(ChildKey),
    /// Read a log slice for the master (the shell answers with [`ChildEvent::LogRead`]).
    ReadLog {
        request_id: u64,
        request: LogRequest,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Link {
    Down,
    Registering,
    Registered { every_ms: u64, next_ms: u64 },
}

#[derive(Clone, Debug)]
struct ExecutorSlot {
    killing: bool,
}

#[derive(Clone, Debug)]
struct DriverSlot {
    supervise: bool,
    attempt: u32,
    backoff_ms: u64,
    killing: bool,
    /// Set while a supervised driver waits to be relaunched.
    relaunch: Option<Relaunch>,
}

#[derive(Clone, Copy, Debug)]
struct Relaunch {
    at_ms: u64,
    exit_status: i32,
}

pub struct WorkerCore {
    cfg: CoreConfig,
    link: Link,
    /// The master URL children are given (the one of the current or last session).
    master_url: String,
    backoff: Backoff,
    attempts: u32,
    executors: BTreeMap<(AppId, ExecutorId), ExecutorSlot>,
    drivers: BTreeMap<DriverId, DriverSlot>,
    stopping: bool,
    status: WorkerStatus,
    status_dirty: bool,
    outputs: Vec<Output>,
}

impl WorkerCore {
    pub fn new(cfg: CoreConfig) -> Self {
        let status = WorkerStatus {
            worker_id: cfg.worker_id.0.clone(),
            host: cfg.host.clone(),
            port: cfg.port,
            webui_url: cfg.webui_url.clone(),
            cores: cfg.cores,
            memory_mb: cfg.memory_mb,
            work_dir: cfg.work_dir.clone(),
            ..Default::default()
        };
        Self {
            master_url: cfg.master_url.clone(),
            backoff: Backoff::new(cfg.max_backoff_ms, cfg.seed),
            cfg,
            link: Link::Down,
            attempts: 0,
            executors: BTreeMap::new(),
            drivers: BTreeMap::new(),
            stopping: false,
            status,
            status_dirty: true,
            outputs: Vec::new(),
        }
    }

    pub fn take_outputs(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.outputs)
    }

    /// What the UI shows.
    pub fn status(&self) -> &WorkerStatus {
        &self.status
    }

    /// True once after every change of [`Self::status`]: the shell publishes it then.
    pub fn take_status_dirty(&mut self) -> bool {
        std::mem::take(&mut self.status_dirty)
    }

    /// Children still running (or waiting to be relaunched).
    pub fn running(&self) -> usize {
        self.executors.len() + self.drivers.len()
    }

    pub fn is_registered(&self) -> bool {
        matches!(self.link, Link::Registered { .. })
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping
    }

    /// The earliest time [`Self::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<u64> {
        let hb = match self.link {
            Link::Registered { next_ms, .. } => Some(next_ms),
            _ => None,
        };
        self.drivers
            .values()
            .filter_map(|d| d.relaunch.map(|r| r.at_ms))
            .chain(hb)
            .min()
    }

    fn registration(&self) -> WorkerEvent {
        WorkerEvent::Register(WorkerRegistration {
            id: self.cfg.worker_id.clone(),
            host: self.cfg.host.clone(),
            port: self.cfg.port,
            cores: self.cfg.cores,
            memory_mb: self.cfg.memory_mb,
            webui_url: self.cfg.webui_url.clone(),
        })
    }

    /// Reports to the master, when a session is up (a master that lost us forgets what we
    /// ran anyway, and learns the rest from our latest-state report).
    fn send(&mut self, ev: WorkerEvent) {
        if self.link != Link::Down {
            self.outputs.push(Output::Send(ev));
        }
    }

    fn set_registered(&mut self, registered: bool) {
        if self.status.registered != registered {
            self.status.registered = registered;
            self.status_dirty = true;
        }
    }

    // ---------------------------------------------------------------- the session

    /// The shell has a session to the master at `master_url`: register on it.
    pub fn session_opened(&mut self, _now: Now, master_url: &str) {
        self.link = Link::Registering;
        self.master_url = master_url.to_owned();
        let reg = self.registration();
        self.send(reg);
    }

    /// Connecting failed, or the session broke: try again after a backoff.
    pub fn session_ended(&mut self, _now: Now, reason: &str) {
        self.link = Link::Down;
        self.set_registered(false);
        if self.stopping {
            return;
        }
        self.attempts += 1;
        let wait = self.backoff.next_wait_ms();
        if self.attempts == 1 || self.attempts.is_multiple_of(10) {
            warn!(attempt = self.attempts, %reason, retry_in_ms = wait, "cannot reach the master; retrying");
        } else {
            debug!(attempt = self.attempts, %reason, "master session ended; retrying");
        }
        self.outputs.push(Output::Reconnect { after_ms: wait });
    }

    /// A command from the master.
    pub fn master_command(&mut self, now: Now, cmd: WorkerCommand) {
        match cmd {
            WorkerCommand::Registered {
                worker_id,
                master_url,
                master_webui_url,
                duplicate,
                heartbeat_interval_ms,
            } => {
                info!(%worker_id, %master_url, duplicate, "Successfully registered with master");
                self.attempts = 0;
                self.backoff.reset();
                // The first heartbeat goes out at once, then one every interval.
                self.link = Link::Registered {
                    every_ms: heartbeat_interval_ms.max(1),
                    next_ms: now.mono_ms,
                };
                self.status.registered = true;
                self.status.master_url = Some(master_url);
                self.status.master_webui_url = Some(master_webui_url);
                self.status_dirty = true;
                let latest = WorkerEvent::LatestState {
                    worker_id: self.cfg.worker_id.clone(),
                    executors: self.executors.keys().cloned().collect(),
                    drivers: self.drivers.keys().cloned().collect(),
                };
                self.send(latest);
            }
            WorkerCommand::RegisterFailed { message } => {
                self.outputs.push(Output::CloseSession {
                    reason: format!("registration refused: {message}"),
                });
            }
            WorkerCommand::Reconnect { master_url } => {
                info!(%master_url, "master asked us to re-register");
                self.link = Link::Registering;
                let reg = self.registration();
                self.send(reg);
            }
            WorkerCommand::LaunchExecutor(l) => self.launch_executor(now, l),
            WorkerCommand::KillExecutor {
                app_id,
                executor_id,
            } => {
                if self.executors.contains_key(&(app_id.clone(), executor_id)) {
                    info!(%app_id, executor_id, "Asked to kill executor");
                    self.kill_executor(app_id, executor_id);
                } else {
                    debug!(%app_id, executor_id, "asked to kill an executor we do not run");
                }
            }
            WorkerCommand::LaunchDriver { driver_id, driver } => {
                self.launch_driver(now, driver_id, driver)
            }
            WorkerCommand::KillDriver { driver_id } => {
                if self.drivers.contains_key(&driver_id) {
                    info!(%driver_id, "Asked to kill driver");
                    self.kill_driver(now, driver_id);
                } else {
                    debug!(%driver_id, "asked to kill a driver we do not run");
                }
            }
            WorkerCommand::ApplicationFinished { app_id } => {
                let keys: Vec<_> = self
                    .executors
                    .keys()
                    .filter(|(a, _)| *a == app_id)
                    .cloned()
                    .collect();
                for (a, e) in keys {
                    self.kill_executor(a, e);
                }
                debug!(%app_id, "application finished");
            }
            WorkerCommand::ReadLog {
                request_id,
                request,
            } => self.outputs.push(Output::ReadLog {
                request_id,
                request,
            }),
        }
    }

    fn launch_executor(&mut self, now: Now, l: Box<LaunchExecutor>) {
        info!(app_id = %l.app_id, exec_id = l.executor_id, cores = l.cores, memory_mb = l.memory_mb, "Asked to launch executor");
        if l.master_url != self.master_url {
            debug!(from = %l.master_url, ours = %self.master_url, "launch from a master URL spelled differently");
        }
        let key = (l.app_id.clone(), l.executor_id);
        if self.executors.contains_key(&key) {
            warn!(app_id = %l.app_id, exec_id = l.executor_id, "asked to launch an executor we already run; ignored");
            return;
        }
        let command = l.app.command.display();
        self.status.executors.push(ExecutorStatus {
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
            start_ms: now.wall_ms,
            end_ms: None,
        });
        self.status_dirty = true;
        self.executors.insert(key, ExecutorSlot { killing: false });
        self.outputs.push(Output::StartExecutor {
            launch: l,
            master_url: self.master_url.clone(),
        });
    }

    fn launch_driver(&mut self, now: Now, driver_id: DriverId, driver: Box<DriverDescription>) {
        info!(%driver_id, "Asked to launch driver");
        if self.drivers.contains_key(&driver_id) {
            warn!(%driver_id, "asked to launch a driver we already run; ignored");
            return;
        }
        self.status.drivers.push(DriverStatus {
            driver_id: driver_id.clone(),
            name: driver.name.clone(),
            cores: driver.cores,
            memory_mb: driver.memory_mb,
            state: DriverState::Submitted,
            exit_status: None,
            message: None,
            app_resource: driver.app_resource.clone(),
            start_ms: now.wall_ms,
            end_ms: None,
        });
        self.status_dirty = true;
        self.drivers.insert(
            driver_id.clone(),
            DriverSlot {
                supervise: driver.supervise,
                attempt: 1,
                backoff_ms: 1_000,
                killing: false,
                relaunch: None,
            },
        );
        self.outputs.push(Output::StartDriver {
            driver_id,
            driver,
            master_url: self.master_url.clone(),
        });
    }

    fn kill_executor(&mut self, app_id: AppId, executor_id: ExecutorId) {
        if let Some(slot) = self.executors.get_mut(&(app_id.clone(), executor_id))
            && !slot.killing
        {
            slot.killing = true;
            self.outputs
                .push(Output::Kill(ChildKey::Executor(app_id, executor_id)));
        }
    }

    fn kill_driver(&mut self, now: Now, driver_id: DriverId) {
        let Some(slot) = self.drivers.get_mut(&driver_id) else {
            return;
        };
        if let Some(r) = slot.relaunch {
            // No process to stop: the driver ends here.
            self.driver_finished(
                now,
                driver_id,
                DriverState::Killed,
                Some("killed by request while waiting to relaunch".to_owned()),
                Some(r.exit_status),
            );
        } else if !slot.killing {
            slot.killing = true;
            self.outputs.push(Output::Kill(ChildKey::Driver(driver_id)));
        }
    }

    // ---------------------------------------------------------------- children

    /// A child's runner reported.
    pub fn child_event(&mut self, now: Now, ev: ChildEvent) {
        match ev {
            ChildEvent::Executor {
                app_id,
                executor_id,
                state,
                message,
                exit_status,
            } => {
                let key = (app_id, executor_id);
                self.status
                    .executor_event(&key, state, &message, exit_status, now.wall_ms);
                self.status_dirty = true;
                if state.is_finished() {
                    self.executors.remove(&key);
                    self.outputs
                        .push(Output::Release(ChildKey::Executor(key.0.clone(), key.1)));
                }
                let (app_id, executor_id) = key;
                self.send(WorkerEvent::ExecutorStateChanged {
                    app_id,
                    executor_id,
                    state,
                    message,
                    exit_status,
                });
            }
            ChildEvent::DriverStarted { driver_id, attempt } => {
                let message = (attempt > 1).then(|| format!("relaunched (attempt {attempt})"));
                self.driver_state(now, driver_id, DriverState::Running, message, None);
            }
            ChildEvent::DriverExited {
                driver_id,
                success,
                exit_status,
                description,
                run_ms,
            } => self.driver_exited(now, driver_id, success, exit_status, description, run_ms),
            ChildEvent::DriverEnded {
                driver_id,
                state,
                message,
                exit_status,
            } => self.driver_finished(now, driver_id, state, message, exit_status),
            ChildEvent::LogRead { request_id, result } => {
                self.send(WorkerEvent::LogSlice { request_id, result })
            }
        }
    }

    fn driver_exited(
        &mut self,
        now: Now,
        driver_id: DriverId,
        success: bool,
        exit_status: i32,
        description: String,
        run_ms: u64,
    ) {
        let Some(slot) = self.drivers.get_mut(&driver_id) else {
            return;
        };
        let final_state = if success {
            Some((DriverState::Finished, Some(0)))
        } else if !slot.supervise || slot.killing || self.stopping {
            Some((DriverState::Failed, Some(exit_status)))
        } else {
            None
        };
        if let Some((state, code)) = final_state {
            self.driver_finished(now, driver_id, state, Some(description), code);
            return;
        }
        slot.backoff_ms = if slot.attempt == 1 {
            1_000
        } else {
            next_supervise_backoff_ms(slot.backoff_ms, run_ms)
        };
        slot.relaunch = Some(Relaunch {
            at_ms: now.mono_ms + slot.backoff_ms,
            exit_status,
        });
        info!(%driver_id, status = exit_status, wait_s = slot.backoff_ms / 1000, "supervised driver exited; re-launching");
    }

    fn driver_state(
        &mut self,
        now: Now,
        driver_id: DriverId,
        state: DriverState,
        message: Option<String>,
        exit_status: Option<i32>,
    ) {
        self.status
            .driver_event(&driver_id, state, &message, exit_status, now.wall_ms);
        self.status_dirty = true;
        self.send(WorkerEvent::DriverStateChanged {
            driver_id,
            state,
            message,
            exit_status,
        });
    }

    fn driver_finished(
        &mut self,
        now: Now,
        driver_id: DriverId,
        state: DriverState,
        message: Option<String>,
        exit_status: Option<i32>,
    ) {
        if self.drivers.remove(&driver_id).is_some() {
            self.outputs
                .push(Output::Release(ChildKey::Driver(driver_id.clone())));
        }
        self.driver_state(now, driver_id, state, message, exit_status);
    }

    // ---------------------------------------------------------------- time

    /// Heartbeats and supervised relaunches that are due.
    pub fn tick(&mut self, now: Now) {
        if let Link::Registered { every_ms, next_ms } = self.link
            && now.mono_ms >= next_ms
        {
            self.link = Link::Registered {
                every_ms,
                // Missed beats are not made up for: the next one is an interval from now.
                next_ms: now.mono_ms + every_ms,
            };
            let hb = WorkerEvent::Heartbeat {
                worker_id: self.cfg.worker_id.clone(),
            };
            self.send(hb);
        }
        let due: Vec<DriverId> = self
            .drivers
            .iter()
            .filter(|(_, d)| d.relaunch.is_some_and(|r| now.mono_ms >= r.at_ms))
            .map(|(id, _)| id.clone())
            .collect();
        for driver_id in due {
            if let Some(slot) = self.drivers.get_mut(&driver_id) {
                slot.relaunch = None;
                slot.attempt += 1;
                let attempt = slot.attempt;
                self.outputs
                    .push(Output::RelaunchDriver { driver_id, attempt });
            }
        }
    }

    /// The worker is stopping: kill every child (their ends are still reported) and take
    /// no new session.
    pub fn shutdown(&mut self, now: Now) {
        self.stopping = true;
        let execs: Vec<_> = self.executors.keys().cloned().collect();
        for (a, e) in execs {
            self.kill_executor(a, e);
        }
        let drivers: Vec<_> = self.drivers.keys().cloned().collect();
        for d in drivers {
            self.kill_driver(now, d);
        }
    }
}
