//! A small typed client of Spark's REST submission protocol, which `flint-submit --kill/--status`
//! (and cluster-mode submission through REST) use. The messages are `flint_spark_proto::rest`'s.

use std::time::Duration;

pub use flint_spark_proto::rest::*;

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
