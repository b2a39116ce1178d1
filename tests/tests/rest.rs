//! Spark's REST submission protocol against a real master (`spark.master.rest.enabled`):
//! create → status → kill with the exact JSON bodies of Spark's captured exchange, the
//! error answers, and the typed client `flint-submit --kill/--status` uses.

use std::time::Duration;

use flint_client::rest::{self, CreateSubmissionRequest};
use flint_domain::types::*;
use flint_tests::*;

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn http_base(rest_url: &str) -> String {
    format!(
        "http://{}",
        rest_url.strip_prefix("spark://").expect("spark:// URL")
    )
}

/// A master with REST on, and one worker whose `java` is a stand-in that records its
/// arguments and stays up like a driver would.
async fn cluster() -> (Cluster, String, std::path::PathBuf) {
    let mut c = Cluster::master(&[
        ("spark.master.rest.enabled", "true"),
        ("spark.master.rest.port", "0"),
    ]);
    let bin = c.dir.path().join("fakebin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let args = c.dir.path().join("java-args");
    write_script(
        &bin.join("java"),
        &format!(
            "for a in \"$@\"; do echo \"$a\"; done > {}.tmp; mv {0}.tmp {0}; echo driver-up; exec sleep 1000",
            args.display()
        ),
    );
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // A stand-in Spark install and the job's jar (the worker copies it next to the driver).
    let spark_home = c.dir.path().join("spark");
    std::fs::create_dir_all(spark_home.join("jars")).expect("spark home");
    let jobs = c.dir.path().join("jobs");
    std::fs::create_dir_all(&jobs).expect("jobs dir");
    std::fs::write(jobs.join("bench-sparkpi.jar"), b"PK").expect("jar");
    c.add_worker_with_env(
        WorkerSpec {
            cores: 2,
            memory: "2g",
        },
        &[
            ("PATH", &path),
            ("SPARK_HOME", &spark_home.display().to_string()),
        ],
    );
    let rest = c.rest_url().expect("rest_url in the master's log");
    (c, rest, args)
}

fn json_ok(r: &HttpResponse) -> String {
    assert_eq!(
        r.header("content-type"),
        Some("application/json;charset=utf-8"),
        "{r:?}"
    );
    r.text()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_status_kill_round_trip_with_sparks_exact_bodies() {
    let (c, rest_url, args_file) = cluster().await;
    let base = http_base(&rest_url);
    let worker = c.state().await.workers[0].clone();

    // create: the request spark-submit sent in the capture.
    let r = http(
        "POST",
        &format!("{base}/v1/submissions/create"),
        &[("Content-Type", "application/json")],
        fixture("rest-create-request.json")
            .replace(
                "/srv/jobs",
                &c.dir.path().join("jobs").display().to_string(),
            )
            .as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200);
    let body = json_ok(&r);
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    let id = v["submissionId"].as_str().expect("submissionId").to_owned();
    assert!(id.starts_with("driver-") && id.ends_with("-0000"), "{id}");
    assert_eq!(
        body,
        fixture("rest-create-response.json").replace("driver-20261122043840-0000", &id)
    );

    // The driver runs DriverWrapper through `java`, as Spark's worker would.
    let args = wait_for(
        "the driver's java command",
        Duration::from_secs(20),
        || async { std::fs::read_to_string(&args_file).ok() },
    )
    .await;
    let args: Vec<&str> = args.lines().collect();
    // The worker builds the JVM command from its own SPARK_HOME.
    assert_eq!(args[0], "-cp", "{args:?}");
    assert!(args[1].ends_with("/spark/jars/*"), "{args:?}");
    assert_eq!(args[2], "-Xmx1024M", "{args:?}");
    assert!(
        args.contains(&"-Dspark.app.name=Spark Pi REST (held)"),
        "{args:?}"
    );
    assert!(args.contains(&"--add-opens=java.base/java.lang=ALL-UNNAMED"));
    let w = args
        .iter()
        .position(|a| *a == "org.apache.spark.deploy.worker.DriverWrapper")
        .expect("DriverWrapper");
    assert_eq!(
        args[w + 1..],
        [
            format!("spark://Worker@127.0.0.1:{}", worker.port).as_str(),
            c.work_dir(0)
                .join(&id)
                .join("bench-sparkpi.jar")
                .display()
                .to_string()
                .as_str(),
            "bench.BenchSparkPi",
            "10",
            "45"
        ]
    );

    // status: RUNNING on our worker.
    let running = fixture("rest-status-running-response.json")
        .replace("driver-20261122043840-0000", &id)
        .replace("worker-20261122043751-127.0.0.1-17103", worker.id.as_str())
        .replace("127.0.0.1:17103", &format!("127.0.0.1:{}", worker.port));
    let status_url = format!("{base}/v1/submissions/status/{id}");
    let body = wait_for("driver RUNNING", Duration::from_secs(20), || async {
        let r = http_get(&status_url).await;
        let t = json_ok(&r);
        t.contains("\"RUNNING\"").then_some(t)
    })
    .await;
    assert_eq!(body, running);

    // The typed client sees the same.
    let st = rest::rest_status(&rest_url, &id).await.expect("status");
    assert_eq!(
        (
            st.success,
            st.driver_state.as_deref(),
            st.worker_id.as_deref()
        ),
        (true, Some("RUNNING"), Some(worker.id.as_str()))
    );

    // kill, then KILLED, then a second kill: "already finished".
    let r = http(
        "POST",
        &format!("{base}/v1/submissions/kill/{id}"),
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        json_ok(&r),
        fixture("rest-kill-response.json").replace("driver-20261122040450-0001", &id)
    );
    let killed = fixture("rest-status-killed-response.json")
        .replace("driver-20261122040450-0001", &id)
        .replace("worker-20261122040251-127.0.0.1-7078", worker.id.as_str())
        .replace("127.0.0.1:7078", &format!("127.0.0.1:{}", worker.port));
    let body = wait_for("driver KILLED", Duration::from_secs(20), || async {
        let t = http_get(&status_url).await.text();
        t.contains("\"KILLED\"").then_some(t)
    })
    .await;
    assert_eq!(body, killed);
    let k = rest::rest_kill(&rest_url, &id).await.expect("kill answer");
    assert!(!k.success);
    let again = http(
        "POST",
        &format!("{base}/v1/submissions/kill/{id}"),
        &[],
        b"",
    )
    .await;
    assert_eq!(
        json_ok(&again),
        fixture("rest-kill-finished-response.json").replace("driver-20261122043840-0000", &id)
    );

    // Unknown id: success false, nothing else.
    let r = http_get(&format!(
        "{base}/v1/submissions/status/driver-does-not-exist"
    ))
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(json_ok(&r), fixture("rest-status-unknown-response.json"));
    assert_eq!(
        c.state()
            .await
            .driver(&DriverId(id.clone()))
            .map(|d| d.state),
        Some(DriverState::Killed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_sparks_error_responses() {
    let (_c, rest_url, _) = cluster().await;
    let base = http_base(&rest_url);
    let r = http_get(&format!("{base}/")).await;
    assert_eq!(r.status, 400);
    assert_eq!(json_ok(&r), fixture("rest-error-missing-version.json"));
    let r = http_get(&format!("{base}/v2/submissions/status/x")).await;
    assert_eq!(r.status, 468);
    assert_eq!(json_ok(&r), fixture("rest-error-unknown-version.json"));
    for (path, needle) in [
        ("/v1", "Missing the /submissions prefix."),
        ("/v1/submissions/", "Missing an action"),
        (
            "/v1/submissions/status/",
            "Submission ID is missing in status request.",
        ),
    ] {
        let r = http_get(&format!("{base}{path}")).await;
        assert_eq!(r.status, 400, "{path}");
        assert!(json_ok(&r).contains(needle), "{path}: {}", r.text());
    }
    for body in [
        r#"{"action":"CreateSubmissionRequest"}"#,
        "not json",
        "[1,2]",
        r#"{"clientSparkVersion":"3.5.3"}"#,
        r#"{"action":"CreateSubmissionRequest","clientSparkVersion":"3.5.3","appResource":"x","appArgs":[],"environmentVariables":{},"mainClass":"M","sparkProperties":{"spark.app.name":"a","spark.driver.memory":"lots"}}"#,
    ] {
        let r = http(
            "POST",
            &format!("{base}/v1/submissions/create"),
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
        .await;
        assert_eq!(r.status, 400, "{body}");
        let v: serde_json::Value = serde_json::from_str(&json_ok(&r)).expect("json");
        assert_eq!(v["action"], "ErrorResponse");
        assert_eq!(v["serverSparkVersion"], "3.5.3");
        assert!(
            v["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("Malformed request: "),
            "{v}"
        );
    }
    // The typed client reports a server error with Spark's message.
    match rest::rest_status(&format!("spark://{}", &base[7..]), "").await {
        Err(rest::RestError::Server { status, response }) => {
            assert_eq!(status, 400);
            assert!(response.message.contains("Submission ID is missing"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_client_creates_and_unknown_fields_are_reported() {
    let (c, rest_url, _) = cluster().await;
    let mut props = std::collections::BTreeMap::new();
    props.insert("spark.app.name".to_owned(), "typed".to_owned());
    props.insert("spark.driver.memory".to_owned(), "256m".to_owned());
    props.insert("spark.driver.cores".to_owned(), "1".to_owned());
    let req = CreateSubmissionRequest::new(
        "local:///opt/app.jar",
        "com.example.Main",
        vec!["a".into()],
        props,
        Default::default(),
    );
    let r = rest::rest_create(&rest_url, &req).await.expect("create");
    assert!(r.success, "{r:?}");
    let id = r.submission_id.expect("id");
    let s = c
        .wait_state("driver placed", |s| {
            s.driver(&DriverId(id.clone()))
                .is_some_and(|d| d.state == DriverState::Running)
        })
        .await;
    let d = s.driver(&DriverId(id.clone())).expect("driver");
    assert_eq!(
        (d.desc.cores, d.desc.memory_mb, d.desc.name.as_str()),
        (1, 256, "typed")
    );
    // The web UI shows it with its main class (Spark's `mainclass` is DriverWrapper's 3rd arg).
    let ui = c.webui_url();
    wait_for("the driver in /json", Duration::from_secs(10), || async {
        let j = http_get(&format!("{ui}/json")).await.text();
        j.contains("\"mainclass\" : \"com.example.Main\"")
            .then_some(())
    })
    .await;
    let k = rest::rest_kill(&rest_url, &id).await.expect("kill");
    assert!(k.success);
    // Unknown fields are echoed back, as Spark does.
    let mut v = serde_json::to_value(&req).expect("value");
    v["someNewField"] = serde_json::json!(1);
    let r = http(
        "POST",
        &format!("{}/v1/submissions/create", http_base(&rest_url)),
        &[],
        v.to_string().as_bytes(),
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&r.text()).expect("json");
    assert_eq!(v["unknownFields"], serde_json::json!(["someNewField"]));
    // A master without REST: the client cannot connect (no fallback for --kill/--status).
    let err = rest::rest_status("spark://127.0.0.1:1", "driver-x")
        .await
        .expect_err("nothing listens");
    assert!(matches!(err, rest::RestError::Connect { .. }), "{err}");
}
