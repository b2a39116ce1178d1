//! Spark's standalone deploy messages (`org.apache.spark.deploy.DeployMessages`), the
//! endpoint verifier's `CheckExistence` and `java.lang.Boolean` replies, as typed values.
//!
//! [`decode_message`] reads any of them from a Java serialization stream (Spark 3.5 or 4.0
//! encodings); [`MessageEncoder`] writes the ones a master sends (and a few more), for the
//! peer's Spark line, preferring class descriptors learned from the peer's own streams.

mod decode;
mod encode;

use std::collections::BTreeMap;

use super::SparkLine;
use super::jser::{JserError, Stream};
pub use super::request::RpcAddress;

pub use decode::{decode_message, decode_message_with, decode_stream};
pub use encode::MessageEncoder;

/// Why a stream does not hold a message this module can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed Java serialization stream: {0}")]
    Stream(#[from] JserError),
    #[error("the stream holds no object")]
    Empty,
    #[error("{context}: expected {expected}, found {found}")]
    Unexpected {
        context: String,
        expected: &'static str,
        found: String,
    },
    #[error("{class} has no field {field}")]
    MissingField { class: String, field: String },
    #[error("malformed collection: {0}")]
    BadCollection(String),
    #[error("unknown {enumeration} id {id}")]
    UnknownEnumValue { enumeration: &'static str, id: i32 },
}

/// A decoded message together with the stream it came from (whose class descriptors a
/// [`MessageEncoder`] can learn).
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedMessage {
    pub message: SparkMessage,
    pub stream: Stream,
}

impl DecodedMessage {
    /// The Spark line that wrote the message, when the stream tells.
    pub fn spark_line(&self) -> Option<SparkLine> {
        SparkLine::detect(&self.stream)
    }
}

/// `org.apache.spark.rpc.RpcTimeout`: the ask timeout every endpoint ref carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcTimeout {
    /// `FiniteDuration.length`.
    pub length: i64,
    /// `FiniteDuration.unit`, a `java.util.concurrent.TimeUnit` constant name.
    pub unit: String,
    /// The configuration key the timeout came from.
    pub property: String,
}

impl Default for RpcTimeout {
    /// `RpcTimeout(120 SECONDS, "spark.rpc.askTimeout")`, what every captured ref carries.
    fn default() -> Self {
        Self {
            length: 120,
            unit: "SECONDS".into(),
            property: "spark.rpc.askTimeout".into(),
        }
    }
}

/// A reference to a remote endpoint (`NettyRpcEndpointRef`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRef {
    /// Endpoint name (`Master`, `Worker`, `AppClient`).
    pub name: String,
    /// The RpcEnv's listen address; `None` for client-only RpcEnvs (`spark-client://`).
    pub address: Option<RpcAddress>,
    pub ask_timeout: RpcTimeout,
}

impl EndpointRef {
    /// A ref with the default ask timeout.
    pub fn new(name: impl Into<String>, address: Option<RpcAddress>) -> Self {
        Self {
            name: name.into(),
            address,
            ask_timeout: RpcTimeout::default(),
        }
    }

    /// `RpcEndpointAddress.toString`: `spark://Name@host:port` or `spark-client://Name`.
    pub fn url(&self) -> String {
        match &self.address {
            Some(a) => format!("spark://{}@{}:{}", self.name, a.host, a.port),
            None => format!("spark-client://{}", self.name),
        }
    }
}

macro_rules! spark_enum {
    ($(#[$doc:meta])* $name:ident, $module:literal, { $($variant:ident = $id:literal => $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant),*
        }

        impl $name {
            /// The Scala module class of the enumeration.
            pub const MODULE: &'static str = $module;

            /// The value's id (`Enumeration#Value.id`, its declaration order).
            pub fn id(self) -> i32 {
                match self {
                    $(Self::$variant => $id),*
                }
            }

            pub fn from_id(id: i32) -> Option<Self> {
                match id {
                    $($id => Some(Self::$variant),)*
                    _ => None,
                }
            }

            /// Spark's name for the value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),*
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

spark_enum!(
    /// `org.apache.spark.deploy.ExecutorState`.
    ExecutorState, "org.apache.spark.deploy.ExecutorState$", {
        Launching = 0 => "LAUNCHING",
        Running = 1 => "RUNNING",
        Killed = 2 => "KILLED",
        Failed = 3 => "FAILED",
        Lost = 4 => "LOST",
        Exited = 5 => "EXITED",
        Decommissioned = 6 => "DECOMMISSIONED",
    }
);

spark_enum!(
    /// `org.apache.spark.deploy.master.DriverState`.
    DriverState, "org.apache.spark.deploy.master.DriverState$", {
        Submitted = 0 => "SUBMITTED",
        Running = 1 => "RUNNING",
        Finished = 2 => "FINISHED",
        Relaunching = 3 => "RELAUNCHING",
        Unknown = 4 => "UNKNOWN",
        Killed = 5 => "KILLED",
        Failed = 6 => "FAILED",
        Error = 7 => "ERROR",
    }
);

impl ExecutorState {
    /// `ExecutorState.isFinished`: KILLED, FAILED, LOST, EXITED.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            Self::Killed | Self::Failed | Self::Lost | Self::Exited
        )
    }
}

/// `org.apache.spark.deploy.Command`: how to start an executor or a driver JVM.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Command {
    pub main_class: String,
    /// May hold `{{EXECUTOR_ID}}`, `{{HOSTNAME}}`, `{{CORES}}`, `{{APP_ID}}`,
    /// `{{WORKER_URL}}`, `{{RESOURCE_PROFILE_ID}}` placeholders.
    pub arguments: Vec<String>,
    pub environment: BTreeMap<String, String>,
    pub class_path_entries: Vec<String>,
    pub library_path_entries: Vec<String>,
    pub java_opts: Vec<String>,
}

/// `org.apache.spark.resource.ExecutorResourceRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorResourceRequest {
    pub resource_name: String,
    /// For `memory`, `offHeap`, `memoryOverhead`, `pyspark.memory`: MiB; `cores`: cores.
    pub amount: i64,
    pub discovery_script: String,
    pub vendor: String,
}

/// `org.apache.spark.resource.TaskResourceRequest`.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskResourceRequest {
    pub resource_name: String,
    pub amount: f64,
}

/// `org.apache.spark.resource.ResourceProfile`, the parts a master uses.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceProfile {
    pub id: i32,
    pub executor_resources: BTreeMap<String, ExecutorResourceRequest>,
    pub task_resources: BTreeMap<String, TaskResourceRequest>,
}

impl ResourceProfile {
    /// Executor memory in MiB (`memory` executor resource), when the driver set it.
    pub fn executor_memory_mb(&self) -> Option<i64> {
        self.executor_resources.get("memory").map(|r| r.amount)
    }

    /// Cores per executor (`cores` executor resource): only present with `--executor-cores`.
    pub fn executor_cores(&self) -> Option<i64> {
        self.executor_resources.get("cores").map(|r| r.amount)
    }
}

/// `org.apache.spark.deploy.ApplicationDescription`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplicationDescription {
    pub name: String,
    pub max_cores: Option<i32>,
    pub command: Command,
    pub app_ui_url: String,
    pub default_profile: ResourceProfile,
    pub event_log_dir: Option<String>,
    pub event_log_codec: Option<String>,
    pub initial_executor_limit: Option<i32>,
    pub user: String,
}

impl ApplicationDescription {
    /// Executor memory in MiB from the default resource profile.
    pub fn executor_memory_mb(&self) -> Option<i64> {
        self.default_profile.executor_memory_mb()
    }

    /// Cores per executor from the default resource profile.
    pub fn executor_cores(&self) -> Option<i64> {
        self.default_profile.executor_cores()
    }
}

/// `org.apache.spark.resource.ResourceRequirement`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRequirement {
    pub resource_name: String,
    pub amount: i32,
    pub num_parts: i32,
}

/// `org.apache.spark.deploy.DriverDescription`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverDescription {
    pub jar_url: String,
    /// MiB.
    pub mem: i32,
    pub cores: i32,
    pub supervise: bool,
    pub command: Command,
    pub resource_reqs: Vec<ResourceRequirement>,
}

/// `org.apache.spark.resource.ResourceInformation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceInformation {
    pub name: String,
    pub addresses: Vec<String>,
}

/// `org.apache.spark.deploy.ExecutorDescription` (in `WorkerLatestState`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorDescription {
    pub app_id: String,
    pub exec_id: i32,
    pub rp_id: i32,
    pub cores: i32,
    pub memory_mb: i32,
    pub state: ExecutorState,
}

/// A `java.lang.Throwable` inside a message: its class and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JavaThrowable {
    pub class_name: String,
    pub message: Option<String>,
}

/// `DeployMessages.RegisterWorker`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterWorker {
    pub id: String,
    pub host: String,
    pub port: i32,
    pub worker: EndpointRef,
    pub cores: i32,
    pub memory: i32,
    pub worker_web_ui_url: String,
    pub master_address: Option<RpcAddress>,
    pub resources: BTreeMap<String, ResourceInformation>,
}

/// Every message this module knows, by direction.
#[derive(Debug, Clone, PartialEq)]
pub enum SparkMessage {
    // ---- endpoint verifier ----
    /// `RpcEndpointVerifier.CheckExistence(name)`, asked before using a remote endpoint.
    CheckExistence {
        name: String,
    },
    /// A `java.lang.Boolean` reply (to `CheckExistence`, `ExecutorStateChanged`,
    /// `RequestExecutors`, `KillExecutors`).
    Boolean(bool),

    // ---- application client (driver) -> master ----
    RegisterApplication {
        app: ApplicationDescription,
        driver: EndpointRef,
    },
    UnregisterApplication {
        app_id: String,
    },
    /// Asked (reply: Boolean): the total number of executors wanted per resource profile.
    RequestExecutors {
        app_id: String,
        totals: Vec<(ResourceProfile, i32)>,
    },
    /// Asked (reply: Boolean).
    KillExecutors {
        app_id: String,
        executor_ids: Vec<String>,
    },

    // ---- submission client -> master (asked) ----
    RequestSubmitDriver {
        driver: DriverDescription,
    },
    RequestDriverStatus {
        driver_id: String,
    },
    RequestKillDriver {
        driver_id: String,
    },

    // ---- worker -> master ----
    RegisterWorker(Box<RegisterWorker>),
    Heartbeat {
        worker_id: String,
        worker: EndpointRef,
    },
    WorkerLatestState {
        id: String,
        executors: Vec<ExecutorDescription>,
        driver_ids: Vec<String>,
    },
    /// Asked (reply: Boolean).
    ExecutorStateChanged {
        app_id: String,
        exec_id: i32,
        state: ExecutorState,
        message: Option<String>,
        exit_status: Option<i32>,
    },
    DriverStateChanged {
        driver_id: String,
        state: DriverState,
        exception: Option<JavaThrowable>,
    },

    // ---- master -> application client ----
    RegisteredApplication {
        app_id: String,
        master: EndpointRef,
    },
    ExecutorAdded {
        id: i32,
        worker_id: String,
        /// `host:port` of the worker.
        host_port: String,
        cores: i32,
        memory: i32,
    },
    ExecutorUpdated {
        id: i32,
        state: ExecutorState,
        message: Option<String>,
        exit_status: Option<i32>,
        worker_host: Option<String>,
    },
    ApplicationRemoved {
        message: String,
    },
    WorkerRemoved {
        id: String,
        host: String,
        message: String,
    },

    // ---- master -> submission client (replies) ----
    SubmitDriverResponse {
        master: EndpointRef,
        success: bool,
        driver_id: Option<String>,
        message: String,
    },
    DriverStatusResponse {
        found: bool,
        state: Option<DriverState>,
        worker_id: Option<String>,
        worker_host_port: Option<String>,
        exception: Option<JavaThrowable>,
    },
    KillDriverResponse {
        master: EndpointRef,
        driver_id: String,
        success: bool,
        message: String,
    },

    // ---- master -> worker ----
    RegisteredWorker {
        master: EndpointRef,
        master_web_ui_url: String,
        master_address: Option<RpcAddress>,
        duplicate: bool,
    },
    LaunchExecutor {
        master_url: String,
        app_id: String,
        exec_id: i32,
        rp_id: i32,
        app: Box<ApplicationDescription>,
        cores: i32,
        memory: i32,
        resources: BTreeMap<String, ResourceInformation>,
    },
    KillExecutor {
        master_url: String,
        app_id: String,
        exec_id: i32,
    },
    ApplicationFinished {
        id: String,
    },
    LaunchDriver {
        driver_id: String,
        driver: DriverDescription,
        resources: BTreeMap<String, ResourceInformation>,
    },
    KillDriver {
        driver_id: String,
    },
    DecommissionWorker,

    /// A message of a class this module does not decode.
    Other {
        class_name: String,
    },
}

/// `org.apache.spark.deploy.DeployMessages$<name>`.
macro_rules! deploy_message {
    ($name:literal) => {
        concat!("org.apache.spark.deploy.DeployMessages$", $name)
    };
}
pub(crate) use deploy_message;

impl SparkMessage {
    /// Spark's class name of the message (for `Other`, the class found).
    pub fn class_name(&self) -> &str {
        match self {
            Self::CheckExistence { .. } => super::CHECK_EXISTENCE_CLASS,
            Self::Boolean(_) => "java.lang.Boolean",
            Self::Other { class_name } => class_name,
            Self::RegisterApplication { .. } => deploy_message!("RegisterApplication"),
            Self::UnregisterApplication { .. } => deploy_message!("UnregisterApplication"),
            Self::RequestExecutors { .. } => deploy_message!("RequestExecutors"),
            Self::KillExecutors { .. } => deploy_message!("KillExecutors"),
            Self::RequestSubmitDriver { .. } => deploy_message!("RequestSubmitDriver"),
            Self::RequestDriverStatus { .. } => deploy_message!("RequestDriverStatus"),
            Self::RequestKillDriver { .. } => deploy_message!("RequestKillDriver"),
            Self::RegisterWorker(_) => deploy_message!("RegisterWorker"),
            Self::Heartbeat { .. } => deploy_message!("Heartbeat"),
            Self::WorkerLatestState { .. } => deploy_message!("WorkerLatestState"),
            Self::ExecutorStateChanged { .. } => deploy_message!("ExecutorStateChanged"),
            Self::DriverStateChanged { .. } => deploy_message!("DriverStateChanged"),
            Self::RegisteredApplication { .. } => deploy_message!("RegisteredApplication"),
            Self::ExecutorAdded { .. } => deploy_message!("ExecutorAdded"),
            Self::ExecutorUpdated { .. } => deploy_message!("ExecutorUpdated"),
            Self::ApplicationRemoved { .. } => deploy_message!("ApplicationRemoved"),
            Self::WorkerRemoved { .. } => deploy_message!("WorkerRemoved"),
            Self::SubmitDriverResponse { .. } => deploy_message!("SubmitDriverResponse"),
            Self::DriverStatusResponse { .. } => deploy_message!("DriverStatusResponse"),
            Self::KillDriverResponse { .. } => deploy_message!("KillDriverResponse"),
            Self::RegisteredWorker { .. } => deploy_message!("RegisteredWorker"),
            Self::LaunchExecutor { .. } => deploy_message!("LaunchExecutor"),
            Self::KillExecutor { .. } => deploy_message!("KillExecutor"),
            Self::ApplicationFinished { .. } => deploy_message!("ApplicationFinished"),
            Self::LaunchDriver { .. } => deploy_message!("LaunchDriver"),
            Self::KillDriver { .. } => deploy_message!("KillDriver"),
            Self::DecommissionWorker => deploy_message!("DecommissionWorker$"),
        }
    }
}
