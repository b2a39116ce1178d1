//! The tests' HTTP client: one request over a fresh connection, through hyper-util's
//! legacy client (plain HTTP/1.1; chunked bodies decoded; redirects returned, not
//! followed, so tests can check 302s and their `Location`).

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{CONNECTION, CONTENT_LENGTH, HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// An HTTP answer, as the tests see it.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request over a fresh connection (`Connection: close`, no pooling). `url` is
/// `http://host:port/path?query`. Connecting may take `CONNECT_TIMEOUT`, the whole answer
/// `timeout`. Errors say what failed; nothing panics.
pub async fn try_http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<HttpResponse, String> {
    let uri: Uri = url.parse().map_err(|e| format!("URL {url}: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!("URL {url}: only http:// is supported"));
    }
    let method =
        Method::from_bytes(method.as_bytes()).map_err(|e| format!("method {method}: {e}"))?;
    let mut req = Request::builder().method(method.clone()).uri(uri);
    for (k, v) in headers {
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| format!("header {k}: {e}"))?;
        let value = HeaderValue::from_str(v).map_err(|e| format!("header {k}: {e}"))?;
        req = req.header(name, value);
    }
    req = req.header(CONNECTION, "close");
    // hyper announces non-empty bodies itself; an empty one is announced too, as a form POST
    // without fields would be by a browser.
    if body.is_empty() && !matches!(method, Method::GET | Method::HEAD) {
        req = req.header(CONTENT_LENGTH, "0");
    }
    let req = req
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(|e| format!("request {url}: {e}"))?;

    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(connector);
    let exchange = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| format!("{url}: {e:?}"))?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{url}: reading the body: {e}"))?
            .to_bytes()
            .to_vec();
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("{url}: no answer within {timeout:?}"))?
}

/// One HTTP/1.1 request over a fresh connection, for the UI and REST tests; panics when
/// there is no answer (within a minute). `url` is `http://host:port/path?query`.
pub async fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
    try_http(method, url, headers, body, ANSWER_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("HTTP {method} {e}"))
}

pub async fn http_get(url: &str) -> HttpResponse {
    http("GET", url, &[], b"").await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A server that answers one connection with `answer` and returns the request it got.
    async fn serve_once(answer: &'static [u8]) -> (String, tokio::task::JoinHandle<Vec<u8>>) {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", l.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.expect("accept");
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            // The head, then as many body bytes as it announces.
            loop {
                let n = s.read(&mut buf).await.expect("read");
                req.extend_from_slice(&buf[..n]);
                let Some(end) = req.windows(4).position(|w| w == b"\r\n\r\n") else {
                    assert!(n > 0, "closed before the end of the head");
                    continue;
                };
                let head = String::from_utf8_lossy(&req[..end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse::<usize>().expect("length"));
                if req.len() >= end + 4 + len || n == 0 {
                    break;
                }
            }
            s.write_all(answer).await.expect("write");
            s.shutdown().await.expect("shutdown");
            req
        });
        (url, task)
    }

    #[tokio::test]
    async fn chunked_bodies_are_decoded() {
        let (url, server) = serve_once(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Custom: yes\r\n\r\n\
              5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n",
        )
        .await;
        let r = http_get(&format!("{url}/chunks")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "hello, world");
        assert_eq!(r.header("x-custom"), Some("yes"));
        assert_eq!(r.header("X-CUSTOM"), Some("yes"), "names match in any case");
        let req = String::from_utf8(server.await.expect("server")).expect("utf-8");
        assert!(req.starts_with("GET /chunks HTTP/1.1\r\n"), "{req}");
    }

    #[tokio::test]
    async fn redirects_are_returned_not_followed() {
        let (url, _server) =
            serve_once(b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n")
                .await;
        let r = http_get(&format!("{url}/app?appId=x")).await;
        assert_eq!((r.status, r.header("location")), (302, Some("/elsewhere")));
    }

    #[tokio::test]
    async fn posts_send_their_body_and_headers_and_odd_statuses_come_back() {
        let (url, server) = serve_once(
            b"HTTP/1.1 468 Whatever\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
        )
        .await;
        let r = http(
            "POST",
            &format!("{url}/v1/submissions/create"),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            b"id=app-1&terminate=true",
        )
        .await;
        assert_eq!(r.status, 468);
        assert_eq!(r.text(), "{}");
        let req = String::from_utf8(server.await.expect("server")).expect("utf-8");
        let lower = req.to_ascii_lowercase();
        assert!(req.starts_with("POST /v1/submissions/create HTTP/1.1\r\n"));
        assert!(lower.contains("content-type: application/x-www-form-urlencoded\r\n"));
        assert!(lower.contains("content-length: 23\r\n"), "{req}");
        assert!(req.ends_with("\r\n\r\nid=app-1&terminate=true"), "{req}");
    }

    #[tokio::test]
    async fn an_empty_post_announces_its_length() {
        let (url, server) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
        let r = http("POST", &format!("{url}/kill"), &[], b"").await;
        assert_eq!(r.text(), "ok");
        let req = String::from_utf8(server.await.expect("server")).expect("utf-8");
        assert!(
            req.to_ascii_lowercase().contains("content-length: 0\r\n"),
            "{req}"
        );
    }

    #[tokio::test]
    async fn no_server_is_an_error_not_a_panic() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let r = try_http(
            "GET",
            &format!("http://127.0.0.1:{port}/"),
            &[],
            b"",
            Duration::from_secs(5),
        )
        .await;
        assert!(r.is_err());
        assert!(
            try_http("GET", "https://x/", &[], b"", Duration::from_secs(1))
                .await
                .is_err()
        );
    }
}
