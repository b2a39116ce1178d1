//! The worker UI's routes without a socket (`Router::oneshot`).

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use flint_domain::types::*;
use tokio::sync::watch;
use tower::ServiceExt;

use super::*;
use crate::session::{DriverStatus, ExecutorStatus, WorkerStatus};

const XSS: &str = "<script>alert(1)</script>";

fn spark_sample() -> serde_json::Value {
    serde_json::from_str(include_str!(
        "../../../tests/fixtures/worker-json-sample.json"
    ))
    .expect("fixture")
}

fn executor(v: &serde_json::Value, state: ExecutorState) -> ExecutorStatus {
    ExecutorStatus {
        app_id: AppId(v["appid"].as_str().unwrap_or_default().into()),
        executor_id: v["id"].as_u64().unwrap_or(0) as u32,
        app_name: v["appdesc"]["name"].as_str().unwrap_or_default().into(),
        user: v["appdesc"]["user"].as_str().unwrap_or_default().into(),
        cores: 1,
        memory_mb: v["memory"].as_u64().unwrap_or(0),
        state,
        exit_status: None,
        message: None,
        command: v["appdesc"]["command"].as_str().unwrap_or_default().into(),
        start_ms: 1,
        end_ms: None,
    }
}

/// The worker of Spark's capture `worker-json-sample.json` (one executor and one driver).
fn sample_status(work_dir: PathBuf) -> WorkerStatus {
    let v = spark_sample();
    WorkerStatus {
        worker_id: v["id"].as_str().unwrap_or_default().into(),
        host: "127.0.0.1".into(),
        port: 17103,
        webui_url: "http://127.0.0.1:17104".into(),
        cores: 2,
        memory_mb: 2048,
        work_dir,
        registered: true,
        master_url: Some("spark://127.0.0.1:17101".into()),
        master_webui_url: Some("http://localhost:17102".into()),
        executors: vec![executor(&v["executors"][0], ExecutorState::Running)],
        finished_executors: vec![executor(&v["finishedexecutors"][0], ExecutorState::Exited)],
        drivers: vec![DriverStatus {
            driver_id: DriverId("driver-20261122043840-0000".into()),
            name: "bench".into(),
            cores: 1,
            memory_mb: 1024,
            state: DriverState::Running,
            exit_status: None,
            message: None,
            app_resource: "file:/srv/jobs/bench-sparkpi.jar".into(),
            start_ms: 1,
            end_ms: None,
        }],
        finished_drivers: vec![],
    }
}

struct Ui {
    router: Router,
    tx: watch::Sender<WorkerStatus>,
    _dir: tempfile::TempDir,
    work: PathBuf,
}

fn ui() -> Ui {
    let dir = tempfile::tempdir().expect("tmp");
    let work = std::fs::canonicalize(dir.path()).expect("canon");
    let (tx, rx) = watch::channel(sample_status(work.clone()));
    let router = router(WorkerWebState {
        status: rx,
        work_dir: Arc::new(work.clone()),
    });
    Ui {
        router,
        tx,
        _dir: dir,
        work,
    }
}

async fn get(ui: &Ui, uri: &str) -> (StatusCode, String, String) {
    let resp = ui
        .router
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = resp.status();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = axum::body::to_bytes(resp.into_body(), 64 << 20)
        .await
        .expect("body");
    (status, ctype, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn json_is_byte_for_byte_sparks() {
    let u = ui();
    let (st, ctype, body) = get(&u, "/json/").await;
    assert_eq!(
        (st, ctype.as_str()),
        (StatusCode::OK, "text/json;charset=utf-8")
    );
    assert_eq!(
        body,
        include_str!("../../../tests/fixtures/worker-json-sample.json")
    );
}

#[tokio::test]
async fn worker_page_lists_executors_and_drivers_escaped() {
    let u = ui();
    u.tx.send_modify(|s| {
        s.executors[0].app_name = XSS.into();
        s.finished_executors[0].message = Some(XSS.into());
        s.drivers[0].name = XSS.into();
    });
    let (st, ctype, body) = get(&u, "/").await;
    assert_eq!(
        (st, ctype.as_str()),
        (StatusCode::OK, "text/html; charset=utf-8")
    );
    assert!(!body.contains("<script>alert"), "{body}");
    assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    for needle in [
        "Spark Worker at 127.0.0.1:17103",
        "worker-20261122043751-127.0.0.1-17103",
        "spark://127.0.0.1:17101",
        "2 (2 Used)",
        "Running Executors (1)",
        "Finished Executors (1)",
        "Running Drivers (1)",
        "href=\"/logPage/?appId=app-20261122043844-0001&amp;executorId=1&amp;logType=stdout\"",
        "href=\"/logPage/?driverId=driver-20261122043840-0000&amp;logType=stderr\"",
        "href=\"http://localhost:17102\"",
    ] {
        assert!(body.contains(needle), "missing {needle}");
    }
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let u = ui();
    assert_eq!(get(&u, "/healthz").await.0, StatusCode::OK);
    assert_eq!(get(&u, "/readyz").await.0, StatusCode::OK);
    u.tx.send_modify(|s| s.registered = false);
    assert_eq!(get(&u, "/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
    let (st, ctype, m) = get(&u, "/metrics").await;
    assert_eq!(st, StatusCode::OK);
    assert!(ctype.starts_with("application/openmetrics-text"));
    for line in [
        "flint_worker_registered 0",
        "flint_worker_cores 2",
        "flint_worker_cores_used 2",
        "flint_worker_memory_used_bytes 2147483648",
        "flint_worker_executors{state=\"RUNNING\"} 1",
        "flint_worker_executors{state=\"EXITED\"} 1",
        "flint_worker_drivers{state=\"RUNNING\"} 1",
        "metrics_worker_coresFree_Value{type=\"gauges\"} 0",
        "metrics_worker_memUsed_MB_Number{type=\"gauges\"} 2048",
    ] {
        assert!(m.contains(line), "missing {line} in\n{m}");
    }
}

#[tokio::test]
async fn log_pages_page_and_refuse_traversal() {
    let u = ui();
    let dir = u.work.join("app-1").join("0");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let text: String = (0..5000).map(|i| format!("line {i} {XSS}\n")).collect();
    std::fs::write(dir.join("stdout"), &text).expect("write");
    let total = text.len();
    // Raw: Spark's header line, then the last 100 KiB (here: everything).
    let (st, ctype, body) = get(&u, "/log/?appId=app-1&executorId=0&logType=stdout").await;
    assert_eq!(
        (st, ctype.as_str()),
        (StatusCode::OK, "text/plain; charset=utf-8")
    );
    let start = total.saturating_sub(102_400);
    let header = format!(
        "==== Bytes {start}-{total} of {total} of {}/app-1/0/stdout ====\n",
        u.work.display()
    );
    assert!(
        body.starts_with(&header),
        "{}",
        &body[..200.min(body.len())]
    );
    assert_eq!(&body[header.len()..], &text[start..]);
    // Paging.
    let (_, _, body) = get(
        &u,
        "/log/?appId=app-1&executorId=0&logType=stdout&offset=5&byteLength=10",
    )
    .await;
    assert!(body.starts_with(&format!("==== Bytes 5-15 of {total} of")));
    assert!(body.ends_with(&text[5..15]));
    // The HTML page: escaped text, the load-more button, earlier/tail links.
    let (st, _, page) = get(
        &u,
        "/logPage/?appId=app-1&executorId=0&logType=stdout&byteLength=1000",
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert!(!page.contains("<script>alert"));
    assert!(page.contains("line 4999 &lt;script&gt;"));
    assert!(page.contains("id=\"log-load-more\""));
    assert!(page.contains(&format!("Bytes {}-{total} of {total}", total - 1000)));
    assert!(page.contains(&format!("offset={}&amp;byteLength=1000", total - 2000)));
    // Redirect to the slash form keeps the query.
    let resp = u
        .router
        .clone()
        .oneshot(
            Request::get("/logPage?driverId=d&logType=stdout")
                .body(Body::empty())
                .expect("req"),
        )
        .await
        .expect("ok");
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert_eq!(
        resp.headers()["location"],
        "/logPage/?driverId=d&logType=stdout"
    );
    // Traversal and garbage: 400, HTML on the page, text on the raw route.
    for q in [
        "appId=..%2F..%2Fetc&executorId=0&logType=stdout",
        "appId=app-1&executorId=..%2F0&logType=stdout",
        "driverId=..&logType=stdout",
        "driverId=%2Fetc&logType=stdout",
        "driverId=d&logType=..%2F..%2F..%2Fetc%2Fpasswd",
        "appId=app-1&executorId=0&logType=stdout&offset=-5",
        "appId=app-1&executorId=0",
        "",
    ] {
        let (st, ctype, _) = get(&u, &format!("/logPage/?{q}")).await;
        assert_eq!(
            (st, ctype.as_str()),
            (StatusCode::BAD_REQUEST, "text/html; charset=utf-8"),
            "{q}"
        );
        let (st, ctype, body) = get(&u, &format!("/log/?{q}")).await;
        assert_eq!(
            (st, ctype.as_str()),
            (StatusCode::BAD_REQUEST, "text/plain; charset=utf-8"),
            "{q}"
        );
        assert!(body.starts_with("Error: "));
    }
    let (st, _, _) = get(&u, "/logPage/?appId=app-2&executorId=0&logType=stderr").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}
