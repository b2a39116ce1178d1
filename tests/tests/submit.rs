//! `flint-submit` end to end: client and cluster deploy modes, artifact upload and
//! verification, `--wait`, `logs`, `--kill`, `--status`, and bad input.

use std::time::Duration;

use flint_domain::types::*;
use flint_tests::*;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_mode_uploads_runs_waits_and_keeps_the_log() {
    let mut c = Cluster::master(&[]);
    c.add_worker(WorkerSpec {
        cores: 2,
        memory: "2g",
    });
    let app = c.dir.path().join("hello-app");
    write_script(
        &app,
        "echo \"args: $*\"; echo \"role=$FLINT_ROLE mode=$FLINT_DEPLOY_MODE\"; echo \"$FLINT_CONF\" | grep spark.app.name; echo to-stderr >&2; exit 3",
    );
    let url = c.master_url.clone();
    let out = flint_submit(
        &[
            "--master",
            &url,
            "--deploy-mode",
            "cluster",
            "--name",
            "hello",
            "--driver-memory",
            "256m",
            "--wait",
            app.to_str().expect("path"),
            "a",
            "b",
        ],
        &[],
    );
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "exit code is the driver's\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("args: a b"), "{stdout}");
    assert!(stdout.contains("role=driver mode=cluster"), "{stdout}");
    assert!(stdout.contains("spark.app.name=hello"), "{stdout}");
    assert!(
        stderr.contains("Driver successfully submitted as driver-"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Uploaded") && stderr.contains("flint://"),
        "{stderr}"
    );
    assert!(stderr.contains("FAILED"), "{stderr}");
    let id = stdout
        .lines()
        .find(|l| l.starts_with("driver-"))
        .expect("driver id printed")
        .to_owned();

    // The driver's output stays readable afterwards, through the master.
    let logs = flint_submit(&["logs", &id, "--master", &url], &[]);
    assert_eq!(logs.status.code(), Some(0), "{}", text(&logs.stderr));
    assert!(text(&logs.stdout).contains("args: a b"));
    let err_log = flint_submit(&["logs", &id, "--stderr", "--master", &url], &[]);
    assert_eq!(text(&err_log.stdout), "to-stderr\n");
    // As the README writes it: the options before the subcommand.
    let readme = flint_submit(&["--master", &url, "logs", &id], &[]);
    assert_eq!(readme.status.code(), Some(0), "{}", text(&readme.stderr));
    assert!(text(&readme.stdout).contains("args: a b"));
    let st = flint_submit(&["--status", &id, "--master", &url], &[]);
    assert_eq!(st.status.code(), Some(0));
    assert!(
        text(&st.stdout).contains(&format!("Driver {id} is FAILED")),
        "{}",
        text(&st.stdout)
    );

    // The artifact was cached by the worker under its digest and ran from there.
    let s = c.state().await;
    let d = s.driver(&DriverId(id.clone())).expect("driver");
    assert!(d.desc.app_resource.starts_with("flint://"));
    let sha = d.desc.app_sha256.clone().expect("sha");
    assert!(
        c.work_dir(0)
            .join(".artifacts")
            .join(&sha)
            .join("hello-app")
            .is_file()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_artifact_is_refused_by_the_worker() {
    let mut c = Cluster::master(&[]);
    c.add_worker(WorkerSpec {
        cores: 2,
        memory: "2g",
    });
    let store = c.artifacts_dir();
    let app = c.dir.path().join("victim");
    write_script(&app, &format!("echo should-not-run-{}", std::process::id()));
    // Upload it, then damage the stored copy: what the worker receives no longer matches.
    let mut client = c.client().await;
    let (_uri, sha) = client.upload_artifact(&app).await.expect("upload");
    let stored = store.join(&sha);
    assert!(stored.is_file(), "artifact stored at {}", stored.display());
    std::fs::write(&stored, b"#!/bin/sh\necho evil\n").expect("corrupt");
    let url = c.master_url.clone();
    let out = flint_submit(
        &[
            "--master",
            &url,
            "--deploy-mode",
            "cluster",
            "--wait",
            app.to_str().expect("path"),
        ],
        &[],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("ERROR") && stderr.contains("checksum mismatch"),
        "{stderr}"
    );
    assert!(!text(&out.stdout).contains("evil"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_and_status_of_a_running_cluster_driver() {
    let mut c = Cluster::master(&[]);
    c.add_worker(WorkerSpec {
        cores: 2,
        memory: "2g",
    });
    let app = c.dir.path().join("sleeper");
    write_script(&app, "echo started; exec sleep 1000");
    let url = c.master_url.clone();
    let out = flint_submit(
        &[
            "--master",
            &url,
            "--deploy-mode",
            "cluster",
            app.to_str().expect("path"),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "returns at once without --wait");
    let id = text(&out.stdout).trim().to_owned();
    assert!(id.starts_with("driver-"), "{id}");
    c.wait_state("driver running", |s| {
        s.driver(&DriverId(id.clone()))
            .is_some_and(|d| d.state == DriverState::Running)
    })
    .await;
    let st = flint_submit(&["--status", &id, "--master", &url], &[]);
    assert!(
        text(&st.stdout).contains("is RUNNING on worker worker-"),
        "{}",
        text(&st.stdout)
    );
    let k = flint_submit(&["--kill", &id, "--master", &url], &[]);
    assert_eq!(k.status.code(), Some(0), "{}", text(&k.stderr));
    assert_eq!(
        text(&k.stdout).trim(),
        format!("Kill request for {id} submitted")
    );
    c.wait_state("driver killed", |s| {
        s.driver(&DriverId(id.clone()))
            .is_some_and(|d| d.state == DriverState::Killed)
    })
    .await;
    // Killing again: a clear error, non-zero.
    let k = flint_submit(&["--kill", &id, "--master", &url], &[]);
    assert_eq!(k.status.code(), Some(1));
    assert!(
        text(&k.stderr).contains("already finished"),
        "{}",
        text(&k.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_mode_runs_the_driver_here_with_its_exit_code() {
    let c = Cluster::master(&[]);
    let app = c.dir.path().join("local-driver");
    write_script(
        &app,
        "echo \"master=$FLINT_MASTER_URL mode=$FLINT_DEPLOY_MODE\"; exit 7",
    );
    let url = c.master_url.clone();
    let out = flint_submit(&["--master", &url, app.to_str().expect("path")], &[]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(text(&out.stdout), format!("master={url} mode=client\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervised_cluster_driver_is_relaunched() {
    let mut c = Cluster::master(&[]);
    c.add_worker(WorkerSpec {
        cores: 2,
        memory: "2g",
    });
    let count = c.dir.path().join("runs");
    let app = c.dir.path().join("crashy");
    write_script(&app, &format!("echo run >> {}; exit 1", count.display()));
    let url = c.master_url.clone();
    let out = flint_submit(
        &[
            "--master",
            &url,
            "--deploy-mode",
            "cluster",
            "--supervise",
            app.to_str().expect("path"),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let id = text(&out.stdout).trim().to_owned();
    wait_for("two runs", Duration::from_secs(20), || async {
        (std::fs::read_to_string(&count).ok()?.lines().count() >= 2).then_some(())
    })
    .await;
    let k = flint_submit(&["--kill", &id, "--master", &url], &[]);
    assert_eq!(k.status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_exits_non_zero_with_one_line_and_changes_nothing() {
    let mut c = Cluster::master(&[]);
    c.add_worker(WorkerSpec {
        cores: 2,
        memory: "2g",
    });
    let app = c.dir.path().join("ok-app");
    write_script(&app, "echo hi");
    let a = app.to_str().expect("path").to_owned();
    let url = c.master_url.clone();
    let before = c.state().await;
    // A port nothing listens on.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let dead_url = format!("spark://127.0.0.1:{dead}");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--master", &url, "--conf", "spark.executor.memory", &a],
            "PROP=VALUE",
        ),
        (
            vec!["--master", &url, "--frobnicate", &a],
            "unknown option --frobnicate",
        ),
        (
            vec!["--master", &dead_url, "--deploy-mode", "cluster", &a],
            "cannot connect to master",
        ),
        (vec!["--master", &dead_url, &a], "cannot connect to master"),
        (
            vec!["--master", &url, "--deploy-mode", "cluster", "/no/such/app"],
            "app file not found",
        ),
        (vec!["--master", &url, "/no/such/app"], "app file not found"),
        (
            vec!["--master", &url, "--executor-memory", "2048", &a],
            "missing a M/G",
        ),
        (
            vec!["--master", &url, "--status", "driver-nope"],
            "does not exist",
        ),
        (
            vec!["--master", &url, "--kill", "driver-nope"],
            "does not exist",
        ),
        (vec![&a], "no master URL"),
    ];
    for (args, needle) in cases {
        let out = flint_submit(&args, &[]);
        let err = text(&out.stderr);
        assert!(
            out.status.code().is_some_and(|c| c != 0),
            "{args:?} should fail"
        );
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "one line for {args:?}: {err}"
        );
        assert!(err.starts_with("flint-submit: "), "{err}");
    }
    let after = c.state().await;
    assert!(after.active_drivers.is_empty() && after.completed_drivers.is_empty());
    assert!(after.active_apps.is_empty() && after.completed_apps.is_empty());
    assert_eq!(before.workers.len(), after.workers.len());
    // --help is complete.
    let help = flint_submit(&["--help"], &[]);
    assert_eq!(help.status.code(), Some(0));
    let h = text(&help.stdout);
    for flag in [
        "--master",
        "--deploy-mode",
        "--name",
        "--executor-cores",
        "--executor-memory",
        "--total-executor-cores",
        "--driver-cores",
        "--driver-memory",
        "--supervise",
        "--conf",
        "--properties-file",
        "--kill",
        "--status",
        "--wait",
        "logs",
    ] {
        assert!(h.contains(flag), "help lacks {flag}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pi_in_cluster_mode_prints_the_result_and_logs_keep_it() {
    let mut c = Cluster::master(&[]);
    c.add_worker(WorkerSpec {
        cores: 2,
        memory: "2g",
    });
    c.add_worker(WorkerSpec {
        cores: 2,
        memory: "2g",
    });
    let url = c.master_url.clone();
    let pi = bin("pi");
    // The driver runs on a worker from the uploaded binary; its executors get the same
    // artifact (no shared filesystem assumed).
    let out = flint_submit(
        &[
            "--master",
            &url,
            "--deploy-mode",
            "cluster",
            "--executor-memory",
            "256m",
            "--driver-memory",
            "256m",
            "--conf",
            "spark.driver.host=127.0.0.1",
            "--wait",
            pi.to_str().expect("path"),
            "10",
        ],
        &[],
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("Pi is roughly 3.1"), "{stdout}");
    let id = stdout
        .lines()
        .find(|l| l.starts_with("driver-"))
        .expect("driver id")
        .to_owned();
    let logs = flint_submit(&["logs", &id, "--master", &url], &[]);
    assert!(
        text(&logs.stdout).contains("Pi is roughly 3.1"),
        "{}",
        text(&logs.stdout)
    );
    // Executors ran from the shipped artifact, not from the build directory.
    let s = c.state().await;
    let app = s.completed_apps.first().expect("the pi application");
    assert!(
        app.desc.command.program.starts_with("flint://"),
        "{}",
        app.desc.command.program
    );
    assert_eq!(app.state, ApplicationState::Finished);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pi_in_client_mode_ships_its_binary_and_prints_the_result() {
    let mut c = Cluster::master(&[]);
    c.add_worker(WorkerSpec {
        cores: 2,
        memory: "2g",
    });
    c.add_worker(WorkerSpec {
        cores: 2,
        memory: "2g",
    });
    let url = c.master_url.clone();
    let pi = bin("pi");
    let out = flint_submit(
        &[
            "--master",
            &url,
            "--executor-memory",
            "256m",
            "--conf",
            "spark.driver.host=127.0.0.1",
            pi.to_str().expect("path"),
            "10",
        ],
        &[],
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("Pi is roughly 3.1"), "{stdout}");
    let s = c.state().await;
    let app = s.completed_apps.first().expect("the pi application");
    assert!(app.desc.command.program.starts_with("flint://"));
    let executors = app.removed_executors.len();
    assert!(executors >= 2, "{executors} executors");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_and_status_through_the_rest_port() {
    let mut c = Cluster::master(&[
        ("spark.master.rest.enabled", "true"),
        ("spark.master.rest.port", "0"),
    ]);
    c.add_worker(WorkerSpec {
        cores: 2,
        memory: "2g",
    });
    let rest = c.rest_url().expect("rest url");
    let rest_port = rest.rsplit(':').next().expect("port").to_owned();
    let app = c.dir.path().join("sleeper");
    write_script(&app, "exec sleep 1000");
    let url = c.master_url.clone();
    let out = flint_submit(
        &[
            "--master",
            &url,
            "--deploy-mode",
            "cluster",
            app.to_str().expect("path"),
        ],
        &[],
    );
    let id = text(&out.stdout).trim().to_owned();
    c.wait_state("driver running", |s| {
        s.driver(&DriverId(id.clone()))
            .is_some_and(|d| d.state == DriverState::Running)
    })
    .await;
    // As spark-submit: --status/--kill against the REST port speak Spark's REST protocol.
    let port_conf = format!("spark.master.rest.port={rest_port}");
    let st = flint_submit(
        &["--master", &rest, "--conf", &port_conf, "--status", &id],
        &[],
    );
    assert_eq!(st.status.code(), Some(0), "{}", text(&st.stderr));
    assert!(
        text(&st.stdout).contains(&format!("Driver {id} is RUNNING on worker worker-")),
        "{}",
        text(&st.stdout)
    );
    // Not told which port is the REST one: the REST server answers the gRPC attempt and
    // flint-submit speaks REST to it.
    let st = flint_submit(&["--master", &rest, "--status", &id], &[]);
    assert_eq!(st.status.code(), Some(0), "{}", text(&st.stderr));
    assert!(
        text(&st.stdout).contains(&format!("Driver {id} is RUNNING on worker worker-")),
        "{}",
        text(&st.stdout)
    );
    let k = flint_submit(
        &["--master", &rest, "--conf", &port_conf, "--kill", &id],
        &[],
    );
    assert_eq!(k.status.code(), Some(0), "{}", text(&k.stderr));
    assert_eq!(
        text(&k.stdout).trim(),
        format!("Kill request for {id} submitted")
    );
    c.wait_state("driver killed", |s| {
        s.driver(&DriverId(id.clone()))
            .is_some_and(|d| d.state == DriverState::Killed)
    })
    .await;
    let st = flint_submit(
        &[
            "--master",
            &rest,
            "--conf",
            &port_conf,
            "--status",
            "driver-nope",
        ],
        &[],
    );
    assert_eq!(st.status.code(), Some(1));
}
