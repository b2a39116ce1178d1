//! End-to-end behaviour of the core cluster: real `flint-master` and `flint-worker`
//! processes on ephemeral ports, observed through the master's ClusterState.

use std::time::Duration;

use flint_domain::types::*;
use flint_tests::*;

const SLEEPER: &str = "exec sleep 1000";

fn per_worker(s: &ClusterSnapshot, app: &AppId, workers: &[WorkerId]) -> Vec<usize> {
    let a = s.app(app).expect("app");
    workers
        .iter()
        .map(|w| a.executors.iter().filter(|e| &e.worker_id == w).count())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spread_out_and_consolidate_place_four_single_core_executors() {
    for (spread, expected) in [("true", vec![2, 2]), ("false", vec![4, 0])] {
        let mut c = Cluster::master(&[("spark.deploy.spreadOut", spread)]);
        let w0 = c.add_worker(WorkerSpec::default());
        let w1 = c.add_worker(WorkerSpec::default());
        let s = c
            .wait_state("2 alive workers", |s| s.alive_workers().count() == 2)
            .await;
        assert_eq!(s.workers.len(), 2);
        for w in &s.workers {
            assert_eq!(
                (w.cores, w.memory_mb, w.state),
                (4, 4096, WorkerState::Alive)
            );
            assert!(
                w.id.as_str().starts_with("worker-")
                    && w.id.as_str().ends_with(&format!("-127.0.0.1-{}", w.port))
            );
        }
        let mut client = c.client().await;
        let session = client
            .register_application(app("four", Some(1), 256, Some(4), shell(SLEEPER)), "")
            .await
            .expect("register");
        let id = session.app_id().clone();
        assert!(
            id.as_str().starts_with("app-") && id.as_str().ends_with("-0000"),
            "{id}"
        );
        let s = c
            .wait_state("4 running executors", |s| {
                s.app(&id).is_some_and(|a| {
                    a.executors.len() == 4
                        && a.executors
                            .iter()
                            .all(|e| e.state == ExecutorState::Running)
                })
            })
            .await;
        let mut got = per_worker(&s, &id, &[w0.clone(), w1.clone()]);
        if spread == "false" {
            got.sort_unstable_by(|a, b| b.cmp(a));
        }
        assert_eq!(got, expected, "spreadOut={spread}");
        let a = s.app(&id).expect("app");
        assert_eq!((a.cores_granted, a.state), (4, ApplicationState::Running));
        let used: u32 = s.workers.iter().map(|w| w.cores_used).sum();
        assert_eq!(used, 4);
        session.unregister().await.expect("unregister");
        let s = c
            .wait_state("app finished and cores free", |s| {
                s.completed_apps
                    .iter()
                    .any(|a| a.id == id && a.state == ApplicationState::Finished)
                    && s.workers.iter().all(|w| w.cores_used == 0)
            })
            .await;
        assert!(s.active_apps.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executors_are_real_processes_with_placeholders_env_and_logs() {
    let mut c = Cluster::master(&[]);
    let w0 = c.add_worker(WorkerSpec {
        cores: 2,
        memory: "2g",
    });
    let out = c.dir.path().join("out");
    std::fs::create_dir_all(&out).expect("out dir");
    let script = format!(
        "echo \"{{{{EXECUTOR_ID}}}} {{{{APP_ID}}}} {{{{CORES}}}} {{{{HOSTNAME}}}} {{{{WORKER_URL}}}}\" > {o}/args-{{{{EXECUTOR_ID}}}}; \
         env > {o}/env-{{{{EXECUTOR_ID}}}}; echo hello-stdout; echo hello-stderr >&2; exec sleep 1000",
        o = out.display()
    );
    let mut client = c.client().await;
    let mut cmd = shell(&script);
    cmd.env
        .insert("MY_SETTING".into(), "exec-{{EXECUTOR_ID}}".into());
    let session = client
        .register_application(app("procs", None, 512, None, cmd), "flint://driver:1")
        .await
        .expect("register");
    let id = session.app_id().clone();
    let args = wait_for(
        "executor wrote its args",
        Duration::from_secs(20),
        || async {
            std::fs::read_to_string(out.join("args-0"))
                .ok()
                .filter(|s| s.ends_with('\n'))
        },
    )
    .await;
    let worker_port = c.state().await.workers[0].port;
    assert_eq!(
        args.trim(),
        format!("0 {id} 2 127.0.0.1 spark://Worker@127.0.0.1:{worker_port}")
    );
    let env = wait_for("executor env", Duration::from_secs(10), || async {
        std::fs::read_to_string(out.join("env-0"))
            .ok()
            .filter(|s| s.contains("FLINT_WORKER_URL"))
    })
    .await;
    for needle in [
        "FLINT_ROLE=executor".to_string(),
        "FLINT_EXECUTOR_ID=0".into(),
        format!("FLINT_APP_ID={id}"),
        "FLINT_EXECUTOR_CORES=2".into(),
        "FLINT_EXECUTOR_MEMORY_MB=512".into(),
        "SPARK_EXECUTOR_MEMORY=512m".into(),
        format!("FLINT_WORKER_ID={w0}"),
        "MY_SETTING=exec-0".into(),
        "SPARK_LOG_URL_STDOUT=".into(),
    ] {
        assert!(env.contains(&needle), "missing {needle} in:\n{env}");
    }
    // stdout and stderr are captured in work-dir/<app-id>/<executor-id>/
    let dir = c.work_dir(0).join(id.as_str()).join("0");
    let stdout = wait_for("stdout file", Duration::from_secs(10), || async {
        std::fs::read_to_string(dir.join("stdout"))
            .ok()
            .filter(|s| !s.is_empty())
    })
    .await;
    assert_eq!(stdout, "hello-stdout\n");
    let stderr = std::fs::read_to_string(dir.join("stderr")).expect("stderr");
    assert_eq!(stderr, "hello-stderr\n");
    // One executor per worker holding all its cores (executor cores unset).
    let s = c
        .wait_state("executor running", |s| {
            s.app(&id).is_some_and(|a| {
                a.executors.len() == 1 && a.executors[0].state == ExecutorState::Running
            })
        })
        .await;
    assert_eq!(s.app(&id).expect("app").executors[0].cores, 2);
    drop(session); // the driver goes away: the app ends, its executor is killed
    c.wait_state("app ended after driver disconnect", |s| {
        s.completed_apps.iter().any(|a| a.id == id) && s.workers[0].cores_used == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_worker_is_dead_and_its_executors_move() {
    let mut c = Cluster::master(&[("spark.worker.timeout", "1")]);
    let w0 = c.add_worker(WorkerSpec {
        cores: 2,
        memory: "2g",
    });
    let w1 = c.add_worker(WorkerSpec {
        cores: 2,
        memory: "2g",
    });
    let mut client = c.client().await;
    let mut session = client
        .register_application(app("mover", Some(1), 128, Some(2), shell(SLEEPER)), "")
        .await
        .expect("register");
    let id = session.app_id().clone();
    let s = c
        .wait_state("2 running", |s| {
            s.app(&id).is_some_and(|a| {
                a.executors
                    .iter()
                    .filter(|e| e.state == ExecutorState::Running)
                    .count()
                    == 2
            })
        })
        .await;
    assert_eq!(per_worker(&s, &id, &[w0.clone(), w1.clone()]), vec![1, 1]);
    c.workers[0].stop_with(libc::SIGKILL, Duration::from_secs(5));
    let s = c
        .wait_state("w0 dead, 2 executors on w1", |s| {
            s.worker(&w0).is_some_and(|w| w.state == WorkerState::Dead)
                && s.app(&id).is_some_and(|a| {
                    a.executors.len() == 2
                        && a.executors
                            .iter()
                            .all(|e| e.worker_id == w1 && e.state == ExecutorState::Running)
                })
        })
        .await;
    assert_eq!(s.alive_workers().count(), 1);
    let lost = s
        .app(&id)
        .expect("app")
        .removed_executors
        .iter()
        .filter(|e| e.state == ExecutorState::Lost)
        .count();
    assert_eq!(lost, 1);
    // The application saw LOST and then new executors.
    let mut saw_lost = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no LOST then ExecutorAdded events"
        );
        match tokio::time::timeout(Duration::from_secs(10), session.next_event()).await {
            Ok(Ok(Some(AppEvent::ExecutorUpdated {
                state: ExecutorState::Lost,
                worker_host,
                ..
            }))) => {
                assert_eq!(worker_host.as_deref(), Some("127.0.0.1"));
                saw_lost = true;
            }
            Ok(Ok(Some(AppEvent::ExecutorAdded { worker_id, .. }))) if saw_lost => {
                assert_eq!(worker_id, w1);
                break;
            }
            Ok(Ok(Some(_))) => {}
            other => panic!("session ended early: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_worker_times_out_and_reregisters_when_it_wakes() {
    let mut c = Cluster::master(&[("spark.worker.timeout", "1")]);
    let w0 = c.add_worker(WorkerSpec {
        cores: 1,
        memory: "1g",
    });
    // SIGSTOP: the connection stays open but no heartbeat comes (half-open).
    c.workers[0].signal(libc::SIGSTOP);
    c.wait_state("stopped worker DEAD by heartbeat timeout", |s| {
        s.worker(&w0).is_some_and(|w| w.state == WorkerState::Dead)
    })
    .await;
    c.workers[0].signal(libc::SIGCONT);
    // Its next heartbeat is answered with "reconnect"; it registers again by itself.
    c.wait_state("worker ALIVE again", |s| {
        s.worker(&w0).is_some_and(|w| w.state == WorkerState::Alive)
    })
    .await;
    c.workers[0].wait_log("master asked us to re-register", Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashing_executors_exhaust_retries_and_the_app_fails() {
    let mut c = Cluster::master(&[("spark.deploy.maxExecutorRetries", "4")]);
    c.add_worker(WorkerSpec {
        cores: 2,
        memory: "2g",
    });
    let pids = c.dir.path().join("pids");
    let script = format!("echo $$ >> {}; exit 3", pids.display());
    let mut client = c.client().await;
    let mut session = client
        .register_application(app("crasher", Some(1), 128, Some(1), shell(&script)), "")
        .await
        .expect("register");
    let id = session.app_id().clone();
    let s = c
        .wait_state("app FAILED", |s| {
            s.completed_apps
                .iter()
                .any(|a| a.id == id && a.state == ApplicationState::Failed)
        })
        .await;
    let a = s.app(&id).expect("app");
    assert!(
        a.removed_executors.len() >= 4,
        "{} executors",
        a.removed_executors.len()
    );
    assert!(a.removed_executors.iter().all(|e| e.exit_status == Some(3)));
    // The driver was told, and the session ends.
    let mut removed = None;
    while let Ok(Some(ev)) = session.next_event().await {
        if let AppEvent::ApplicationRemoved { state, .. } = ev {
            removed = Some(state);
        }
    }
    assert_eq!(removed, Some(ApplicationState::Failed));
    // No executor process remains.
    let text = std::fs::read_to_string(&pids).expect("pids");
    for pid in text.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        wait_for("crashed executor gone", Duration::from_secs(5), || async {
            (!pid_alive(pid)).then_some(())
        })
        .await;
    }
    assert_eq!(c.state().await.workers[0].cores_used, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_reregister_after_the_master_restarts() {
    let mut c = Cluster::master(&[]);
    let w0 = c.add_worker(WorkerSpec::default());
    let w1 = c.add_worker(WorkerSpec::default());
    c.wait_state("2 alive", |s| s.alive_workers().count() == 2)
        .await;
    c.restart_master();
    let s = c
        .wait_state("both workers back", |s| s.alive_workers().count() == 2)
        .await;
    let mut ids: Vec<WorkerId> = s.workers.iter().map(|w| w.id.clone()).collect();
    ids.sort();
    let mut want = vec![w0, w1];
    want.sort();
    assert_eq!(ids, want, "workers keep their ids across re-registration");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_mode_driver_runs_is_killed_and_supervised_driver_relaunches() {
    let mut c = Cluster::master(&[]);
    c.add_worker(WorkerSpec {
        cores: 2,
        memory: "2g",
    });
    let mut client = c.client().await;
    let marker = c.dir.path().join("driver-ran");
    let driver = DriverDescription {
        name: "sleepy".into(),
        app_resource: String::new(),
        app_sha256: None,
        command: shell(&format!(
            "echo {{{{DRIVER_ID}}}} > {}; exec sleep 1000",
            marker.display()
        )),
        cores: 1,
        memory_mb: 256,
        supervise: false,
    };
    let (id, msg) = client.submit_driver(driver.clone()).await.expect("submit");
    assert!(
        id.as_str().starts_with("driver-") && id.as_str().ends_with("-0000"),
        "{id}"
    );
    assert_eq!(msg, format!("Driver successfully submitted as {id}"));
    let ran = wait_for("driver process ran", Duration::from_secs(20), || async {
        std::fs::read_to_string(&marker)
            .ok()
            .filter(|s| s.ends_with('\n'))
    })
    .await;
    assert_eq!(ran.trim(), id.as_str());
    let st = client.driver_status(&id).await.expect("status");
    assert_eq!(st.state, DriverState::Running);
    assert_eq!(st.worker_id.as_ref(), Some(&c.worker_ids[0]));
    assert_eq!(c.state().await.workers[0].cores_used, 1);
    let m = client.kill_driver(&id).await.expect("kill");
    assert_eq!(m, format!("Kill request for {id} submitted"));
    c.wait_state("driver KILLED", |s| {
        s.driver(&id)
            .is_some_and(|d| d.state == DriverState::Killed)
    })
    .await;
    assert_eq!(c.state().await.workers[0].cores_used, 0);
    // Killing it again: it has already finished.
    let err = client.kill_driver(&id).await.expect_err("finished");
    assert_eq!(err.code(), Some(tonic::Code::FailedPrecondition));

    // A supervised driver that exits non-zero is relaunched by its worker.
    let count = c.dir.path().join("launches");
    let sup = DriverDescription {
        name: "crashy".into(),
        command: shell(&format!("echo run >> {}; exit 1", count.display())),
        supervise: true,
        ..driver
    };
    let (sid, _) = client.submit_driver(sup).await.expect("submit supervised");
    wait_for(
        "supervised driver relaunched",
        Duration::from_secs(20),
        || async {
            let n = std::fs::read_to_string(&count).ok()?.lines().count();
            (n >= 2).then_some(())
        },
    )
    .await;
    let st = client.driver_status(&sid).await.expect("status");
    assert_eq!(
        st.state,
        DriverState::Running,
        "a supervised driver stays RUNNING between relaunches"
    );
    client.kill_driver(&sid).await.expect("kill supervised");
    c.wait_state("supervised driver KILLED", |s| {
        s.driver(&sid)
            .is_some_and(|d| d.state == DriverState::Killed)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_errors_and_changes_nothing() {
    let mut c = Cluster::master(&[]);
    c.add_worker(WorkerSpec {
        cores: 2,
        memory: "1g",
    });
    let before = c.state().await;
    let mut client = c.client().await;

    // An application with zero cores per executor, or negative memory: INVALID_ARGUMENT.
    for bad in [
        app("zero", Some(0), 128, None, shell("true")),
        app("", Some(1), 128, None, shell("true")),
    ] {
        let err = client
            .register_application(bad, "")
            .await
            .err()
            .expect("refused");
        assert_eq!(err.code(), Some(tonic::Code::InvalidArgument), "{err}");
    }
    // Raw protobuf: negative memory, missing command.
    let ch = flint_client::connect_channel(&c.master_url, Duration::from_secs(5))
        .await
        .expect("channel");
    let mut raw = flint_proto::pb::master_client::MasterClient::new(ch);
    let mut neg: flint_proto::pb::ApplicationDescription =
        app("neg", Some(1), 128, None, shell("true")).into();
    neg.memory_per_executor_mb = -512;
    let mut nocmd = neg.clone();
    nocmd.memory_per_executor_mb = 128;
    nocmd.command = None;
    for desc in [neg, nocmd] {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tx.send(flint_proto::pb::AppToMaster {
            msg: Some(flint_proto::pb::app_to_master::Msg::Register(
                flint_proto::pb::RegisterApplication {
                    app: Some(desc),
                    driver_url: String::new(),
                },
            )),
        })
        .await
        .expect("send");
        let mut events = raw
            .application_session(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .expect("stream opens")
            .into_inner();
        let err = events.message().await.expect_err("refused");
        assert_eq!(
            err.code(),
            tonic::Code::InvalidArgument,
            "{}",
            err.message()
        );
    }
    // A worker registration with zero cores, negative memory or an empty id.
    for (cores, mem, id) in [(0, 1024, "worker-x"), (2, -1, "worker-y"), (2, 1024, "")] {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tx.send(flint_proto::pb::WorkerToMaster {
            msg: Some(flint_proto::pb::worker_to_master::Msg::Register(
                flint_proto::pb::RegisterWorker {
                    id: id.into(),
                    host: "h".into(),
                    port: 1,
                    cores,
                    memory_mb: mem,
                    webui_url: String::new(),
                },
            )),
        })
        .await
        .expect("send");
        let mut cmds = raw
            .worker_session(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .expect("stream opens")
            .into_inner();
        let err = cmds.message().await.expect_err("refused");
        assert_eq!(
            err.code(),
            tonic::Code::InvalidArgument,
            "{}",
            err.message()
        );
    }
    // Unknown ids.
    let e = client
        .kill_driver(&DriverId("driver-nope".into()))
        .await
        .expect_err("unknown");
    assert_eq!(e.code(), Some(tonic::Code::NotFound));
    let e = client
        .driver_status(&DriverId("driver-nope".into()))
        .await
        .expect_err("unknown");
    assert_eq!(e.code(), Some(tonic::Code::NotFound));
    let e = client
        .kill_application(&AppId("app-nope".into()))
        .await
        .expect_err("unknown");
    assert_eq!(e.code(), Some(tonic::Code::NotFound));
    let e = client
        .kill_driver(&DriverId(String::new()))
        .await
        .expect_err("empty");
    assert_eq!(e.code(), Some(tonic::Code::InvalidArgument));
    // Nothing changed.
    let after = c.state().await;
    assert_eq!(before.workers.len(), after.workers.len());
    assert!(after.active_apps.is_empty() && after.completed_apps.is_empty());
    assert!(after.active_drivers.is_empty() && after.completed_drivers.is_empty());

    // An executor memory no worker can hold: accepted, visibly WAITING with the reason.
    let session = client
        .register_application(app("huge", Some(1), 64 * 1024, None, shell("true")), "")
        .await
        .expect("accepted");
    let s = c.state().await;
    let a = s.app(session.app_id()).expect("app");
    assert_eq!(a.state, ApplicationState::Waiting);
    assert!(a.executors.is_empty());
    assert!(
        a.waiting_reason.contains("requires more resource"),
        "{}",
        a.waiting_reason
    );
    assert_eq!(s.workers[0].cores_used, 0);
}
