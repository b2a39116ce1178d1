//! Java serialization tree → [`SparkMessage`].

use std::collections::BTreeMap;

use super::super::jser::{Entity, ObjectView, ReaderLimits, Stream, Value, read_stream_with};
use super::super::scala::{
    self, bool_field, context, field, int_field, long_field, object, object_of, option, option_int,
    option_string, string, string_field, string_map, string_seq,
};
use super::{
    ApplicationDescription, Command, DecodeError, DecodedMessage, DriverDescription, DriverState,
    EndpointRef, ExecutorDescription, ExecutorResourceRequest, ExecutorState, JavaThrowable,
    RegisterWorker, ResourceInformation, ResourceProfile, ResourceRequirement, RpcAddress,
    RpcTimeout, SparkMessage, TaskResourceRequest, deploy_message,
};

/// Reads a Java serialization stream (the payload after a `RequestMessage` header, or a
/// whole RpcResponse body) and decodes its message, with the default reader limits.
pub fn decode_message(payload: &[u8]) -> Result<DecodedMessage, DecodeError> {
    decode_message_with(payload, &ReaderLimits::default())
}

/// [`decode_message`] with explicit reader limits.
pub fn decode_message_with(
    payload: &[u8],
    limits: &ReaderLimits,
) -> Result<DecodedMessage, DecodeError> {
    let stream = read_stream_with(payload, limits)?;
    let message = decode_stream(&stream)?;
    Ok(DecodedMessage { message, stream })
}

/// Decodes the first object of an already read stream. Classes this module does not know
/// give [`SparkMessage::Other`]; known classes with unexpected content give an error.
pub fn decode_stream(stream: &Stream) -> Result<SparkMessage, DecodeError> {
    let root = stream.root().ok_or(DecodeError::Empty)?;
    if let Some(module) = scala::module_name(stream, &root) {
        return Ok(if module == deploy_message!("DecommissionWorker$") {
            SparkMessage::DecommissionWorker
        } else {
            SparkMessage::Other {
                class_name: module.to_owned(),
            }
        });
    }
    let Some(obj) = stream.object(&root) else {
        return Ok(SparkMessage::Other {
            class_name: scala::describe(stream, &root),
        });
    };
    let s = stream;
    let f = |name: &str| field(&obj, name);
    let ctx = |name: &str| context(&obj, name);
    Ok(match obj.class_name() {
        super::super::CHECK_EXISTENCE_CLASS => SparkMessage::CheckExistence {
            name: string_field(&obj, "name")?,
        },
        "java.lang.Boolean" => SparkMessage::Boolean(bool_field(&obj, "value")?),

        deploy_message!("RegisterApplication") => SparkMessage::RegisterApplication {
            app: application_description(s, &f("appDescription")?, &ctx("appDescription"))?,
            driver: endpoint_ref(s, &f("driver")?, &ctx("driver"))?,
        },
        deploy_message!("UnregisterApplication") => SparkMessage::UnregisterApplication {
            app_id: string_field(&obj, "appId")?,
        },
        deploy_message!("RequestExecutors") => {
            let what = ctx("resourceProfileToTotalExecs");
            let entries = scala::map(s, &f("resourceProfileToTotalExecs")?, &what)?;
            let totals = entries
                .iter()
                .map(|(k, v)| {
                    Ok((
                        resource_profile(s, k, &what)?,
                        scala::boxed_int(s, v, &what)?,
                    ))
                })
                .collect::<Result<_, DecodeError>>()?;
            SparkMessage::RequestExecutors {
                app_id: string_field(&obj, "appId")?,
                totals,
            }
        }
        deploy_message!("KillExecutors") => SparkMessage::KillExecutors {
            app_id: string_field(&obj, "appId")?,
            executor_ids: string_seq(s, &f("executorIds")?, &ctx("executorIds"))?,
        },

        deploy_message!("RequestSubmitDriver") => SparkMessage::RequestSubmitDriver {
            driver: driver_description(s, &f("driverDescription")?, &ctx("driverDescription"))?,
        },
        deploy_message!("RequestDriverStatus") => SparkMessage::RequestDriverStatus {
            driver_id: string_field(&obj, "driverId")?,
        },
        deploy_message!("RequestKillDriver") => SparkMessage::RequestKillDriver {
            driver_id: string_field(&obj, "driverId")?,
        },

        deploy_message!("RegisterWorker") => {
            SparkMessage::RegisterWorker(Box::new(RegisterWorker {
                id: string_field(&obj, "id")?,
                host: string_field(&obj, "host")?,
                port: int_field(&obj, "port")?,
                worker: endpoint_ref(s, &f("worker")?, &ctx("worker"))?,
                cores: int_field(&obj, "cores")?,
                memory: int_field(&obj, "memory")?,
                worker_web_ui_url: nullable(s, &f("workerWebUiUrl")?, &ctx("workerWebUiUrl"))?,
                master_address: nullable_rpc_address(
                    s,
                    &f("masterAddress")?,
                    &ctx("masterAddress"),
                )?,
                resources: resources(s, &f("resources")?, &ctx("resources"))?,
            }))
        }
        deploy_message!("Heartbeat") => SparkMessage::Heartbeat {
            worker_id: string_field(&obj, "workerId")?,
            worker: endpoint_ref(s, &f("worker")?, &ctx("worker"))?,
        },
        deploy_message!("WorkerLatestState") => {
            let what = ctx("executors");
            let executors = scala::seq(s, &f("executors")?, &what)?
                .iter()
                .map(|v| executor_description(s, v, &what))
                .collect::<Result<_, _>>()?;
            SparkMessage::WorkerLatestState {
                id: string_field(&obj, "id")?,
                executors,
                driver_ids: string_seq(s, &f("driverIds")?, &ctx("driverIds"))?,
            }
        }
        deploy_message!("ExecutorStateChanged") => SparkMessage::ExecutorStateChanged {
            app_id: string_field(&obj, "appId")?,
            exec_id: int_field(&obj, "execId")?,
            state: executor_state(s, &f("state")?, &ctx("state"))?,
            message: option_string(s, &f("message")?, &ctx("message"))?,
            exit_status: option_int(s, &f("exitStatus")?, &ctx("exitStatus"))?,
        },
        deploy_message!("DriverStateChanged") => SparkMessage::DriverStateChanged {
            driver_id: string_field(&obj, "driverId")?,
            state: driver_state(s, &f("state")?, &ctx("state"))?,
            exception: option_throwable(s, &f("exception")?, &ctx("exception"))?,
        },

        deploy_message!("RegisteredApplication") => SparkMessage::RegisteredApplication {
            app_id: string_field(&obj, "appId")?,
            master: endpoint_ref(s, &f("master")?, &ctx("master"))?,
        },
        deploy_message!("ExecutorAdded") => SparkMessage::ExecutorAdded {
            id: int_field(&obj, "id")?,
            worker_id: string_field(&obj, "workerId")?,
            host_port: string_field(&obj, "hostPort")?,
            cores: int_field(&obj, "cores")?,
            memory: int_field(&obj, "memory")?,
        },
        deploy_message!("ExecutorUpdated") => SparkMessage::ExecutorUpdated {
            id: int_field(&obj, "id")?,
            state: executor_state(s, &f("state")?, &ctx("state"))?,
            message: option_string(s, &f("message")?, &ctx("message"))?,
            exit_status: option_int(s, &f("exitStatus")?, &ctx("exitStatus"))?,
            worker_host: option_string(s, &f("workerHost")?, &ctx("workerHost"))?,
        },
        deploy_message!("ApplicationRemoved") => SparkMessage::ApplicationRemoved {
            message: string_field(&obj, "message")?,
        },
        deploy_message!("WorkerRemoved") => SparkMessage::WorkerRemoved {
            id: string_field(&obj, "id")?,
            host: string_field(&obj, "host")?,
            message: string_field(&obj, "message")?,
        },

        deploy_message!("SubmitDriverResponse") => SparkMessage::SubmitDriverResponse {
            master: endpoint_ref(s, &f("master")?, &ctx("master"))?,
            success: bool_field(&obj, "success")?,
            driver_id: option_string(s, &f("driverId")?, &ctx("driverId"))?,
            message: string_field(&obj, "message")?,
        },
        deploy_message!("DriverStatusResponse") => {
            let what = ctx("state");
            SparkMessage::DriverStatusResponse {
                found: bool_field(&obj, "found")?,
                state: option(s, &f("state")?, &what)?
                    .map(|v| driver_state(s, &v, &what))
                    .transpose()?,
                worker_id: option_string(s, &f("workerId")?, &ctx("workerId"))?,
                worker_host_port: option_string(s, &f("workerHostPort")?, &ctx("workerHostPort"))?,
                exception: option_throwable(s, &f("exception")?, &ctx("exception"))?,
            }
        }
        deploy_message!("KillDriverResponse") => SparkMessage::KillDriverResponse {
            master: endpoint_ref(s, &f("master")?, &ctx("master"))?,
            driver_id: string_field(&obj, "driverId")?,
            success: bool_field(&obj, "success")?,
            message: string_field(&obj, "message")?,
        },

        deploy_message!("RegisteredWorker") => SparkMessage::RegisteredWorker {
            master: endpoint_ref(s, &f("master")?, &ctx("master"))?,
            master_web_ui_url: nullable(s, &f("masterWebUiUrl")?, &ctx("masterWebUiUrl"))?,
            master_address: nullable_rpc_address(s, &f("masterAddress")?, &ctx("masterAddress"))?,
            duplicate: bool_field(&obj, "duplicate")?,
        },
        deploy_message!("LaunchExecutor") => SparkMessage::LaunchExecutor {
            master_url: string_field(&obj, "masterUrl")?,
            app_id: string_field(&obj, "appId")?,
            exec_id: int_field(&obj, "execId")?,
            rp_id: int_field(&obj, "rpId")?,
            app: Box::new(application_description(s, &f("appDesc")?, &ctx("appDesc"))?),
            cores: int_field(&obj, "cores")?,
            memory: int_field(&obj, "memory")?,
            resources: resources(s, &f("resources")?, &ctx("resources"))?,
        },
        deploy_message!("KillExecutor") => SparkMessage::KillExecutor {
            master_url: string_field(&obj, "masterUrl")?,
            app_id: string_field(&obj, "appId")?,
            exec_id: int_field(&obj, "execId")?,
        },
        deploy_message!("ApplicationFinished") => SparkMessage::ApplicationFinished {
            id: string_field(&obj, "id")?,
        },
        deploy_message!("LaunchDriver") => SparkMessage::LaunchDriver {
            driver_id: string_field(&obj, "driverId")?,
            driver: driver_description(s, &f("driverDesc")?, &ctx("driverDesc"))?,
            resources: resources(s, &f("resources")?, &ctx("resources"))?,
        },
        deploy_message!("KillDriver") => SparkMessage::KillDriver {
            driver_id: string_field(&obj, "driverId")?,
        },
        other => SparkMessage::Other {
            class_name: other.to_owned(),
        },
    })
}

/// A string that Spark never sends as null, read leniently (null becomes empty).
fn nullable(stream: &Stream, value: &Value, what: &str) -> Result<String, DecodeError> {
    Ok(scala::nullable_string(stream, value, what)?.unwrap_or_default())
}

fn rpc_address(stream: &Stream, value: &Value, what: &str) -> Result<RpcAddress, DecodeError> {
    let obj = object_of(stream, value, "org.apache.spark.rpc.RpcAddress", what)?;
    Ok(RpcAddress {
        host: string_field(&obj, "host")?,
        port: int_field(&obj, "port")?,
    })
}

fn nullable_rpc_address(
    stream: &Stream,
    value: &Value,
    what: &str,
) -> Result<Option<RpcAddress>, DecodeError> {
    match value {
        Value::Null => Ok(None),
        v => rpc_address(stream, v, what).map(Some),
    }
}

fn rpc_timeout(stream: &Stream, value: &Value, what: &str) -> Result<RpcTimeout, DecodeError> {
    let timeout = object_of(stream, value, "org.apache.spark.rpc.RpcTimeout", what)?;
    let duration = object(stream, &field(&timeout, "duration")?, what)?;
    let unit = field(&duration, "unit")?;
    let unit = match stream.resolve(&unit) {
        Some(Entity::Enum(constant)) => constant.name.clone(),
        _ => return Err(scala::unexpected(stream, &unit, what, "a TimeUnit")),
    };
    Ok(RpcTimeout {
        length: long_field(&duration, "length")?,
        unit,
        property: nullable(stream, &field(&timeout, "timeoutProp")?, what)?,
    })
}

/// An `RpcEndpointRef` (a `NettyRpcEndpointRef` on the wire).
pub(super) fn endpoint_ref(
    stream: &Stream,
    value: &Value,
    what: &str,
) -> Result<EndpointRef, DecodeError> {
    let obj = object(stream, value, what)?;
    let address = object_of(
        stream,
        &field(&obj, "endpointAddress")?,
        "org.apache.spark.rpc.RpcEndpointAddress",
        what,
    )?;
    let ask_timeout = match obj.field("defaultAskTimeout") {
        None | Some(Value::Null) => RpcTimeout::default(),
        Some(v) => rpc_timeout(stream, &v, what)?,
    };
    Ok(EndpointRef {
        name: string_field(&address, "name")?,
        address: nullable_rpc_address(stream, &field(&address, "rpcAddress")?, what)?,
        ask_timeout,
    })
}

fn checked_enum(
    stream: &Stream,
    value: &Value,
    what: &str,
    module: &'static str,
) -> Result<i32, DecodeError> {
    let v = scala::enumeration(stream, value, what)?;
    match v.module.as_deref() {
        Some(m) if m != module => Err(scala::unexpected(stream, value, what, module)),
        _ => Ok(v.id),
    }
}

fn executor_state(
    stream: &Stream,
    value: &Value,
    what: &str,
) -> Result<ExecutorState, DecodeError> {
    let id = checked_enum(stream, value, what, ExecutorState::MODULE)?;
    ExecutorState::from_id(id).ok_or(DecodeError::UnknownEnumValue {
        enumeration: "ExecutorState",
        id,
    })
}

fn driver_state(stream: &Stream, value: &Value, what: &str) -> Result<DriverState, DecodeError> {
    let id = checked_enum(stream, value, what, DriverState::MODULE)?;
    DriverState::from_id(id).ok_or(DecodeError::UnknownEnumValue {
        enumeration: "DriverState",
        id,
    })
}

fn option_throwable(
    stream: &Stream,
    value: &Value,
    what: &str,
) -> Result<Option<JavaThrowable>, DecodeError> {
    let Some(v) = option(stream, value, what)? else {
        return Ok(None);
    };
    let obj = object(stream, &v, what)?;
    let message = match obj.field("detailMessage") {
        Some(m) => scala::nullable_string(stream, &m, what)?,
        None => None,
    };
    Ok(Some(JavaThrowable {
        class_name: obj.class_name().to_owned(),
        message,
    }))
}

fn command(stream: &Stream, value: &Value, what: &str) -> Result<Command, DecodeError> {
    let obj = object_of(stream, value, "org.apache.spark.deploy.Command", what)?;
    let seq = |name: &str| string_seq(stream, &field(&obj, name)?, &context(&obj, name));
    Ok(Command {
        main_class: string_field(&obj, "mainClass")?,
        arguments: seq("arguments")?,
        environment: string_map(
            stream,
            &field(&obj, "environment")?,
            &context(&obj, "environment"),
        )?,
        class_path_entries: seq("classPathEntries")?,
        library_path_entries: seq("libraryPathEntries")?,
        java_opts: seq("javaOpts")?,
    })
}

fn resource_profile(
    stream: &Stream,
    value: &Value,
    what: &str,
) -> Result<ResourceProfile, DecodeError> {
    let obj = object_of(
        stream,
        value,
        "org.apache.spark.resource.ResourceProfile",
        what,
    )?;
    let mut executor_resources = BTreeMap::new();
    let what_exec = context(&obj, "executorResources");
    for (k, v) in scala::map(stream, &field(&obj, "executorResources")?, &what_exec)? {
        let req = object_of(
            stream,
            &v,
            "org.apache.spark.resource.ExecutorResourceRequest",
            &what_exec,
        )?;
        let request = ExecutorResourceRequest {
            resource_name: string_field(&req, "resourceName")?,
            amount: long_field(&req, "amount")?,
            discovery_script: nullable(stream, &field(&req, "discoveryScript")?, &what_exec)?,
            vendor: nullable(stream, &field(&req, "vendor")?, &what_exec)?,
        };
        executor_resources.insert(string(stream, &k, &what_exec)?, request);
    }
    let mut task_resources = BTreeMap::new();
    let what_task = context(&obj, "taskResources");
    for (k, v) in scala::map(stream, &field(&obj, "taskResources")?, &what_task)? {
        let req = object_of(
            stream,
            &v,
            "org.apache.spark.resource.TaskResourceRequest",
            &what_task,
        )?;
        let amount = match field(&req, "amount")? {
            Value::Double(d) => d,
            other => return Err(scala::unexpected(stream, &other, &what_task, "a double")),
        };
        let request = TaskResourceRequest {
            resource_name: string_field(&req, "resourceName")?,
            amount,
        };
        task_resources.insert(string(stream, &k, &what_task)?, request);
    }
    Ok(ResourceProfile {
        id: int_field(&obj, "_id")?,
        executor_resources,
        task_resources,
    })
}

fn application_description(
    stream: &Stream,
    value: &Value,
    what: &str,
) -> Result<ApplicationDescription, DecodeError> {
    let obj = object_of(
        stream,
        value,
        "org.apache.spark.deploy.ApplicationDescription",
        what,
    )?;
    let f = |name: &str| field(&obj, name);
    let ctx = |name: &str| context(&obj, name);
    let event_log_dir = match option(stream, &f("eventLogDir")?, &ctx("eventLogDir"))? {
        None => None,
        Some(uri) => Some(uri_string(stream, &uri, &ctx("eventLogDir"))?),
    };
    Ok(ApplicationDescription {
        name: string_field(&obj, "name")?,
        max_cores: option_int(stream, &f("maxCores")?, &ctx("maxCores"))?,
        command: command(stream, &f("command")?, &ctx("command"))?,
        app_ui_url: nullable(stream, &f("appUiUrl")?, &ctx("appUiUrl"))?,
        default_profile: resource_profile(stream, &f("defaultProfile")?, &ctx("defaultProfile"))?,
        event_log_dir,
        event_log_codec: option_string(stream, &f("eventLogCodec")?, &ctx("eventLogCodec"))?,
        initial_executor_limit: option_int(
            stream,
            &f("initialExecutorLimit")?,
            &ctx("initialExecutorLimit"),
        )?,
        user: nullable(stream, &f("user")?, &ctx("user"))?,
    })
}

/// A `java.net.URI` (its `string` field), or a plain string.
fn uri_string(stream: &Stream, value: &Value, what: &str) -> Result<String, DecodeError> {
    if let Some(s) = stream.string(value) {
        return Ok(s.to_owned());
    }
    let uri = object_of(stream, value, "java.net.URI", what)?;
    string_field(&uri, "string")
}

fn driver_description(
    stream: &Stream,
    value: &Value,
    what: &str,
) -> Result<DriverDescription, DecodeError> {
    let obj = object_of(
        stream,
        value,
        "org.apache.spark.deploy.DriverDescription",
        what,
    )?;
    let what_reqs = context(&obj, "resourceReqs");
    let resource_reqs = scala::seq(stream, &field(&obj, "resourceReqs")?, &what_reqs)?
        .iter()
        .map(|v| {
            let req = object_of(
                stream,
                v,
                "org.apache.spark.resource.ResourceRequirement",
                &what_reqs,
            )?;
            Ok(ResourceRequirement {
                resource_name: string_field(&req, "resourceName")?,
                amount: int_field(&req, "amount")?,
                num_parts: int_field(&req, "numParts")?,
            })
        })
        .collect::<Result<_, DecodeError>>()?;
    Ok(DriverDescription {
        jar_url: string_field(&obj, "jarUrl")?,
        mem: int_field(&obj, "mem")?,
        cores: int_field(&obj, "cores")?,
        supervise: bool_field(&obj, "supervise")?,
        command: command(stream, &field(&obj, "command")?, &context(&obj, "command"))?,
        resource_reqs,
    })
}

fn executor_description(
    stream: &Stream,
    value: &Value,
    what: &str,
) -> Result<ExecutorDescription, DecodeError> {
    let obj = object_of(
        stream,
        value,
        "org.apache.spark.deploy.ExecutorDescription",
        what,
    )?;
    Ok(ExecutorDescription {
        app_id: string_field(&obj, "appId")?,
        exec_id: int_field(&obj, "execId")?,
        rp_id: int_field(&obj, "rpId")?,
        cores: int_field(&obj, "cores")?,
        memory_mb: int_field(&obj, "memoryMb")?,
        state: executor_state(stream, &field(&obj, "state")?, &context(&obj, "state"))?,
    })
}

fn resources(
    stream: &Stream,
    value: &Value,
    what: &str,
) -> Result<BTreeMap<String, ResourceInformation>, DecodeError> {
    let mut out = BTreeMap::new();
    for (k, v) in scala::map(stream, value, what)? {
        let info = resource_information(&object_of(
            stream,
            &v,
            "org.apache.spark.resource.ResourceInformation",
            what,
        )?)?;
        out.insert(string(stream, &k, what)?, info);
    }
    Ok(out)
}

fn resource_information(obj: &ObjectView<'_>) -> Result<ResourceInformation, DecodeError> {
    Ok(ResourceInformation {
        name: string_field(obj, "name")?,
        addresses: string_seq(
            obj.stream,
            &field(obj, "addresses")?,
            &context(obj, "addresses"),
        )?,
    })
}
