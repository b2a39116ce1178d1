//! The master's and the workers' web UIs on real processes: every route, escaping of what
//! users control, `/json` checked field by field against Spark's captures, kills, the
//! reverse proxy, and slow UI clients that must not delay scheduling.

use std::time::{Duration, Instant};

use flint_domain::types::*;
use flint_tests::*;
use serde_json::Value;

const XSS: &str = "<script>alert(1)</script>";
const ESCAPED: &str = "&lt;script&gt;alert(1)&lt;/script&gt;";

fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture json")
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Same fields with the same JSON types, recursively (arrays: every element against the
/// reference's first element). Values are checked separately.
fn same_shape(got: &Value, want: &Value, path: &str) {
    assert_eq!(kind(got), kind(want), "{path}: type");
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            let gk: Vec<&String> = g.keys().collect();
            let wk: Vec<&String> = w.keys().collect();
            assert_eq!(gk, wk, "{path}: fields");
            for (k, wv) in w {
                same_shape(&g[k], wv, &format!("{path}.{k}"));
            }
        }
        (Value::Array(g), Value::Array(w)) => {
            if let Some(w0) = w.first() {
                for (i, x) in g.iter().enumerate() {
                    same_shape(x, w0, &format!("{path}[{i}]"));
                }
            }
        }
        _ => {}
    }
}

fn shell_app(name: &str, script: &str) -> AppDescription {
    let mut a = app(name, Some(1), 256, Some(2), shell(script));
    a.user = XSS.into();
    a
}

async fn form_post(url: &str, body: &str) -> HttpResponse {
    http(
        "POST",
        url,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_and_worker_uis_serve_every_route_escaped() {
    let mut c = Cluster::master(&[]);
    c.add_worker(WorkerSpec {
        cores: 2,
        memory: "2g",
    });
    c.add_worker(WorkerSpec {
        cores: 2,
        memory: "2g",
    });
    let ui = c.webui_url();
    let mut client = c.client().await;
    let session = client
        .register_application(
            shell_app(
                XSS,
                "echo \"hello-from-{{EXECUTOR_ID}} <b>bold</b>\"; echo err-{{EXECUTOR_ID}} >&2; exec sleep 1000",
            ),
            "",
        )
        .await
        .expect("register");
    let app_id = session.app_id().clone();
    let (driver_id, _) = client
        .submit_driver(DriverDescription {
            name: XSS.into(),
            app_resource: String::new(),
            app_sha256: None,
            command: shell("echo driver-says-hi; exec sleep 1000"),
            cores: 1,
            memory_mb: 128,
            supervise: false,
        })
        .await
        .expect("driver");
    let s = c
        .wait_state("2 executors and the driver RUNNING", |s| {
            s.app(&app_id).is_some_and(|a| {
                a.executors.len() == 2
                    && a.executors
                        .iter()
                        .all(|e| e.state == ExecutorState::Running)
            }) && s
                .driver(&driver_id)
                .is_some_and(|d| d.state == DriverState::Running)
        })
        .await;

    // ---- master pages
    let page = wait_for("overview with the app", Duration::from_secs(10), || async {
        let r = http_get(&format!("{ui}/")).await;
        (r.status == 200 && r.text().contains(app_id.as_str())).then(|| r.text())
    })
    .await;
    assert!(!page.contains("<script>alert"), "raw markup on /");
    assert!(page.contains(ESCAPED));
    assert!(
        page.contains("<span id=\"alive-workers\">2</span>"),
        "{page}"
    );
    assert!(page.contains(&format!("href=\"/app/?appId={app_id}\"")));
    for w in &c.worker_ids {
        assert!(page.contains(w.as_str()));
    }
    let app_page = http_get(&format!("{ui}/app/?appId={app_id}")).await;
    assert_eq!(app_page.status, 200);
    let app_page = app_page.text();
    assert!(!app_page.contains("<script>alert") && app_page.contains(ESCAPED));
    assert!(app_page.contains("Executor Summary (2)"));
    for n in 0..2 {
        let base = c.worker_webui_url(n);
        assert!(
            app_page.contains(&format!(
                "href=\"{base}/logPage/?appId={app_id}&amp;executorId="
            )),
            "{app_page}"
        );
    }
    let redirect = http_get(&format!("{ui}/app?appId={app_id}")).await;
    assert_eq!(redirect.status, 302);
    assert_eq!(
        redirect.header("location"),
        Some(format!("/app/?appId={app_id}").as_str())
    );
    let d = http_get(&format!("{ui}/driver/?driverId={driver_id}")).await;
    assert_eq!(d.status, 200);
    let dt = d.text();
    assert!(!dt.contains("<script>alert") && dt.contains(ESCAPED));
    assert!(
        dt.contains("/logPage/?driverId="),
        "driver page links to its logs"
    );
    for (uri, status) in [
        ("/app/?appId=nope", 404),
        ("/app/", 400),
        ("/driver/?driverId=nope", 404),
        ("/nope", 404),
        ("/healthz", 200),
        ("/readyz", 200),
        ("/static/flint.js", 200),
        ("/static/flint.css", 200),
        ("/proxy/x/", 404),
    ] {
        assert_eq!(
            http_get(&format!("{ui}{uri}")).await.status,
            status,
            "{uri}"
        );
    }

    // ---- /json, field by field against Spark's capture, values against the cluster
    for path in ["/json", "/json/"] {
        let r = http_get(&format!("{ui}{path}")).await;
        assert_eq!(r.header("content-type"), Some("text/json;charset=utf-8"));
        let j: Value = serde_json::from_str(&r.text()).expect("json");
        same_shape(&j, &fixture("master-json-sample.json"), "master");
        assert_eq!(j["url"], c.master_url.as_str());
        assert_eq!(j["status"], "ALIVE");
        assert_eq!(
            (
                j["aliveworkers"].as_u64(),
                j["cores"].as_u64(),
                j["memory"].as_u64()
            ),
            (Some(2), Some(4), Some(4096))
        );
        let a = &j["activeapps"][0];
        assert_eq!(
            (a["id"].as_str(), a["name"].as_str(), a["user"].as_str()),
            (Some(app_id.as_str()), Some(XSS), Some(XSS))
        );
        assert_eq!(
            (
                a["cores"].as_u64(),
                a["memoryperexecutor"].as_u64(),
                a["state"].as_str()
            ),
            (Some(2), Some(256), Some("RUNNING"))
        );
        assert_eq!(
            a["submitdate"],
            flint_domain::ids::java_date(s.app(&app_id).expect("app").start_time_ms)
        );
        let dj = &j["activedrivers"][0];
        assert_eq!(dj["id"], driver_id.as_str());
        assert!(dj["starttime"].is_string());
        assert_eq!(dj["mainclass"], XSS);
        let workers = j["workers"].as_array().expect("workers");
        assert_eq!(workers.len(), 2);
        for w in workers {
            let id = WorkerId(w["id"].as_str().unwrap_or_default().into());
            let n = c
                .worker_ids
                .iter()
                .position(|x| *x == id)
                .expect("known worker");
            assert_eq!(w["webuiaddress"], c.worker_webui_url(n).as_str());
            assert_eq!(
                w["coresfree"].as_u64().unwrap_or(9) + w["coresused"].as_u64().unwrap_or(9),
                2
            );
        }
        assert_eq!(j["coresused"], 3);
        assert_eq!(j["resources"], serde_json::json!([{}, {}]));
    }

    // ---- /metrics
    let m = http_get(&format!("{ui}/metrics")).await;
    assert!(
        m.header("content-type")
            .unwrap_or("")
            .starts_with("application/openmetrics-text")
    );
    let m = m.text();
    for line in [
        "flint_master_workers{state=\"ALIVE\"} 2",
        "flint_master_applications{state=\"RUNNING\"} 1",
        "flint_master_drivers{state=\"RUNNING\"} 1",
        "flint_master_executors{state=\"RUNNING\"} 2",
        "flint_master_cores 4",
        "flint_master_cores_used 3",
        "flint_master_memory_bytes 4294967296",
        "flint_master_app_time_to_running_seconds_count 1",
        "flint_master_status{status=\"ALIVE\"} 1",
        "metrics_master_aliveWorkers_Value{type=\"gauges\"} 2",
    ] {
        assert!(m.contains(line), "missing {line} in\n{m}");
    }
    assert!(m.contains("flint_master_worker_heartbeat_lag_max_seconds "));

    // ---- worker pages
    let executor_on = |n: usize| {
        s.app(&app_id)
            .expect("app")
            .executors
            .iter()
            .find(|e| e.worker_id == c.worker_ids[n])
            .map(|e| e.executor_id)
            .expect("an executor on each worker")
    };
    for n in 0..2 {
        let wui = c.worker_webui_url(n);
        let page = http_get(&format!("{wui}/")).await;
        assert_eq!(page.status, 200);
        let page = page.text();
        assert!(
            !page.contains("<script>alert") && page.contains(ESCAPED),
            "worker {n}"
        );
        assert!(page.contains(c.worker_ids[n].as_str()));
        assert!(page.contains("Running Executors (1)"));
        let j: Value =
            serde_json::from_str(&http_get(&format!("{wui}/json/")).await.text()).expect("json");
        same_shape(
            &j,
            &fixture("standalone-worker-json-running.json"),
            "worker",
        );
        assert_eq!(j["id"], c.worker_ids[n].as_str());
        assert_eq!(j["masterurl"], c.master_url.as_str());
        assert_eq!(j["masterwebuiurl"], ui.as_str());
        assert_eq!(j["executors"][0]["appid"], app_id.as_str());
        assert_eq!(j["executors"][0]["appdesc"]["name"], XSS);
        let e = executor_on(n);
        let log = wait_for(
            "executor output in the log page",
            Duration::from_secs(10),
            || async {
                let r = http_get(&format!(
                    "{wui}/logPage/?appId={app_id}&executorId={e}&logType=stdout"
                ))
                .await;
                (r.status == 200 && r.text().contains(&format!("hello-from-{e}"))).then(|| r.text())
            },
        )
        .await;
        assert!(
            log.contains("&lt;b&gt;bold&lt;/b&gt;"),
            "log text is escaped"
        );
        let raw = http_get(&format!(
            "{wui}/log/?appId={app_id}&executorId={e}&logType=stderr"
        ))
        .await;
        let body = raw.text();
        let total = format!("err-{e}\n").len();
        let dir = c.work_dir(n).canonicalize().expect("work dir");
        assert_eq!(
            body,
            format!(
                "==== Bytes 0-{total} of {total} of {}/{app_id}/{e}/stderr ====\nerr-{e}\n",
                dir.display()
            )
        );
        for q in [
            format!("appId=..%2F..&executorId={e}&logType=stdout"),
            format!("appId={app_id}&executorId={e}&logType=..%2F..%2Fetc%2Fpasswd"),
            "driverId=..%2F..%2F..%2Fetc&logType=stdout".into(),
        ] {
            assert_eq!(
                http_get(&format!("{wui}/logPage/?{q}")).await.status,
                400,
                "{q}"
            );
            assert_eq!(
                http_get(&format!("{wui}/log/?{q}")).await.status,
                400,
                "{q}"
            );
        }
        let wm = http_get(&format!("{wui}/metrics")).await.text();
        assert!(wm.contains("flint_worker_registered 1"), "{wm}");
        assert_eq!(http_get(&format!("{wui}/readyz")).await.status, 200);
        assert_eq!(http_get(&format!("{wui}/healthz")).await.status, 200);
    }
    // The driver's log, on whichever worker runs it.
    let dw = s
        .driver(&driver_id)
        .and_then(|d| d.worker_id.clone())
        .expect("placed");
    let n = c.worker_ids.iter().position(|w| *w == dw).expect("worker");
    let wui = c.worker_webui_url(n);
    wait_for("driver output", Duration::from_secs(10), || async {
        let r = http_get(&format!(
            "{wui}/logPage/?driverId={driver_id}&logType=stdout"
        ))
        .await;
        r.text().contains("driver-says-hi").then_some(())
    })
    .await;

    // ---- kills from the UI: a form POST, answered with a redirect to the overview
    let r = form_post(
        &format!("{ui}/app/kill/"),
        &format!("id={app_id}&terminate=true"),
    )
    .await;
    assert_eq!((r.status, r.header("location")), (302, Some("/")));
    let j = wait_for("app KILLED in /json", Duration::from_secs(10), || async {
        let j: Value = serde_json::from_str(&http_get(&format!("{ui}/json")).await.text()).ok()?;
        (j["completedapps"][0]["state"] == "KILLED").then_some(j)
    })
    .await;
    assert_eq!(j["completedapps"][0]["id"], app_id.as_str());
    assert_eq!(j["activeapps"], serde_json::json!([]));
    let again = form_post(
        &format!("{ui}/app/kill/"),
        &format!("id={app_id}&terminate=true"),
    )
    .await;
    assert_eq!(again.status, 409, "killing a finished app");
    let r = form_post(
        &format!("{ui}/driver/kill/?id={driver_id}&terminate=true"),
        "",
    )
    .await;
    assert_eq!(r.status, 302);
    c.wait_state("driver KILLED", |s| {
        s.driver(&driver_id)
            .is_some_and(|d| d.state == DriverState::Killed)
    })
    .await;
    // The finished executor shows up as finished on its worker.
    let wui = c.worker_webui_url(0);
    wait_for(
        "finished executor on the worker page",
        Duration::from_secs(10),
        || async {
            http_get(&format!("{wui}/"))
                .await
                .text()
                .contains("Finished Executors (1)")
                .then_some(())
        },
    )
    .await;
    drop(session);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_disabled_refuses_and_hides_the_buttons() {
    let mut c = Cluster::master(&[("spark.ui.killEnabled", "false")]);
    c.add_worker(WorkerSpec {
        cores: 1,
        memory: "1g",
    });
    let ui = c.webui_url();
    let mut client = c.client().await;
    let session = client
        .register_application(shell_app("quiet", "exec sleep 1000"), "")
        .await
        .expect("register");
    let id = session.app_id().clone();
    let page = wait_for("app on the page", Duration::from_secs(10), || async {
        let t = http_get(&format!("{ui}/")).await.text();
        t.contains(id.as_str()).then_some(t)
    })
    .await;
    assert!(!page.contains("/app/kill/"));
    let r = form_post(
        &format!("{ui}/app/kill/"),
        &format!("id={id}&terminate=true"),
    )
    .await;
    assert_eq!(r.status, 403);
    let s = c.state().await;
    assert!(!s.app(&id).expect("app").state.is_finished());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverse_proxy_serves_worker_pages_and_logs_through_the_master() {
    let mut c = Cluster::master(&[("spark.ui.reverseProxy", "true")]);
    let w = c.add_worker(WorkerSpec {
        cores: 1,
        memory: "1g",
    });
    let ui = c.webui_url();
    let mut client = c.client().await;
    let session = client
        .register_application(
            shell_app("proxied", "echo through-the-proxy; exec sleep 1000"),
            "",
        )
        .await
        .expect("register");
    let id = session.app_id().clone();
    c.wait_state("executor running", |s| {
        s.app(&id).is_some_and(|a| {
            a.executors
                .iter()
                .any(|e| e.state == ExecutorState::Running)
        })
    })
    .await;
    let page = wait_for("overview", Duration::from_secs(10), || async {
        let t = http_get(&format!("{ui}/")).await.text();
        t.contains(id.as_str()).then_some(t)
    })
    .await;
    assert!(page.contains(&format!("href=\"/proxy/{w}/\"")), "{page}");
    let r = http_get(&format!("{ui}/proxy/{w}")).await;
    assert_eq!(
        (r.status, r.header("location")),
        (302, Some(format!("/proxy/{w}/").as_str()))
    );
    let wp = http_get(&format!("{ui}/proxy/{w}/")).await;
    assert_eq!(wp.status, 200);
    let wp = wp.text();
    assert!(wp.contains("Spark Worker at 127.0.0.1"));
    assert!(
        wp.contains(&format!(
            "href=\"/proxy/{w}/logPage/?appId={id}&amp;executorId=0&amp;logType=stdout\""
        )),
        "{wp}"
    );
    assert!(wp.contains(&format!("src=\"/proxy/{w}/static/flint.js\"")));
    assert!(
        wp.contains("href=\"/\""),
        "back-to-master points at the master itself"
    );
    let log = wait_for("log through the proxy", Duration::from_secs(10), || async {
        let r = http_get(&format!(
            "{ui}/proxy/{w}/logPage/?appId={id}&executorId=0&logType=stdout"
        ))
        .await;
        r.text().contains("through-the-proxy").then(|| r.text())
    })
    .await;
    assert!(log.contains(&format!("data-url=\"/proxy/{w}/log/?")) || !log.contains("data-url"));
    let css = http_get(&format!("{ui}/proxy/{w}/static/flint.css")).await;
    assert_eq!(
        (css.status, css.header("content-type")),
        (200, Some("text/css; charset=utf-8"))
    );
    let j = http_get(&format!("{ui}/proxy/{w}/json/")).await;
    assert_eq!(j.header("content-type"), Some("text/json;charset=utf-8"));
    // The worker's 400 for traversal comes through as a 400.
    let bad = http_get(&format!(
        "{ui}/proxy/{w}/logPage/?driverId=..&logType=stdout"
    ))
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        http_get(&format!("{ui}/proxy/worker-unknown/"))
            .await
            .status,
        404
    );
    drop(session);
}

/// Many UI clients that never finish their request, and many that never read their
/// answer, while an application registers: its executors still start. Pages render from
/// published snapshots, so nothing they do can hold the master's state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_ui_clients_never_delay_scheduling() {
    use tokio::io::AsyncWriteExt;
    let mut c = Cluster::master(&[]);
    c.add_worker(WorkerSpec {
        cores: 2,
        memory: "2g",
    });
    let ui = c.webui_url();
    let auth = ui.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for i in 0..300 {
        let mut s = tokio::net::TcpStream::connect(&auth)
            .await
            .expect("connect");
        if i % 2 == 0 {
            // Slowloris: half a request line, never finished.
            s.write_all(b"GET /json HTTP/1.1\r\nHost: x\r\n")
                .await
                .expect("write");
        } else {
            // Complete requests, pipelined, whose answers are never read.
            for _ in 0..20 {
                s.write_all(
                    b"GET /json HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
                )
                .await
                .expect("write");
            }
        }
        held.push(s);
    }
    let t0 = Instant::now();
    let mut client = c.client().await;
    let session = client
        .register_application(shell_app("busy-ui", "exec sleep 1000"), "")
        .await
        .expect("register");
    let id = session.app_id().clone();
    let s = c
        .wait_state("executors RUNNING despite the stuck UI clients", |s| {
            s.app(&id).is_some_and(|a| {
                a.executors.len() == 2
                    && a.executors
                        .iter()
                        .all(|e| e.state == ExecutorState::Running)
            })
        })
        .await;
    let observed = t0.elapsed();
    let ttr = s.app(&id).and_then(|a| a.time_to_running_ms);
    eprintln!(
        "with 300 stuck UI connections: executors RUNNING after {observed:?} (master: time_to_running_ms={ttr:?})"
    );
    // The UI still answers a well-behaved client.
    wait_for(
        "the UI answers and shows the app",
        Duration::from_secs(10),
        || async {
            let r = http_get(&format!("{ui}/json")).await;
            (r.status == 200 && r.text().contains(id.as_str())).then_some(())
        },
    )
    .await;
    drop(held);
    drop(session);
}
