//! What the master's and the workers' web UIs share: the page layout, the embedded CSS and
//! JavaScript, Spark's number formats, and response helpers.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

/// Served at `/static/flint.css` and `/static/flint.js`: part of the binary, so the UI works
/// inside a cluster without internet access.
pub const CSS: &str = include_str!("assets/flint.css");
pub const JS: &str = include_str!("assets/flint.js");

/// No inline script may run (everything is escaped, and this is the second line of defence):
/// scripts and styles come only from `/static/`.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'";

pub fn static_asset(name: &str) -> Response {
    let (ctype, body) = match name {
        "flint.css" => ("text/css; charset=utf-8", CSS),
        "flint.js" => ("text/javascript; charset=utf-8", JS),
        _ => return error_page(StatusCode::NOT_FOUND, "Not found", "no such static file"),
    };
    (
        [
            (header::CONTENT_TYPE, ctype),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

fn secure(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub fn html_page(status: StatusCode, body: String) -> Response {
    secure(
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
    )
}

/// An HTML error page (bad input on HTML routes never gets a panic or a bare status).
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = layout(
        title,
        html! { (title) },
        None,
        html! { p.error { (message) } p { a href="/" { "Back to the overview" } } },
    );
    html_page(status, body.into_string())
}

/// Bad input on an HTML route: rendered as an [`error_page`].
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub message: String,
}

impl PageError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        error_page(self.status, "Bad request", &self.message)
    }
}

/// Spark's `/json`: `Content-Type: text/json;charset=utf-8`.
pub fn spark_json(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/json;charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

pub fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

/// 302 to `location` (Spark's redirects and its slash-adding ones).
pub fn found(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
        Err(_) => error_page(StatusCode::BAD_REQUEST, "Bad request", "invalid location"),
    }
}

/// The page frame. `refresh`: seconds between automatic reloads (a checkbox turns it off).
pub fn layout(title: &str, heading: Markup, refresh: Option<u32>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                link rel="stylesheet" href="/static/flint.css";
                script src="/static/flint.js" defer {}
                title { (title) }
            }
            body {
                header.top {
                    a.brand href="/" { span.logo { "Flint" } span.version { (env!("CARGO_PKG_VERSION")) } }
                    h1 { (heading) }
                    @if let Some(secs) = refresh {
                        label.refresh {
                            input #auto-refresh type="checkbox" data-interval=(secs * 1000) checked;
                            " Auto-refresh (" (secs) " s)"
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A collapsible section with a heading `title (n)`, as Spark's tables.
pub fn section(id: &str, title: &str, n: usize, content: Markup) -> Markup {
    html! {
        details.section #(id) open {
            summary { h2 { (title) " (" (n) ")" } }
            (content)
        }
    }
}

/// A usage bar drawn with inline SVG (no inline style, so the CSP can forbid those).
pub fn usage_bar(used: u64, total: u64) -> Markup {
    let pct = if total == 0 {
        0.0
    } else {
        (used as f64 * 100.0 / total as f64).clamp(0.0, 100.0)
    };
    let class = if pct >= 90.0 {
        "fill high"
    } else if pct >= 60.0 {
        "fill mid"
    } else {
        "fill"
    };
    html! {
        svg.bar viewBox="0 0 100 6" preserveAspectRatio="none" role="img" aria-label=(format!("{pct:.0}% used")) {
            rect.track x="0" y="0" width="100" height="6" {}
            rect class=(class) x="0" y="0" width=(format!("{pct:.1}")) height="6" {}
        }
    }
}

/// Links only to http(s) URLs: a registered `javascript:` URL must never become a link.
pub fn safe_url(u: &str) -> Option<&str> {
    let l = u.trim_start().to_ascii_lowercase();
    (l.starts_with("http://") || l.starts_with("https://")).then_some(u)
}

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Spark's `Utils.megabytesToString`: `512.0 MiB`, `1024.0 MiB`, `2.0 GiB` (a unit is used
/// from twice its size up).
pub fn format_mb(mb: u64) -> String {
    const UNITS: [(&str, u32); 4] = [("PiB", 3), ("TiB", 2), ("GiB", 1), ("MiB", 0)];
    for (unit, pow) in UNITS {
        let size = 1024f64.powi(pow as i32);
        if mb as f64 >= 2.0 * size || pow == 0 {
            return format!("{:.1} {unit}", mb as f64 / size);
        }
    }
    format!("{mb}.0 MiB")
}

/// Spark's `UIUtils.formatDuration`.
pub fn format_duration(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 100 {
        return format!("{ms} ms");
    }
    let s = ms as f64 / 1000.0;
    if s < 1.0 {
        return format!("{s:.1} s");
    }
    if s < 60.0 {
        return format!("{s:.0} s");
    }
    let m = s / 60.0;
    if m < 10.0 {
        return format!("{m:.1} min");
    }
    if m < 60.0 {
        return format!("{m:.0} min");
    }
    format!("{:.1} h", m / 60.0)
}

/// `2026/11/22 04:38:44` (UTC), as Spark's tables show submission times.
pub fn format_time(wall_ms: i64) -> String {
    if wall_ms <= 0 {
        return String::from("-");
    }
    let t = flint_domain::ids::timestamp(wall_ms);
    if t.len() != 14 {
        return t;
    }
    format!(
        "{}/{}/{} {}:{}:{}",
        &t[0..4],
        &t[4..6],
        &t[6..8],
        &t[8..10],
        &t[10..12],
        &t[12..14]
    )
}

pub use flint_domain::time::wall_ms as now_ms;

/// A table cell with a sort key (the sortable tables sort on `data-sort` when present).
pub fn sort_cell(key: impl std::fmt::Display, content: Markup) -> Markup {
    html! { td data-sort=(key.to_string()) { (content) } }
}

#[cfg(test)]
mod common_tests {
    use super::*;

    #[test]
    fn spark_formats() {
        assert_eq!(format_mb(512), "512.0 MiB");
        assert_eq!(format_mb(1024), "1024.0 MiB");
        assert_eq!(format_mb(2048), "2.0 GiB");
        assert_eq!(format_mb(3072), "3.0 GiB");
        assert_eq!(format_mb(4096), "4.0 GiB");
        assert_eq!(format_mb(0), "0.0 MiB");
        assert_eq!(format_duration(42), "42 ms");
        assert_eq!(format_duration(450), "0.5 s");
        assert_eq!(format_duration(15_240), "15 s");
        assert_eq!(format_duration(8_424), "8 s");
        assert_eq!(format_duration(5 * 60_000), "5.0 min");
        assert_eq!(format_duration(30 * 60_000), "30 min");
        assert_eq!(format_duration(3 * 3_600_000), "3.0 h");
        assert_eq!(format_time(1_795_322_324_339), "2026/11/22 04:38:44");
        assert_eq!(enc("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(safe_url("javascript:alert(1)"), None);
        assert_eq!(safe_url("http://h:1"), Some("http://h:1"));
    }

    #[test]
    fn usage_bar_clamps() {
        let s = usage_bar(5, 4).into_string();
        assert!(s.contains("width=\"100.0\""), "{s}");
        assert!(usage_bar(0, 0).into_string().contains("width=\"0.0\""));
    }
}
