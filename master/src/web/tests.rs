//! The master UI's routes without a socket (`Router::oneshot`), on hand-made snapshots.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use flint_domain::types::*;
use tokio::sync::watch;
use tower::ServiceExt;

use super::*;
use crate::core::{CoreConfig, MasterState};

const XSS: &str = "<script>alert(1)</script>";

fn worker(id: &str, port: u16, cores_used: u32, mem_used: u64, hb: i64) -> WorkerView {
    WorkerView {
        id: WorkerId(id.into()),
        host: "127.0.0.1".into(),
        port,
        webui_url: "http://127.0.0.1:8081".into(),
        cores: 2,
        cores_used,
        memory_mb: 2048,
        memory_used_mb: mem_used,
        state: WorkerState::Alive,
        last_heartbeat_ms: hb,
        executors: vec![],
        driver_ids: vec![],
    }
}

fn app(
    id: &str,
    name: &str,
    start: i64,
    end: Option<i64>,
    cores: u32,
    state: ApplicationState,
) -> AppView {
    AppView {
        id: AppId(id.into()),
        desc: AppDescription {
            name: name.into(),
            user: "root".into(),
            cores_per_executor: None,
            memory_per_executor_mb: 512,
            max_cores: None,
            command: CommandSpec::default(),
            initial_executor_limit: None,
            app_ui_url: String::new(),
        },
        state,
        start_time_ms: start,
        end_time_ms: end,
        cores_granted: cores,
        executor_limit: 1,
        retry_count: 0,
        executors: vec![],
        removed_executors: vec![],
        waiting_reason: String::new(),
        driver_url: String::new(),
        time_to_running_ms: None,
    }
}

fn driver(id: &str, start: i64, state: DriverState, worker: &str) -> DriverView {
    DriverView {
        id: DriverId(id.into()),
        desc: DriverDescription {
            name: "JavaPi".into(),
            app_resource: "file:/srv/pi/javapi.jar".into(),
            app_sha256: None,
            command: CommandSpec {
                program: "java".into(),
                args: ["{{WORKER_URL}}", "{{USER_JAR}}", "JavaPi", "2"]
                    .map(String::from)
                    .to_vec(),
                env: Default::default(),
                launch: Launch::SparkJvm(Box::new(SparkJvm {
                    main_class: json::DRIVER_WRAPPER.into(),
                    java_opts: vec!["-Xmx512M".into()],
                    ..Default::default()
                })),
            },
            cores: 1,
            memory_mb: 512,
            supervise: false,
        },
        state,
        worker_id: Some(WorkerId(worker.into())),
        worker_host_port: Some("127.0.0.1:7078".into()),
        start_time_ms: start,
        message: None,
        exit_status: None,
        relaunched_as: None,
    }
}

const W: &str = "worker-20261122040251-127.0.0.1-7078";

/// The cluster of Spark's capture `standalone-master-json-cluster-running.json`.
fn spark_capture() -> (ClusterSnapshot, i64) {
    let running = app(
        "app-20261122040456-0001",
        "JavaPi",
        1795320296235,
        None,
        1,
        ApplicationState::Running,
    );
    let done = app(
        "app-20261122040305-0000",
        "JavaPi",
        1795320185549,
        Some(1795320185549 + 30735),
        2,
        ApplicationState::Finished,
    );
    let s = ClusterSnapshot {
        master_url: "spark://127.0.0.1:7077".into(),
        status: MasterStatus::Alive,
        webui_url: "http://127.0.0.1:8080".into(),
        workers: vec![worker(W, 7078, 2, 1024, 1795320291992)],
        active_apps: vec![running],
        completed_apps: vec![done],
        active_drivers: vec![driver(
            "driver-20261122040450-0001",
            1795320290354,
            DriverState::Running,
            W,
        )],
        completed_drivers: vec![driver(
            "driver-20261122040352-0000",
            1795320232109,
            DriverState::Killed,
            W,
        )],
    };
    (s, 1795320296235 + 5355)
}

#[test]
fn json_is_byte_for_byte_sparks() {
    let (s, now) = spark_capture();
    let want = include_str!("../../../tests/fixtures/standalone-master-json-cluster-running.json");
    assert_eq!(render_master_json(&s, now), want);
    // An idle cluster too (the empty containers' layout).
    let idle = ClusterSnapshot {
        workers: vec![worker(W, 7078, 0, 0, 1795320171983)],
        active_apps: vec![],
        completed_apps: vec![],
        active_drivers: vec![],
        completed_drivers: vec![],
        ..s
    };
    let want = include_str!("../../../tests/fixtures/standalone-master-json-idle.json");
    assert_eq!(render_master_json(&idle, now), want);
}

fn hostile() -> ClusterSnapshot {
    let (mut s, _) = spark_capture();
    s.active_apps[0].desc.name = XSS.into();
    s.active_apps[0].desc.user = XSS.into();
    s.active_apps[0].desc.app_ui_url = "javascript:alert(1)".into();
    s.active_apps[0].waiting_reason = XSS.into();
    s.active_apps[0].executors = vec![ExecutorView {
        app_id: s.active_apps[0].id.clone(),
        executor_id: 0,
        worker_id: WorkerId(W.into()),
        host_port: "127.0.0.1:7078".into(),
        cores: 1,
        memory_mb: 512,
        state: ExecutorState::Running,
        exit_status: None,
        message: Some(XSS.into()),
    }];
    s.completed_apps[0].desc.name = XSS.into();
    s.active_drivers[0].desc.name = XSS.into();
    s.active_drivers[0].desc.command.args[2] = XSS.into();
    s.active_drivers[0].message = Some(XSS.into());
    s
}

struct Ui {
    router: Router,
    _tx: watch::Sender<Arc<ClusterSnapshot>>,
}

fn ui(snap: ClusterSnapshot, cfg: WebConfig) -> Ui {
    let (handle, _task) = crate::actor::spawn(
        MasterState::new(CoreConfig::default()),
        std::future::pending(),
    );
    let (tx, rx) = watch::channel(Arc::new(snap));
    let state = WebState::new(handle, rx, cfg, Arc::new(MasterMetrics::new()));
    Ui {
        router: router(state),
        _tx: tx,
    }
}

async fn call(ui: &Ui, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    let resp = ui.router.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), 64 << 20)
        .await
        .expect("body");
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

async fn get(ui: &Ui, uri: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    call(ui, Request::get(uri).body(Body::empty()).expect("request")).await
}

fn post(uri: &str, body: &str, origin: Option<&str>) -> Request<Body> {
    let mut r = Request::post(uri)
        .header("host", "m:8080")
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(o) = origin {
        r = r.header("origin", o);
    }
    r.body(Body::from(body.to_owned())).expect("request")
}

#[tokio::test]
async fn every_page_escapes_what_users_control() {
    let u = ui(hostile(), WebConfig::default());
    let app_id = "app-20261122040456-0001";
    for uri in [
        "/".to_string(),
        format!("/app/?appId={app_id}"),
        "/app/?appId=app-20261122040305-0000".into(),
        "/driver/?driverId=driver-20261122040450-0001".into(),
        "/json".into(),
    ] {
        let (st, _, body) = get(&u, &uri).await;
        assert_eq!(st, StatusCode::OK, "{uri}");
        // JSON carries the name verbatim (it is data, served as text/json with nosniff).
        if uri != "/json" {
            assert!(
                !body.contains("<script>alert"),
                "{uri} has raw markup:\n{body}"
            );
        }
        assert!(
            !body.contains("javascript:"),
            "{uri} links a javascript: URL"
        );
        if uri != "/json" {
            assert!(
                body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
                "{uri}"
            );
        } else {
            assert!(body.contains("\"name\" : \"<script>alert(1)</script>\""));
        }
    }
    // Unknown ids are echoed escaped too.
    let (st, _, body) = get(&u, "/app/?appId=%3Cscript%3Ealert(1)%3C/script%3E").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(!body.contains("<script>alert") && body.contains("&lt;script&gt;"));
}

#[tokio::test]
async fn overview_has_spark_summary_and_tables() {
    let cfg = WebConfig {
        rest_url: Some("spark://m:6066".into()),
        ..WebConfig::default()
    };
    let u = ui(spark_capture().0, cfg);
    let (st, h, body) = get(&u, "/").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap_or("")
            .contains("script-src 'self'")
    );
    for needle in [
        "<title>Spark Master at spark://127.0.0.1:7077</title>",
        "REST URL:</strong> spark://m:6066",
        "<span id=\"alive-workers\">1</span>",
        "2 Total, 2 Used",
        "2.0 GiB Total, 1024.0 MiB Used",
        "Workers (1)",
        "Running Applications (1)",
        "Completed Applications (1)",
        "Running Drivers (1)",
        "Completed Drivers (1)",
        "href=\"/app/?appId=app-20261122040456-0001\"",
        "action=\"/app/kill/\"",
        "action=\"/driver/kill/\"",
        "href=\"http://127.0.0.1:8081/\"",
        "id=\"auto-refresh\"",
        "class=\"sortable\"",
        "<svg class=\"bar\"",
        "/static/flint.js",
    ] {
        assert!(body.contains(needle), "missing {needle}");
    }
    let (st, h, css) = get(&u, "/static/flint.css").await;
    assert_eq!(
        (st, h["content-type"].to_str().unwrap_or("")),
        (StatusCode::OK, "text/css; charset=utf-8")
    );
    assert!(css.contains("table.sortable"));
    assert_eq!(get(&u, "/static/nope.js").await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        get(&u, "/static/..%2Fmod.rs").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn json_routes_health_and_redirects() {
    let u = ui(spark_capture().0, WebConfig::default());
    for uri in ["/json", "/json/"] {
        let (st, h, body) = get(&u, uri).await;
        assert_eq!(
            (st, h["content-type"].to_str().unwrap_or("")),
            (StatusCode::OK, "text/json;charset=utf-8")
        );
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["aliveworkers"], 1);
    }
    assert_eq!(get(&u, "/healthz").await.0, StatusCode::OK);
    assert_eq!(get(&u, "/readyz").await.0, StatusCode::OK);
    let (st, h, _) = get(&u, "/app?appId=x").await;
    assert_eq!(
        (st, h["location"].to_str().unwrap_or("")),
        (StatusCode::FOUND, "/app/?appId=x")
    );
    let (st, h, _) = get(&u, "/driver").await;
    assert_eq!(
        (st, h["location"].to_str().unwrap_or("")),
        (StatusCode::FOUND, "/driver/")
    );
    let (st, h, m) = get(&u, "/metrics").await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        h["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("application/openmetrics-text")
    );
    assert!(m.contains("flint_master_workers{state=\"ALIVE\"} 1"));
    let (st, _, body) = get(&u, "/nope").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(body.contains("no such page"));
    // A standby master is alive but not ready.
    let standby = ui(
        ClusterSnapshot {
            status: MasterStatus::Standby,
            ..spark_capture().0
        },
        WebConfig::default(),
    );
    assert_eq!(
        get(&standby, "/readyz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(get(&standby, "/healthz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn bad_input_gets_4xx_pages_not_panics() {
    let u = ui(spark_capture().0, WebConfig::default());
    for (uri, want) in [
        ("/app/", StatusCode::BAD_REQUEST),
        ("/app/?appId=", StatusCode::BAD_REQUEST),
        ("/app/?appId=app-nope", StatusCode::NOT_FOUND),
        ("/app/?appId=%ZZ", StatusCode::NOT_FOUND),
        ("/driver/?driverId=nope", StatusCode::NOT_FOUND),
        ("/driver/", StatusCode::BAD_REQUEST),
        ("/proxy/worker-x/", StatusCode::NOT_FOUND),
    ] {
        let (st, h, body) = get(&u, uri).await;
        assert_eq!(st, want, "{uri}");
        assert_eq!(h["content-type"], "text/html; charset=utf-8", "{uri}");
        assert!(body.contains("<html"), "{uri}");
    }
    // Kills: missing id, missing terminate, unknown app, cross-site.
    for (body, origin, want) in [
        ("terminate=true", None, StatusCode::BAD_REQUEST),
        ("id=app-nope", None, StatusCode::BAD_REQUEST),
        ("id=app-nope&terminate=true", None, StatusCode::NOT_FOUND),
        (
            "id=app-nope&terminate=true",
            Some("http://m:8080"),
            StatusCode::NOT_FOUND,
        ),
        (
            "id=app-nope&terminate=true",
            Some("http://evil.example"),
            StatusCode::FORBIDDEN,
        ),
        ("%%%", None, StatusCode::BAD_REQUEST),
    ] {
        let (st, _, _) = call(&u, post("/app/kill/", body, origin)).await;
        assert_eq!(st, want, "{body} {origin:?}");
    }
    let (st, _, _) = call(
        &u,
        post("/driver/kill/?id=driver-nope&terminate=true", "", None),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // GET on a kill path is not allowed.
    assert_eq!(
        get(&u, "/app/kill/?id=x&terminate=true").await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn kill_disabled_hides_buttons_and_refuses() {
    let cfg = WebConfig {
        kill_enabled: false,
        ..WebConfig::default()
    };
    let u = ui(spark_capture().0, cfg);
    let (_, _, body) = get(&u, "/").await;
    assert!(!body.contains("/app/kill/") && !body.contains("/driver/kill/"));
    let (st, _, _) = call(
        &u,
        post(
            "/app/kill/",
            "id=app-20261122040456-0001&terminate=true",
            None,
        ),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn reverse_proxy_links_go_through_the_master() {
    let mut s = hostile();
    s.active_apps[0].executors[0].message = None;
    let cfg = WebConfig {
        reverse_proxy: true,
        ..WebConfig::default()
    };
    let u = ui(s, cfg);
    let (_, _, body) = get(&u, "/").await;
    assert!(body.contains(&format!("href=\"/proxy/{W}/\"")), "{body}");
    let (_, _, body) = get(&u, "/app/?appId=app-20261122040456-0001").await;
    assert!(body.contains(&format!(
        "href=\"/proxy/{W}/logPage/?appId=app-20261122040456-0001&amp;executorId=0&amp;logType=stdout\""
    )));
    let (st, h, _) = get(&u, &format!("/proxy/{W}")).await;
    assert_eq!(
        (st, h["location"].to_str().unwrap_or("")),
        (StatusCode::FOUND, format!("/proxy/{W}/").as_str())
    );
    // The worker at 127.0.0.1:8081 does not exist here: a 502 page, not a hang or a panic.
    let (st, _, _) = get(&u, &format!("/proxy/{W}/json")).await;
    assert!(
        st == StatusCode::BAD_GATEWAY || st == StatusCode::OK,
        "{st}"
    );
}
