//! Domain types shared by the master, the worker and the client. They carry no protobuf
//! details; `flint_proto::convert` is the only place that maps them to and from the wire.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }
    };
}

id_type!(
    /// `worker-<yyyyMMddHHmmss>-<host>-<port>`, chosen by the worker.
    WorkerId
);
id_type!(
    /// `app-<yyyyMMddHHmmss>-NNNN`, chosen by the master.
    AppId
);
id_type!(
    /// `driver-<yyyyMMddHHmmss>-NNNN`, chosen by the master.
    DriverId
);

/// Executor ids count up from 0 within an application, as in Spark.
pub type ExecutorId = u32;

macro_rules! spark_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name { $($variant),+ }

        impl $name {
            /// The name Spark uses (`/json`, logs, REST).
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            pub const ALL: &'static [$name] = &[$(Self::$variant),+];
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

spark_enum!(WorkerState {
    Alive => "ALIVE",
    Dead => "DEAD",
    Decommissioned => "DECOMMISSIONED",
    Unknown => "UNKNOWN",
});

spark_enum!(ExecutorState {
    Launching => "LAUNCHING",
    Running => "RUNNING",
    Killed => "KILLED",
    Failed => "FAILED",
    Lost => "LOST",
    Exited => "EXITED",
    Decommissioned => "DECOMMISSIONED",
});

impl ExecutorState {
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            Self::Killed | Self::Failed | Self::Lost | Self::Exited
        )
    }
}

spark_enum!(DriverState {
    Submitted => "SUBMITTED",
    Running => "RUNNING",
    Finished => "FINISHED",
    Relaunching => "RELAUNCHING",
    Unknown => "UNKNOWN",
    Killed => "KILLED",
    Failed => "FAILED",
    Error => "ERROR",
});

impl DriverState {
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            Self::Finished | Self::Killed | Self::Failed | Self::Error | Self::Relaunching
        )
    }
}

spark_enum!(ApplicationState {
    Waiting => "WAITING",
    Running => "RUNNING",
    Finished => "FINISHED",
    Failed => "FAILED",
    Killed => "KILLED",
    Unknown => "UNKNOWN",
});

impl ApplicationState {
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Finished | Self::Failed | Self::Killed)
    }
}

spark_enum!(
    /// The master's own state (Spark's RecoveryState).
    MasterStatus {
        Alive => "ALIVE",
        Standby => "STANDBY",
        Recovering => "RECOVERING",
        CompletingRecovery => "COMPLETING_RECOVERY",
    }
);

/// A process to start, with Spark's `{{PLACEHOLDER}}`s still in it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandSpec {
    /// The program of a native command (`java` for a Spark JVM, whose real program the
    /// worker chooses).
    pub program: String,
    /// The program's arguments; for a Spark JVM, the main class's arguments.
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// How the worker starts it.
    #[serde(default)]
    pub launch: Launch,
}

/// How a worker starts a command.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Launch {
    /// `program args…` as given.
    #[default]
    Native,
    /// A Spark JVM (an executor's `CoarseGrainedExecutorBackend`, a cluster-mode driver's
    /// `DriverWrapper`): the worker builds the command line from its own Spark install, as
    /// Spark's `CommandUtils.buildProcessBuilder` does.
    SparkJvm(Box<SparkJvm>),
}

/// A Spark `Command`'s JVM part (what the worker needs besides the main class's arguments).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SparkJvm {
    pub main_class: String,
    pub java_opts: Vec<String>,
    pub class_path: Vec<String>,
    pub library_path: Vec<String>,
    /// The Spark line of the driver that will talk to this JVM (`3.5`, `4.0`), as the master
    /// read it from the driver's or submitter's stream; the worker picks a matching install.
    pub spark_line: Option<String>,
}

impl CommandSpec {
    pub fn spark_jvm(&self) -> Option<&SparkJvm> {
        match &self.launch {
            Launch::SparkJvm(j) => Some(j),
            Launch::Native => None,
        }
    }

    /// The command as a person reads it (UI pages): `program args…`, or for a Spark JVM
    /// `java <options> <main class> <args…>`.
    pub fn display(&self) -> String {
        let mut parts: Vec<&str> = vec![self.program.as_str()];
        if let Some(j) = self.spark_jvm() {
            parts.extend(j.java_opts.iter().map(String::as_str));
            parts.push(&j.main_class);
        }
        parts.extend(self.args.iter().map(String::as_str));
        parts.join(" ")
    }
}

/// What an application asks of the cluster (Spark's ApplicationDescription).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppDescription {
    pub name: String,
    pub user: String,
    /// `spark.executor.cores`; `None` = one executor per worker holding every granted core.
    pub cores_per_executor: Option<u32>,
    pub memory_per_executor_mb: u64,
    /// `spark.cores.max`; `None` = `spark.deploy.defaultCores`.
    pub max_cores: Option<u32>,
    pub command: CommandSpec,
    pub initial_executor_limit: Option<u32>,
    pub app_ui_url: String,
}

/// A driver to run in cluster deploy mode (Spark's DriverDescription).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverDescription {
    pub name: String,
    pub app_resource: String,
    pub app_sha256: Option<String>,
    pub command: CommandSpec,
    pub cores: u32,
    pub memory_mb: u64,
    pub supervise: bool,
}

/// What a worker announces when it registers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerRegistration {
    pub id: WorkerId,
    pub host: String,
    pub port: u16,
    pub cores: u32,
    pub memory_mb: u64,
    pub webui_url: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogType {
    Stdout,
    Stderr,
}

impl LogType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "stdout" => Some(Self::Stdout),
            "stderr" => Some(Self::Stderr),
            _ => None,
        }
    }
}

/// Whose log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogTarget {
    Driver(DriverId),
    Executor(AppId, ExecutorId),
}

/// A slice of a driver's or executor's stdout/stderr.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRequest {
    pub target: LogTarget,
    pub log_type: LogType,
    /// `None` reads the last `max_bytes` (tail).
    pub offset: Option<u64>,
    pub max_bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogSlice {
    pub data: Vec<u8>,
    pub offset: u64,
    pub total_size: u64,
}

/// Messages a worker sends on its session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkerEvent {
    Register(WorkerRegistration),
    Heartbeat {
        worker_id: WorkerId,
    },
    LatestState {
        worker_id: WorkerId,
        executors: Vec<(AppId, ExecutorId)>,
        drivers: Vec<DriverId>,
    },
    ExecutorStateChanged {
        app_id: AppId,
        executor_id: ExecutorId,
        state: ExecutorState,
        message: Option<String>,
        exit_status: Option<i32>,
    },
    DriverStateChanged {
        driver_id: DriverId,
        state: DriverState,
        message: Option<String>,
        exit_status: Option<i32>,
    },
    LogSlice {
        request_id: u64,
        result: Result<LogSlice, String>,
    },
}

/// An executor to start on a worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaunchExecutor {
    pub master_url: String,
    pub app_id: AppId,
    pub executor_id: ExecutorId,
    pub cores: u32,
    pub memory_mb: u64,
    pub app: AppDescription,
    pub resource_profile_id: u32,
}

/// Commands the master sends down a worker's session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkerCommand {
    Registered {
        worker_id: WorkerId,
        master_url: String,
        master_webui_url: String,
        duplicate: bool,
        heartbeat_interval_ms: u64,
    },
    RegisterFailed {
        message: String,
    },
    LaunchExecutor(Box<LaunchExecutor>),
    KillExecutor {
        app_id: AppId,
        executor_id: ExecutorId,
    },
    LaunchDriver {
        driver_id: DriverId,
        driver: Box<DriverDescription>,
    },
    KillDriver {
        driver_id: DriverId,
    },
    ApplicationFinished {
        app_id: AppId,
    },
    Reconnect {
        master_url: String,
    },
    ReadLog {
        request_id: u64,
        request: LogRequest,
    },
}

/// Messages an application's driver sends on its session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppRequest {
    Register {
        app: AppDescription,
        driver_url: String,
    },
    RequestExecutors {
        request_id: u64,
        total: u32,
    },
    KillExecutors {
        request_id: u64,
        executor_ids: Vec<ExecutorId>,
    },
    Unregister,
}

/// Events the master sends down an application's session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppEvent {
    Registered {
        app_id: AppId,
        master_url: String,
    },
    ExecutorAdded {
        executor_id: ExecutorId,
        worker_id: WorkerId,
        host_port: String,
        cores: u32,
        memory_mb: u64,
    },
    ExecutorUpdated {
        executor_id: ExecutorId,
        state: ExecutorState,
        message: Option<String>,
        exit_status: Option<i32>,
        worker_host: Option<String>,
    },
    WorkerRemoved {
        worker_id: WorkerId,
        host: String,
        message: String,
    },
    ApplicationRemoved {
        state: ApplicationState,
        message: String,
    },
    RequestResult {
        request_id: u64,
        ok: bool,
        message: String,
    },
}

// ---- read-only views of the cluster (ClusterState, /json, the UI) ----

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutorView {
    pub app_id: AppId,
    pub executor_id: ExecutorId,
    pub worker_id: WorkerId,
    pub host_port: String,
    pub cores: u32,
    pub memory_mb: u64,
    pub state: ExecutorState,
    pub exit_status: Option<i32>,
    pub message: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerView {
    pub id: WorkerId,
    pub host: String,
    pub port: u16,
    pub webui_url: String,
    pub cores: u32,
    pub cores_used: u32,
    pub memory_mb: u64,
    pub memory_used_mb: u64,
    pub state: WorkerState,
    pub last_heartbeat_ms: i64,
    pub executors: Vec<ExecutorView>,
    pub driver_ids: Vec<DriverId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppView {
    pub id: AppId,
    pub desc: AppDescription,
    pub state: ApplicationState,
    pub start_time_ms: i64,
    pub end_time_ms: Option<i64>,
    pub cores_granted: u32,
    pub executor_limit: u32,
    pub retry_count: u32,
    pub executors: Vec<ExecutorView>,
    pub removed_executors: Vec<ExecutorView>,
    pub waiting_reason: String,
    pub driver_url: String,
    /// Registration → every executor asked for RUNNING (the first time that happened).
    pub time_to_running_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverView {
    pub id: DriverId,
    pub desc: DriverDescription,
    pub state: DriverState,
    pub worker_id: Option<WorkerId>,
    pub worker_host_port: Option<String>,
    pub start_time_ms: i64,
    pub message: Option<String>,
    pub exit_status: Option<i32>,
    pub relaunched_as: Option<DriverId>,
}

/// Everything a reader may want to know about the cluster, taken at one instant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSnapshot {
    pub master_url: String,
    pub status: MasterStatus,
    pub webui_url: String,
    pub workers: Vec<WorkerView>,
    pub active_apps: Vec<AppView>,
    pub completed_apps: Vec<AppView>,
    pub active_drivers: Vec<DriverView>,
    pub completed_drivers: Vec<DriverView>,
}

impl ClusterSnapshot {
    pub fn worker(&self, id: &WorkerId) -> Option<&WorkerView> {
        self.workers.iter().find(|w| &w.id == id)
    }

    pub fn app(&self, id: &AppId) -> Option<&AppView> {
        self.active_apps
            .iter()
            .chain(self.completed_apps.iter())
            .find(|a| &a.id == id)
    }

    pub fn driver(&self, id: &DriverId) -> Option<&DriverView> {
        self.active_drivers
            .iter()
            .chain(self.completed_drivers.iter())
            .find(|d| &d.id == id)
    }

    pub fn alive_workers(&self) -> impl Iterator<Item = &WorkerView> {
        self.workers
            .iter()
            .filter(|w| w.state == WorkerState::Alive)
    }
}
