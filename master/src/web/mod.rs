//! The master's web UI (Spark's port 8080): the cluster overview, application and driver
//! pages, kill buttons, `/json`, `/metrics`, health probes and, with
//! `spark.ui.reverseProxy=true`, the worker UIs under `/proxy/<worker-id>/`.
//!
//! Every page renders from the latest published [`ClusterSnapshot`] (a `watch` of `Arc`s),
//! never from the master's live state: a slow or stuck browser cannot delay scheduling.
//! Only kills go to the actor, through the [`MasterHandle`].

pub mod json;
pub mod pages;
pub mod proxy;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use flint_domain::conf::SparkConf;
use flint_domain::types::*;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info};

use crate::actor::MasterHandle;
use crate::metrics::{self, MasterMetrics};
use flint_webui::*;

pub use json::render_master_json;
pub use pages::render_master_page;

/// The UI's settings, from `spark.*` properties.
#[derive(Clone, Debug)]
pub struct WebConfig {
    /// `spark.ui.killEnabled` (default true): kill buttons and the kill endpoints.
    pub kill_enabled: bool,
    /// `spark.ui.reverseProxy` (default false): worker UIs through `/proxy/<worker-id>/`.
    pub reverse_proxy: bool,
    /// The REST submission server's URL, shown on the overview when it runs.
    pub rest_url: Option<String>,
    /// Seconds between automatic reloads of the pages (a checkbox turns it off).
    pub refresh_secs: u32,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            kill_enabled: true,
            reverse_proxy: false,
            rest_url: None,
            refresh_secs: 5,
        }
    }
}

impl WebConfig {
    pub fn from_conf(conf: &SparkConf, rest_url: Option<String>) -> Result<Self, String> {
        Ok(Self {
            kill_enabled: conf.get_bool("spark.ui.killEnabled", true)?,
            reverse_proxy: conf.get_bool("spark.ui.reverseProxy", false)?,
            rest_url,
            refresh_secs: 5,
        })
    }
}

#[derive(Clone)]
pub struct WebState {
    pub handle: MasterHandle,
    pub snapshots: watch::Receiver<Arc<ClusterSnapshot>>,
    pub cfg: Arc<WebConfig>,
    pub metrics: Arc<MasterMetrics>,
    /// Renders run one at a time on the blocking pool: however many pages are asked for,
    /// the runtime threads the actor and the gRPC sessions use stay free.
    pub render_slots: Arc<tokio::sync::Semaphore>,
}

impl WebState {
    pub fn new(
        handle: MasterHandle,
        snapshots: watch::Receiver<Arc<ClusterSnapshot>>,
        cfg: WebConfig,
        metrics: Arc<MasterMetrics>,
    ) -> Self {
        Self {
            handle,
            snapshots,
            cfg: Arc::new(cfg),
            metrics,
            render_slots: Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }

    fn snap(&self) -> Arc<ClusterSnapshot> {
        self.snapshots.borrow().clone()
    }

    /// Runs `f` on the latest snapshot off the runtime threads (see `render_slots`).
    async fn render<T: Send + 'static>(
        &self,
        f: impl FnOnce(&ClusterSnapshot, &WebConfig) -> T + Send + 'static,
    ) -> Result<T, Response> {
        let busy = || {
            error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "the master is shutting down",
            )
        };
        let _permit = self.render_slots.acquire().await.map_err(|_| busy())?;
        let (snap, cfg) = (self.snap(), self.cfg.clone());
        tokio::task::spawn_blocking(move || f(&snap, &cfg))
            .await
            .map_err(|_| busy())
    }
}

/// Resolves once `stop` turns true (the watch guard is not held across an await).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Query (and form) parameters; the last value of a repeated key wins.
fn params(query: Option<&str>, body: Option<&[u8]>) -> Result<HashMap<String, String>, PageError> {
    let bad = |e: serde_urlencoded::de::Error| {
        PageError::bad_request(format!("malformed parameters: {e}"))
    };
    let mut out = HashMap::new();
    if let Some(q) = query {
        for (k, v) in serde_urlencoded::from_str::<Vec<(String, String)>>(q).map_err(bad)? {
            out.insert(k, v);
        }
    }
    if let Some(b) = body.filter(|b| !b.is_empty()) {
        for (k, v) in serde_urlencoded::from_bytes::<Vec<(String, String)>>(b).map_err(bad)? {
            out.insert(k, v);
        }
    }
    Ok(out)
}

fn required<'a>(p: &'a HashMap<String, String>, key: &str) -> Result<&'a str, PageError> {
    match p.get(key).map(|s| s.trim()).filter(|s| !s.is_empty()) {
        Some(v) => Ok(v),
        None => Err(PageError::bad_request(format!(
            "missing the {key} parameter"
        ))),
    }
}

async fn index(State(st): State<WebState>) -> Response {
    match st
        .render(|snap, cfg| render_master_page(snap, cfg, now_ms()))
        .await
    {
        Ok(page) => html_page(StatusCode::OK, page),
        Err(r) => r,
    }
}

async fn app_page(State(st): State<WebState>, RawQuery(q): RawQuery) -> Response {
    let p = match params(q.as_deref(), None) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let id = match required(&p, "appId") {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let id = AppId(id.to_owned());
    let page = st
        .render(move |snap, cfg| {
            snap.app(&id)
                .map(|app| pages::render_app_page(snap, cfg, app, now_ms()))
                .ok_or(id)
        })
        .await;
    match page {
        Ok(Ok(page)) => html_page(StatusCode::OK, page),
        Ok(Err(id)) => error_page(
            StatusCode::NOT_FOUND,
            "Application not found",
            &format!("no application with id {id} (running or retained)"),
        ),
        Err(r) => r,
    }
}

async fn driver_page(State(st): State<WebState>, RawQuery(q): RawQuery) -> Response {
    let p = match params(q.as_deref(), None) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let id = match required(&p, "driverId") {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let id = DriverId(id.to_owned());
    let page = st
        .render(move |snap, cfg| {
            snap.driver(&id)
                .map(|d| pages::render_driver_page(snap, cfg, d, now_ms()))
                .ok_or(id)
        })
        .await;
    match page {
        Ok(Ok(page)) => html_page(StatusCode::OK, page),
        Ok(Err(id)) => error_page(
            StatusCode::NOT_FOUND,
            "Driver not found",
            &format!("no driver with id {id} (running or retained)"),
        ),
        Err(r) => r,
    }
}

/// Spark's paths without the trailing slash answer 302 to the slash form.
fn add_slash(path: &'static str) -> impl Fn(RawQuery) -> std::future::Ready<Response> + Clone {
    move |RawQuery(q): RawQuery| {
        let loc = match q {
            Some(q) if !q.is_empty() => format!("{path}/?{q}"),
            _ => format!("{path}/"),
        };
        std::future::ready(found(&loc))
    }
}

/// A browser form POST carries `Origin`; one from another site must not kill anything.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true; // not a browser cross-site request (curl, scripts)
    };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    origin_host.eq_ignore_ascii_case(host)
}

enum Target {
    App,
    Driver,
}

async fn kill(
    st: WebState,
    target: Target,
    q: Option<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !st.cfg.kill_enabled {
        return error_page(
            StatusCode::FORBIDDEN,
            "Killing is disabled",
            "spark.ui.killEnabled is false on this master",
        );
    }
    if !same_origin(&headers) {
        return error_page(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "cross-origin kill requests are refused",
        );
    }
    let p = match params(q.as_deref(), Some(&body)) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let id = match required(&p, "id") {
        Ok(v) => v.to_owned(),
        Err(e) => return e.into_response(),
    };
    if p.get("terminate").map(|s| s.as_str()) != Some("true") {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "a kill needs terminate=true",
        );
    }
    let result = match target {
        Target::App => st.handle.kill_application(AppId(id.clone())).await,
        Target::Driver => st
            .handle
            .kill_driver(DriverId(id.clone()))
            .await
            .map(|_| ()),
    };
    match result {
        Ok(()) => {
            info!(id = %id, "kill requested from the web UI");
            // Let the next page show it (Spark sleeps 100 ms for the same reason).
            let mut rx = st.snapshots.clone();
            let done = |s: &Arc<ClusterSnapshot>| match target {
                Target::App => s
                    .app(&AppId(id.clone()))
                    .is_none_or(|a| a.state.is_finished()),
                Target::Driver => s
                    .driver(&DriverId(id.clone()))
                    .is_none_or(|d| d.state.is_finished()),
            };
            let _ = tokio::time::timeout(Duration::from_secs(2), rx.wait_for(done)).await;
            found("/")
        }
        Err(e) => {
            let status = StatusCode::from_u16(e.code().http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            error_page(status, "Cannot kill", &e.to_string())
        }
    }
}

async fn kill_app(
    State(st): State<WebState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    kill(st, Target::App, q, headers, body).await
}

async fn kill_driver(
    State(st): State<WebState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    kill(st, Target::Driver, q, headers, body).await
}

async fn json(State(st): State<WebState>) -> Response {
    match st
        .render(|snap, _| render_master_json(snap, now_ms()))
        .await
    {
        Ok(body) => spark_json(body),
        Err(r) => r,
    }
}

async fn metrics(State(st): State<WebState>) -> Response {
    let m = st.metrics.clone();
    match st.render(move |snap, _| m.render(snap, now_ms())).await {
        Ok(body) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], body).into_response(),
        Err(r) => r,
    }
}

async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n")
}

async fn readyz(State(st): State<WebState>) -> Response {
    let status = st.snap().status;
    if status == MasterStatus::Alive {
        text(StatusCode::OK, "ALIVE\n")
    } else {
        text(StatusCode::SERVICE_UNAVAILABLE, format!("{status}\n"))
    }
}

async fn static_file(Path(name): Path<String>) -> Response {
    static_asset(&name)
}

async fn proxy_root(Path(worker): Path<String>) -> Response {
    found(&format!("/proxy/{}/", enc(&worker)))
}

async fn proxy_path(
    State(st): State<WebState>,
    Path((worker, rest)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    do_proxy(st, worker, rest, q).await
}

async fn proxy_index(
    State(st): State<WebState>,
    Path(worker): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    do_proxy(st, worker, String::new(), q).await
}

async fn do_proxy(st: WebState, worker: String, rest: String, q: Option<String>) -> Response {
    if !st.cfg.reverse_proxy {
        return error_page(
            StatusCode::NOT_FOUND,
            "Not found",
            "the reverse proxy is off (spark.ui.reverseProxy=false)",
        );
    }
    let snap = st.snap();
    let Some(w) = snap.worker(&WorkerId(worker.clone())) else {
        return error_page(
            StatusCode::NOT_FOUND,
            "Worker not found",
            &format!("no worker with id {worker}"),
        );
    };
    debug!(worker = %worker, path = %rest, "proxying to worker UI");
    proxy::relay(&worker, &w.webui_url, &snap.webui_url, &rest, q.as_deref()).await
}

async fn not_found() -> Response {
    error_page(StatusCode::NOT_FOUND, "Not found", "no such page")
}

pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/app", get(add_slash("/app")))
        .route("/app/", get(app_page))
        .route("/driver", get(add_slash("/driver")))
        .route("/driver/", get(driver_page))
        .route("/app/kill", post(kill_app))
        .route("/app/kill/", post(kill_app))
        .route("/driver/kill", post(kill_driver))
        .route("/driver/kill/", post(kill_driver))
        .route("/json", get(json))
        .route("/json/", get(json))
        .route("/metrics", get(metrics))
        .route("/metrics/", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/static/{name}", get(static_file))
        .route("/proxy/{worker}", get(proxy_root))
        .route("/proxy/{worker}/", get(proxy_index))
        .route("/proxy/{worker}/{*rest}", get(proxy_path))
        .fallback(not_found)
        .with_state(state)
}

/// Serves the UI on `listener` until `stop` turns true.
pub async fn serve(listener: TcpListener, state: WebState, mut stop: watch::Receiver<bool>) {
    let server = axum::serve(listener, router(state)).with_graceful_shutdown(async move {
        let _ = stop.wait_for(|s| *s).await;
    });
    if let Err(e) = server.await {
        tracing::warn!(error = %e, "web UI server ended");
    }
}

/// Starts the UI's tasks: the metrics observer and the server. Both read the snapshots the
/// actor publishes (on every change, and every 2 s on a quiet cluster so `lastheartbeat`
/// stays current): one read model, one publisher.
pub fn spawn(
    listener: TcpListener,
    handle: MasterHandle,
    cfg: WebConfig,
    stop: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let snapshots = handle.snapshots();
    let metrics = Arc::new(MasterMetrics::new());
    let observer = tokio::spawn(metrics::observe(
        metrics.clone(),
        snapshots.clone(),
        stop.clone(),
    ));
    let state = WebState::new(handle, snapshots, cfg, metrics);
    let server = tokio::spawn(serve(listener, state, stop));
    vec![observer, server]
}

#[cfg(test)]
mod tests;
