//! The worker core driven by a fake master and fake children: plain `#[test]`s, no runtime,
//! time passed in.

use super::*;

const WORKER: &str = "worker-20261207000000-10.0.0.2-7078";
const MASTER: &str = "spark://m:7077";

fn cfg() -> CoreConfig {
    CoreConfig {
        worker_id: WorkerId::from(WORKER),
        host: "10.0.0.2".into(),
        port: 7078,
        cores: 4,
        memory_mb: 4096,
        webui_url: "http://10.0.0.2:8081".into(),
        work_dir: PathBuf::from("/work"),
        master_url: MASTER.into(),
        max_backoff_ms: 2_000,
        seed: 1,
    }
}

fn at(ms: u64) -> Now {
    Now {
        mono_ms: ms,
        wall_ms: 1_800_000_000_000 + ms as i64,
    }
}

/// A worker core with a fake master on the other side of its session.
struct Harness {
    core: WorkerCore,
}

impl Harness {
    fn new() -> Self {
        Self {
            core: WorkerCore::new(cfg()),
        }
    }

    /// Opens a session and answers the registration.
    fn registered(heartbeat_ms: u64, now: Now) -> Self {
        let mut h = Self::new();
        h.core.session_opened(now, MASTER);
        h.core.master_command(now, registered(heartbeat_ms));
        h.core.take_outputs();
        h
    }

    fn out(&mut self) -> Vec<Output> {
        self.core.take_outputs()
    }

    fn sent(&mut self) -> Vec<WorkerEvent> {
        self.out()
            .into_iter()
            .filter_map(|o| match o {
                Output::Send(e) => Some(e),
                _ => None,
            })
            .collect()
    }
}

fn registered(heartbeat_ms: u64) -> WorkerCommand {
    WorkerCommand::Registered {
        worker_id: WorkerId::from(WORKER),
        master_url: MASTER.into(),
        master_webui_url: "http://m:8080".into(),
        duplicate: false,
        heartbeat_interval_ms: heartbeat_ms,
    }
}

fn app_desc() -> AppDescription {
    AppDescription {
        name: "pi".into(),
        user: "u".into(),
        cores_per_executor: Some(1),
        memory_per_executor_mb: 512,
        max_cores: None,
        command: CommandSpec {
            program: "/bin/app".into(),
            args: vec!["{{EXECUTOR_ID}}".into()],
            env: Default::default(),
            ..Default::default()
        },
        initial_executor_limit: None,
        app_ui_url: String::new(),
    }
}

fn launch(app: &str, exec: ExecutorId) -> WorkerCommand {
    WorkerCommand::LaunchExecutor(Box::new(LaunchExecutor {
        master_url: MASTER.into(),
        app_id: AppId::from(app),
        executor_id: exec,
        cores: 1,
        memory_mb: 512,
        app: app_desc(),
        resource_profile_id: 0,
    }))
}

fn driver(supervise: bool) -> Box<DriverDescription> {
    Box::new(DriverDescription {
        name: "d".into(),
        app_resource: "flint://abc/app".into(),
        app_sha256: None,
        command: CommandSpec {
            program: "{{USER_JAR}}".into(),
            args: vec![],
            env: Default::default(),
            ..Default::default()
        },
        cores: 1,
        memory_mb: 256,
        supervise,
    })
}

fn exec_event(app: &str, exec: ExecutorId, state: ExecutorState) -> ChildEvent {
    ChildEvent::Executor {
        app_id: AppId::from(app),
        executor_id: exec,
        state,
        message: None,
        exit_status: None,
    }
}

fn exited(id: &str, success: bool, run_ms: u64) -> ChildEvent {
    ChildEvent::DriverExited {
        driver_id: DriverId::from(id),
        success,
        exit_status: if success { 0 } else { 3 },
        description: if success {
            "exited with code 0"
        } else {
            "exited with code 3"
        }
        .into(),
        run_ms,
    }
}

#[test]
fn registers_reports_latest_state_and_heartbeats_at_the_interval() {
    let mut h = Harness::new();
    assert!(!h.core.is_registered());
    assert_eq!(h.core.next_deadline(), None);
    h.core.session_opened(at(0), MASTER);
    let sent = h.sent();
    assert!(
        matches!(&sent[..], [WorkerEvent::Register(r)] if r.id.as_str() == WORKER && r.cores == 4 && r.memory_mb == 4096 && r.port == 7078),
        "{sent:?}"
    );
    h.core.master_command(at(10), registered(15_000));
    assert!(h.core.is_registered());
    assert!(h.core.take_status_dirty());
    assert!(h.core.status().registered);
    assert_eq!(h.core.status().master_url.as_deref(), Some(MASTER));
    let sent = h.sent();
    assert!(
        matches!(&sent[..], [WorkerEvent::LatestState { executors, drivers, .. }] if executors.is_empty() && drivers.is_empty()),
        "{sent:?}"
    );
    // The first beat is due at once, then one per interval, never early.
    assert_eq!(h.core.next_deadline(), Some(10));
    h.core.tick(at(10));
    assert!(matches!(&h.sent()[..], [WorkerEvent::Heartbeat { .. }]));
    assert_eq!(h.core.next_deadline(), Some(15_010));
    h.core.tick(at(15_009));
    assert!(h.sent().is_empty());
    h.core.tick(at(15_010));
    assert!(matches!(&h.sent()[..], [WorkerEvent::Heartbeat { .. }]));
    // A late tick does not make up for missed beats.
    h.core.tick(at(60_000));
    assert_eq!(h.sent().len(), 1);
    h.core.tick(at(60_001));
    assert!(h.sent().is_empty());
}

#[test]
fn a_broken_session_reconnects_with_growing_jittered_backoff_and_drops_reports() {
    let mut h = Harness::registered(1_000, at(0));
    h.core.master_command(at(1), launch("app-1", 0));
    h.out();
    h.core.session_ended(at(2), "master closed the session");
    assert!(!h.core.is_registered());
    assert!(h.core.take_status_dirty());
    assert!(!h.core.status().registered);
    let waits: Vec<u64> = (0..6)
        .map(|i| {
            if i > 0 {
                h.core.session_ended(at(3 + i), "connection refused");
            }
            match &h.out()[..] {
                [Output::Reconnect { after_ms }] => *after_ms,
                other => panic!("{other:?}"),
            }
        })
        .collect();
    assert!((50..150).contains(&waits[0]), "{waits:?}");
    assert!(waits[5] >= 1_000 && waits[5] < 3_000, "{waits:?}");
    // No heartbeats and no reports while down; the child's state is still kept.
    assert_eq!(h.core.next_deadline(), None);
    h.core
        .child_event(at(10), exec_event("app-1", 0, ExecutorState::Running));
    assert!(h.sent().is_empty());
    assert_eq!(h.core.status().executors[0].state, ExecutorState::Running);
    // Registering again resets the backoff and reports what still runs.
    h.core.session_opened(at(20), MASTER);
    h.core.master_command(at(21), registered(1_000));
    let sent = h.sent();
    let latest = sent
        .iter()
        .find_map(|e| match e {
            WorkerEvent::LatestState { executors, .. } => Some(executors.clone()),
            _ => None,
        })
        .expect("latest state");
    assert_eq!(latest, vec![(AppId::from("app-1"), 0)]);
    h.core.session_ended(at(30), "again");
    assert!(
        matches!(&h.out()[..], [Output::Reconnect { after_ms }] if *after_ms < 150),
        "backoff was reset"
    );
}

#[test]
fn refused_registration_closes_the_session_and_reconnect_registers_again() {
    let mut h = Harness::new();
    h.core.session_opened(at(0), MASTER);
    h.out();
    h.core.master_command(
        at(1),
        WorkerCommand::RegisterFailed {
            message: "duplicate worker ID".into(),
        },
    );
    assert_eq!(
        h.out(),
        vec![Output::CloseSession {
            reason: "registration refused: duplicate worker ID".into()
        }]
    );
    let mut h = Harness::registered(1_000, at(0));
    h.core.master_command(
        at(5),
        WorkerCommand::Reconnect {
            master_url: MASTER.into(),
        },
    );
    assert!(!h.core.is_registered());
    assert!(matches!(&h.sent()[..], [WorkerEvent::Register(_)]));
}

#[test]
fn executors_launch_run_exit_and_move_to_the_finished_list() {
    let mut h = Harness::registered(1_000, at(0));
    h.core.master_command(at(100), launch("app-1", 3));
    let out = h.out();
    assert!(
        matches!(&out[..], [Output::StartExecutor { launch, master_url }] if launch.executor_id == 3 && master_url == MASTER),
        "{out:?}"
    );
    let st = &h.core.status().executors[0];
    assert_eq!(
        (st.state, st.command.as_str(), st.start_ms),
        (
            ExecutorState::Launching,
            "/bin/app {{EXECUTOR_ID}}",
            at(100).wall_ms
        )
    );
    assert_eq!(
        (
            h.core.status().cores_used(),
            h.core.status().memory_used_mb()
        ),
        (1, 512)
    );
    // The same launch twice starts one process.
    h.core.master_command(at(101), launch("app-1", 3));
    assert!(h.out().is_empty());
    h.core
        .child_event(at(200), exec_event("app-1", 3, ExecutorState::Running));
    assert!(matches!(
        &h.sent()[..],
        [WorkerEvent::ExecutorStateChanged {
            state: ExecutorState::Running,
            executor_id: 3,
            ..
        }]
    ));
    h.core.child_event(
        at(300),
        ChildEvent::Executor {
            app_id: AppId::from("app-1"),
            executor_id: 3,
            state: ExecutorState::Exited,
            message: Some("exited with code 1".into()),
            exit_status: Some(1),
        },
    );
    let out = h.out();
    assert!(
        matches!(
            &out[..],
            [
                Output::Release(ChildKey::Executor(_, 3)),
                Output::Send(WorkerEvent::ExecutorStateChanged {
                    state: ExecutorState::Exited,
                    exit_status: Some(1),
                    ..
                }),
            ]
        ),
        "{out:?}"
    );
    assert_eq!(h.core.running(), 0);
    let s = h.core.status();
    assert!(s.executors.is_empty());
    assert_eq!(s.finished_executors[0].end_ms, Some(at(300).wall_ms));
    assert_eq!(s.finished_executors[0].exit_status, Some(1));
}

#[test]
fn kills_go_to_running_executors_once_and_application_end_kills_only_its_own() {
    let mut h = Harness::registered(1_000, at(0));
    for (app, e) in [("app-1", 0), ("app-1", 1), ("app-2", 0)] {
        h.core.master_command(at(1), launch(app, e));
    }
    h.out();
    h.core.master_command(
        at(2),
        WorkerCommand::KillExecutor {
            app_id: AppId::from("app-9"),
            executor_id: 0,
        },
    );
    assert!(h.out().is_empty(), "unknown executors are not killed");
    let kill = WorkerCommand::KillExecutor {
        app_id: AppId::from("app-1"),
        executor_id: 0,
    };
    h.core.master_command(at(3), kill.clone());
    h.core.master_command(at(4), kill);
    assert_eq!(
        h.out(),
        vec![Output::Kill(ChildKey::Executor(AppId::from("app-1"), 0))]
    );
    h.core.master_command(
        at(5),
        WorkerCommand::ApplicationFinished {
            app_id: AppId::from("app-1"),
        },
    );
    assert_eq!(
        h.out(),
        vec![Output::Kill(ChildKey::Executor(AppId::from("app-1"), 1))]
    );
}

#[test]
fn drivers_finish_or_fail_with_their_exit_status() {
    let mut h = Harness::registered(1_000, at(0));
    for (id, sup) in [("driver-1", false), ("driver-2", false)] {
        h.core.master_command(
            at(1),
            WorkerCommand::LaunchDriver {
                driver_id: DriverId::from(id),
                driver: driver(sup),
            },
        );
    }
    let out = h.out();
    assert!(matches!(
        &out[..],
        [Output::StartDriver { .. }, Output::StartDriver { .. }]
    ));
    assert_eq!(h.core.status().drivers[0].state, DriverState::Submitted);
    h.core.child_event(
        at(2),
        ChildEvent::DriverStarted {
            driver_id: DriverId::from("driver-1"),
            attempt: 1,
        },
    );
    assert!(matches!(
        &h.sent()[..],
        [WorkerEvent::DriverStateChanged {
            state: DriverState::Running,
            message: None,
            ..
        }]
    ));
    h.core.child_event(at(3), exited("driver-1", true, 10));
    h.core.child_event(at(4), exited("driver-2", false, 10));
    let out = h.out();
    assert!(
        matches!(
            &out[..],
            [
                Output::Release(ChildKey::Driver(_)),
                Output::Send(WorkerEvent::DriverStateChanged {
                    state: DriverState::Finished,
                    exit_status: Some(0),
                    ..
                }),
                Output::Release(ChildKey::Driver(_)),
                Output::Send(WorkerEvent::DriverStateChanged {
                    state: DriverState::Failed,
                    exit_status: Some(3),
                    ..
                }),
            ]
        ),
        "{out:?}"
    );
    assert_eq!(h.core.running(), 0);
    assert_eq!(h.core.status().finished_drivers.len(), 2);
}

#[test]
fn a_supervised_driver_is_relaunched_with_spark_backoff() {
    let mut h = Harness::registered(100_000, at(0));
    h.core.tick(at(0));
    h.out();
    let id = DriverId::from("driver-1");
    h.core.master_command(
        at(0),
        WorkerCommand::LaunchDriver {
            driver_id: id.clone(),
            driver: driver(true),
        },
    );
    h.out();
    let mut now = 0;
    let mut relaunch_waits = vec![];
    for (attempt, run_ms) in [(1u32, 100u64), (2, 100), (3, 100), (4, 6_000)] {
        h.core.child_event(
            at(now),
            ChildEvent::DriverStarted {
                driver_id: id.clone(),
                attempt,
            },
        );
        let sent = h.sent();
        let want = (attempt > 1).then(|| format!("relaunched (attempt {attempt})"));
        assert!(
            matches!(&sent[..], [WorkerEvent::DriverStateChanged { state: DriverState::Running, message, .. }] if *message == want),
            "{sent:?}"
        );
        now += run_ms;
        h.core
            .child_event(at(now), exited("driver-1", false, run_ms));
        assert!(h.out().is_empty(), "no final state for a supervised driver");
        let due = h.core.next_deadline().expect("a relaunch is due");
        relaunch_waits.push(due - now);
        h.core.tick(at(due - 1));
        assert!(h.out().is_empty());
        h.core.tick(at(due));
        assert_eq!(
            h.out(),
            vec![Output::RelaunchDriver {
                driver_id: id.clone(),
                attempt: attempt + 1
            }]
        );
        now = due;
    }
    // 1 s, then doubling while runs are short, and back to 1 s after a run over 5 s.
    assert_eq!(relaunch_waits, vec![1_000, 2_000, 4_000, 1_000]);
}

#[test]
fn killing_a_driver_waiting_to_relaunch_ends_it_at_once() {
    let mut h = Harness::registered(100_000, at(0));
    h.core.tick(at(0));
    let id = DriverId::from("driver-1");
    h.core.master_command(
        at(0),
        WorkerCommand::LaunchDriver {
            driver_id: id.clone(),
            driver: driver(true),
        },
    );
    h.core.child_event(
        at(1),
        ChildEvent::DriverStarted {
            driver_id: id.clone(),
            attempt: 1,
        },
    );
    h.core.child_event(at(2), exited("driver-1", false, 1));
    h.out();
    h.core.master_command(
        at(3),
        WorkerCommand::KillDriver {
            driver_id: id.clone(),
        },
    );
    let out = h.out();
    assert!(
        matches!(
            &out[..],
            [
                Output::Release(ChildKey::Driver(_)),
                Output::Send(WorkerEvent::DriverStateChanged { state: DriverState::Killed, exit_status: Some(3), message: Some(m), .. }),
            ] if m == "killed by request while waiting to relaunch"
        ),
        "{out:?}"
    );
    assert_eq!(h.core.running(), 0);
    h.core.tick(at(10_000));
    assert!(
        h.out()
            .iter()
            .all(|o| !matches!(o, Output::RelaunchDriver { .. }))
    );
    // A running driver is killed through its runner, which reports how it ended.
    h.core.master_command(
        at(4),
        WorkerCommand::LaunchDriver {
            driver_id: DriverId::from("driver-2"),
            driver: driver(true),
        },
    );
    h.out();
    h.core.master_command(
        at(5),
        WorkerCommand::KillDriver {
            driver_id: DriverId::from("driver-2"),
        },
    );
    assert_eq!(
        h.out(),
        vec![Output::Kill(ChildKey::Driver(DriverId::from("driver-2")))]
    );
    // An exit that crosses the kill is final, even for a supervised driver.
    h.core.child_event(at(6), exited("driver-2", false, 1));
    assert!(h.out().iter().any(|o| matches!(
        o,
        Output::Send(WorkerEvent::DriverStateChanged {
            state: DriverState::Failed,
            ..
        })
    )));
    assert_eq!(h.core.running(), 0);
}

#[test]
fn shutdown_kills_every_child_and_takes_no_new_session() {
    let mut h = Harness::registered(1_000, at(0));
    h.core.master_command(at(1), launch("app-1", 0));
    h.core.master_command(
        at(1),
        WorkerCommand::LaunchDriver {
            driver_id: DriverId::from("driver-1"),
            driver: driver(false),
        },
    );
    h.out();
    h.core.shutdown(at(2));
    assert!(h.core.is_stopping());
    assert_eq!(
        h.out(),
        vec![
            Output::Kill(ChildKey::Executor(AppId::from("app-1"), 0)),
            Output::Kill(ChildKey::Driver(DriverId::from("driver-1"))),
        ]
    );
    h.core
        .child_event(at(3), exec_event("app-1", 0, ExecutorState::Killed));
    h.core.child_event(
        at(3),
        ChildEvent::DriverEnded {
            driver_id: DriverId::from("driver-1"),
            state: DriverState::Killed,
            message: Some("killed by request".into()),
            exit_status: Some(143),
        },
    );
    let sent = h.sent();
    assert_eq!(sent.len(), 2, "the ends are still reported: {sent:?}");
    assert_eq!(h.core.running(), 0);
    h.core.session_ended(at(4), "master closed the session");
    assert!(h.out().is_empty(), "no reconnect while stopping");
}

#[test]
fn log_reads_are_answered_on_the_session() {
    let mut h = Harness::registered(1_000, at(0));
    let request = LogRequest {
        target: LogTarget::Driver(DriverId::from("driver-1")),
        log_type: LogType::Stdout,
        offset: None,
        max_bytes: 10,
    };
    h.core.master_command(
        at(1),
        WorkerCommand::ReadLog {
            request_id: 7,
            request: request.clone(),
        },
    );
    assert_eq!(
        h.out(),
        vec![Output::ReadLog {
            request_id: 7,
            request
        }]
    );
    h.core.child_event(
        at(2),
        ChildEvent::LogRead {
            request_id: 7,
            result: Err("no such log".into()),
        },
    );
    assert_eq!(
        h.sent(),
        vec![WorkerEvent::LogSlice {
            request_id: 7,
            result: Err("no such log".into())
        }]
    );
}

#[test]
fn the_ui_keeps_the_last_thousand_finished_executors() {
    let mut h = Harness::registered(1_000, at(0));
    for e in 0..1_005u32 {
        h.core.master_command(at(1), launch("app-1", e));
        h.core
            .child_event(at(2), exec_event("app-1", e, ExecutorState::Exited));
    }
    let s = h.core.status();
    assert_eq!(s.finished_executors.len(), status::RETAINED);
    assert_eq!(s.finished_executors[0].executor_id, 5);
    assert_eq!(h.core.running(), 0);
}
