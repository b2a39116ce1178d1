//! [`SparkMessage`] → Java serialization stream, for a given Spark line.

use std::collections::BTreeMap;

use super::super::SparkLine;
use super::super::jser::{DescriptorSet, EncodeError, Node, ObjectNode, Stream, write_stream};
use super::super::scala::{
    DEFAULT_PROXY, ENUM_VAL, LIST_END, LIST_PROXY, MODULE_PROXY, NONE, SERIALIZE_END, SOME,
};
use super::{
    Command, DriverDescription, DriverState, EndpointRef, ExecutorState, JavaThrowable, RpcAddress,
    SparkMessage,
};

/// Writes messages the way a given Spark line's JVM would, from that line's class
/// descriptors, overridden by whatever descriptors were learned from the peer.
///
/// A master keeps one per connection: built from the line detected on the first message
/// ([`SparkLine::detect`]), then [`learn`](Self::learn)ing from the peer's streams (a
/// driver's `RegisterApplication` carries the descriptors of nearly every class
/// `RegisteredApplication` needs, including the ones whose UIDs drift within 4.x).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageEncoder {
    line: SparkLine,
    descriptors: DescriptorSet,
}

impl MessageEncoder {
    /// An encoder with the built-in descriptors of `line`.
    pub fn new(line: SparkLine) -> Self {
        Self::with_descriptors(line, line.descriptors())
    }

    /// An encoder with explicit descriptors.
    pub fn with_descriptors(line: SparkLine, descriptors: DescriptorSet) -> Self {
        Self { line, descriptors }
    }

    pub fn line(&self) -> SparkLine {
        self.line
    }

    pub fn descriptors(&self) -> &DescriptorSet {
        &self.descriptors
    }

    /// Prefers the class descriptors of a stream the peer sent; returns how many changed.
    pub fn learn(&mut self, stream: &Stream) -> usize {
        self.descriptors.learn(stream)
    }

    /// The message as a Java serialization stream (an RpcResponse body, or the payload
    /// after a `RequestMessage` header).
    pub fn encode(&self, message: &SparkMessage) -> Result<Vec<u8>, EncodeError> {
        write_stream(&self.descriptors, &self.node(message)?)
    }

    /// The tree [`encode`](Self::encode) writes.
    ///
    /// Supported: `Boolean`, `CheckExistence`, everything a master sends to application and
    /// submission clients (`RegisteredApplication`, `ExecutorAdded`, `ExecutorUpdated`,
    /// `ApplicationRemoved`, `WorkerRemoved`, `SubmitDriverResponse`, `DriverStatusResponse`,
    /// `KillDriverResponse`), the simple master → worker messages (`RegisteredWorker`,
    /// `KillExecutor`, `ApplicationFinished`, `KillDriver`, `DecommissionWorker`, and
    /// `LaunchDriver` without resources), and the client/worker messages
    /// `UnregisterApplication`, `KillExecutors`, `RequestSubmitDriver`,
    /// `RequestDriverStatus`, `RequestKillDriver`, `Heartbeat`, `ExecutorStateChanged`,
    /// `DriverStateChanged`. Exceptions inside messages can only be `None`.
    pub fn node(&self, message: &SparkMessage) -> Result<Node, EncodeError> {
        let dm = |short: &str| format!("org.apache.spark.deploy.DeployMessages${short}");
        let obj = |short: &str| ObjectNode::new(dm(short));
        let s = Node::string;
        let node = match message {
            SparkMessage::Boolean(value) => {
                ObjectNode::new("java.lang.Boolean").field("value", Node::Boolean(*value))
            }
            SparkMessage::CheckExistence { name } => {
                ObjectNode::new(super::super::CHECK_EXISTENCE_CLASS).field("name", s(name))
            }
            SparkMessage::RegisteredApplication { app_id, master } => obj("RegisteredApplication")
                .field("appId", s(app_id))
                .field("master", self.endpoint_ref(master)),
            SparkMessage::ExecutorAdded {
                id,
                worker_id,
                host_port,
                cores,
                memory,
            } => obj("ExecutorAdded")
                .field("id", Node::Int(*id))
                .field("workerId", s(worker_id))
                .field("hostPort", s(host_port))
                .field("cores", Node::Int(*cores))
                .field("memory", Node::Int(*memory)),
            SparkMessage::ExecutorUpdated {
                id,
                state,
                message,
                exit_status,
                worker_host,
            } => obj("ExecutorUpdated")
                .field("id", Node::Int(*id))
                .field("exitStatus", self.option_int(*exit_status))
                .field("message", self.option_string(message.as_deref()))
                .field("state", self.executor_state(*state))
                .field("workerHost", self.option_string(worker_host.as_deref())),
            SparkMessage::ApplicationRemoved { message } => {
                obj("ApplicationRemoved").field("message", s(message))
            }
            SparkMessage::WorkerRemoved { id, host, message } => obj("WorkerRemoved")
                .field("id", s(id))
                .field("host", s(host))
                .field("message", s(message)),
            SparkMessage::SubmitDriverResponse {
                master,
                success,
                driver_id,
                message,
            } => obj("SubmitDriverResponse")
                .field("success", Node::Boolean(*success))
                .field("driverId", self.option_string(driver_id.as_deref()))
                .field("master", self.endpoint_ref(master))
                .field("message", s(message)),
            SparkMessage::DriverStatusResponse {
                found,
                state,
                worker_id,
                worker_host_port,
                exception,
            } => obj("DriverStatusResponse")
                .field("found", Node::Boolean(*found))
                .field("exception", self.option_exception(exception.as_ref())?)
                .field(
                    "state",
                    match state {
                        Some(state) => self.some(self.driver_state(*state)),
                        None => self.none(),
                    },
                )
                .field(
                    "workerHostPort",
                    self.option_string(worker_host_port.as_deref()),
                )
                .field("workerId", self.option_string(worker_id.as_deref())),
            SparkMessage::KillDriverResponse {
                master,
                driver_id,
                success,
                message,
            } => obj("KillDriverResponse")
                .field("success", Node::Boolean(*success))
                .field("driverId", s(driver_id))
                .field("master", self.endpoint_ref(master))
                .field("message", s(message)),
            SparkMessage::RegisteredWorker {
                master,
                master_web_ui_url,
                master_address,
                duplicate,
            } => obj("RegisteredWorker")
                .field("duplicate", Node::Boolean(*duplicate))
                .field("master", self.endpoint_ref(master))
                .field("masterAddress", rpc_address(master_address.as_ref()))
                .field("masterWebUiUrl", s(master_web_ui_url)),
            SparkMessage::KillExecutor {
                master_url,
                app_id,
                exec_id,
            } => obj("KillExecutor")
                .field("execId", Node::Int(*exec_id))
                .field("appId", s(app_id))
                .field("masterUrl", s(master_url)),
            SparkMessage::ApplicationFinished { id } => {
                obj("ApplicationFinished").field("id", s(id))
            }
            SparkMessage::KillDriver { driver_id } => {
                obj("KillDriver").field("driverId", s(driver_id))
            }
            SparkMessage::DecommissionWorker => {
                return Ok(self.module(&dm("DecommissionWorker$")));
            }
            SparkMessage::LaunchDriver {
                driver_id,
                driver,
                resources,
            } => {
                if !resources.is_empty() {
                    return Err(EncodeError::Unsupported(
                        "LaunchDriver with resources".into(),
                    ));
                }
                obj("LaunchDriver")
                    .field("driverId", s(driver_id))
                    .field("driverDesc", self.driver_description(driver))
                    .field(
                        "resources",
                        self.module("scala.collection.immutable.Map$EmptyMap$"),
                    )
            }
            SparkMessage::UnregisterApplication { app_id } => {
                obj("UnregisterApplication").field("appId", s(app_id))
            }
            SparkMessage::KillExecutors {
                app_id,
                executor_ids,
            } => obj("KillExecutors")
                .field("appId", s(app_id))
                .field("executorIds", self.string_list(executor_ids)),
            SparkMessage::RequestSubmitDriver { driver } => obj("RequestSubmitDriver")
                .field("driverDescription", self.driver_description(driver)),
            SparkMessage::RequestDriverStatus { driver_id } => {
                obj("RequestDriverStatus").field("driverId", s(driver_id))
            }
            SparkMessage::RequestKillDriver { driver_id } => {
                obj("RequestKillDriver").field("driverId", s(driver_id))
            }
            SparkMessage::Heartbeat { worker_id, worker } => obj("Heartbeat")
                .field("workerId", s(worker_id))
                .field("worker", self.endpoint_ref(worker)),
            SparkMessage::ExecutorStateChanged {
                app_id,
                exec_id,
                state,
                message,
                exit_status,
            } => obj("ExecutorStateChanged")
                .field("execId", Node::Int(*exec_id))
                .field("appId", s(app_id))
                .field("exitStatus", self.option_int(*exit_status))
                .field("message", self.option_string(message.as_deref()))
                .field("state", self.executor_state(*state)),
            SparkMessage::DriverStateChanged {
                driver_id,
                state,
                exception,
            } => obj("DriverStateChanged")
                .field("driverId", s(driver_id))
                .field("exception", self.option_exception(exception.as_ref())?)
                .field("state", self.driver_state(*state)),
            other => return Err(EncodeError::Unsupported(other.class_name().to_owned())),
        };
        Ok(Node::Object(node))
    }

    /// A Scala `object`: in 2.12 an instance of the module class (written once, then
    /// referenced), in 2.13 a `ModuleSerializationProxy` holding the module `Class`.
    fn module(&self, class: &str) -> Node {
        let node = if self.line.is_scala_2_13() {
            ObjectNode::new(MODULE_PROXY).field("moduleClass", Node::Class(class.to_owned()))
        } else {
            ObjectNode::new(class)
        };
        Node::shared(format!("module:{class}"), Node::Object(node))
    }

    fn none(&self) -> Node {
        self.module(NONE)
    }

    fn some(&self, value: Node) -> Node {
        Node::Object(ObjectNode::new(SOME).field("value", value))
    }

    fn option_string(&self, value: Option<&str>) -> Node {
        value.map_or_else(|| self.none(), |v| self.some(Node::string(v)))
    }

    fn option_int(&self, value: Option<i32>) -> Node {
        value.map_or_else(
            || self.none(),
            |v| {
                self.some(Node::Object(
                    ObjectNode::new("java.lang.Integer").field("value", Node::Int(v)),
                ))
            },
        )
    }

    fn option_exception(&self, value: Option<&JavaThrowable>) -> Result<Node, EncodeError> {
        match value {
            None => Ok(self.none()),
            Some(_) => Err(EncodeError::Unsupported(
                "an exception inside a message".into(),
            )),
        }
    }

    /// An `Enumeration#Value` by id. Only `i` is read back (`Val.readResolve` looks the
    /// value up in the local module), so in 2.12 the module instance is written with all
    /// its fields null/0, which Spark 3.5.3 was checked to accept.
    fn enumeration(&self, module: &str, id: i32) -> Node {
        let module = self.module(module);
        Node::Object(
            ObjectNode::new(ENUM_VAL)
                .field("$outer", module.clone())
                .field("scala$Enumeration$$outerEnum", module)
                .field("i", Node::Int(id))
                .field("name", Node::Null),
        )
    }

    fn executor_state(&self, state: ExecutorState) -> Node {
        self.enumeration(ExecutorState::MODULE, state.id())
    }

    fn driver_state(&self, state: DriverState) -> Node {
        self.enumeration(DriverState::MODULE, state.id())
    }

    /// `NettyRpcEndpointRef` with its `RpcEndpointAddress` and the superclass's `RpcTimeout`.
    fn endpoint_ref(&self, endpoint: &EndpointRef) -> Node {
        let timeout = &endpoint.ask_timeout;
        let duration = ObjectNode::new("scala.concurrent.duration.FiniteDuration")
            .field("length", Node::Long(timeout.length))
            .field(
                "unit",
                Node::Enum {
                    class: "java.util.concurrent.TimeUnit".into(),
                    constant: timeout.unit.clone(),
                },
            );
        let address = ObjectNode::new("org.apache.spark.rpc.RpcEndpointAddress")
            .field("name", Node::string(&endpoint.name))
            .field("rpcAddress", rpc_address(endpoint.address.as_ref()))
            .field("toString", Node::string(endpoint.url()));
        Node::Object(
            ObjectNode::new("org.apache.spark.rpc.netty.NettyRpcEndpointRef")
                .field(
                    "defaultAskTimeout",
                    Node::Object(
                        ObjectNode::new("org.apache.spark.rpc.RpcTimeout")
                            .field("duration", Node::Object(duration))
                            .field("timeoutProp", Node::string(&timeout.property)),
                    ),
                )
                .field("endpointAddress", Node::Object(address)),
        )
    }

    /// An immutable `List`.
    fn list(&self, elements: Vec<Node>) -> Node {
        if self.line.is_scala_2_13() {
            let empty = elements.is_empty();
            let mut items = vec![Node::BlockData(
                if empty { 0i32 } else { -1 }.to_be_bytes().to_vec(),
            )];
            items.extend(elements);
            if !empty {
                items.push(self.module(SERIALIZE_END));
            }
            let factory = ObjectNode::new("scala.collection.IterableFactory$ToFactory")
                .field("factory", self.module("scala.collection.immutable.List$"));
            Node::Object(
                ObjectNode::new(DEFAULT_PROXY)
                    .field("factory", Node::Object(factory))
                    .annotation(DEFAULT_PROXY, items),
            )
        } else {
            let mut items = elements;
            items.push(self.module(LIST_END));
            Node::Object(ObjectNode::new(LIST_PROXY).annotation(LIST_PROXY, items))
        }
    }

    fn string_list(&self, values: &[String]) -> Node {
        self.list(values.iter().map(Node::string).collect())
    }

    /// A `Map[String, String]`: an immutable `HashMap` in 2.12, a mutable one in 2.13 (what
    /// Spark's own clients send).
    fn string_map(&self, map: &BTreeMap<String, String>) -> Node {
        let size = i32::try_from(map.len())
            .unwrap_or(i32::MAX)
            .to_be_bytes()
            .to_vec();
        let mut items = vec![Node::BlockData(size)];
        if self.line.is_scala_2_13() {
            items.extend(map.iter().map(|(k, v)| {
                Node::Object(
                    ObjectNode::new("scala.Tuple2")
                        .field("_1", Node::string(k))
                        .field("_2", Node::string(v)),
                )
            }));
            let factory =
                ObjectNode::new("scala.collection.mutable.HashMap$DeserializationFactory")
                    .field("loadFactor", Node::Double(0.75))
                    .field("tableLength", Node::Int(table_length(map.len())));
            Node::Object(
                ObjectNode::new(DEFAULT_PROXY)
                    .field("factory", Node::Object(factory))
                    .annotation(DEFAULT_PROXY, items),
            )
        } else {
            let proxy = "scala.collection.immutable.HashMap$SerializationProxy";
            for (k, v) in map {
                items.push(Node::string(k));
                items.push(Node::string(v));
            }
            Node::Object(ObjectNode::new(proxy).annotation(proxy, items))
        }
    }

    fn command(&self, command: &Command) -> Node {
        Node::Object(
            ObjectNode::new("org.apache.spark.deploy.Command")
                .field("arguments", self.string_list(&command.arguments))
                .field(
                    "classPathEntries",
                    self.string_list(&command.class_path_entries),
                )
                .field("environment", self.string_map(&command.environment))
                .field("javaOpts", self.string_list(&command.java_opts))
                .field(
                    "libraryPathEntries",
                    self.string_list(&command.library_path_entries),
                )
                .field("mainClass", Node::string(&command.main_class)),
        )
    }

    fn driver_description(&self, driver: &DriverDescription) -> Node {
        let reqs = driver
            .resource_reqs
            .iter()
            .map(|r| {
                Node::Object(
                    ObjectNode::new("org.apache.spark.resource.ResourceRequirement")
                        .field("amount", Node::Int(r.amount))
                        .field("numParts", Node::Int(r.num_parts))
                        .field("resourceName", Node::string(&r.resource_name)),
                )
            })
            .collect();
        Node::Object(
            ObjectNode::new("org.apache.spark.deploy.DriverDescription")
                .field("cores", Node::Int(driver.cores))
                .field("mem", Node::Int(driver.mem))
                .field("supervise", Node::Boolean(driver.supervise))
                .field("command", self.command(&driver.command))
                .field("jarUrl", Node::string(&driver.jar_url))
                .field("resourceReqs", self.list(reqs)),
        )
    }
}

fn rpc_address(address: Option<&RpcAddress>) -> Node {
    match address {
        None => Node::Null,
        Some(a) => Node::Object(
            ObjectNode::new("org.apache.spark.rpc.RpcAddress")
                .field("port", Node::Int(a.port))
                .field("host", Node::string(&a.host)),
        ),
    }
}

/// The table length Scala 2.13's `mutable.HashMap` serializes: a power of two that holds
/// `size` entries at load factor 0.75 (16 at least).
fn table_length(size: usize) -> i32 {
    let needed = size.saturating_mul(4) / 3 + 1;
    let length = needed
        .max(16)
        .checked_next_power_of_two()
        .unwrap_or(1 << 30);
    i32::try_from(length.min(1 << 30)).unwrap_or(1 << 30)
}
