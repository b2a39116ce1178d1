//! Every conversion between the generated protobuf types ([`crate::pb`]) and the domain
//! types (`flint_domain::types`) lives here. Incoming messages are validated on the way in:
//! a missing or out-of-range field is a [`ConversionError`] (gRPC `INVALID_ARGUMENT`),
//! never a panic.

use crate::error::ConversionError;
use crate::pb;
use flint_domain::types::*;

type Result<T> = std::result::Result<T, ConversionError>;

fn non_empty(field: &'static str, s: String) -> Result<String> {
    if s.trim().is_empty() {
        Err(ConversionError::invalid(field, "must not be empty"))
    } else {
        Ok(s)
    }
}

fn positive_u32(field: &'static str, v: i32) -> Result<u32> {
    if v <= 0 {
        Err(ConversionError::invalid(
            field,
            format!("must be at least 1, got {v}"),
        ))
    } else {
        Ok(v as u32)
    }
}

fn positive_u64(field: &'static str, v: i64) -> Result<u64> {
    if v <= 0 {
        Err(ConversionError::invalid(
            field,
            format!("must be at least 1, got {v}"),
        ))
    } else {
        Ok(v as u64)
    }
}

fn non_negative_u64(field: &'static str, v: i64) -> Result<u64> {
    u64::try_from(v)
        .map_err(|_| ConversionError::invalid(field, format!("must not be negative, got {v}")))
}

fn non_negative_u32(field: &'static str, v: i32) -> Result<u32> {
    u32::try_from(v)
        .map_err(|_| ConversionError::invalid(field, format!("must not be negative, got {v}")))
}

fn to_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

// ---- enums ----

/// A domain enum carried as a protobuf enum (an `i32` on the wire).
pub trait WireEnum: Sized {
    fn to_wire(self) -> i32;
    /// Reads the enum from its wire value; unspecified or unknown values are refused.
    fn from_wire(v: i32) -> Result<Self>;
}

macro_rules! enum_conv {
    ($domain:ident, $pb:ident, $field:literal, { $($d:ident <=> $p:ident),+ $(,)? }) => {
        impl From<$domain> for pb::$pb {
            fn from(v: $domain) -> Self {
                match v { $($domain::$d => pb::$pb::$p),+ }
            }
        }

        impl WireEnum for $domain {
            fn to_wire(self) -> i32 {
                pb::$pb::from(self) as i32
            }

            fn from_wire(v: i32) -> Result<Self> {
                match pb::$pb::try_from(v) {
                    $(Ok(pb::$pb::$p) => Ok($domain::$d),)+
                    _ => Err(ConversionError::invalid($field, format!("unknown or unspecified value {v}"))),
                }
            }
        }
    };
}

enum_conv!(WorkerState, WorkerState, "state", {
    Alive <=> Alive, Dead <=> Dead, Decommissioned <=> Decommissioned, Unknown <=> Unknown,
});
enum_conv!(ExecutorState, ExecutorState, "state", {
    Launching <=> Launching, Running <=> Running, Killed <=> Killed, Failed <=> Failed,
    Lost <=> Lost, Exited <=> Exited, Decommissioned <=> Decommissioned,
});
enum_conv!(DriverState, DriverState, "state", {
    Submitted <=> Submitted, Running <=> Running, Finished <=> Finished,
    Relaunching <=> Relaunching, Unknown <=> Unknown, Killed <=> Killed, Failed <=> Failed,
    Error <=> Error,
});
enum_conv!(ApplicationState, ApplicationState, "state", {
    Waiting <=> Waiting, Running <=> Running, Finished <=> Finished, Failed <=> Failed,
    Killed <=> Killed, Unknown <=> Unknown,
});

// ---- descriptions ----

impl TryFrom<pb::CommandSpec> for CommandSpec {
    type Error = ConversionError;
    fn try_from(c: pb::CommandSpec) -> Result<Self> {
        let launch = match c.spark_jvm {
            None => Launch::Native,
            Some(j) => Launch::SparkJvm(Box::new(SparkJvm {
                main_class: j.main_class,
                java_opts: j.java_opts,
                class_path: j.class_path,
                library_path: j.library_path,
                spark_line: Some(j.spark_line).filter(|l| !l.is_empty()),
            })),
        };
        Ok(Self {
            program: c.program,
            args: c.args,
            env: c.env.into_iter().collect(),
            launch,
        })
    }
}

impl From<CommandSpec> for pb::CommandSpec {
    fn from(c: CommandSpec) -> Self {
        Self {
            program: c.program,
            args: c.args,
            env: c.env.into_iter().collect(),
            spark_jvm: match c.launch {
                Launch::Native => None,
                Launch::SparkJvm(j) => Some(pb::SparkJvm {
                    main_class: j.main_class,
                    java_opts: j.java_opts,
                    class_path: j.class_path,
                    library_path: j.library_path,
                    spark_line: j.spark_line.unwrap_or_default(),
                }),
            },
        }
    }
}

impl TryFrom<pb::ApplicationDescription> for AppDescription {
    type Error = ConversionError;
    fn try_from(a: pb::ApplicationDescription) -> Result<Self> {
        Ok(Self {
            name: a.name,
            user: a.user,
            cores_per_executor: a
                .cores_per_executor
                .map(|c| non_negative_u32("app.cores_per_executor", c))
                .transpose()?,
            memory_per_executor_mb: non_negative_u64(
                "app.memory_per_executor_mb",
                a.memory_per_executor_mb,
            )?,
            max_cores: a
                .max_cores
                .map(|c| non_negative_u32("app.max_cores", c))
                .transpose()?,
            command: a
                .command
                .ok_or(ConversionError::Missing("app.command"))?
                .try_into()?,
            initial_executor_limit: a
                .initial_executor_limit
                .map(|c| non_negative_u32("app.initial_executor_limit", c))
                .transpose()?,
            app_ui_url: a.app_ui_url,
        })
    }
}

impl From<AppDescription> for pb::ApplicationDescription {
    fn from(a: AppDescription) -> Self {
        Self {
            name: a.name,
            user: a.user,
            cores_per_executor: a.cores_per_executor.map(to_i32),
            memory_per_executor_mb: to_i64(a.memory_per_executor_mb),
            max_cores: a.max_cores.map(to_i32),
            command: Some(a.command.into()),
            initial_executor_limit: a.initial_executor_limit.map(to_i32),
            app_ui_url: a.app_ui_url,
        }
    }
}

impl TryFrom<pb::DriverDescription> for DriverDescription {
    type Error = ConversionError;
    fn try_from(d: pb::DriverDescription) -> Result<Self> {
        let sha = d.app_sha256.trim().to_ascii_lowercase();
        Ok(Self {
            name: d.name,
            app_resource: d.app_resource,
            app_sha256: (!sha.is_empty()).then_some(sha),
            command: d
                .command
                .ok_or(ConversionError::Missing("driver.command"))?
                .try_into()?,
            cores: non_negative_u32("driver.cores", d.cores)?,
            memory_mb: non_negative_u64("driver.memory_mb", d.memory_mb)?,
            supervise: d.supervise,
        })
    }
}

impl From<DriverDescription> for pb::DriverDescription {
    fn from(d: DriverDescription) -> Self {
        Self {
            app_resource: d.app_resource,
            command: Some(d.command.into()),
            cores: to_i32(d.cores),
            memory_mb: to_i64(d.memory_mb),
            supervise: d.supervise,
            name: d.name,
            app_sha256: d.app_sha256.unwrap_or_default(),
        }
    }
}

// ---- worker session ----

impl TryFrom<pb::RegisterWorker> for WorkerRegistration {
    type Error = ConversionError;
    fn try_from(r: pb::RegisterWorker) -> Result<Self> {
        Ok(Self {
            id: WorkerId(non_empty("register.id", r.id)?),
            host: non_empty("register.host", r.host)?,
            port: u16::try_from(r.port).map_err(|_| {
                ConversionError::invalid("register.port", format!("{} is not a port", r.port))
            })?,
            cores: positive_u32("register.cores", r.cores)?,
            memory_mb: positive_u64("register.memory_mb", r.memory_mb)?,
            webui_url: r.webui_url,
        })
    }
}

impl TryFrom<pb::WorkerToMaster> for WorkerEvent {
    type Error = ConversionError;
    fn try_from(m: pb::WorkerToMaster) -> Result<Self> {
        use pb::worker_to_master::Msg;
        Ok(match m.msg.ok_or(ConversionError::Missing("msg"))? {
            Msg::Register(r) => WorkerEvent::Register(r.try_into()?),
            Msg::Heartbeat(h) => WorkerEvent::Heartbeat {
                worker_id: WorkerId(non_empty("heartbeat.worker_id", h.worker_id)?),
            },
            Msg::LatestState(s) => WorkerEvent::LatestState {
                worker_id: WorkerId(non_empty("latest_state.worker_id", s.worker_id)?),
                executors: s
                    .executors
                    .into_iter()
                    .map(|e| {
                        Ok((
                            AppId(non_empty("executors.app_id", e.app_id)?),
                            non_negative_u32("executors.executor_id", e.executor_id)?,
                        ))
                    })
                    .collect::<Result<_>>()?,
                drivers: s
                    .driver_ids
                    .into_iter()
                    .map(|d| non_empty("driver_ids", d).map(DriverId))
                    .collect::<Result<_>>()?,
            },
            Msg::ExecutorStateChanged(e) => WorkerEvent::ExecutorStateChanged {
                app_id: AppId(non_empty("app_id", e.app_id)?),
                executor_id: non_negative_u32("executor_id", e.executor_id)?,
                state: ExecutorState::from_wire(e.state)?,
                message: e.message,
                exit_status: e.exit_status,
            },
            Msg::DriverStateChanged(d) => WorkerEvent::DriverStateChanged {
                driver_id: DriverId(non_empty("driver_id", d.driver_id)?),
                state: DriverState::from_wire(d.state)?,
                message: d.message,
                exit_status: d.exit_status,
            },
            Msg::LogChunk(c) => WorkerEvent::LogSlice {
                request_id: c.request_id,
                result: if c.error.is_empty() {
                    Ok(LogSlice {
                        data: c.data.to_vec(),
                        offset: u64::try_from(c.offset)
                            .map_err(|_| ConversionError::invalid("offset", "negative"))?,
                        total_size: u64::try_from(c.total_size)
                            .map_err(|_| ConversionError::invalid("total_size", "negative"))?,
                    })
                } else {
                    Err(c.error)
                },
            },
        })
    }
}

impl From<WorkerEvent> for pb::WorkerToMaster {
    fn from(e: WorkerEvent) -> Self {
        use pb::worker_to_master::Msg;
        let msg = match e {
            WorkerEvent::Register(r) => Msg::Register(pb::RegisterWorker {
                id: r.id.0,
                host: r.host,
                port: i32::from(r.port),
                cores: to_i32(r.cores),
                memory_mb: to_i64(r.memory_mb),
                webui_url: r.webui_url,
            }),
            WorkerEvent::Heartbeat { worker_id } => Msg::Heartbeat(pb::Heartbeat {
                worker_id: worker_id.0,
            }),
            WorkerEvent::LatestState {
                worker_id,
                executors,
                drivers,
            } => Msg::LatestState(pb::WorkerLatestState {
                worker_id: worker_id.0,
                executors: executors
                    .into_iter()
                    .map(|(a, e)| pb::ExecutorRef {
                        app_id: a.0,
                        executor_id: to_i32(e),
                    })
                    .collect(),
                driver_ids: drivers.into_iter().map(|d| d.0).collect(),
            }),
            WorkerEvent::ExecutorStateChanged {
                app_id,
                executor_id,
                state,
                message,
                exit_status,
            } => Msg::ExecutorStateChanged(pb::ExecutorStateChanged {
                app_id: app_id.0,
                executor_id: to_i32(executor_id),
                state: state.to_wire(),
                message,
                exit_status,
            }),
            WorkerEvent::DriverStateChanged {
                driver_id,
                state,
                message,
                exit_status,
            } => Msg::DriverStateChanged(pb::DriverStateChanged {
                driver_id: driver_id.0,
                state: state.to_wire(),
                message,
                exit_status,
            }),
            WorkerEvent::LogSlice { request_id, result } => Msg::LogChunk(match result {
                Ok(s) => pb::LogChunk {
                    request_id,
                    data: s.data,
                    offset: to_i64(s.offset),
                    total_size: to_i64(s.total_size),
                    error: String::new(),
                },
                Err(error) => pb::LogChunk {
                    request_id,
                    error,
                    ..Default::default()
                },
            }),
        };
        Self { msg: Some(msg) }
    }
}

impl From<WorkerCommand> for pb::MasterToWorker {
    fn from(c: WorkerCommand) -> Self {
        use pb::master_to_worker::Msg;
        let msg = match c {
            WorkerCommand::Registered {
                worker_id,
                master_url,
                master_webui_url,
                duplicate,
                heartbeat_interval_ms,
            } => Msg::Registered(pb::RegisteredWorker {
                worker_id: worker_id.0,
                master_url,
                master_webui_url,
                duplicate,
                heartbeat_interval_ms: to_i64(heartbeat_interval_ms),
            }),
            WorkerCommand::RegisterFailed { message } => {
                Msg::RegisterFailed(pb::RegisterWorkerFailed { message })
            }
            WorkerCommand::LaunchExecutor(l) => {
                let l = *l;
                Msg::LaunchExecutor(pb::LaunchExecutor {
                    master_url: l.master_url,
                    app_id: l.app_id.0,
                    executor_id: to_i32(l.executor_id),
                    cores: to_i32(l.cores),
                    memory_mb: to_i64(l.memory_mb),
                    app: Some(l.app.into()),
                    resource_profile_id: to_i32(l.resource_profile_id),
                })
            }
            WorkerCommand::KillExecutor {
                app_id,
                executor_id,
            } => Msg::KillExecutor(pb::KillExecutor {
                app_id: app_id.0,
                executor_id: to_i32(executor_id),
            }),
            WorkerCommand::LaunchDriver { driver_id, driver } => {
                Msg::LaunchDriver(pb::LaunchDriver {
                    driver_id: driver_id.0,
                    driver: Some((*driver).into()),
                })
            }
            WorkerCommand::KillDriver { driver_id } => Msg::KillDriver(pb::KillDriver {
                driver_id: driver_id.0,
            }),
            WorkerCommand::ApplicationFinished { app_id } => {
                Msg::ApplicationFinished(pb::ApplicationFinished { app_id: app_id.0 })
            }
            WorkerCommand::Reconnect { master_url } => {
                Msg::Reconnect(pb::ReconnectWorker { master_url })
            }
            WorkerCommand::ReadLog {
                request_id,
                request,
            } => Msg::ReadLog(pb::WorkerReadLog {
                request_id,
                request: Some(request.into()),
            }),
        };
        Self { msg: Some(msg) }
    }
}

impl TryFrom<pb::MasterToWorker> for WorkerCommand {
    type Error = ConversionError;
    fn try_from(m: pb::MasterToWorker) -> Result<Self> {
        use pb::master_to_worker::Msg;
        Ok(match m.msg.ok_or(ConversionError::Missing("msg"))? {
            Msg::Registered(r) => WorkerCommand::Registered {
                worker_id: WorkerId(non_empty("worker_id", r.worker_id)?),
                master_url: r.master_url,
                master_webui_url: r.master_webui_url,
                duplicate: r.duplicate,
                heartbeat_interval_ms: positive_u64(
                    "heartbeat_interval_ms",
                    r.heartbeat_interval_ms,
                )?,
            },
            Msg::RegisterFailed(f) => WorkerCommand::RegisterFailed { message: f.message },
            Msg::LaunchExecutor(l) => WorkerCommand::LaunchExecutor(Box::new(LaunchExecutor {
                master_url: l.master_url,
                app_id: AppId(non_empty("app_id", l.app_id)?),
                executor_id: non_negative_u32("executor_id", l.executor_id)?,
                cores: positive_u32("cores", l.cores)?,
                memory_mb: positive_u64("memory_mb", l.memory_mb)?,
                app: l.app.ok_or(ConversionError::Missing("app"))?.try_into()?,
                resource_profile_id: non_negative_u32(
                    "resource_profile_id",
                    l.resource_profile_id,
                )?,
            })),
            Msg::KillExecutor(k) => WorkerCommand::KillExecutor {
                app_id: AppId(non_empty("app_id", k.app_id)?),
                executor_id: non_negative_u32("executor_id", k.executor_id)?,
            },
            Msg::LaunchDriver(l) => WorkerCommand::LaunchDriver {
                driver_id: DriverId(non_empty("driver_id", l.driver_id)?),
                driver: Box::new(
                    l.driver
                        .ok_or(ConversionError::Missing("driver"))?
                        .try_into()?,
                ),
            },
            Msg::KillDriver(k) => WorkerCommand::KillDriver {
                driver_id: DriverId(non_empty("driver_id", k.driver_id)?),
            },
            Msg::ApplicationFinished(a) => WorkerCommand::ApplicationFinished {
                app_id: AppId(non_empty("app_id", a.app_id)?),
            },
            Msg::Reconnect(r) => WorkerCommand::Reconnect {
                master_url: r.master_url,
            },
            Msg::ReadLog(r) => WorkerCommand::ReadLog {
                request_id: r.request_id,
                request: r
                    .request
                    .ok_or(ConversionError::Missing("request"))?
                    .try_into()?,
            },
        })
    }
}

// ---- logs ----

impl TryFrom<pb::ReadLogRequest> for LogRequest {
    type Error = ConversionError;
    fn try_from(r: pb::ReadLogRequest) -> Result<Self> {
        let target = if !r.driver_id.trim().is_empty() {
            LogTarget::Driver(DriverId(r.driver_id))
        } else if !r.app_id.trim().is_empty() {
            LogTarget::Executor(
                AppId(r.app_id),
                non_negative_u32("executor_id", r.executor_id)?,
            )
        } else {
            return Err(ConversionError::invalid(
                "driver_id",
                "give a driver id, or an app id and an executor id",
            ));
        };
        let log_type = match r.log_type.as_str() {
            "" => LogType::Stdout,
            t => LogType::parse(t).ok_or_else(|| {
                ConversionError::invalid("log_type", format!("'{t}' is neither stdout nor stderr"))
            })?,
        };
        Ok(Self {
            target,
            log_type,
            offset: u64::try_from(r.offset).ok(),
            max_bytes: u64::try_from(r.max_bytes)
                .ok()
                .filter(|&m| m > 0)
                .unwrap_or(64 * 1024)
                .min(4 << 20),
        })
    }
}

impl From<LogRequest> for pb::ReadLogRequest {
    fn from(r: LogRequest) -> Self {
        let (driver_id, app_id, executor_id) = match r.target {
            LogTarget::Driver(d) => (d.0, String::new(), 0),
            LogTarget::Executor(a, e) => (String::new(), a.0, to_i32(e)),
        };
        Self {
            driver_id,
            app_id,
            executor_id,
            log_type: r.log_type.as_str().to_owned(),
            offset: r.offset.map(to_i64).unwrap_or(-1),
            max_bytes: to_i64(r.max_bytes),
        }
    }
}

// ---- application session ----

impl TryFrom<pb::AppToMaster> for AppRequest {
    type Error = ConversionError;
    fn try_from(m: pb::AppToMaster) -> Result<Self> {
        use pb::app_to_master::Msg;
        Ok(match m.msg.ok_or(ConversionError::Missing("msg"))? {
            Msg::Register(r) => AppRequest::Register {
                app: r.app.ok_or(ConversionError::Missing("app"))?.try_into()?,
                driver_url: r.driver_url,
            },
            Msg::RequestExecutors(r) => AppRequest::RequestExecutors {
                request_id: r.request_id,
                total: non_negative_u32("total", r.total)?,
            },
            Msg::KillExecutors(k) => AppRequest::KillExecutors {
                request_id: k.request_id,
                executor_ids: k
                    .executor_ids
                    .into_iter()
                    .map(|e| non_negative_u32("executor_ids", e))
                    .collect::<Result<_>>()?,
            },
            Msg::Unregister(_) => AppRequest::Unregister,
        })
    }
}

impl From<AppRequest> for pb::AppToMaster {
    fn from(r: AppRequest) -> Self {
        use pb::app_to_master::Msg;
        let msg = match r {
            AppRequest::Register { app, driver_url } => Msg::Register(pb::RegisterApplication {
                app: Some(app.into()),
                driver_url,
            }),
            AppRequest::RequestExecutors { request_id, total } => {
                Msg::RequestExecutors(pb::RequestExecutors {
                    request_id,
                    total: to_i32(total),
                })
            }
            AppRequest::KillExecutors {
                request_id,
                executor_ids,
            } => Msg::KillExecutors(pb::KillExecutors {
                request_id,
                executor_ids: executor_ids.into_iter().map(to_i32).collect(),
            }),
            AppRequest::Unregister => Msg::Unregister(pb::UnregisterApplication {}),
        };
        Self { msg: Some(msg) }
    }
}

impl From<AppEvent> for pb::MasterToApp {
    fn from(e: AppEvent) -> Self {
        use pb::master_to_app::Msg;
        let msg = match e {
            AppEvent::Registered { app_id, master_url } => {
                Msg::Registered(pb::RegisteredApplication {
                    app_id: app_id.0,
                    master_url,
                })
            }
            AppEvent::ExecutorAdded {
                executor_id,
                worker_id,
                host_port,
                cores,
                memory_mb,
            } => Msg::ExecutorAdded(pb::ExecutorAdded {
                executor_id: to_i32(executor_id),
                worker_id: worker_id.0,
                host_port,
                cores: to_i32(cores),
                memory_mb: to_i64(memory_mb),
            }),
            AppEvent::ExecutorUpdated {
                executor_id,
                state,
                message,
                exit_status,
                worker_host,
            } => Msg::ExecutorUpdated(pb::ExecutorUpdated {
                executor_id: to_i32(executor_id),
                state: state.to_wire(),
                message,
                exit_status,
                worker_host,
            }),
            AppEvent::WorkerRemoved {
                worker_id,
                host,
                message,
            } => Msg::WorkerRemoved(pb::WorkerRemoved {
                worker_id: worker_id.0,
                host,
                message,
            }),
            AppEvent::ApplicationRemoved { state, message } => {
                Msg::ApplicationRemoved(pb::ApplicationRemoved {
                    state: state.to_wire(),
                    message,
                })
            }
            AppEvent::RequestResult {
                request_id,
                ok,
                message,
            } => Msg::RequestResult(pb::RequestResult {
                request_id,
                ok,
                message,
            }),
        };
        Self { msg: Some(msg) }
    }
}

impl TryFrom<pb::MasterToApp> for AppEvent {
    type Error = ConversionError;
    fn try_from(m: pb::MasterToApp) -> Result<Self> {
        use pb::master_to_app::Msg;
        Ok(match m.msg.ok_or(ConversionError::Missing("msg"))? {
            Msg::Registered(r) => AppEvent::Registered {
                app_id: AppId(non_empty("app_id", r.app_id)?),
                master_url: r.master_url,
            },
            Msg::ExecutorAdded(a) => AppEvent::ExecutorAdded {
                executor_id: non_negative_u32("executor_id", a.executor_id)?,
                worker_id: WorkerId(non_empty("worker_id", a.worker_id)?),
                host_port: a.host_port,
                cores: positive_u32("cores", a.cores)?,
                memory_mb: positive_u64("memory_mb", a.memory_mb)?,
            },
            Msg::ExecutorUpdated(u) => AppEvent::ExecutorUpdated {
                executor_id: non_negative_u32("executor_id", u.executor_id)?,
                state: ExecutorState::from_wire(u.state)?,
                message: u.message,
                exit_status: u.exit_status,
                worker_host: u.worker_host,
            },
            Msg::WorkerRemoved(w) => AppEvent::WorkerRemoved {
                worker_id: WorkerId(w.worker_id),
                host: w.host,
                message: w.message,
            },
            Msg::ApplicationRemoved(r) => AppEvent::ApplicationRemoved {
                state: ApplicationState::from_wire(r.state)?,
                message: r.message,
            },
            Msg::RequestResult(r) => AppEvent::RequestResult {
                request_id: r.request_id,
                ok: r.ok,
                message: r.message,
            },
        })
    }
}

// ---- cluster views ----

impl From<ExecutorView> for pb::ExecutorInfo {
    fn from(e: ExecutorView) -> Self {
        Self {
            app_id: e.app_id.0,
            executor_id: to_i32(e.executor_id),
            worker_id: e.worker_id.0,
            host_port: e.host_port,
            cores: to_i32(e.cores),
            memory_mb: to_i64(e.memory_mb),
            state: e.state.to_wire(),
            exit_status: e.exit_status,
            message: e.message,
        }
    }
}

impl TryFrom<pb::ExecutorInfo> for ExecutorView {
    type Error = ConversionError;
    fn try_from(e: pb::ExecutorInfo) -> Result<Self> {
        Ok(Self {
            app_id: AppId(e.app_id),
            executor_id: non_negative_u32("executor_id", e.executor_id)?,
            worker_id: WorkerId(e.worker_id),
            host_port: e.host_port,
            cores: non_negative_u32("cores", e.cores)?,
            memory_mb: u64::try_from(e.memory_mb).unwrap_or(0),
            state: ExecutorState::from_wire(e.state)?,
            exit_status: e.exit_status,
            message: e.message,
        })
    }
}

impl From<WorkerView> for pb::WorkerInfo {
    fn from(w: WorkerView) -> Self {
        Self {
            id: w.id.0,
            host: w.host,
            port: i32::from(w.port),
            webui_url: w.webui_url,
            cores: to_i32(w.cores),
            cores_used: to_i32(w.cores_used),
            memory_mb: to_i64(w.memory_mb),
            memory_used_mb: to_i64(w.memory_used_mb),
            state: w.state.to_wire(),
            last_heartbeat_ms: w.last_heartbeat_ms,
            executors: w.executors.into_iter().map(Into::into).collect(),
            driver_ids: w.driver_ids.into_iter().map(|d| d.0).collect(),
        }
    }
}

impl TryFrom<pb::WorkerInfo> for WorkerView {
    type Error = ConversionError;
    fn try_from(w: pb::WorkerInfo) -> Result<Self> {
        Ok(Self {
            id: WorkerId(w.id),
            host: w.host,
            port: u16::try_from(w.port)
                .map_err(|_| ConversionError::invalid("port", "out of range"))?,
            webui_url: w.webui_url,
            cores: non_negative_u32("cores", w.cores)?,
            cores_used: non_negative_u32("cores_used", w.cores_used)?,
            memory_mb: u64::try_from(w.memory_mb).unwrap_or(0),
            memory_used_mb: u64::try_from(w.memory_used_mb).unwrap_or(0),
            state: WorkerState::from_wire(w.state)?,
            last_heartbeat_ms: w.last_heartbeat_ms,
            executors: w
                .executors
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_>>()?,
            driver_ids: w.driver_ids.into_iter().map(DriverId).collect(),
        })
    }
}

impl From<AppView> for pb::ApplicationInfo {
    fn from(a: AppView) -> Self {
        Self {
            id: a.id.0,
            desc: Some(a.desc.into()),
            state: a.state.to_wire(),
            start_time_ms: a.start_time_ms,
            end_time_ms: a.end_time_ms,
            cores_granted: to_i32(a.cores_granted),
            executor_limit: to_i32(a.executor_limit),
            retry_count: to_i32(a.retry_count),
            executors: a.executors.into_iter().map(Into::into).collect(),
            removed_executors: a.removed_executors.into_iter().map(Into::into).collect(),
            waiting_reason: a.waiting_reason,
            driver_url: a.driver_url,
            time_to_running_ms: a.time_to_running_ms.map(to_i64),
        }
    }
}

impl TryFrom<pb::ApplicationInfo> for AppView {
    type Error = ConversionError;
    fn try_from(a: pb::ApplicationInfo) -> Result<Self> {
        Ok(Self {
            id: AppId(a.id),
            desc: a.desc.ok_or(ConversionError::Missing("desc"))?.try_into()?,
            state: ApplicationState::from_wire(a.state)?,
            start_time_ms: a.start_time_ms,
            end_time_ms: a.end_time_ms,
            cores_granted: non_negative_u32("cores_granted", a.cores_granted)?,
            executor_limit: non_negative_u32("executor_limit", a.executor_limit)?,
            retry_count: non_negative_u32("retry_count", a.retry_count)?,
            executors: a
                .executors
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_>>()?,
            removed_executors: a
                .removed_executors
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_>>()?,
            waiting_reason: a.waiting_reason,
            driver_url: a.driver_url,
            time_to_running_ms: a.time_to_running_ms.and_then(|t| u64::try_from(t).ok()),
        })
    }
}

impl From<DriverView> for pb::DriverInfo {
    fn from(d: DriverView) -> Self {
        Self {
            id: d.id.0,
            desc: Some(d.desc.into()),
            state: d.state.to_wire(),
            worker_id: d.worker_id.map(|w| w.0),
            worker_host_port: d.worker_host_port,
            start_time_ms: d.start_time_ms,
            message: d.message,
            exit_status: d.exit_status,
            relaunched_as: d.relaunched_as.map(|r| r.0),
        }
    }
}

impl TryFrom<pb::DriverInfo> for DriverView {
    type Error = ConversionError;
    fn try_from(d: pb::DriverInfo) -> Result<Self> {
        Ok(Self {
            id: DriverId(d.id),
            desc: d.desc.ok_or(ConversionError::Missing("desc"))?.try_into()?,
            state: DriverState::from_wire(d.state)?,
            worker_id: d.worker_id.map(WorkerId),
            worker_host_port: d.worker_host_port,
            start_time_ms: d.start_time_ms,
            message: d.message,
            exit_status: d.exit_status,
            relaunched_as: d.relaunched_as.map(DriverId),
        })
    }
}

impl From<ClusterSnapshot> for pb::ClusterStateResponse {
    fn from(s: ClusterSnapshot) -> Self {
        Self {
            master_url: s.master_url,
            status: s.status.as_str().to_owned(),
            webui_url: s.webui_url,
            workers: s.workers.into_iter().map(Into::into).collect(),
            active_apps: s.active_apps.into_iter().map(Into::into).collect(),
            completed_apps: s.completed_apps.into_iter().map(Into::into).collect(),
            active_drivers: s.active_drivers.into_iter().map(Into::into).collect(),
            completed_drivers: s.completed_drivers.into_iter().map(Into::into).collect(),
        }
    }
}

impl TryFrom<pb::ClusterStateResponse> for ClusterSnapshot {
    type Error = ConversionError;
    fn try_from(s: pb::ClusterStateResponse) -> Result<Self> {
        let status = MasterStatus::ALL
            .iter()
            .copied()
            .find(|m| m.as_str() == s.status)
            .ok_or_else(|| ConversionError::invalid("status", s.status.clone()))?;
        fn all<P, D: TryFrom<P, Error = ConversionError>>(v: Vec<P>) -> Result<Vec<D>> {
            v.into_iter().map(D::try_from).collect()
        }
        Ok(Self {
            master_url: s.master_url,
            status,
            webui_url: s.webui_url,
            workers: all(s.workers)?,
            active_apps: all(s.active_apps)?,
            completed_apps: all(s.completed_apps)?,
            active_drivers: all(s.active_drivers)?,
            completed_drivers: all(s.completed_drivers)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app_pb() -> pb::ApplicationDescription {
        pb::ApplicationDescription {
            name: "pi".into(),
            user: "u".into(),
            cores_per_executor: Some(1),
            memory_per_executor_mb: 512,
            max_cores: None,
            command: Some(pb::CommandSpec {
                program: "/bin/true".into(),
                args: vec![],
                env: Default::default(),
                spark_jvm: None,
            }),
            initial_executor_limit: None,
            app_ui_url: String::new(),
        }
    }

    #[test]
    fn app_description_round_trips() {
        let d = AppDescription::try_from(app_pb()).expect("valid");
        assert_eq!(pb::ApplicationDescription::from(d), app_pb());
    }

    #[test]
    fn a_spark_jvm_command_round_trips_and_needs_a_main_class() {
        let mut a = app_pb();
        let jvm = pb::SparkJvm {
            main_class: "org.apache.spark.executor.CoarseGrainedExecutorBackend".into(),
            java_opts: vec!["-Dspark.driver.port=1".into()],
            class_path: vec!["/a.jar".into()],
            library_path: vec![],
            spark_line: "4.0".into(),
        };
        if let Some(c) = a.command.as_mut() {
            c.program = "java".into();
            c.spark_jvm = Some(jvm.clone());
        }
        let d = AppDescription::try_from(a.clone()).expect("valid");
        let j = d.command.spark_jvm().expect("a Spark JVM");
        assert_eq!(j.spark_line.as_deref(), Some("4.0"));
        assert_eq!(
            d.command.display(),
            "java -Dspark.driver.port=1 org.apache.spark.executor.CoarseGrainedExecutorBackend"
        );
        assert_eq!(pb::ApplicationDescription::from(d), a);
        if let Some(c) = a.command.as_mut() {
            c.spark_jvm = Some(pb::SparkJvm {
                main_class: " ".into(),
                ..jvm
            });
        }
        let d = AppDescription::try_from(a).expect("carried");
        assert_eq!(
            d.validate().map_err(|e| e.field),
            Err("command.spark_jvm.main_class")
        );
    }

    #[test]
    fn bad_app_descriptions_are_refused() {
        // What the wire cannot carry is refused here; what the domain forbids (zero cores,
        // an empty name…) is refused by `validate`, the one rule set of every front end.
        let mut a = app_pb();
        a.memory_per_executor_mb = -5;
        assert!(AppDescription::try_from(a).is_err());
        let mut a = app_pb();
        a.cores_per_executor = Some(-1);
        assert!(AppDescription::try_from(a).is_err());
        let mut a = app_pb();
        a.cores_per_executor = Some(0);
        let zero = AppDescription::try_from(a).expect("carried");
        assert_eq!(
            zero.validate().map_err(|e| e.field),
            Err("app.cores_per_executor")
        );
        let mut a = app_pb();
        a.command = None;
        assert_eq!(
            AppDescription::try_from(a),
            Err(ConversionError::Missing("app.command"))
        );
        let mut a = app_pb();
        a.name = " ".into();
        let unnamed = AppDescription::try_from(a).expect("carried");
        assert!(unnamed.validate().is_err());
    }

    #[test]
    fn registration_is_validated() {
        let ok = pb::RegisterWorker {
            id: "worker-1".into(),
            host: "h".into(),
            port: 7078,
            cores: 2,
            memory_mb: 1024,
            webui_url: String::new(),
        };
        assert!(WorkerRegistration::try_from(ok.clone()).is_ok());
        for bad in [
            pb::RegisterWorker {
                cores: 0,
                ..ok.clone()
            },
            pb::RegisterWorker {
                memory_mb: -1,
                ..ok.clone()
            },
            pb::RegisterWorker {
                id: String::new(),
                ..ok.clone()
            },
            pb::RegisterWorker {
                port: 70000,
                ..ok.clone()
            },
        ] {
            assert!(WorkerRegistration::try_from(bad).is_err());
        }
    }

    #[test]
    fn empty_oneof_is_an_error_not_a_panic() {
        assert_eq!(
            WorkerEvent::try_from(pb::WorkerToMaster { msg: None }),
            Err(ConversionError::Missing("msg"))
        );
        assert!(AppRequest::try_from(pb::AppToMaster { msg: None }).is_err());
        let bad_state = pb::WorkerToMaster {
            msg: Some(pb::worker_to_master::Msg::ExecutorStateChanged(
                pb::ExecutorStateChanged {
                    app_id: "a".into(),
                    executor_id: 0,
                    state: 99,
                    message: None,
                    exit_status: None,
                },
            )),
        };
        assert!(WorkerEvent::try_from(bad_state).is_err());
    }

    #[test]
    fn worker_commands_round_trip() {
        let app = AppDescription::try_from(app_pb()).expect("valid");
        let cmds = vec![
            WorkerCommand::LaunchExecutor(Box::new(LaunchExecutor {
                master_url: "spark://m:7077".into(),
                app_id: "app-1".into(),
                executor_id: 3,
                cores: 2,
                memory_mb: 512,
                app,
                resource_profile_id: 0,
            })),
            WorkerCommand::KillExecutor {
                app_id: "app-1".into(),
                executor_id: 3,
            },
            WorkerCommand::Reconnect {
                master_url: "spark://m:7077".into(),
            },
        ];
        for c in cmds {
            let back = WorkerCommand::try_from(pb::MasterToWorker::from(c.clone()));
            assert_eq!(back, Ok(c));
        }
    }
}
