//! Spark's REST submission protocol (the master's port 6066): the message types, shared with
//! the master's server so both sides always agree, Spark's JSON layout, and a small typed
//! client that `flint-submit --kill/--status` (and cluster-mode submission through REST) use.
//!
//! Wire format, as Spark 3.5.3 writes it: Jackson's default pretty printer with keys sorted
//! alphabetically and unset (null) fields left out. [`to_spark_json`] produces exactly that, so
//! responses are byte for byte those of a Spark master.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The only protocol version Spark 3.5 speaks.
pub const PROTOCOL_VERSION: &str = "v1";
/// What the server reports as `serverSparkVersion` (and the client as `clientSparkVersion`).
pub const SPARK_VERSION: &str = "3.5.3";
/// Spark's default REST port (`spark.master.rest.port`).
pub const DEFAULT_REST_PORT: u16 = 6066;
/// Spark's HTTP status for an unknown protocol version (`SC_UNKNOWN_PROTOCOL_VERSION`).
pub const SC_UNKNOWN_PROTOCOL_VERSION: u16 = 468;

fn is_false_default() -> bool {
    false
}

/// `POST /v1/submissions/create`. Fields in alphabetical order: serialization follows
/// declaration order, and Spark sorts keys.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateSubmissionRequest {
    pub action: String,
    pub app_args: Vec<String>,
    pub app_resource: String,
    pub client_spark_version: String,
    pub environment_variables: BTreeMap<String, String>,
    pub main_class: String,
    pub spark_properties: BTreeMap<String, String>,
}

impl CreateSubmissionRequest {
    /// A request as `spark-submit` builds it; `spark.app.name` is required by the server.
    pub fn new(
        app_resource: impl Into<String>,
        main_class: impl Into<String>,
        app_args: Vec<String>,
        spark_properties: BTreeMap<String, String>,
        environment_variables: BTreeMap<String, String>,
    ) -> Self {
        Self {
            action: "CreateSubmissionRequest".into(),
            app_args,
            app_resource: app_resource.into(),
            client_spark_version: SPARK_VERSION.into(),
            environment_variables,
            main_class: main_class.into(),
            spark_properties,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateSubmissionResponse {
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub server_spark_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission_id: Option<String>,
    #[serde(default = "is_false_default")]
    pub success: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown_fields: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmissionStatusResponse {
    pub action: String,
    /// A DriverState name: SUBMITTED, RUNNING, FINISHED, RELAUNCHING, UNKNOWN, KILLED,
    /// FAILED, ERROR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub server_spark_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission_id: Option<String>,
    #[serde(default = "is_false_default")]
    pub success: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown_fields: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_host_port: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KillSubmissionResponse {
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub server_spark_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission_id: Option<String>,
    #[serde(default = "is_false_default")]
    pub success: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown_fields: Vec<String>,
}

/// What the server answers to a request it cannot serve (HTTP 400, or 468 for an unknown
/// protocol version, with `highestProtocolVersion`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorResponse {
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub highest_protocol_version: Option<String>,
    pub message: String,
    pub server_spark_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown_fields: Vec<String>,
}

impl ErrorResponse {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            action: "ErrorResponse".into(),
            highest_protocol_version: None,
            message: message.into(),
            server_spark_version: SPARK_VERSION.into(),
            unknown_fields: Vec::new(),
        }
    }
}

/// Jackson's `DefaultPrettyPrinter`, which Spark uses for `/json` and the REST protocol:
/// `"key" : value`, objects one entry per line indented by two spaces, arrays inline
/// (`[ 1, 2 ]`, `[ {` … `} ]`), empty containers as `{ }` and `[ ]`.
#[derive(Default)]
pub struct JacksonFormatter {
    depth: usize,
    /// For each open object: whether it has had an entry yet.
    objects: Vec<bool>,
}

impl serde_json::ser::Formatter for JacksonFormatter {
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.depth += 1;
        self.objects.push(false);
        w.write_all(b"{")
    }

    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.depth = self.depth.saturating_sub(1);
        if self.objects.pop().unwrap_or(false) {
            w.write_all(b"\n")?;
            indent(w, self.depth)?;
            w.write_all(b"}")
        } else {
            w.write_all(b" }")
        }
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if let Some(has) = self.objects.last_mut() {
            *has = true;
        }
        w.write_all(if first { b"\n" } else { b",\n" })?;
        indent(w, self.depth)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b" : ")
    }

    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b"[")
    }

    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b" ]")
    }

    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        w.write_all(if first { b" " } else { b", " })
    }
}

fn indent<W: ?Sized + std::io::Write>(w: &mut W, depth: usize) -> std::io::Result<()> {
    for _ in 0..depth {
        w.write_all(b"  ")?;
    }
    Ok(())
}

/// Serializes `value` the way Spark's Jackson mapper does (see [`JacksonFormatter`]).
pub fn to_spark_json<T: Serialize + ?Sized>(value: &T) -> String {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, JacksonFormatter::default());
    // Serializing plain data into a Vec cannot fail: no I/O, no non-string map keys here.
    if value.serialize(&mut ser).is_err() {
        return String::from("{ }");
    }
    String::from_utf8(out).unwrap_or_default()
}

// ------------------------------------------------------------------ client

#[derive(Debug, thiserror::Error)]
pub enum RestError {
    #[error("invalid REST master URL: {0}")]
    BadUrl(String),
    #[error("cannot reach a REST server at {url}: {reason}")]
    Connect { url: String, reason: String },
    /// The server answered with Spark's ErrorResponse (malformed request, unknown version…).
    #[error("server answered HTTP {status}: {}", .response.message)]
    Server {
        status: u16,
        response: ErrorResponse,
    },
    #[error("unexpected answer (HTTP {status}): {body}")]
    Unexpected { status: u16, body: String },
}

pub type RestResult<T> = std::result::Result<T, RestError>;

/// The `host:port`s of a master URL (`spark://h1:6066,h2:6066`, or `http://h:6066`), in order.
/// As Spark's RestSubmissionClient, `spark://h:p` means `http://h:p/v1/submissions`.
pub fn rest_hosts(master: &str) -> RestResult<Vec<(String, u16)>> {
    let rest = master
        .strip_prefix("spark://")
        .or_else(|| master.strip_prefix("http://"))
        .ok_or_else(|| {
            RestError::BadUrl(format!("'{master}' must start with spark:// or http://"))
        })?;
    let rest = rest.split('/').next().unwrap_or_default();
    let mut out = Vec::new();
    for part in rest.split(',') {
        let (host, port) = part
            .trim()
            .rsplit_once(':')
            .ok_or_else(|| RestError::BadUrl(format!("'{part}' in '{master}' has no port")))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(RestError::BadUrl(format!("empty host in '{master}'")));
        }
        let port = port
            .parse()
            .map_err(|_| RestError::BadUrl(format!("bad port '{port}' in '{master}'")))?;
        out.push((host.to_owned(), port));
    }
    Ok(out)
}

/// True when `master`'s (first) port is `rest_port`: `flint-submit` then speaks REST.
pub fn is_rest_url(master: &str, rest_port: u16) -> bool {
    rest_hosts(master).is_ok_and(|h| h.first().is_some_and(|(_, p)| *p == rest_port))
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One HTTP/1.1 exchange over a fresh connection. Returns the status and the body.
async fn exchange(
    host: &str,
    port: u16,
    method: &str,
    path: &str,
    body: Option<String>,
) -> Result<(u16, String), String> {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::TokioIo;

    let stream = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect((host, port)),
    )
    .await
    .map_err(|_| "connect timed out".to_string())?
    .map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    let conn = tokio::spawn(conn);
    let host_header = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, host_header)
        .header(hyper::header::USER_AGENT, "flint-submit");
    if body.is_some() {
        req = req.header(
            hyper::header::CONTENT_TYPE,
            "application/json;charset=utf-8",
        );
    }
    let req = req
        .body(Full::new(bytes::Bytes::from(body.unwrap_or_default())))
        .map_err(|e| e.to_string())?;
    let result = tokio::time::timeout(REQUEST_TIMEOUT, async {
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok::<_, String>((status, String::from_utf8_lossy(&bytes).into_owned()))
    })
    .await
    .map_err(|_| "no answer in time".to_string())?;
    conn.abort();
    result
}

/// Sends the request to each master in turn until one answers, then decodes the answer.
async fn call<T: serde::de::DeserializeOwned>(
    master: &str,
    method: &str,
    path: &str,
    body: Option<String>,
) -> RestResult<T> {
    let mut last = String::from("no master given");
    for (host, port) in rest_hosts(master)? {
        let (status, text) = match exchange(&host, port, method, path, body.clone()).await {
            Ok(r) => r,
            Err(e) => {
                last = format!("{host}:{port}: {e}");
                continue;
            }
        };
        if (200..300).contains(&status) {
            return serde_json::from_str(&text)
                .map_err(|_| RestError::Unexpected { status, body: text });
        }
        return Err(match serde_json::from_str::<ErrorResponse>(&text) {
            Ok(response) => RestError::Server { status, response },
            Err(_) => RestError::Unexpected { status, body: text },
        });
    }
    Err(RestError::Connect {
        url: master.to_owned(),
        reason: last,
    })
}

fn encode_id(id: &str) -> String {
    // Submission ids are `driver-<timestamp>-NNNN`; anything else is percent-encoded.
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `POST /v1/submissions/create`: asks the master to run a driver (cluster deploy mode).
pub async fn rest_create(
    master: &str,
    request: &CreateSubmissionRequest,
) -> RestResult<CreateSubmissionResponse> {
    call(
        master,
        "POST",
        "/v1/submissions/create",
        Some(to_spark_json(request)),
    )
    .await
}

/// `GET /v1/submissions/status/<id>` (`spark-submit --status`).
pub async fn rest_status(
    master: &str,
    submission_id: &str,
) -> RestResult<SubmissionStatusResponse> {
    let path = format!("/v1/submissions/status/{}", encode_id(submission_id));
    call(master, "GET", &path, None).await
}

/// `POST /v1/submissions/kill/<id>` (`spark-submit --kill`).
pub async fn rest_kill(master: &str, submission_id: &str) -> RestResult<KillSubmissionResponse> {
    let path = format!("/v1/submissions/kill/{}", encode_id(submission_id));
    call(master, "POST", &path, Some(String::new())).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jackson_layout() {
        let v = serde_json::json!({
            "a": 1,
            "b": [],
            "c": {},
            "d": [ { "x": "y" }, { "z": [1, 2] } ],
        });
        assert_eq!(
            to_spark_json(&v),
            "{\n  \"a\" : 1,\n  \"b\" : [ ],\n  \"c\" : { },\n  \"d\" : [ {\n    \"x\" : \"y\"\n  }, {\n    \"z\" : [ 1, 2 ]\n  } ]\n}"
        );
    }

    #[test]
    fn responses_are_sorted_and_skip_unset_fields() {
        let r = SubmissionStatusResponse {
            action: "SubmissionStatusResponse".into(),
            driver_state: None,
            message: None,
            server_spark_version: SPARK_VERSION.into(),
            submission_id: Some("driver-nonexistent".into()),
            success: false,
            unknown_fields: vec![],
            worker_host_port: None,
            worker_id: None,
        };
        assert_eq!(
            to_spark_json(&r),
            "{\n  \"action\" : \"SubmissionStatusResponse\",\n  \"serverSparkVersion\" : \"3.5.3\",\n  \"submissionId\" : \"driver-nonexistent\",\n  \"success\" : false\n}"
        );
        let back: SubmissionStatusResponse =
            serde_json::from_str(&to_spark_json(&r)).expect("round trip");
        assert_eq!(back, r);
    }

    #[test]
    fn urls() {
        assert_eq!(
            rest_hosts("spark://a:6066,b:6067").expect("ok"),
            vec![("a".into(), 6066), ("b".into(), 6067)]
        );
        assert_eq!(
            rest_hosts("http://h:6066/v1/submissions").expect("ok"),
            vec![("h".into(), 6066)]
        );
        assert!(rest_hosts("yarn").is_err());
        assert!(rest_hosts("spark://h").is_err());
        assert!(is_rest_url("spark://m:6066", DEFAULT_REST_PORT));
        assert!(!is_rest_url("spark://m:7077", DEFAULT_REST_PORT));
        assert_eq!(encode_id("driver-1 /x"), "driver-1%20%2Fx");
    }
}
