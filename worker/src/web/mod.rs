//! The worker's web UI (Spark's port 8081): the worker page, Spark's LogPage
//! (`/logPage/`, raw `/log/`), `/json`, `/metrics` and health probes. Pages render from the
//! [`WorkerStatus`] the session publishes; log files are read only inside the work dir.

pub mod logs;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use flint_domain::types::*;
use flint_spark_proto::rest::to_spark_json;
use maud::{Markup, html};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::session::{DriverStatus, ExecutorStatus, WorkerStatus};
use flint_webui::*;
use logs::{LogError, LogQuery};

#[derive(Clone)]
pub struct WorkerWebState {
    pub status: watch::Receiver<WorkerStatus>,
    /// The canonical work dir: no log outside it is ever served.
    pub work_dir: Arc<PathBuf>,
}

impl WorkerWebState {
    /// A copy of the status: the watch's read lock is held only for the clone, never while
    /// rendering, so the session loop is not delayed by a slow page.
    fn status(&self) -> WorkerStatus {
        self.status.borrow().clone()
    }
}

fn state(s: &str) -> Markup {
    html! { span class=(format!("state-{s}")) { (s) } }
}

fn log_links(query: &str) -> Markup {
    html! {
        a.log-link href=(format!("/logPage/?{query}&logType=stdout")) { "stdout" }
        " "
        a.log-link href=(format!("/logPage/?{query}&logType=stderr")) { "stderr" }
    }
}

fn executor_table(execs: &[&ExecutorStatus], finished: bool, id: &str, now: i64) -> Markup {
    html! {
        table.sortable #(id) {
            thead { tr {
                th { "ExecutorID" } th { "State" } th { "Cores" } th { "Memory" }
                th { "Job Details" } th { "Duration" }
                @if finished { th { "Exit Status" } th { "Message" } }
                th { "Logs" }
            } }
            tbody {
                @if execs.is_empty() { tr { td.empty colspan="9" { "none" } } }
                @for e in execs {
                    tr data-app-id=(e.app_id) data-executor-id=(e.executor_id) {
                        (sort_cell(e.executor_id, html! { (e.executor_id) }))
                        td { (state(e.state.as_str())) }
                        (sort_cell(e.cores, html! { (e.cores) }))
                        (sort_cell(e.memory_mb, html! { (format_mb(e.memory_mb)) }))
                        td {
                            "ID: " (e.app_id) br;
                            "Name: " span.app-name { (e.app_name) } br;
                            "User: " (e.user)
                        }
                        @let d = e.end_ms.unwrap_or(now) - e.start_ms;
                        (sort_cell(d, html! { (format_duration(d)) }))
                        @if finished {
                            td { @if let Some(x) = e.exit_status { (x) } }
                            td { @if let Some(m) = &e.message { (m) } }
                        }
                        td { (log_links(&format!("appId={}&executorId={}", enc(e.app_id.as_str()), e.executor_id))) }
                    }
                }
            }
        }
    }
}

fn driver_table(drivers: &[&DriverStatus], finished: bool, id: &str, now: i64) -> Markup {
    html! {
        table.sortable #(id) {
            thead { tr {
                th { "Submission ID" } th { "Name" } th { "State" } th { "Cores" } th { "Memory" }
                th { "Resource" } th { "Duration" }
                @if finished { th { "Exit Status" } th { "Message" } }
                th { "Logs" }
            } }
            tbody {
                @if drivers.is_empty() { tr { td.empty colspan="10" { "none" } } }
                @for d in drivers {
                    tr data-driver-id=(d.driver_id) {
                        td { (d.driver_id) }
                        td { (d.name) }
                        td { (state(d.state.as_str())) }
                        (sort_cell(d.cores, html! { (d.cores) }))
                        (sort_cell(d.memory_mb, html! { (format_mb(d.memory_mb)) }))
                        td { (d.app_resource) }
                        @let dur = d.end_ms.unwrap_or(now) - d.start_ms;
                        (sort_cell(dur, html! { (format_duration(dur)) }))
                        @if finished {
                            td { @if let Some(x) = d.exit_status { (x) } }
                            td { @if let Some(m) = &d.message { (m) } }
                        }
                        td { (log_links(&format!("driverId={}", enc(d.driver_id.as_str())))) }
                    }
                }
            }
        }
    }
}

/// `/`: Spark's worker page.
pub fn render_worker_page(s: &WorkerStatus, now: i64) -> String {
    let title = format!("Spark Worker at {}:{}", s.host, s.port);
    let cores_used = u64::from(s.cores_used());
    let mem_used = s.memory_used_mb();
    let running: Vec<&ExecutorStatus> = s.executors.iter().rev().collect();
    let finished: Vec<&ExecutorStatus> = s.finished_executors.iter().rev().collect();
    let drivers: Vec<&DriverStatus> = s.drivers.iter().rev().collect();
    let finished_drivers: Vec<&DriverStatus> = s.finished_drivers.iter().rev().collect();
    let body = html! {
        ul.summary #summary {
            li { strong { "ID:" } " " span #worker-id { (s.worker_id) } }
            li { strong { "Master URL:" } " " span #master-url { (s.master_url.as_deref().unwrap_or("")) } }
            li { strong { "Registered:" } " " span #registered {
                @if s.registered { (state("ALIVE")) " registered with the master" }
                @else { (state("UNKNOWN")) " not registered (connecting)" } } }
            li { strong { "Cores:" } " " span #cores { (s.cores) " (" (cores_used) " Used)" }
                (usage_bar(cores_used, u64::from(s.cores))) }
            li { strong { "Memory:" } " " span #memory { (format_mb(s.memory_mb)) " (" (format_mb(mem_used)) " Used)" }
                (usage_bar(mem_used, s.memory_mb)) }
            li { strong { "Work Dir:" } " " (s.work_dir.display()) }
            @if let Some(u) = s.master_webui_url.as_deref().and_then(safe_url) {
                li { a #back-to-master href=(u) { "Back to Master" } }
            }
        }
        (section("running-executors", "Running Executors", running.len(), executor_table(&running, false, "running-executors-table", now)))
        (section("running-drivers", "Running Drivers", drivers.len(), driver_table(&drivers, false, "running-drivers-table", now)))
        (section("finished-executors", "Finished Executors", finished.len(), executor_table(&finished, true, "finished-executors-table", now)))
        (section("finished-drivers", "Finished Drivers", finished_drivers.len(), driver_table(&finished_drivers, true, "finished-drivers-table", now)))
    };
    layout(&title, html! { (title) }, Some(5), body).into_string()
}

// ------------------------------------------------------------------ /json

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct AppDescJson<'a> {
    name: &'a str,
    cores: u32,
    memoryperexecutor: u64,
    resourcesperexecutor: [Empty; 0],
    memoryperslave: u64,
    resourcesperslave: [Empty; 0],
    user: &'a str,
    command: &'a str,
}

#[derive(Serialize)]
struct ExecutorJson<'a> {
    id: u32,
    memory: u64,
    resources: Empty,
    appid: &'a str,
    appdesc: AppDescJson<'a>,
}

#[derive(Serialize)]
struct WorkerJson<'a> {
    id: &'a str,
    masterurl: &'a str,
    masterwebuiurl: &'a str,
    cores: u32,
    coresused: u32,
    memory: u64,
    memoryused: u64,
    resources: Empty,
    resourcesused: Empty,
    executors: Vec<ExecutorJson<'a>>,
    finishedexecutors: Vec<ExecutorJson<'a>>,
}

fn executor_json(e: &ExecutorStatus) -> ExecutorJson<'_> {
    ExecutorJson {
        id: e.executor_id,
        memory: e.memory_mb,
        resources: Empty {},
        appid: e.app_id.as_str(),
        appdesc: AppDescJson {
            name: &e.app_name,
            // Spark shows the application's spark.cores.max (0 when unset); the worker is
            // not told it, so 0.
            cores: 0,
            memoryperexecutor: e.memory_mb,
            resourcesperexecutor: [],
            memoryperslave: e.memory_mb,
            resourcesperslave: [],
            user: &e.user,
            command: &e.command,
        },
    }
}

/// Spark's `JsonProtocol.writeWorkerState` (drivers are not listed, as in Spark).
pub fn render_worker_json(s: &WorkerStatus) -> String {
    to_spark_json(&WorkerJson {
        id: &s.worker_id,
        masterurl: s.master_url.as_deref().unwrap_or(""),
        masterwebuiurl: s.master_webui_url.as_deref().unwrap_or(""),
        cores: s.cores,
        coresused: s.cores_used(),
        memory: s.memory_mb,
        memoryused: s.memory_used_mb(),
        resources: Empty {},
        resourcesused: Empty {},
        executors: s.executors.iter().map(executor_json).collect(),
        finishedexecutors: s.finished_executors.iter().map(executor_json).collect(),
    })
}

// ------------------------------------------------------------------ /metrics

type StateFamily = Family<[(&'static str, &'static str); 1], Gauge>;

/// Prometheus text for this worker (Flint's names and Spark's WorkerSource ones).
pub fn render_worker_metrics(s: &WorkerStatus) -> String {
    let mut r = Registry::default();
    let g = |r: &mut Registry, name: &str, help: &str, v: i64| {
        let g: Gauge = Gauge::default();
        g.set(v);
        r.register(name, help, g);
    };
    let mib = |mb: u64| (mb as i64).saturating_mul(1024 * 1024);
    g(
        &mut r,
        "flint_worker_registered",
        "1 while registered with a master",
        i64::from(s.registered),
    );
    g(
        &mut r,
        "flint_worker_cores",
        "Cores offered",
        i64::from(s.cores),
    );
    g(
        &mut r,
        "flint_worker_cores_used",
        "Cores used by executors and drivers",
        i64::from(s.cores_used()),
    );
    g(
        &mut r,
        "flint_worker_memory_bytes",
        "Memory offered",
        mib(s.memory_mb),
    );
    g(
        &mut r,
        "flint_worker_memory_used_bytes",
        "Memory used by executors and drivers",
        mib(s.memory_used_mb()),
    );
    let execs = StateFamily::default();
    for st in ExecutorState::ALL {
        let n = s
            .executors
            .iter()
            .chain(s.finished_executors.iter())
            .filter(|e| e.state == *st)
            .count();
        execs.get_or_create(&[("state", st.as_str())]).set(n as i64);
    }
    r.register(
        "flint_worker_executors",
        "Executors (running and retained finished) by state",
        execs,
    );
    let drivers = StateFamily::default();
    for st in DriverState::ALL {
        let n = s
            .drivers
            .iter()
            .chain(s.finished_drivers.iter())
            .filter(|d| d.state == *st)
            .count();
        drivers
            .get_or_create(&[("state", st.as_str())])
            .set(n as i64);
    }
    r.register(
        "flint_worker_drivers",
        "Drivers (running and retained finished) by state",
        drivers,
    );
    let cores_used = i64::from(s.cores_used());
    let mem_used = s.memory_used_mb() as i64;
    for (name, v) in [
        ("coresFree", i64::from(s.cores) - cores_used),
        ("coresUsed", cores_used),
        ("executors", s.executors.len() as i64),
        ("memFree_MB", s.memory_mb as i64 - mem_used),
        ("memUsed_MB", mem_used),
    ] {
        for suffix in ["Number", "Value"] {
            let f = StateFamily::default();
            f.get_or_create(&[("type", "gauges")]).set(v);
            r.register(
                format!("metrics_worker_{name}_{suffix}"),
                "Spark WorkerSource gauge",
                f,
            );
        }
    }
    let mut out = String::with_capacity(4096);
    if encode(&mut out, &r).is_err() {
        return String::from("# EOF\n");
    }
    out
}

// ------------------------------------------------------------------ handlers

fn params(q: Option<&str>) -> Result<HashMap<String, String>, PageError> {
    match q {
        None => Ok(HashMap::new()),
        Some(q) => serde_urlencoded::from_str::<Vec<(String, String)>>(q)
            .map(|v| v.into_iter().collect())
            .map_err(|e| PageError::bad_request(format!("malformed parameters: {e}"))),
    }
}

async fn index(State(st): State<WorkerWebState>) -> Response {
    html_page(StatusCode::OK, render_worker_page(&st.status(), now_ms()))
}

async fn json(State(st): State<WorkerWebState>) -> Response {
    spark_json(render_worker_json(&st.status()))
}

async fn metrics(State(st): State<WorkerWebState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        render_worker_metrics(&st.status()),
    )
        .into_response()
}

async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n")
}

async fn readyz(State(st): State<WorkerWebState>) -> Response {
    if st.status.borrow().registered {
        text(StatusCode::OK, "registered\n")
    } else {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not registered with a master\n",
        )
    }
}

async fn static_file(Path(name): Path<String>) -> Response {
    static_asset(&name)
}

fn log_error(e: LogError, html: bool) -> Response {
    let (status, msg) = match e {
        LogError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
        LogError::NotFound(m) => (StatusCode::NOT_FOUND, m),
        LogError::Io(m) => (StatusCode::INTERNAL_SERVER_ERROR, m),
    };
    if html {
        error_page(status, "Log unavailable", &msg)
    } else {
        text(status, format!("Error: {msg}\n"))
    }
}

async fn read(st: &WorkerWebState, q: Option<String>) -> Result<(LogQuery, logs::Slice), LogError> {
    let p =
        params(q.as_deref()).map_err(|_| LogError::BadRequest("malformed parameters".into()))?;
    let query = LogQuery::parse(&p)?;
    let work_dir = st.work_dir.clone();
    let q2 = query.clone();
    let slice = tokio::task::spawn_blocking(move || logs::read(&work_dir, &q2))
        .await
        .map_err(|e| LogError::Io(e.to_string()))??;
    Ok((query, slice))
}

/// `/log/`: Spark's raw log: a `==== Bytes a-b of n of <dir><type> ====` line, then the bytes.
async fn raw_log(State(st): State<WorkerWebState>, RawQuery(q): RawQuery) -> Response {
    match read(&st, q).await {
        Ok((query, slice)) => {
            let mut body = format!(
                "==== Bytes {}-{} of {} of {}{} ====\n",
                slice.start,
                slice.end,
                slice.total,
                query.dir_label(&st.work_dir),
                query.log_type
            )
            .into_bytes();
            body.extend_from_slice(&slice.data);
            (
                [
                    (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                body,
            )
                .into_response()
        }
        Err(e) => log_error(e, false),
    }
}

/// `/logPage/`: Spark's LogPage: the tail by default, paging with `offset`/`byteLength`.
async fn log_page(State(st): State<WorkerWebState>, RawQuery(q): RawQuery) -> Response {
    match read(&st, q).await {
        Ok((query, slice)) => {
            let master = st.status.borrow().master_webui_url.clone();
            html_page(
                StatusCode::OK,
                logs::render_log_page(&query, &slice, master.as_deref()),
            )
        }
        Err(e) => log_error(e, true),
    }
}

fn add_slash(path: &'static str) -> impl Fn(RawQuery) -> std::future::Ready<Response> + Clone {
    move |RawQuery(q): RawQuery| {
        let loc = match q {
            Some(q) if !q.is_empty() => format!("{path}/?{q}"),
            _ => format!("{path}/"),
        };
        std::future::ready(found(&loc))
    }
}

async fn not_found() -> Response {
    error_page(StatusCode::NOT_FOUND, "Not found", "no such page")
}

pub fn router(state: WorkerWebState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/json", get(json))
        .route("/json/", get(json))
        .route("/metrics", get(metrics))
        .route("/metrics/", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/logPage", get(add_slash("/logPage")))
        .route("/logPage/", get(log_page))
        .route("/log", get(add_slash("/log")))
        .route("/log/", get(raw_log))
        .route("/static/{name}", get(static_file))
        .fallback(not_found)
        .with_state(state)
}

/// Serves the worker UI on `listener` until `stop` turns true.
pub fn spawn(
    listener: TcpListener,
    status: watch::Receiver<WorkerStatus>,
    work_dir: PathBuf,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let state = WorkerWebState {
        status,
        work_dir: Arc::new(work_dir),
    };
    tokio::spawn(async move {
        let server = axum::serve(listener, router(state)).with_graceful_shutdown(async move {
            crate::session::stopped(&mut stop).await;
        });
        if let Err(e) = server.await {
            tracing::warn!(error = %e, "worker web UI ended");
        }
    })
}

#[cfg(test)]
mod tests;
