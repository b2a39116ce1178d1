//! Spark's LogPage on the worker: `?appId=&executorId=` or `?driverId=`, `logType=stdout|stderr`,
//! `offset` and `byteLength` (tail of 100 KiB by default). Ids must be plain path components,
//! and the resolved file (symbolic links followed) must lie inside the work dir: anything
//! else is a 400, never a file from elsewhere.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use maud::html;

use flint_webui::*;

/// Spark's `LogPage.defaultBytes`.
pub const DEFAULT_BYTES: u64 = 100 * 1024;
/// The most one request returns.
pub const MAX_BYTES: u64 = 16 << 20;

#[derive(Debug, PartialEq, Eq)]
pub enum LogError {
    BadRequest(String),
    NotFound(String),
    Io(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    Executor { app_id: String, executor_id: u32 },
    Driver { driver_id: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogQuery {
    pub owner: Owner,
    pub log_type: &'static str,
    pub offset: Option<u64>,
    pub byte_length: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Slice {
    pub data: Vec<u8>,
    pub start: u64,
    pub end: u64,
    pub total: u64,
}

/// A single, ordinary path component: letters, digits, `-`, `_`, `.`; never `.` or `..`.
fn component<'a>(what: &str, s: &'a str) -> Result<&'a str, LogError> {
    let ok = !s.is_empty()
        && s.len() <= 255
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(s)
    } else {
        Err(LogError::BadRequest(format!("invalid {what} '{s}'")))
    }
}

impl LogQuery {
    pub fn parse(p: &HashMap<String, String>) -> Result<Self, LogError> {
        let get = |k: &str| p.get(k).map(String::as_str).filter(|s| !s.is_empty());
        let owner = match (get("appId"), get("executorId"), get("driverId")) {
            (Some(a), Some(e), None) => Owner::Executor {
                app_id: component("appId", a)?.to_owned(),
                executor_id: e
                    .parse()
                    .map_err(|_| LogError::BadRequest(format!("invalid executorId '{e}'")))?,
            },
            (None, None, Some(d)) => Owner::Driver {
                driver_id: component("driverId", d)?.to_owned(),
            },
            _ => {
                return Err(LogError::BadRequest(
                    "Request must specify either application or driver identifiers".into(),
                ));
            }
        };
        let log_type = match get("logType") {
            Some("stdout") => "stdout",
            Some("stderr") => "stderr",
            other => {
                return Err(LogError::BadRequest(format!(
                    "Log type must be one of stdout, stderr (got '{}')",
                    other.unwrap_or("")
                )));
            }
        };
        let num = |k: &str| -> Result<Option<u64>, LogError> {
            get(k)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| LogError::BadRequest(format!("invalid {k} '{v}'")))
                })
                .transpose()
        };
        Ok(Self {
            owner,
            log_type,
            offset: num("offset")?,
            byte_length: num("byteLength")?.unwrap_or(DEFAULT_BYTES).min(MAX_BYTES),
        })
    }

    /// The log a master relays a read for (`flint-submit logs`), checked like a page request.
    pub fn from_request(req: &flint_domain::types::LogRequest) -> Result<Self, LogError> {
        use flint_domain::types::LogTarget;
        let owner = match &req.target {
            LogTarget::Executor(app, exec) => Owner::Executor {
                app_id: component("appId", app.as_str())?.to_owned(),
                executor_id: *exec,
            },
            LogTarget::Driver(d) => Owner::Driver {
                driver_id: component("driverId", d.as_str())?.to_owned(),
            },
        };
        Ok(Self {
            owner,
            log_type: req.log_type.as_str(),
            offset: req.offset,
            byte_length: req.max_bytes.min(MAX_BYTES),
        })
    }

    fn relative_dir(&self) -> String {
        match &self.owner {
            Owner::Executor {
                app_id,
                executor_id,
            } => format!("{app_id}/{executor_id}"),
            Owner::Driver { driver_id } => driver_id.clone(),
        }
    }

    /// Spark's `logDir` in the raw header: `<work dir>/<app>/<executor>/`.
    pub fn dir_label(&self, work_dir: &Path) -> String {
        format!("{}/{}/", work_dir.display(), self.relative_dir())
    }

    /// The query string that names this log (without offsets).
    pub fn ids_query(&self) -> String {
        match &self.owner {
            Owner::Executor {
                app_id,
                executor_id,
            } => format!("appId={}&executorId={executor_id}", enc(app_id)),
            Owner::Driver { driver_id } => format!("driverId={}", enc(driver_id)),
        }
    }
}

/// Reads the requested range (Spark's `Utils.getLog` arithmetic: the tail when no offset is
/// given, offsets clamped to the file).
pub fn read(work_dir: &Path, q: &LogQuery) -> Result<Slice, LogError> {
    let path = work_dir.join(q.relative_dir()).join(q.log_type);
    let real = match std::fs::canonicalize(&path) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(LogError::NotFound(format!(
                "no {} log for {} (yet)",
                q.log_type,
                q.relative_dir()
            )));
        }
        Err(e) => return Err(LogError::Io(format!("cannot resolve the log: {e}"))),
    };
    if !real.starts_with(work_dir) || !real.is_file() {
        return Err(LogError::BadRequest(format!(
            "invalid log directory {}",
            q.dir_label(work_dir)
        )));
    }
    let mut f = std::fs::File::open(&real).map_err(|e| LogError::Io(e.to_string()))?;
    let total = f.metadata().map_err(|e| LogError::Io(e.to_string()))?.len();
    let start = q
        .offset
        .unwrap_or_else(|| total.saturating_sub(q.byte_length))
        .min(total);
    let end = start.saturating_add(q.byte_length).min(total);
    f.seek(SeekFrom::Start(start))
        .map_err(|e| LogError::Io(e.to_string()))?;
    let mut data = Vec::with_capacity((end - start) as usize);
    f.take(end - start)
        .read_to_end(&mut data)
        .map_err(|e| LogError::Io(e.to_string()))?;
    let end = start + data.len() as u64;
    Ok(Slice {
        data,
        start,
        end,
        total,
    })
}

pub fn render_log_page(q: &LogQuery, s: &Slice, master_webui: Option<&str>) -> String {
    let ids = q.ids_query();
    let name = q.relative_dir();
    let len = q.byte_length;
    let page = |offset: Option<u64>, t: &str| match offset {
        Some(o) => format!("/logPage/?{ids}&logType={t}&offset={o}&byteLength={len}"),
        None => format!("/logPage/?{ids}&logType={t}&byteLength={len}"),
    };
    let earlier = s.start.saturating_sub(len);
    let title = format!("{} log page for {name}", q.log_type);
    let body = html! {
        ul.summary {
            @match &q.owner {
                Owner::Executor { app_id, executor_id } => {
                    li { strong { "Application:" } " " (app_id) }
                    li { strong { "Executor:" } " " (executor_id) }
                }
                Owner::Driver { driver_id } => { li { strong { "Driver:" } " " (driver_id) } }
            }
            li { strong { "Log:" } " "
                @for t in ["stdout", "stderr"] {
                    @if t == q.log_type { span.current { (t) } } @else { a href=(page(None, t)) { (t) } }
                    " "
                } }
            li { a href="/" { "Back to Worker" }
                @if let Some(m) = master_webui.and_then(safe_url) { " · " a href=(m) { "Back to Master" } } }
        }
        div.log-nav {
            span #log-range { "Bytes " (s.start) "-" (s.end) " of " (s.total) }
            @if s.start > 0 {
                button #log-load-more type="button"
                    data-url=(format!("/log/?{ids}&logType={}", q.log_type))
                    data-start=(s.start) data-end=(s.end) data-total=(s.total) data-length=(len) { "Load more" }
                a #log-earlier href=(page(Some(earlier), q.log_type)) { "◀ Earlier" }
            }
            @if s.end < s.total { a #log-later href=(page(Some(s.end), q.log_type)) { "Later ▶" } }
            a href=(page(None, q.log_type)) { "Tail" }
            a href=(format!("/log/?{ids}&logType={}&offset={}&byteLength={len}", q.log_type, s.start)) { "Raw" }
        }
        pre.log #log-text { (String::from_utf8_lossy(&s.data)) }
    };
    layout(&title, html! { (title) }, None, body).into_string()
}

#[cfg(test)]
mod log_tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Result<LogQuery, LogError> {
        LogQuery::parse(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn parses_spark_parameters() {
        let x = q(&[
            ("appId", "app-1"),
            ("executorId", "3"),
            ("logType", "stderr"),
        ])
        .expect("ok");
        assert_eq!(x.byte_length, DEFAULT_BYTES);
        assert_eq!(x.ids_query(), "appId=app-1&executorId=3");
        let x = q(&[
            ("driverId", "driver-1"),
            ("logType", "stdout"),
            ("offset", "5"),
            ("byteLength", "99999999999"),
        ])
        .expect("ok");
        assert_eq!((x.offset, x.byte_length), (Some(5), MAX_BYTES));
        for bad in [
            vec![
                ("appId", "../../etc"),
                ("executorId", "0"),
                ("logType", "stdout"),
            ],
            vec![("appId", ".."), ("executorId", "0"), ("logType", "stdout")],
            vec![("appId", "a/b"), ("executorId", "0"), ("logType", "stdout")],
            vec![
                ("appId", "app-1"),
                ("executorId", "../0"),
                ("logType", "stdout"),
            ],
            vec![("driverId", "../x"), ("logType", "stdout")],
            vec![("driverId", "d"), ("logType", "../../etc/passwd")],
            vec![("driverId", "d"), ("logType", "stdout"), ("offset", "-1")],
            vec![
                ("driverId", "d"),
                ("appId", "a"),
                ("executorId", "1"),
                ("logType", "stdout"),
            ],
            vec![("logType", "stdout")],
        ] {
            assert!(matches!(q(&bad), Err(LogError::BadRequest(_))), "{bad:?}");
        }
    }

    #[test]
    fn reads_tails_and_ranges_inside_the_work_dir_only() {
        let tmp = tempfile::tempdir().expect("tmp");
        let work = std::fs::canonicalize(tmp.path()).expect("canon");
        std::fs::create_dir_all(work.join("driver-1")).expect("mkdir");
        std::fs::write(work.join("driver-1/stdout"), b"0123456789").expect("write");
        let d = |offset, len| LogQuery {
            owner: Owner::Driver {
                driver_id: "driver-1".into(),
            },
            log_type: "stdout",
            offset,
            byte_length: len,
        };
        let s = read(&work, &d(None, 4)).expect("tail");
        assert_eq!(
            (s.data.as_slice(), s.start, s.end, s.total),
            (&b"6789"[..], 6, 10, 10)
        );
        let s = read(&work, &d(Some(2), 3)).expect("range");
        assert_eq!((s.data.as_slice(), s.start, s.end), (&b"234"[..], 2, 5));
        let s = read(&work, &d(Some(50), 3)).expect("past the end");
        assert_eq!((s.start, s.end, s.data.len()), (10, 10, 0));
        assert!(matches!(
            read(
                &work,
                &LogQuery {
                    log_type: "stderr",
                    ..d(None, 4)
                }
            ),
            Err(LogError::NotFound(_))
        ));
        // A log replaced by a symbolic link to a file outside the work dir is refused.
        let outside = tempfile::NamedTempFile::new().expect("outside");
        std::fs::remove_file(work.join("driver-1/stdout")).expect("rm");
        std::os::unix::fs::symlink(outside.path(), work.join("driver-1/stdout")).expect("ln");
        assert!(matches!(
            read(&work, &d(None, 4)),
            Err(LogError::BadRequest(_))
        ));
    }
}
