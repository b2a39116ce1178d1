//! `spark.ui.reverseProxy=true`: `/proxy/<worker-id>/…` on the master serves the worker's UI,
//! so every worker page and log is reachable through the master's one Service/NodePort.
//! Targets come only from the snapshot (a registered worker's UI address), never from the
//! request, so the proxy cannot be aimed elsewhere.

use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;

use flint_webui::{enc, error_page};

const TIMEOUT: Duration = Duration::from_secs(15);
/// Largest worker answer relayed (log pages are at most a few MiB).
const MAX_BODY: usize = 32 << 20;
/// Attributes whose absolute paths get the `/proxy/<id>` prefix.
const ATTRS: [&str; 4] = ["href=\"", "src=\"", "action=\"", "data-url=\""];

/// Prefixes root-relative links of a worker page with `prefix`, and points links to the
/// master's own UI (`master_url`, as the worker knows it) at `/`.
pub fn rewrite_html(body: &str, prefix: &str, master_url: &str) -> String {
    let mut out = String::with_capacity(body.len() + 1024);
    let mut rest = body;
    'outer: while !rest.is_empty() {
        let mut best: Option<(usize, usize)> = None;
        for a in ATTRS {
            if let Some(i) = rest.find(a)
                && best.is_none_or(|(b, _)| i < b)
            {
                best = Some((i, a.len()));
            }
        }
        let Some((i, alen)) = best else {
            out.push_str(rest);
            break 'outer;
        };
        let value_start = i + alen;
        out.push_str(&rest[..value_start]);
        let tail = &rest[value_start..];
        if tail.starts_with('/') && !tail.starts_with("//") {
            out.push_str(prefix);
        } else if !master_url.is_empty() && tail.starts_with(master_url) {
            let after = &tail[master_url.len()..];
            if after.starts_with('"') || after.starts_with('/') {
                out.push('/');
                rest = after.strip_prefix('/').unwrap_or(after);
                continue;
            }
        }
        rest = tail;
    }
    out
}

/// `host:port` of an `http://host:port[/…]` URL.
fn authority(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("http://")?;
    let auth = rest.split('/').next()?;
    (!auth.is_empty()).then_some(auth)
}

async fn fetch(auth: &str, path_and_query: &str) -> Result<hyper::Response<bytes::Bytes>, String> {
    let stream = tokio::net::TcpStream::connect(auth)
        .await
        .map_err(|e| format!("cannot connect to {auth}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    let conn = tokio::spawn(conn);
    let req = hyper::Request::get(path_and_query)
        .header(header::HOST, auth)
        .header("x-forwarded-by", "flint-master")
        .body(Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let (parts, body) = resp.into_parts();
    let bytes = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("reading the worker's answer: {e}"))?
        .to_bytes();
    conn.abort();
    Ok(hyper::Response::from_parts(parts, bytes))
}

/// Relays `GET <path>?<query>` to the worker's UI at `webui_url`.
pub async fn relay(
    worker_id: &str,
    webui_url: &str,
    master_webui_url: &str,
    path: &str,
    query: Option<&str>,
) -> Response {
    let Some(auth) = authority(webui_url) else {
        return error_page(
            StatusCode::BAD_GATEWAY,
            "Worker UI unreachable",
            &format!("worker {worker_id} has no http:// UI address ({webui_url})"),
        );
    };
    let mut target = format!("/{}", path.trim_start_matches('/'));
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        target.push('?');
        target.push_str(q);
    }
    let resp = match tokio::time::timeout(TIMEOUT, fetch(auth, &target)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            return error_page(StatusCode::BAD_GATEWAY, "Worker UI unreachable", &e);
        }
        Err(_) => {
            return error_page(
                StatusCode::GATEWAY_TIMEOUT,
                "Worker UI unreachable",
                &format!("worker {worker_id} did not answer within {TIMEOUT:?}"),
            );
        }
    };
    let prefix = format!("/proxy/{}", enc(worker_id));
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let ctype = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let location = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(|l| {
            if l.starts_with('/') && !l.starts_with("//") {
                format!("{prefix}{l}")
            } else {
                l.to_owned()
            }
        });
    let mut out = if ctype.starts_with("text/html") {
        let html = String::from_utf8_lossy(resp.body());
        (
            status,
            [(header::CONTENT_TYPE, ctype.clone())],
            rewrite_html(&html, &prefix, master_webui_url.trim_end_matches('/')),
        )
            .into_response()
    } else {
        (
            status,
            [(header::CONTENT_TYPE, ctype.clone())],
            resp.body().clone(),
        )
            .into_response()
    };
    // The worker's security headers travel with its pages.
    for h in [
        header::CONTENT_SECURITY_POLICY,
        header::X_CONTENT_TYPE_OPTIONS,
        header::CACHE_CONTROL,
    ] {
        if let Some(v) = resp.headers().get(&h)
            && let Ok(v) = header::HeaderValue::from_bytes(v.as_bytes())
        {
            out.headers_mut().insert(h, v);
        }
    }
    if let Some(l) = location
        && let Ok(v) = header::HeaderValue::from_str(&l)
    {
        out.headers_mut().insert(header::LOCATION, v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_root_relative_links_only() {
        let html = r#"<a href="/logPage/?appId=a&amp;x=1">l</a><link href="/static/flint.css"><script src="/static/flint.js"></script><a href="//cdn/x">c</a><a href="http://other/">o</a><a href="http://m:8080">back</a><a href="http://m:8080/">back2</a><button data-url="/log/?a=1">"#;
        let out = rewrite_html(html, "/proxy/w1", "http://m:8080");
        assert_eq!(
            out,
            r#"<a href="/proxy/w1/logPage/?appId=a&amp;x=1">l</a><link href="/proxy/w1/static/flint.css"><script src="/proxy/w1/static/flint.js"></script><a href="//cdn/x">c</a><a href="http://other/">o</a><a href="/">back</a><a href="/">back2</a><button data-url="/proxy/w1/log/?a=1">"#
        );
        assert_eq!(authority("http://127.0.0.1:8081"), Some("127.0.0.1:8081"));
        assert_eq!(authority("http://h:1/x"), Some("h:1"));
        assert_eq!(authority("https://h:1"), None);
    }
}
