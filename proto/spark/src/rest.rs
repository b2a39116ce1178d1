//! Spark's REST submission protocol (the master's port 6066): the message types, shared by
//! the master's server and `flint-submit`'s client so both sides always agree, and Spark's
//! JSON layout (also that of `/json` on both UIs).
//!
//! Wire format, as Spark 3.5.3 writes it: Jackson's default pretty printer with keys sorted
//! alphabetically and unset (null) fields left out. [`to_spark_json`] produces exactly that, so
//! responses are byte for byte those of a Spark master.

use std::collections::BTreeMap;

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
}
