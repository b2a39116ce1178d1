//! Spark's REST submission server (`spark.master.rest.enabled`, port
//! `spark.master.rest.port` = 6066): `POST /v1/submissions/create`,
//! `GET /v1/submissions/status/<id>`, `POST /v1/submissions/kill/<id>`, answered the way
//! Spark 3.5.3's StandaloneRestServer answers, byte for byte (see `flint_spark_proto::rest`).
//!
//! Like Spark's, it is just another way into the master: create, kill and status go to the
//! actor exactly as the gRPC `SubmitDriver`, `KillDriver` and `DriverStatus` calls do.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use flint_domain::replies;
use flint_domain::types::*;
use flint_domain::units::parse_memory_mb;
use flint_spark_proto::command::{
    DRIVER_WRAPPER, line_of_version, spark_command_spec, submitted_env, tag_line,
};
use flint_spark_proto::messages::Command as SparkCommand;
use flint_spark_proto::rest::*;
use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::info;

use crate::actor::MasterHandle;
use crate::core::CoreError;

/// What the server needs besides the master: how to build DriverWrapper commands.
#[derive(Clone, Debug)]
pub struct RestConfig {
    /// The master's RPC port: `spark.master` in a request names the REST port, and the
    /// driver must connect to this one instead (Spark does the same substitution).
    pub rpc_port: u16,
    pub rest_port: u16,
    pub master_url: String,
}

impl RestConfig {
    pub fn new(master_url: &str, rpc_port: u16, rest_port: u16) -> Self {
        Self {
            rpc_port,
            rest_port,
            master_url: master_url.to_owned(),
        }
    }
}

#[derive(Clone)]
struct RestState {
    handle: MasterHandle,
    cfg: Arc<RestConfig>,
}

fn respond<T: serde::Serialize>(status: StatusCode, body: &T) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json;charset=utf-8")],
        to_spark_json(body),
    )
        .into_response()
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    respond(status, &ErrorResponse::new(message))
}

const VERSION_HINT: &str = "Please submit requests through http://[host]:[port]/v1/submissions/...";

/// Spark's ErrorServlet: every path the three actions do not match.
async fn fallback(uri: Uri) -> Response {
    let parts: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let (msg, version_mismatch) = match parts.as_slice() {
        [] => ("Missing protocol version.".to_owned(), false),
        [v] if *v == PROTOCOL_VERSION => ("Missing the /submissions prefix.".to_owned(), false),
        [v, "submissions", ..] if *v == PROTOCOL_VERSION => (
            "Missing an action: please specify one of /create, /kill, or /status.".to_owned(),
            false,
        ),
        [v, ..] => (format!("Unknown protocol version '{v}'."), true),
    };
    let mut e = ErrorResponse::new(format!("{msg} {VERSION_HINT}"));
    if version_mismatch {
        e.highest_protocol_version = Some(PROTOCOL_VERSION.into());
        let status =
            StatusCode::from_u16(SC_UNKNOWN_PROTOCOL_VERSION).unwrap_or(StatusCode::BAD_REQUEST);
        return respond(status, &e);
    }
    respond(StatusCode::BAD_REQUEST, &e)
}

/// Fields a CreateSubmissionRequest may carry; others are echoed in `unknownFields`.
const CREATE_FIELDS: [&str; 7] = [
    "action",
    "appArgs",
    "appResource",
    "clientSparkVersion",
    "environmentVariables",
    "mainClass",
    "sparkProperties",
];

fn malformed(detail: impl std::fmt::Display) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        format!("Malformed request: {detail}"),
    )
}

fn string_map(v: Option<&Value>, field: &str) -> Result<Option<BTreeMap<String, String>>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(format!(
                    "'{field}' must map strings to strings, '{k}' is {other}"
                )),
            })
            .collect::<Result<_, _>>()
            .map(Some),
        Some(other) => Err(format!("'{field}' must be an object, got {other}")),
    }
}

fn string_field(m: &Map<String, Value>, field: &str) -> Result<Option<String>, String> {
    match m.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("'{field}' must be a string, got {other}")),
    }
}

/// A validated create request (Spark's `CreateSubmissionRequest.doValidate`).
struct Create {
    client_version: String,
    app_resource: String,
    main_class: String,
    app_args: Vec<String>,
    props: BTreeMap<String, String>,
    env: BTreeMap<String, String>,
    unknown: Vec<String>,
}

fn validate_create(m: &Map<String, Value>) -> Result<Create, String> {
    let fail = |why: String| format!("Validation of message CreateSubmissionRequest failed! {why}");
    let missing = |f: &str| fail(format!("'{f}' is missing."));
    let client_version = string_field(m, "clientSparkVersion")
        .map_err(&fail)?
        .ok_or_else(|| missing("clientSparkVersion"))?;
    let props = string_map(m.get("sparkProperties"), "sparkProperties")
        .map_err(&fail)?
        .ok_or_else(|| fail("No Spark properties set!".into()))?;
    let app_resource = string_field(m, "appResource")
        .map_err(&fail)?
        .ok_or_else(|| missing("appResource"))?;
    let app_args = match m.get("appArgs") {
        None | Some(Value::Null) => return Err(missing("appArgs")),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(fail(format!("'appArgs' must hold strings, got {other}"))),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => return Err(fail(format!("'appArgs' must be an array, got {other}"))),
    };
    let env = string_map(m.get("environmentVariables"), "environmentVariables")
        .map_err(&fail)?
        .ok_or_else(|| missing("environmentVariables"))?;
    if props.get("spark.app.name").is_none_or(|s| s.is_empty()) {
        return Err(fail("Property 'spark.app.name' is missing.".into()));
    }
    if let Some(v) = props.get("spark.driver.supervise")
        && v.parse::<bool>().is_err()
    {
        return Err(fail(format!(
            "Property 'spark.driver.supervise' expected boolean value: actual was '{v}'."
        )));
    }
    for k in ["spark.driver.cores", "spark.cores.max"] {
        if let Some(v) = props.get(k)
            && v.trim().parse::<f64>().is_err()
        {
            return Err(fail(format!(
                "Property '{k}' expected numeric value: actual was '{v}'."
            )));
        }
    }
    for k in ["spark.driver.memory", "spark.executor.memory"] {
        if let Some(v) = props.get(k)
            && let Err(e) = parse_memory_mb(v)
        {
            return Err(fail(format!(
                "Property '{k}' expected memory value: actual was '{v}' ({e})."
            )));
        }
    }
    let main_class = string_field(m, "mainClass")
        .map_err(&fail)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| "Main class is missing.".to_owned())?;
    let known: BTreeSet<&str> = CREATE_FIELDS.into_iter().collect();
    let unknown = m
        .keys()
        .filter(|k| !known.contains(k.as_str()))
        .cloned()
        .collect();
    Ok(Create {
        client_version,
        app_resource,
        main_class,
        app_args,
        props,
        env,
        unknown,
    })
}

/// Spark's `Utils.splitCommandString`: whitespace-separated, with single and double quotes.
fn split_command(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// Spark's `StandaloneSubmitRequestServlet.buildDriverDescription`: a `DriverWrapper` command
/// (`{{WORKER_URL}} {{USER_JAR}} <mainClass> <args…>`) whose JVM options are `-D` for every
/// property, then `spark.driver.defaultJavaOptions` and `spark.driver.extraJavaOptions`, with
/// `spark.driver.extraClassPath` as class path entries. It travels in the Spark command layout
/// ([`flint_spark_proto::command`]): the worker adds its own `SPARK_HOME`'s jars, `-Xmx` and
/// the Java 17 module options.
fn driver_description(c: &Create, cfg: &RestConfig) -> Result<DriverDescription, String> {
    let mut props = c.props.clone();
    // The driver talks to the master's RPC port, not to this server.
    let master = match props.get("spark.master") {
        Some(m) => m.replace(
            &format!(":{}", cfg.rest_port),
            &format!(":{}", cfg.rpc_port),
        ),
        None => cfg.master_url.clone(),
    };
    props.insert("spark.master".into(), master);
    let memory_mb = match props.get("spark.driver.memory") {
        Some(v) => parse_memory_mb(v)?,
        None => 1024,
    };
    // A translation only: whether the numbers are acceptable is the domain's rule.
    let cores = match props.get("spark.driver.cores") {
        Some(v) => v
            .trim()
            .parse::<u32>()
            .map_err(|_| format!("spark.driver.cores must be a whole number, got '{v}'"))?,
        None => 1,
    };
    let supervise = props
        .get("spark.driver.supervise")
        .map(|v| v == "true")
        .unwrap_or(false);
    let path_entries = |key: &str| -> Vec<String> {
        props
            .get(key)
            .map(|v| {
                v.split(':')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let class_path_entries = path_entries("spark.driver.extraClassPath");
    let library_path_entries = path_entries("spark.driver.extraLibraryPath");
    let mut java_opts: Vec<String> = props.iter().map(|(k, v)| format!("-D{k}={v}")).collect();
    for k in [
        "spark.driver.defaultJavaOptions",
        "spark.driver.extraJavaOptions",
    ] {
        if let Some(v) = props.get(k) {
            java_opts.extend(split_command(v));
        }
    }
    let mut arguments = vec![
        "{{WORKER_URL}}".to_owned(),
        "{{USER_JAR}}".to_owned(),
        c.main_class.clone(),
    ];
    arguments.extend(c.app_args.iter().cloned());
    let command = SparkCommand {
        main_class: DRIVER_WRAPPER.to_owned(),
        arguments,
        environment: submitted_env(&c.env),
        class_path_entries,
        library_path_entries,
        java_opts,
    };
    let mut spec = spark_command_spec(&command);
    if let Some(line) = line_of_version(&c.client_version) {
        tag_line(&mut spec, line);
    }
    Ok(DriverDescription {
        name: props.get("spark.app.name").cloned().unwrap_or_default(),
        app_resource: c.app_resource.clone(),
        app_sha256: None,
        command: spec,
        cores,
        memory_mb,
        supervise,
    })
}

async fn create(State(st): State<RestState>, body: Bytes) -> Response {
    let json: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return malformed(format!("invalid JSON: {e}")),
    };
    let Value::Object(m) = json else {
        return malformed("the request must be a JSON object");
    };
    match m.get("action") {
        Some(Value::String(a)) if a == "CreateSubmissionRequest" => {}
        Some(Value::String(a)) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("Received message of unexpected type {a}."),
            );
        }
        _ => return malformed("Action field not found in JSON"),
    }
    let c = match validate_create(&m) {
        Ok(c) => c,
        Err(e) => return malformed(e),
    };
    let desc = match driver_description(&c, &st.cfg) {
        Ok(d) => d,
        Err(e) => return malformed(e),
    };
    let (success, message, submission_id) = match st.handle.submit_driver(desc).await {
        Ok(id) => {
            info!(driver_id = %id, "driver submitted through the REST server");
            (true, replies::driver_submitted(&id), Some(id.0))
        }
        Err(e) => (false, e.to_string(), None),
    };
    respond(
        StatusCode::OK,
        &CreateSubmissionResponse {
            action: "CreateSubmissionResponse".into(),
            message: Some(message),
            server_spark_version: SPARK_VERSION.into(),
            submission_id,
            success,
            unknown_fields: c.unknown,
        },
    )
}

/// The id from the path, or Spark's message for a missing one.
fn submission_id(raw: &str, action: &str) -> Result<DriverId, String> {
    let id = raw.trim_matches('/');
    if id.is_empty() || id.contains('/') {
        return Err(format!("Submission ID is missing in {action} request."));
    }
    Ok(DriverId(id.to_owned()))
}

async fn status(State(st): State<RestState>, Path(raw): Path<String>) -> Response {
    let id = match submission_id(&raw, "status") {
        Ok(id) => id,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let mut r = SubmissionStatusResponse {
        action: "SubmissionStatusResponse".into(),
        driver_state: None,
        message: None,
        server_spark_version: SPARK_VERSION.into(),
        submission_id: Some(id.0.clone()),
        success: false,
        unknown_fields: vec![],
        worker_host_port: None,
        worker_id: None,
    };
    match st.handle.driver_status(id.clone()).await {
        Ok(d) => {
            info!(driver_id = %id, state = %d.state, "driver status through the REST server");
            r.success = true;
            r.driver_state = Some(d.state.as_str().to_owned());
            r.worker_id = d.worker_id.map(|w| w.0);
            r.worker_host_port = d.worker_host_port;
            if d.state == DriverState::Error {
                r.message = d
                    .message
                    .map(|m| format!("Exception from the cluster:\n{m}"));
            }
        }
        Err(CoreError::NotFound(_)) => {
            info!(driver_id = %id, "driver status through the REST server: no such driver");
        }
        Err(e) => r.message = Some(e.to_string()),
    }
    respond(StatusCode::OK, &r)
}

async fn kill(State(st): State<RestState>, Path(raw): Path<String>) -> Response {
    let id = match submission_id(&raw, "kill") {
        Ok(id) => id,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let (success, message) = match st.handle.kill_driver(id.clone()).await {
        Ok(m) => (true, m),
        Err(CoreError::NotFound(_) | CoreError::FailedPrecondition(_)) => {
            (false, replies::driver_gone(&id))
        }
        Err(e) => (false, e.to_string()),
    };
    respond(
        StatusCode::OK,
        &KillSubmissionResponse {
            action: "KillSubmissionResponse".into(),
            message: Some(message),
            server_spark_version: SPARK_VERSION.into(),
            submission_id: Some(id.0),
            success,
            unknown_fields: vec![],
        },
    )
}

/// Missing ids (`/v1/submissions/status/`) get Spark's "Submission ID is missing" answers.
async fn status_no_id() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "Submission ID is missing in status request.",
    )
}

async fn kill_no_id() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "Submission ID is missing in kill request.",
    )
}

pub fn router(handle: MasterHandle, cfg: RestConfig) -> Router {
    let state = RestState {
        handle,
        cfg: Arc::new(cfg),
    };
    Router::new()
        .route("/v1/submissions/create", post(create))
        .route("/v1/submissions/create/", post(create))
        .route("/v1/submissions/status/{*id}", get(status))
        .route("/v1/submissions/status/", get(status_no_id))
        .route("/v1/submissions/kill/{*id}", post(kill))
        .route("/v1/submissions/kill/", post(kill_no_id))
        .fallback(fallback)
        .with_state(state)
}

/// Serves the REST API on `listener` until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    handle: MasterHandle,
    cfg: RestConfig,
    mut stop: watch::Receiver<bool>,
) {
    let server = axum::serve(listener, router(handle, cfg)).with_graceful_shutdown(async move {
        let _ = stop.wait_for(|s| *s).await;
    });
    if let Err(e) = server.await {
        tracing::warn!(error = %e, "REST server ended");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> RestConfig {
        RestConfig {
            rpc_port: 7077,
            rest_port: 6066,
            master_url: "spark://m:7077".into(),
        }
    }

    fn request(extra: &[(&str, Value)]) -> Map<String, Value> {
        let mut v = serde_json::json!({
            "action": "CreateSubmissionRequest",
            "appArgs": ["2", "15000"],
            "appResource": "file:/srv/pi/javapi.jar",
            "clientSparkVersion": "3.5.3",
            "environmentVariables": {"SPARK_LOCAL_IP": "127.0.0.1", "SPARK_SCALA_VERSION": "2.12"},
            "mainClass": "JavaPi",
            "sparkProperties": {
                "spark.app.name": "JavaPi",
                "spark.driver.memory": "512m",
                "spark.driver.supervise": "false",
                "spark.master": "spark://127.0.0.1:6066",
                "spark.driver.extraJavaOptions": "-XX:+IgnoreUnrecognizedVMOptions --add-opens=java.base/java.lang=ALL-UNNAMED '-Dx=a b'",
                "spark.driver.extraClassPath": "/a.jar:/b.jar"
            }
        });
        if let Value::Object(m) = &mut v {
            for (k, x) in extra {
                m.insert((*k).to_owned(), x.clone());
            }
        }
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn builds_the_driver_wrapper_command_as_spark() {
        let c = validate_create(&request(&[("extraField", Value::Bool(true))])).expect("valid");
        assert_eq!(c.unknown, vec!["extraField".to_owned()]);
        let d = driver_description(&c, &cfg()).expect("desc");
        assert_eq!((d.cores, d.memory_mb, d.supervise), (1, 512, false));
        assert_eq!(d.name, "JavaPi");
        assert_eq!(d.command.program, "java");
        let jvm = d.command.spark_jvm().expect("a Spark JVM");
        assert_eq!(
            jvm.main_class,
            "org.apache.spark.deploy.worker.DriverWrapper"
        );
        assert_eq!(jvm.class_path, ["/a.jar", "/b.jar"]);
        let o = &jvm.java_opts;
        assert!(
            !o.iter().any(|x| x.starts_with("-Xmx") || x == "-cp"),
            "{o:?}"
        );
        assert!(o.contains(&"-Dspark.master=spark://127.0.0.1:7077".to_owned()));
        assert!(o.contains(&"-Dx=a b".to_owned()), "{o:?}");
        assert_eq!(
            d.command.args,
            ["{{WORKER_URL}}", "{{USER_JAR}}", "JavaPi", "2", "15000"]
        );
        assert!(!d.command.env.contains_key("SPARK_LOCAL_IP"));
        assert_eq!(jvm.spark_line.as_deref(), Some("3.5"));
        assert_eq!(
            d.command.env.get("SPARK_SCALA_VERSION").map(String::as_str),
            Some("2.12")
        );
        assert_eq!(crate::web::json::main_class(&d), "JavaPi");
    }

    #[test]
    fn validation_reports_what_is_wrong() {
        for (field, value, needle) in [
            ("appResource", Value::Null, "'appResource' is missing"),
            ("appArgs", Value::Null, "'appArgs' is missing"),
            (
                "clientSparkVersion",
                Value::Null,
                "'clientSparkVersion' is missing",
            ),
            (
                "environmentVariables",
                Value::Null,
                "'environmentVariables' is missing",
            ),
            ("sparkProperties", Value::Null, "No Spark properties set"),
            ("mainClass", Value::Null, "Main class is missing"),
            ("appArgs", Value::String("x".into()), "must be an array"),
            (
                "sparkProperties",
                serde_json::json!({"spark.app.name": "a", "spark.driver.supervise": "maybe"}),
                "expected boolean",
            ),
            (
                "sparkProperties",
                serde_json::json!({"spark.app.name": "a", "spark.driver.cores": "x"}),
                "expected numeric",
            ),
            (
                "sparkProperties",
                serde_json::json!({"spark.app.name": "a", "spark.driver.memory": "1024"}),
                "expected memory",
            ),
            (
                "sparkProperties",
                serde_json::json!({}),
                "'spark.app.name' is missing",
            ),
        ] {
            let err = validate_create(&request(&[(field, value)]))
                .err()
                .unwrap_or_default();
            assert!(err.contains(needle), "{field}: {err}");
        }
    }

    #[test]
    fn split_like_spark() {
        assert_eq!(
            split_command(" -a  'b c' \"d\"e -f"),
            vec!["-a", "b c", "de", "-f"]
        );
        assert!(split_command("   ").is_empty());
    }
}
