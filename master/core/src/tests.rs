//! Unit tests of the sans-IO core: every test builds a [`MasterState`], feeds it events with
//! explicit times and looks at what it asked to send ([`MasterState::take_outputs`]) and at
//! what it shows ([`MasterState::snapshot`]).

use std::collections::BTreeMap;

use flint_domain::types::*;
use proptest::prelude::*;

use super::*;

// ---------------------------------------------------------------------------- helpers

/// 2026-11-22 04:03:05.549 UTC.
const T0: i64 = 1_795_320_185_549;
const STAMP: &str = "20261122040305";
const MASTER_URL: &str = "spark://localhost:7077";

/// `ms` milliseconds after the start of the test.
fn at(ms: u64) -> Now {
    Now {
        mono_ms: ms,
        wall_ms: T0 + ms as i64,
    }
}

/// One-second worker timeout, everything else as Spark's defaults.
fn cfg() -> CoreConfig {
    CoreConfig {
        worker_timeout_ms: 1000,
        ..CoreConfig::default()
    }
}

fn master() -> MasterState {
    MasterState::new(cfg())
}

fn wid(id: &str) -> WorkerId {
    WorkerId::from(id)
}

/// A worker called `id` on `host-<id>:7078`.
fn reg(id: &str, cores: u32, mem: u64) -> WorkerRegistration {
    reg_at(id, &format!("host-{id}"), 7078, cores, mem)
}

fn reg_at(id: &str, host: &str, port: u16, cores: u32, mem: u64) -> WorkerRegistration {
    WorkerRegistration {
        id: wid(id),
        host: host.to_owned(),
        port,
        cores,
        memory_mb: mem,
        webui_url: format!("http://{host}:8081"),
    }
}

fn app(cores_per_executor: Option<u32>, mem: u64, max_cores: Option<u32>) -> AppDescription {
    AppDescription {
        name: "test-app".into(),
        user: "tester".into(),
        cores_per_executor,
        memory_per_executor_mb: mem,
        max_cores,
        command: CommandSpec {
            program: "java".into(),
            args: vec!["CoarseGrainedExecutorBackend".into()],
            env: BTreeMap::new(),
            ..Default::default()
        },
        initial_executor_limit: None,
        app_ui_url: "http://driver:4040".into(),
    }
}

fn driver(cores: u32, mem: u64, supervise: bool) -> DriverDescription {
    DriverDescription {
        name: "test-driver".into(),
        app_resource: "file:/tmp/app.jar".into(),
        app_sha256: None,
        command: CommandSpec {
            program: "java".into(),
            args: vec!["DriverWrapper".into()],
            env: BTreeMap::new(),
            ..Default::default()
        },
        cores,
        memory_mb: mem,
        supervise,
    }
}

/// Registers a worker and returns what the master sent.
fn add_worker(m: &mut MasterState, now: Now, conn: ConnId, r: WorkerRegistration) -> Vec<Output> {
    m.register_worker(now, conn, r);
    m.take_outputs()
}

/// Registers an application and returns its id and what the master sent.
fn add_app(
    m: &mut MasterState,
    now: Now,
    conn: ConnId,
    desc: AppDescription,
) -> (AppId, Vec<Output>) {
    let id = m
        .register_application(now, conn, desc, "spark://driver:7078".into())
        .expect("registration accepted");
    (id, m.take_outputs())
}

fn launches(outs: &[Output]) -> Vec<(ConnId, LaunchExecutor)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::ToWorker {
                conn,
                cmd: WorkerCommand::LaunchExecutor(l),
            } => Some((*conn, (**l).clone())),
            _ => None,
        })
        .collect()
}

/// Number of executors launched per worker session.
fn launches_per_conn(outs: &[Output]) -> BTreeMap<ConnId, usize> {
    let mut per = BTreeMap::new();
    for (conn, _) in launches(outs) {
        *per.entry(conn).or_insert(0) += 1;
    }
    per
}

fn executor_kills(outs: &[Output]) -> Vec<(ConnId, AppId, ExecutorId)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::ToWorker {
                conn,
                cmd:
                    WorkerCommand::KillExecutor {
                        app_id,
                        executor_id,
                    },
            } => Some((*conn, app_id.clone(), *executor_id)),
            _ => None,
        })
        .collect()
}

fn apps_finished(outs: &[Output]) -> Vec<(ConnId, AppId)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::ToWorker {
                conn,
                cmd: WorkerCommand::ApplicationFinished { app_id },
            } => Some((*conn, app_id.clone())),
            _ => None,
        })
        .collect()
}

fn driver_launches(outs: &[Output]) -> Vec<(ConnId, DriverId)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::ToWorker {
                conn,
                cmd: WorkerCommand::LaunchDriver { driver_id, .. },
            } => Some((*conn, driver_id.clone())),
            _ => None,
        })
        .collect()
}

fn driver_kills(outs: &[Output]) -> Vec<(ConnId, DriverId)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::ToWorker {
                conn,
                cmd: WorkerCommand::KillDriver { driver_id },
            } => Some((*conn, driver_id.clone())),
            _ => None,
        })
        .collect()
}

/// The events sent down one application's session, in order.
fn app_events(outs: &[Output], app_conn: ConnId) -> Vec<AppEvent> {
    outs.iter()
        .filter_map(|o| match o {
            Output::ToApp { conn, event } if *conn == app_conn => Some(event.clone()),
            _ => None,
        })
        .collect()
}

/// The commands sent down one worker's session, in order.
fn worker_cmds(outs: &[Output], worker_conn: ConnId) -> Vec<WorkerCommand> {
    outs.iter()
        .filter_map(|o| match o {
            Output::ToWorker { conn, cmd } if *conn == worker_conn => Some(cmd.clone()),
            _ => None,
        })
        .collect()
}

fn removed_events(outs: &[Output], app_conn: ConnId) -> Vec<ApplicationState> {
    app_events(outs, app_conn)
        .into_iter()
        .filter_map(|e| match e {
            AppEvent::ApplicationRemoved { state, .. } => Some(state),
            _ => None,
        })
        .collect()
}

/// A request's outcome is returned once, never also sent as an event.
fn assert_no_request_result(outs: &[Output], app_conn: ConnId) {
    assert!(
        !app_events(outs, app_conn)
            .iter()
            .any(|e| matches!(e, AppEvent::RequestResult { .. })),
        "{outs:?}"
    );
}

fn worker_view(m: &MasterState, id: &str) -> WorkerView {
    m.snapshot()
        .worker(&wid(id))
        .cloned()
        .unwrap_or_else(|| panic!("worker {id} in the snapshot"))
}

fn app_view(m: &MasterState, id: &AppId) -> AppView {
    m.snapshot()
        .app(id)
        .cloned()
        .unwrap_or_else(|| panic!("application {id} in the snapshot"))
}

fn driver_view(m: &MasterState, id: &DriverId) -> DriverView {
    m.snapshot()
        .driver(id)
        .cloned()
        .unwrap_or_else(|| panic!("driver {id} in the snapshot"))
}

fn exec_ids(a: &AppView) -> Vec<ExecutorId> {
    a.executors.iter().map(|e| e.executor_id).collect()
}

/// The invariants that must hold after every event, whatever happened before.
fn check_invariants(s: &ClusterSnapshot) -> Result<(), String> {
    for w in &s.workers {
        if w.cores_used > w.cores {
            return Err(format!(
                "worker {} overcommitted: {} > {} cores",
                w.id, w.cores_used, w.cores
            ));
        }
        if w.memory_used_mb > w.memory_mb {
            return Err(format!(
                "worker {} overcommitted: {} > {} MB",
                w.id, w.memory_used_mb, w.memory_mb
            ));
        }
        let mut cores: u32 = w.executors.iter().map(|e| e.cores).sum();
        let mut mem: u64 = w.executors.iter().map(|e| e.memory_mb).sum();
        for d in &w.driver_ids {
            let Some(dv) = s.active_drivers.iter().find(|x| &x.id == d) else {
                return Err(format!("worker {} lists unknown/finished driver {d}", w.id));
            };
            if dv.worker_id.as_ref() != Some(&w.id) {
                return Err(format!(
                    "driver {d} listed by {} but placed on {:?}",
                    w.id, dv.worker_id
                ));
            }
            cores += dv.desc.cores;
            mem += dv.desc.memory_mb;
        }
        if w.cores_used != cores || w.memory_used_mb != mem {
            return Err(format!(
                "worker {} accounts {} cores / {} MB but hosts {cores} cores / {mem} MB",
                w.id, w.cores_used, w.memory_used_mb
            ));
        }
        if w.state == WorkerState::Dead
            && (w.cores_used != 0 || !w.executors.is_empty() || !w.driver_ids.is_empty())
        {
            return Err(format!("DEAD worker {} still holds resources: {w:?}", w.id));
        }
    }
    for a in &s.active_apps {
        if a.state.is_finished() {
            return Err(format!("active app {} is {}", a.id, a.state));
        }
        let mut granted = 0;
        for e in &a.executors {
            granted += e.cores;
            let Some(w) = s.worker(&e.worker_id) else {
                return Err(format!(
                    "executor {}/{} on unknown worker {}",
                    a.id, e.executor_id, e.worker_id
                ));
            };
            if w.state != WorkerState::Alive {
                return Err(format!(
                    "executor {}/{} on {} worker {}",
                    a.id, e.executor_id, w.state, w.id
                ));
            }
            if !w
                .executors
                .iter()
                .any(|x| x.app_id == a.id && x.executor_id == e.executor_id)
            {
                return Err(format!(
                    "worker {} does not list executor {}/{}",
                    w.id, a.id, e.executor_id
                ));
            }
            if e.state.is_finished() {
                return Err(format!(
                    "finished executor {}/{} still active",
                    a.id, e.executor_id
                ));
            }
            if let Some(c) = a.desc.cores_per_executor
                && e.cores != c
            {
                return Err(format!(
                    "executor {}/{} has {} cores, not {c}",
                    a.id, e.executor_id, e.cores
                ));
            }
            if e.memory_mb != a.desc.memory_per_executor_mb {
                return Err(format!(
                    "executor {}/{} has the wrong memory",
                    a.id, e.executor_id
                ));
            }
        }
        if granted != a.cores_granted {
            return Err(format!(
                "app {} cores_granted {} but its executors hold {granted}",
                a.id, a.cores_granted
            ));
        }
        if let Some(max) = a.desc.max_cores
            && a.cores_granted > max
        {
            return Err(format!(
                "app {} granted {} > max_cores {max}",
                a.id, a.cores_granted
            ));
        }
    }
    for a in &s.completed_apps {
        if !a.state.is_finished() || !a.executors.is_empty() || a.cores_granted != 0 {
            return Err(format!("completed app {} is not clean: {a:?}", a.id));
        }
        if s.active_apps.iter().any(|x| x.id == a.id) {
            return Err(format!("app {} is both active and completed", a.id));
        }
    }
    for w in &s.workers {
        for e in &w.executors {
            if !s.active_apps.iter().any(|a| a.id == e.app_id) {
                return Err(format!(
                    "worker {} runs an executor of inactive app {}",
                    w.id, e.app_id
                ));
            }
        }
    }
    for d in &s.active_drivers {
        match &d.worker_id {
            Some(wid) => {
                let Some(w) = s.worker(wid) else {
                    return Err(format!("driver {} on unknown worker {wid}", d.id));
                };
                if w.state != WorkerState::Alive || !w.driver_ids.contains(&d.id) {
                    return Err(format!("driver {} not hosted by its worker {wid}", d.id));
                }
            }
            None => {
                if d.state != DriverState::Submitted {
                    return Err(format!("unplaced driver {} is {}", d.id, d.state));
                }
            }
        }
    }
    for d in &s.completed_drivers {
        if !d.state.is_finished() {
            return Err(format!("completed driver {} is {}", d.id, d.state));
        }
    }
    Ok(())
}

fn assert_invariants(m: &MasterState) {
    let s = m.snapshot();
    if let Err(e) = check_invariants(&s) {
        panic!("{e}\n{s:#?}");
    }
}

// ---------------------------------------------------------------------------- 1. workers

#[test]
fn worker_registration_replies_registered_with_heartbeat_interval() {
    let mut m = master();
    let outs = add_worker(&mut m, at(0), 1, reg("w1", 4, 4096));
    assert_eq!(
        outs,
        vec![Output::ToWorker {
            conn: 1,
            cmd: WorkerCommand::Registered {
                worker_id: wid("w1"),
                master_url: MASTER_URL.into(),
                master_webui_url: "http://localhost:8080".into(),
                duplicate: false,
                heartbeat_interval_ms: 250,
            },
        }]
    );
    let w = worker_view(&m, "w1");
    assert_eq!(w.state, WorkerState::Alive);
    assert_eq!((w.cores, w.memory_mb), (4, 4096));
    assert_eq!((w.cores_used, w.memory_used_mb), (0, 0));
    assert_eq!((w.host.as_str(), w.port), ("host-w1", 7078));
    assert_eq!(w.last_heartbeat_ms, T0);
    assert_eq!(m.worker_count(), 1);
    // Spark's default: 60 s timeout, heartbeat every 15 s.
    assert_eq!(CoreConfig::default().heartbeat_interval_ms(), 15_000);
}

#[test]
fn duplicate_worker_registration_rebinds_the_session() {
    let mut m = master();
    add_worker(&mut m, at(0), 1, reg("w1", 4, 4096));
    let (app_id, outs) = add_app(&mut m, at(10), 100, app(Some(1), 512, Some(1)));
    assert_eq!(launches_per_conn(&outs), BTreeMap::from([(1, 1)]));
    let before = m.snapshot();

    // The worker's stream was re-opened on session 2.
    let outs = add_worker(&mut m, at(20), 2, reg("w1", 4, 4096));
    assert_eq!(
        outs,
        vec![Output::ToWorker {
            conn: 2,
            cmd: WorkerCommand::Registered {
                worker_id: wid("w1"),
                master_url: MASTER_URL.into(),
                master_webui_url: "http://localhost:8080".into(),
                duplicate: true,
                heartbeat_interval_ms: 250,
            },
        }]
    );
    // Same worker, same executors; only the heartbeat time moved.
    let w = worker_view(&m, "w1");
    let mut expected = before.worker(&wid("w1")).unwrap().clone();
    expected.last_heartbeat_ms = T0 + 20;
    assert_eq!(w, expected);

    // The old session going away must not kill the worker.
    m.worker_disconnected(at(30), 1);
    assert!(m.take_outputs().is_empty());
    assert_eq!(worker_view(&m, "w1").state, WorkerState::Alive);
    assert_eq!(app_view(&m, &app_id).executors.len(), 1);

    // Commands now go down the new session.
    let (_, outs) = add_app(&mut m, at(40), 101, app(Some(1), 512, Some(1)));
    assert_eq!(launches_per_conn(&outs), BTreeMap::from([(2, 1)]));

    // And closing the new session does kill it.
    m.worker_disconnected(at(50), 2);
    assert_eq!(worker_view(&m, "w1").state, WorkerState::Dead);
}

#[test]
fn alive_worker_at_same_address_under_another_id_is_refused() {
    let mut m = master();
    add_worker(&mut m, at(0), 1, reg_at("w1", "node", 7078, 4, 4096));
    let before = m.snapshot();

    let outs = add_worker(&mut m, at(10), 2, reg_at("w2", "node", 7078, 8, 8192));
    assert_eq!(outs.len(), 1, "{outs:?}");
    match &outs[0] {
        Output::ToWorker {
            conn: 2,
            cmd: WorkerCommand::RegisterFailed { message },
        } => {
            assert!(message.contains("same address"), "{message}");
            assert!(message.contains("node:7078"), "{message}");
        }
        other => panic!("expected RegisterFailed, got {other:?}"),
    }
    assert_eq!(m.snapshot(), before);

    // The refused session was not bound to anything.
    m.worker_disconnected(at(20), 2);
    assert!(m.take_outputs().is_empty());
    assert_eq!(m.snapshot(), before);

    // Another port on the same host is fine.
    let outs = add_worker(&mut m, at(30), 3, reg_at("w3", "node", 7079, 4, 4096));
    assert!(matches!(
        &outs[..],
        [Output::ToWorker {
            conn: 3,
            cmd: WorkerCommand::Registered {
                duplicate: false,
                ..
            }
        }]
    ));
}

#[test]
fn dead_worker_at_same_address_is_replaced() {
    let mut m = master();
    add_worker(&mut m, at(0), 1, reg_at("w1", "node", 7078, 4, 4096));
    m.worker_disconnected(at(10), 1);
    m.take_outputs();
    assert_eq!(worker_view(&m, "w1").state, WorkerState::Dead);

    let outs = add_worker(&mut m, at(20), 2, reg_at("w2", "node", 7078, 8, 8192));
    assert!(matches!(
        &outs[..],
        [Output::ToWorker {
            conn: 2,
            cmd: WorkerCommand::Registered {
                duplicate: false,
                ..
            }
        }]
    ));
    let s = m.snapshot();
    assert!(
        s.worker(&wid("w1")).is_none(),
        "the DEAD worker is replaced"
    );
    assert_eq!(s.worker(&wid("w2")).unwrap().state, WorkerState::Alive);
    assert_eq!(s.workers.len(), 1);
}

#[test]
fn dead_worker_registering_again_under_its_id_starts_fresh() {
    let mut m = master();
    add_worker(&mut m, at(0), 1, reg("w1", 4, 4096));
    add_app(&mut m, at(0), 100, app(Some(1), 512, Some(2)));
    m.worker_disconnected(at(10), 1);
    m.take_outputs();

    let outs = add_worker(&mut m, at(20), 2, reg("w1", 4, 4096));
    assert!(matches!(
        &outs[0],
        Output::ToWorker {
            conn: 2,
            cmd: WorkerCommand::Registered {
                duplicate: false,
                ..
            }
        }
    ));
    // The application still wanted its cores: they are offered to the new incarnation.
    assert_eq!(launches_per_conn(&outs), BTreeMap::from([(2, 2)]));
    let w = worker_view(&m, "w1");
    assert_eq!(w.state, WorkerState::Alive);
    assert_eq!(w.cores_used, 2);
    assert_eq!(m.snapshot().workers.len(), 1);
    assert_invariants(&m);
}

// ---------------------------------------------------------------------------- 2. placement

fn two_workers(spread_out: bool) -> MasterState {
    let mut m = MasterState::new(CoreConfig {
        spread_out,
        ..cfg()
    });
    add_worker(&mut m, at(0), 1, reg("w1", 4, 8192));
    add_worker(&mut m, at(0), 2, reg("w2", 4, 8192));
    m
}

#[test]
fn spread_out_places_executors_round_robin() {
    let mut m = two_workers(true);
    let (app_id, outs) = add_app(&mut m, at(10), 100, app(Some(1), 512, Some(4)));
    assert_eq!(launches_per_conn(&outs), BTreeMap::from([(1, 2), (2, 2)]));
    for (_, l) in launches(&outs) {
        assert_eq!((l.cores, l.memory_mb), (1, 512));
        assert_eq!(l.app_id, app_id);
        assert_eq!(l.master_url, MASTER_URL);
    }
    let added: Vec<ExecutorId> = app_events(&outs, 100)
        .into_iter()
        .filter_map(|e| match e {
            AppEvent::ExecutorAdded { executor_id, .. } => Some(executor_id),
            _ => None,
        })
        .collect();
    assert_eq!(added, vec![0, 1, 2, 3]);
    let a = app_view(&m, &app_id);
    assert_eq!(a.state, ApplicationState::Running);
    assert_eq!(a.cores_granted, 4);
    assert_eq!(a.waiting_reason, "");
    for w in ["w1", "w2"] {
        let w = worker_view(&m, w);
        assert_eq!((w.cores_used, w.memory_used_mb), (2, 1024));
    }
    assert_invariants(&m);
}

#[test]
fn consolidation_fills_one_worker_first() {
    let mut m = two_workers(false);
    let (app_id, outs) = add_app(&mut m, at(10), 100, app(Some(1), 512, Some(4)));
    let per = launches_per_conn(&outs);
    assert_eq!(
        per.values().copied().collect::<Vec<_>>(),
        vec![4],
        "{per:?}"
    );
    let s = m.snapshot();
    let mut used: Vec<u32> = s.workers.iter().map(|w| w.cores_used).collect();
    used.sort_unstable();
    assert_eq!(used, vec![0, 4]);
    assert_eq!(app_view(&m, &app_id).cores_granted, 4);
    assert_invariants(&m);
}

#[test]
fn app_without_cores_per_executor_gets_one_executor_per_worker_with_all_cores() {
    let mut m = two_workers(true);
    let (app_id, outs) = add_app(&mut m, at(10), 100, app(None, 1024, None));
    let l = launches(&outs);
    assert_eq!(l.len(), 2, "{l:?}");
    assert_eq!(launches_per_conn(&outs), BTreeMap::from([(1, 1), (2, 1)]));
    assert!(l.iter().all(|(_, l)| l.cores == 4 && l.memory_mb == 1024));
    let a = app_view(&m, &app_id);
    assert_eq!(a.cores_granted, 8);
    assert_eq!(a.executors.len(), 2);
    for w in ["w1", "w2"] {
        assert_eq!(worker_view(&m, w).cores_used, 4);
    }
    assert_invariants(&m);
}

#[test]
fn executor_bigger_than_every_worker_waits_until_a_big_worker_comes() {
    let mut m = master();
    add_worker(&mut m, at(0), 1, reg("w1", 4, 4096));
    add_worker(&mut m, at(0), 2, reg("w2", 4, 4096));
    let (app_id, outs) = add_app(&mut m, at(10), 100, app(Some(1), 8192, Some(2)));
    assert!(launches(&outs).is_empty(), "{outs:?}");
    let a = app_view(&m, &app_id);
    assert_eq!(a.state, ApplicationState::Waiting);
    assert!(a.executors.is_empty());
    assert!(
        a.waiting_reason.contains("requires more resource"),
        "{}",
        a.waiting_reason
    );

    let outs = add_worker(&mut m, at(20), 3, reg("w3", 4, 16_384));
    assert_eq!(launches_per_conn(&outs), BTreeMap::from([(3, 2)]));
    let a = app_view(&m, &app_id);
    assert_eq!(a.state, ApplicationState::Running);
    assert_eq!(a.cores_granted, 2);
    assert_eq!(a.waiting_reason, "");
    assert_eq!(worker_view(&m, "w3").memory_used_mb, 16_384);
    assert_invariants(&m);
}

#[test]
fn app_with_no_workers_waits_with_a_reason() {
    let mut m = master();
    let (app_id, outs) = add_app(&mut m, at(0), 100, app(Some(1), 512, None));
    assert!(launches(&outs).is_empty());
    let a = app_view(&m, &app_id);
    assert_eq!(a.state, ApplicationState::Waiting);
    assert_eq!(a.waiting_reason, "no alive workers");
    let outs = add_worker(&mut m, at(10), 1, reg("w1", 3, 4096));
    assert_eq!(launches_per_conn(&outs), BTreeMap::from([(1, 3)]));
}

#[test]
fn default_cores_caps_apps_without_max_cores() {
    let mut m = MasterState::new(CoreConfig {
        default_cores: 3,
        ..cfg()
    });
    add_worker(&mut m, at(0), 1, reg("w1", 8, 8192));
    let (capped, outs) = add_app(&mut m, at(0), 100, app(Some(1), 512, None));
    assert_eq!(launches(&outs).len(), 3);
    assert_eq!(app_view(&m, &capped).cores_granted, 3);
    // An explicit spark.cores.max wins over the default.
    let (explicit, _) = add_app(&mut m, at(0), 101, app(Some(1), 512, Some(5)));
    assert_eq!(app_view(&m, &explicit).cores_granted, 5);
    assert_invariants(&m);
}

#[test]
fn apps_are_served_in_registration_order() {
    let mut m = master();
    let (first, _) = add_app(&mut m, at(0), 100, app(Some(2), 512, Some(4)));
    let (second, _) = add_app(&mut m, at(1), 101, app(Some(2), 512, Some(4)));
    add_worker(&mut m, at(10), 1, reg("w1", 6, 8192));
    assert_eq!(app_view(&m, &first).cores_granted, 4);
    assert_eq!(app_view(&m, &second).cores_granted, 2);
    assert_invariants(&m);
}

// ---------------------------------------------------------------------------- 3. never overcommit

type Step = Box<dyn Fn(&mut MasterState)>;

#[test]
fn never_overcommits_after_a_mixed_sequence() {
    let mut m = master();
    let steps: Vec<Step> = vec![
        Box::new(|m| m.register_worker(at(0), 1, reg("w1", 4, 4096))),
        Box::new(|m| m.register_worker(at(0), 2, reg("w2", 8, 16_384))),
        Box::new(|m| m.register_worker(at(0), 3, reg("w3", 2, 1024))),
        Box::new(|m| {
            m.submit_driver(at(1), driver(2, 1024, false)).unwrap();
        }),
        Box::new(|m| {
            m.register_application(at(2), 100, app(Some(2), 1024, None), "d".into())
                .unwrap();
        }),
        Box::new(|m| {
            m.register_application(at(3), 101, app(None, 512, Some(6)), "d".into())
                .unwrap();
        }),
        Box::new(|m| {
            m.register_application(at(4), 102, app(Some(1), 3000, Some(4)), "d".into())
                .unwrap();
        }),
        Box::new(|m| {
            // Fail whatever executors the first app has.
            let s = m.snapshot();
            let a = s.active_apps[0].clone();
            for e in &a.executors {
                m.executor_state_changed(
                    at(5),
                    &a.id,
                    e.executor_id,
                    ExecutorState::Failed,
                    None,
                    Some(1),
                );
            }
        }),
        Box::new(|m| m.register_worker(at(6), 4, reg("w4", 16, 65_536))),
        Box::new(|m| {
            let s = m.snapshot();
            let id = s.active_apps[1].id.clone();
            m.kill_application(at(7), &id).unwrap();
        }),
        Box::new(|m| m.worker_disconnected(at(8), 2)),
        Box::new(|m| {
            m.register_application(at(9), 103, app(Some(3), 100, Some(9)), "d".into())
                .unwrap();
        }),
        Box::new(|m| {
            m.submit_driver(at(10), driver(4, 4096, true)).unwrap();
        }),
        Box::new(|m| m.worker_disconnected(at(11), 4)),
        Box::new(|m| m.register_worker(at(12), 5, reg("w5", 32, 131_072))),
    ];
    for (i, step) in steps.iter().enumerate() {
        step(&mut m);
        m.take_outputs();
        let s = m.snapshot();
        if let Err(e) = check_invariants(&s) {
            panic!("after step {i}: {e}\n{s:#?}");
        }
        for w in &s.workers {
            assert!(w.cores_used <= w.cores && w.memory_used_mb <= w.memory_mb);
            let exec_cores: u32 = w.executors.iter().map(|e| e.cores).sum();
            let driver_cores: u32 = w
                .driver_ids
                .iter()
                .map(|d| s.driver(d).unwrap().desc.cores)
                .sum();
            assert_eq!(
                w.cores_used,
                exec_cores + driver_cores,
                "step {i}, worker {}",
                w.id
            );
        }
    }
    // Everything ended up somewhere.
    let s = m.snapshot();
    assert!(s.workers.iter().any(|w| w.cores_used > 0));
}

// ---------------------------------------------------------------------------- 4. heartbeats

#[test]
fn heartbeating_worker_stays_alive_across_ticks() {
    let mut m = master();
    add_worker(&mut m, at(0), 1, reg("w1", 4, 4096));
    for t in (250..=5000).step_by(250) {
        m.worker_heartbeat(at(t), 1, &wid("w1"));
        m.tick(at(t + 200));
        assert!(m.take_outputs().is_empty());
        assert_eq!(worker_view(&m, "w1").state, WorkerState::Alive, "t={t}");
    }
    assert_eq!(worker_view(&m, "w1").last_heartbeat_ms, T0 + 5000);
    // Exactly the timeout is still fine; one millisecond more is not.
    m.tick(at(6000));
    assert_eq!(worker_view(&m, "w1").state, WorkerState::Alive);
    m.tick(at(6001));
    assert_eq!(worker_view(&m, "w1").state, WorkerState::Dead);
}

/// w1 and w2 (4 cores each) and an application with one 1-core executor on each.
fn app_across_two_workers() -> (MasterState, AppId, ExecutorId, ExecutorId) {
    let mut m = two_workers(true);
    let (app_id, outs) = add_app(&mut m, at(0), 100, app(Some(1), 512, Some(2)));
    assert_eq!(launches_per_conn(&outs), BTreeMap::from([(1, 1), (2, 1)]));
    let a = app_view(&m, &app_id);
    let on = |w: &str| {
        a.executors
            .iter()
            .find(|e| e.worker_id == wid(w))
            .unwrap()
            .executor_id
    };
    let (e1, e2) = (on("w1"), on("w2"));
    (m, app_id, e1, e2)
}

/// What must follow the loss of w1 in [`app_across_two_workers`].
fn assert_w1_lost(m: &MasterState, outs: &[Output], app_id: &AppId, lost: ExecutorId) {
    let events = app_events(outs, 100);
    assert!(
        events.iter().any(|e| matches!(
            e,
            AppEvent::ExecutorUpdated {
                executor_id,
                state: ExecutorState::Lost,
                exit_status: None,
                worker_host: Some(h),
                ..
            } if *executor_id == lost && h == "host-w1"
        )),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| matches!(
            e,
            AppEvent::WorkerRemoved { worker_id, host, .. } if *worker_id == wid("w1") && host == "host-w1"
        )),
        "{events:?}"
    );
    // The lost core is re-offered, to w2 (the only ALIVE worker).
    let l = launches(outs);
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(l[0].0, 2);
    assert_eq!(l[0].1.cores, 1);
    assert!(l[0].1.executor_id > lost);
    // Nothing is sent to the dead worker.
    assert!(worker_cmds(outs, 1).is_empty(), "{outs:?}");

    let w1 = worker_view(m, "w1");
    assert_eq!(w1.state, WorkerState::Dead);
    assert_eq!((w1.cores_used, w1.memory_used_mb), (0, 0));
    assert!(w1.executors.is_empty());
    assert_eq!(worker_view(m, "w2").cores_used, 2);
    let a = app_view(m, app_id);
    assert_eq!(a.cores_granted, 2);
    assert!(a.executors.iter().all(|e| e.worker_id == wid("w2")));
    let removed = a
        .removed_executors
        .iter()
        .find(|e| e.executor_id == lost)
        .unwrap();
    assert_eq!(removed.state, ExecutorState::Lost);
    assert_eq!(a.retry_count, 0, "lost executors are not failures");
    assert_invariants(m);
}

#[test]
fn silent_worker_times_out_and_its_executors_move() {
    let (mut m, app_id, e1, _) = app_across_two_workers();
    m.worker_heartbeat(at(600), 2, &wid("w2"));
    m.tick(at(1000));
    assert!(m.take_outputs().is_empty());
    assert_eq!(worker_view(&m, "w1").state, WorkerState::Alive);

    m.tick(at(1001));
    let outs = m.take_outputs();
    assert_w1_lost(&m, &outs, &app_id, e1);
    assert_eq!(worker_view(&m, "w2").state, WorkerState::Alive);
}

/// When several workers time out in the same `tick`, removing the first one re-offers its
/// executors and relaunches its supervised drivers onto the others, which are declared DEAD
/// a moment later: LaunchExecutor/LaunchDriver go to workers the master is dropping, the
/// app gets ExecutorAdded then LOST for the same executor, and a supervised driver is
/// relaunched twice (two RELAUNCHING records).
#[test]
fn workers_expiring_in_the_same_tick_get_no_new_work() {
    let mut m = master();
    add_worker(&mut m, at(0), 1, reg("w1", 4, 4096));
    add_worker(&mut m, at(0), 2, reg("w2", 4, 4096));
    let (app_id, _) = add_app(&mut m, at(0), 100, app(Some(1), 512, Some(2)));
    let drv = m.submit_driver(at(0), driver(1, 512, true)).unwrap();
    m.take_outputs();
    assert_eq!(app_view(&m, &app_id).executors.len(), 2);

    m.tick(at(1001));
    let outs = m.take_outputs();
    assert!(m.snapshot().alive_workers().next().is_none());
    assert!(launches(&outs).is_empty(), "{:?}", launches(&outs));
    assert!(
        driver_launches(&outs).is_empty(),
        "{:?}",
        driver_launches(&outs)
    );
    let s = m.snapshot();
    assert_eq!(
        s.completed_drivers.len(),
        1,
        "relaunched once: {:?}",
        s.completed_drivers
    );
    assert_eq!(s.completed_drivers[0].id, drv);
    assert_eq!(s.active_drivers.len(), 1);
    assert_eq!(s.active_drivers[0].state, DriverState::Submitted);
}

#[test]
fn dead_workers_are_forgotten_after_the_persistence_period() {
    let mut m = MasterState::new(CoreConfig {
        dead_worker_persistence: 2,
        ..cfg()
    });
    add_worker(&mut m, at(0), 1, reg("w1", 4, 4096));
    m.tick(at(1001));
    assert_eq!(worker_view(&m, "w1").state, WorkerState::Dead);
    // (2 + 1) × 1000 ms after its last heartbeat.
    m.tick(at(3000));
    assert!(m.snapshot().worker(&wid("w1")).is_some());
    m.tick(at(3001));
    assert!(m.snapshot().worker(&wid("w1")).is_none());
    assert_eq!(m.worker_count(), 0);
    assert!(m.take_outputs().is_empty());
}

#[test]
fn heartbeat_from_unknown_or_dead_worker_asks_it_to_reconnect() {
    let mut m = master();
    let reconnect = |conn| Output::ToWorker {
        conn,
        cmd: WorkerCommand::Reconnect {
            master_url: MASTER_URL.into(),
        },
    };
    m.worker_heartbeat(at(0), 9, &wid("ghost"));
    assert_eq!(m.take_outputs(), vec![reconnect(9)]);
    assert!(m.snapshot().workers.is_empty());

    add_worker(&mut m, at(0), 1, reg("w1", 4, 4096));
    m.worker_heartbeat(at(100), 1, &wid("w1"));
    assert!(m.take_outputs().is_empty(), "ALIVE worker: no answer");

    m.worker_disconnected(at(200), 1);
    m.take_outputs();
    let before = m.snapshot();
    m.worker_heartbeat(at(300), 1, &wid("w1"));
    assert_eq!(m.take_outputs(), vec![reconnect(1)]);
    assert_eq!(
        m.snapshot(),
        before,
        "a heartbeat does not revive a DEAD worker"
    );
}

// ---------------------------------------------------------------------------- 5. disconnect

#[test]
fn worker_disconnect_kills_it_at_once() {
    let (mut m, app_id, e1, _) = app_across_two_workers();
    m.worker_disconnected(at(10), 1);
    let outs = m.take_outputs();
    assert_w1_lost(&m, &outs, &app_id, e1);

    // Unknown sessions and repeated disconnects are ignored.
    let before = m.snapshot();
    m.worker_disconnected(at(20), 1);
    m.worker_disconnected(at(20), 77);
    assert!(m.take_outputs().is_empty());
    assert_eq!(m.snapshot(), before);
}

#[test]
fn losing_a_worker_with_all_executors_reschedules_them_when_room_appears() {
    let mut m = master();
    add_worker(&mut m, at(0), 1, reg("w1", 4, 4096));
    let (app_id, _) = add_app(&mut m, at(0), 100, app(Some(2), 1024, Some(4)));
    assert_eq!(app_view(&m, &app_id).cores_granted, 4);
    m.worker_disconnected(at(10), 1);
    m.take_outputs();
    assert_eq!(app_view(&m, &app_id).cores_granted, 0);
    let outs = add_worker(&mut m, at(20), 2, reg("w2", 4, 4096));
    assert_eq!(launches_per_conn(&outs), BTreeMap::from([(2, 2)]));
    assert_eq!(app_view(&m, &app_id).cores_granted, 4);
    assert_invariants(&m);
}

// ---------------------------------------------------------------------------- 6. executor failures

fn with_retries(max_executor_retries: i32) -> MasterState {
    let mut m = MasterState::new(CoreConfig {
        max_executor_retries,
        ..cfg()
    });
    add_worker(&mut m, at(0), 1, reg("w1", 4, 4096));
    m
}

fn fail(m: &mut MasterState, app_id: &AppId, exec: ExecutorId) -> Vec<Output> {
    m.executor_state_changed(
        at(100),
        app_id,
        exec,
        ExecutorState::Failed,
        Some("boom".into()),
        Some(1),
    );
    m.take_outputs()
}

#[test]
fn failed_executor_is_replaced() {
    let mut m = with_retries(3);
    let (app_id, _) = add_app(&mut m, at(0), 100, app(Some(1), 512, Some(1)));
    assert_eq!(exec_ids(&app_view(&m, &app_id)), vec![0]);

    let outs = fail(&mut m, &app_id, 0);
    assert_eq!(
        app_events(&outs, 100)[0],
        AppEvent::ExecutorUpdated {
            executor_id: 0,
            state: ExecutorState::Failed,
            message: Some("boom".into()),
            exit_status: Some(1),
            worker_host: None,
        }
    );
    let l = launches(&outs);
    assert_eq!(l.len(), 1);
    assert_eq!((l[0].0, l[0].1.executor_id, l[0].1.cores), (1, 1, 1));
    let a = app_view(&m, &app_id);
    assert_eq!(exec_ids(&a), vec![1]);
    assert_eq!(a.retry_count, 1);
    assert_eq!(a.removed_executors.len(), 1);
    assert_eq!(a.removed_executors[0].exit_status, Some(1));
    assert_eq!(worker_view(&m, "w1").cores_used, 1);
    assert_invariants(&m);
}

#[test]
fn app_fails_after_max_executor_retries() {
    let mut m = with_retries(3);
    let (app_id, _) = add_app(&mut m, at(0), 100, app(Some(1), 512, Some(2)));
    assert_eq!(exec_ids(&app_view(&m, &app_id)), vec![0, 1]);
    // Executor 1 stays LAUNCHING; 0 and its replacements keep failing.
    let outs = fail(&mut m, &app_id, 0);
    assert_eq!(launches(&outs).len(), 1);
    let outs = fail(&mut m, &app_id, 2);
    assert_eq!(launches(&outs).len(), 1);
    assert_eq!(app_view(&m, &app_id).retry_count, 2);
    assert!(m.snapshot().completed_apps.is_empty());

    let outs = fail(&mut m, &app_id, 3);
    assert!(launches(&outs).is_empty(), "{outs:?}");
    assert_eq!(removed_events(&outs, 100), vec![ApplicationState::Failed]);
    assert_eq!(executor_kills(&outs), vec![(1, app_id.clone(), 1)]);
    assert_eq!(apps_finished(&outs), vec![(1, app_id.clone())]);
    assert!(outs.contains(&Output::CloseApp { conn: 100 }));

    let s = m.snapshot();
    assert!(s.active_apps.is_empty());
    assert_eq!(s.completed_apps.len(), 1);
    let a = &s.completed_apps[0];
    assert_eq!(a.id, app_id);
    assert_eq!(a.state, ApplicationState::Failed);
    assert_eq!(a.end_time_ms, Some(T0 + 100));
    let w = s.worker(&wid("w1")).unwrap();
    assert_eq!((w.cores_used, w.memory_used_mb), (0, 0));
    assert_invariants(&m);

    // The session is unbound now.
    assert!(matches!(
        m.request_executors(at(200), 100, 5),
        Err(CoreError::FailedPrecondition(_))
    ));
}

#[test]
fn running_report_alone_does_not_reset_the_retry_count() {
    // A process that starts (RUNNING) and then crashes must still count: otherwise a
    // crash-looping app never fails (a known Spark pain point).
    let mut m = with_retries(3);
    let (app_id, _) = add_app(&mut m, at(0), 100, app(Some(1), 512, Some(1)));
    for exec in 0..3 {
        m.executor_state_changed(at(50), &app_id, exec, ExecutorState::Running, None, None);
        m.take_outputs();
        fail(&mut m, &app_id, exec);
    }
    assert_eq!(app_view(&m, &app_id).state, ApplicationState::Failed);
}

#[test]
fn healthy_executor_resets_the_retry_count() {
    let mut m = with_retries(3);
    let (app_id, _) = add_app(&mut m, at(0), 100, app(Some(1), 512, Some(1)));
    fail(&mut m, &app_id, 0);
    fail(&mut m, &app_id, 1);
    assert_eq!(app_view(&m, &app_id).retry_count, 2);

    m.executor_state_changed(at(200), &app_id, 2, ExecutorState::Running, None, None);
    let outs = m.take_outputs();
    assert_eq!(
        app_events(&outs, 100),
        vec![AppEvent::ExecutorUpdated {
            executor_id: 2,
            state: ExecutorState::Running,
            message: None,
            exit_status: None,
            worker_host: None,
        }]
    );
    let a = app_view(&m, &app_id);
    assert_eq!(a.executors[0].state, ExecutorState::Running);
    assert_eq!(m.app_time_to_running_ms(&app_id), Some(200));

    // It ran for longer than executor_healthy_after_ms before failing: the count restarts.
    let healthy = cfg().executor_healthy_after_ms;
    m.executor_state_changed(
        at(200 + healthy),
        &app_id,
        2,
        ExecutorState::Exited,
        None,
        Some(1),
    );
    m.take_outputs();
    let a = app_view(&m, &app_id);
    assert_eq!(a.retry_count, 1);
    assert_eq!(a.state, ApplicationState::Running);
    // Two more quick failures reach 3 and fail the app.
    fail(&mut m, &app_id, 3);
    assert_eq!(app_view(&m, &app_id).retry_count, 2);
    fail(&mut m, &app_id, 4);
    assert_eq!(app_view(&m, &app_id).state, ApplicationState::Failed);
    assert!(m.snapshot().active_apps.is_empty());
}

#[test]
fn app_with_a_healthy_executor_is_not_failed() {
    let mut m = MasterState::new(CoreConfig {
        max_executor_retries: 2,
        executor_healthy_after_ms: 10,
        ..cfg()
    });
    add_worker(&mut m, at(0), 1, reg("w1", 4, 4096));
    let (app_id, _) = add_app(&mut m, at(0), 100, app(Some(1), 512, Some(2)));
    m.executor_state_changed(at(50), &app_id, 1, ExecutorState::Running, None, None);
    let mut failing = 0;
    for _ in 0..5 {
        fail(&mut m, &app_id, failing);
        let a = app_view(&m, &app_id);
        assert!(!a.state.is_finished());
        failing = *exec_ids(&a).iter().find(|&&e| e != 1).unwrap();
    }
    assert_eq!(app_view(&m, &app_id).retry_count, 5);
    assert_invariants(&m);
}

#[test]
fn normal_exit_does_not_count_as_a_failure() {
    let mut m = with_retries(1);
    let (app_id, _) = add_app(&mut m, at(0), 100, app(Some(1), 512, Some(1)));
    for exec in 0..5 {
        m.executor_state_changed(at(100), &app_id, exec, ExecutorState::Exited, None, Some(0));
        let outs = m.take_outputs();
        assert_eq!(launches(&outs).len(), 1, "exit 0 of {exec} is replaced");
    }
    let a = app_view(&m, &app_id);
    assert_eq!(a.retry_count, 0);
    assert!(!a.state.is_finished());
    // One real failure is then enough with maxExecutorRetries = 1.
    fail(&mut m, &app_id, 5);
    assert_eq!(app_view(&m, &app_id).state, ApplicationState::Failed);
}

#[test]
fn negative_max_executor_retries_never_fails_the_app() {
    let mut m = with_retries(-1);
    let (app_id, _) = add_app(&mut m, at(0), 100, app(Some(1), 512, Some(1)));
    for exec in 0..20 {
        let outs = fail(&mut m, &app_id, exec);
        assert_eq!(launches(&outs).len(), 1);
    }
    let a = app_view(&m, &app_id);
    assert_eq!(a.state, ApplicationState::Running);
    assert_eq!(a.retry_count, 20);
}

#[test]
fn updates_for_unknown_apps_or_executors_are_ignored() {
    let mut m = master();
    add_worker(&mut m, at(0), 1, reg("w1", 4, 4096));
    let (app_id, _) = add_app(&mut m, at(0), 100, app(Some(1), 512, Some(1)));
    let before = m.snapshot();
    m.executor_state_changed(
        at(10),
        &AppId::from("app-nope"),
        0,
        ExecutorState::Failed,
        None,
        Some(1),
    );
    m.executor_state_changed(at(10), &app_id, 42, ExecutorState::Failed, None, Some(1));
    assert!(m.take_outputs().is_empty());
    assert_eq!(m.snapshot(), before);
}

/// Spark does not count the exit of an executor that was DECOMMISSIONED as a failure
/// (`oldState != ExecutorState.DECOMMISSIONED` in `Master.ExecutorStateChanged`).
#[test]
fn exit_of_a_decommissioned_executor_is_not_a_failure() {
    let mut m = with_retries(1);
    let (app_id, _) = add_app(&mut m, at(0), 100, app(Some(1), 512, Some(1)));
    m.executor_state_changed(
        at(10),
        &app_id,
        0,
        ExecutorState::Decommissioned,
        None,
        None,
    );
    assert_eq!(
        app_view(&m, &app_id).executors[0].state,
        ExecutorState::Decommissioned
    );
    m.executor_state_changed(at(20), &app_id, 0, ExecutorState::Exited, None, Some(1));
    let outs = m.take_outputs();
    let a = app_view(&m, &app_id);
    assert_eq!(a.retry_count, 0);
    assert_eq!(a.state, ApplicationState::Running, "{outs:?}");
    assert_eq!(
        launches(&outs).len(),
        1,
        "the decommissioned executor is replaced"
    );
}

// ---------------------------------------------------------------------------- 7. app lifecycle

#[test]
fn application_ids_are_spark_style_and_count_up() {
    let mut m = master();
    let (first, outs) = add_app(&mut m, at(0), 100, app(Some(1), 512, None));
    assert_eq!(first, AppId(format!("app-{STAMP}-0000")));
    assert_eq!(
        outs,
        vec![Output::ToApp {
            conn: 100,
            event: AppEvent::Registered {
                app_id: first.clone(),
                master_url: MASTER_URL.into(),
            },
        }]
    );
    let (second, _) = add_app(&mut m, at(0), 101, app(Some(1), 512, None));
    assert_eq!(second, AppId(format!("app-{STAMP}-0001")));
    // The timestamp part follows the wall clock (one hour later).
    let (third, _) = add_app(&mut m, at(3_600_000), 102, app(Some(1), 512, None));
    assert_eq!(third.as_str(), "app-20261122050305-0002");
    let a = app_view(&m, &first);
    assert_eq!(a.state, ApplicationState::Waiting);
    assert_eq!(a.start_time_ms, T0);
    assert_eq!(a.driver_url, "spark://driver:7078");
    assert_eq!(a.end_time_ms, None);
}

/// Two workers, an application (session 100) with one executor on each, and a bystander
/// application (session 200) that holds nothing.
fn app_to_remove() -> (MasterState, AppId, AppId) {
    let (mut m, app_id, _, _) = app_across_two_workers();
    let (other, _) = add_app(&mut m, at(1), 200, app(Some(1), 100_000, None));
    (m, app_id, other)
}

fn assert_app_removed(m: &MasterState, outs: &[Output], app_id: &AppId, state: ApplicationState) {
    let mut kills = executor_kills(outs);
    kills.sort();
    assert_eq!(kills, vec![(1, app_id.clone(), 0), (2, app_id.clone(), 1)]);
    let mut finished = apps_finished(outs);
    finished.sort();
    assert_eq!(finished, vec![(1, app_id.clone()), (2, app_id.clone())]);
    assert!(outs.contains(&Output::CloseApp { conn: 100 }));
    assert!(app_events(outs, 200).is_empty(), "bystander untouched");
    let expected: Vec<ApplicationState> = if state == ApplicationState::Finished {
        vec![]
    } else {
        vec![state]
    };
    assert_eq!(removed_events(outs, 100), expected);

    let s = m.snapshot();
    assert_eq!(s.active_apps.len(), 1, "only the bystander is left");
    let a = s.completed_apps.iter().find(|a| &a.id == app_id).unwrap();
    assert_eq!(a.state, state);
    assert!(a.end_time_ms.is_some());
    assert_eq!(a.cores_granted, 0);
    assert!(a.executors.is_empty());
    assert_eq!(a.removed_executors.len(), 2);
    assert!(
        a.removed_executors
            .iter()
            .all(|e| e.state == ExecutorState::Killed)
    );
    for w in &s.workers {
        assert_eq!((w.cores_used, w.memory_used_mb), (0, 0));
        assert!(w.executors.is_empty());
    }
    assert_invariants(m);
}

#[test]
fn unregister_application_finishes_it() {
    let (mut m, app_id, _) = app_to_remove();
    m.unregister_application(at(50), 100).unwrap();
    let outs = m.take_outputs();
    assert_app_removed(&m, &outs, &app_id, ApplicationState::Finished);
    assert_eq!(app_view(&m, &app_id).end_time_ms, Some(T0 + 50));
    // The session no longer has an application.
    assert!(matches!(
        m.unregister_application(at(60), 100),
        Err(CoreError::FailedPrecondition(_))
    ));
}

#[test]
fn application_disconnect_finishes_it() {
    let (mut m, app_id, _) = app_to_remove();
    m.application_disconnected(at(50), 100);
    let outs = m.take_outputs();
    assert_app_removed(&m, &outs, &app_id, ApplicationState::Finished);
    // A second close of the same session, or of an unknown one, does nothing.
    let before = m.snapshot();
    m.application_disconnected(at(60), 100);
    m.application_disconnected(at(60), 999);
    assert!(m.take_outputs().is_empty());
    assert_eq!(m.snapshot(), before);
}

#[test]
fn kill_application_removes_it_as_killed() {
    let (mut m, app_id, _) = app_to_remove();
    m.kill_application(at(50), &app_id).unwrap();
    let outs = m.take_outputs();
    assert_app_removed(&m, &outs, &app_id, ApplicationState::Killed);
}

#[test]
fn killing_unknown_or_finished_apps_is_refused_without_change() {
    let (mut m, app_id, _) = app_to_remove();
    let before = m.snapshot();
    assert!(matches!(
        m.kill_application(at(50), &AppId::from("app-20000101000000-0042")),
        Err(CoreError::NotFound(_))
    ));
    assert!(m.take_outputs().is_empty());
    assert_eq!(m.snapshot(), before);

    m.unregister_application(at(60), 100).unwrap();
    m.take_outputs();
    let before = m.snapshot();
    let err = m.kill_application(at(70), &app_id).unwrap_err();
    assert!(matches!(err, CoreError::FailedPrecondition(_)), "{err:?}");
    assert_eq!(
        err.code(),
        flint_domain::error::ErrorCode::FailedPrecondition
    );
    assert!(m.take_outputs().is_empty());
    assert_eq!(m.snapshot(), before);
    assert_eq!(app_view(&m, &app_id).state, ApplicationState::Finished);
}

#[test]
fn removing_an_app_frees_cores_for_the_next_one() {
    let mut m = master();
    add_worker(&mut m, at(0), 1, reg("w1", 4, 4096));
    let (first, _) = add_app(&mut m, at(0), 100, app(Some(4), 1024, None));
    let (second, outs) = add_app(&mut m, at(0), 101, app(Some(4), 1024, None));
    assert!(launches(&outs).is_empty());
    m.kill_application(at(10), &first).unwrap();
    let outs = m.take_outputs();
    assert_eq!(launches(&outs).len(), 1);
    assert_eq!(launches(&outs)[0].1.app_id, second);
    assert_invariants(&m);
}

// ---------------------------------------------------------------------------- 8. dynamic allocation

/// One 8-core worker and an application starting with no executors.
fn dynamic_app() -> (MasterState, AppId) {
    let mut m = master();
    add_worker(&mut m, at(0), 1, reg("w1", 8, 16_384));
    let mut desc = app(Some(1), 1024, None);
    desc.initial_executor_limit = Some(0);
    let (app_id, outs) = add_app(&mut m, at(0), 100, desc);
    assert!(launches(&outs).is_empty(), "{outs:?}");
    (m, app_id)
}

#[test]
fn initial_executor_limit_zero_launches_nothing() {
    let (m, app_id) = dynamic_app();
    let a = app_view(&m, &app_id);
    assert_eq!(a.executor_limit, 0);
    assert!(a.executors.is_empty());
    assert_eq!(a.state, ApplicationState::Waiting);
    assert!(
        a.waiting_reason.contains("executor limit is 0"),
        "{}",
        a.waiting_reason
    );
    assert_eq!(worker_view(&m, "w1").cores_used, 0);
}

#[test]
fn request_executors_launches_exactly_the_total() {
    let (mut m, app_id) = dynamic_app();
    let outcome = m.request_executors(at(10), 100, 2).unwrap();
    let outs = m.take_outputs();
    assert!(outcome.ok, "{outcome:?}");
    assert_no_request_result(&outs, 100);
    assert_eq!(launches(&outs).len(), 2);
    let a = app_view(&m, &app_id);
    assert_eq!(a.executor_limit, 2);
    assert_eq!(a.executors.len(), 2);
    assert_eq!(a.cores_granted, 2);
    // Asking again for the same total changes nothing.
    let outcome = m.request_executors(at(20), 100, 2).unwrap();
    let outs = m.take_outputs();
    assert_eq!(outcome.message, "executor limit set to 2");
    assert!(launches(&outs).is_empty());
    // Raising it launches the difference.
    m.request_executors(at(30), 100, 5).unwrap();
    assert_eq!(launches(&m.take_outputs()).len(), 3);
    assert_invariants(&m);
}

#[test]
fn kill_executors_frees_resources() {
    let (mut m, app_id) = dynamic_app();
    m.request_executors(at(10), 100, 2).unwrap();
    m.take_outputs();
    // As Spark's driver does: lower the target first, then kill.
    m.request_executors(at(20), 100, 1).unwrap();
    let outs = m.take_outputs();
    assert!(launches(&outs).is_empty() && executor_kills(&outs).is_empty());
    let outcome = m.kill_executors(at(30), 100, &[0]).unwrap();
    let outs = m.take_outputs();
    assert_eq!(executor_kills(&outs), vec![(1, app_id.clone(), 0)]);
    assert!(outcome.ok, "{outcome:?}");
    assert!(launches(&outs).is_empty(), "{outs:?}");

    let a = app_view(&m, &app_id);
    assert_eq!(exec_ids(&a), vec![1]);
    assert_eq!(a.cores_granted, 1);
    assert_eq!(a.removed_executors.len(), 1);
    assert_eq!(a.removed_executors[0].state, ExecutorState::Killed);
    let w = worker_view(&m, "w1");
    assert_eq!((w.cores_used, w.memory_used_mb), (1, 1024));
    assert_invariants(&m);
}

#[test]
fn kill_executors_with_unknown_ids_answers_not_ok() {
    let (mut m, _) = dynamic_app();
    m.request_executors(at(10), 100, 2).unwrap();
    m.take_outputs();
    let before = m.snapshot();
    let outcome = m.kill_executors(at(20), 100, &[17, 99]).unwrap();
    let outs = m.take_outputs();
    assert!(!outcome.ok);
    assert_eq!(outcome.message, "unknown executor id(s): [17, 99]");
    assert!(executor_kills(&outs).is_empty());
    assert!(launches(&outs).is_empty());
    assert_eq!(m.snapshot(), before);
}

#[test]
fn lowering_the_limit_does_not_launch_more() {
    let (mut m, app_id) = dynamic_app();
    m.request_executors(at(10), 100, 3).unwrap();
    m.take_outputs();
    m.request_executors(at(20), 100, 1).unwrap();
    let outs = m.take_outputs();
    assert!(launches(&outs).is_empty());
    assert!(
        executor_kills(&outs).is_empty(),
        "the driver kills, not the master"
    );
    let a = app_view(&m, &app_id);
    assert_eq!((a.executor_limit, a.executors.len()), (1, 3));
    // Executors that end are not replaced while the app is at or above its limit.
    m.executor_state_changed(at(30), &app_id, 0, ExecutorState::Exited, None, Some(0));
    assert!(launches(&m.take_outputs()).is_empty());
    m.executor_state_changed(at(31), &app_id, 1, ExecutorState::Exited, None, Some(0));
    assert!(launches(&m.take_outputs()).is_empty());
    assert_eq!(app_view(&m, &app_id).executors.len(), 1);
    m.executor_state_changed(at(32), &app_id, 2, ExecutorState::Exited, None, Some(0));
    assert_eq!(
        launches(&m.take_outputs()).len(),
        1,
        "below the limit again"
    );
    assert_invariants(&m);
}

// ---------------------------------------------------------------------------- 9. drivers

#[test]
fn submitted_driver_is_launched_on_a_worker_with_room() {
    let mut m = master();
    add_worker(&mut m, at(0), 1, reg("small", 1, 1024));
    add_worker(&mut m, at(0), 2, reg("big", 4, 8192));
    let id = m.submit_driver(at(0), driver(2, 2048, false)).unwrap();
    assert_eq!(id, DriverId(format!("driver-{STAMP}-0000")));
    let outs = m.take_outputs();
    assert_eq!(driver_launches(&outs), vec![(2, id.clone())]);
    match &worker_cmds(&outs, 2)[0] {
        WorkerCommand::LaunchDriver { driver: d, .. } => assert_eq!(**d, driver(2, 2048, false)),
        other => panic!("{other:?}"),
    }
    let d = driver_view(&m, &id);
    assert_eq!(d.state, DriverState::Running);
    assert_eq!(d.worker_id, Some(wid("big")));
    assert_eq!(d.worker_host_port.as_deref(), Some("host-big:7078"));
    assert_eq!(m.driver_status(&id).unwrap(), d);
    let w = worker_view(&m, "big");
    assert_eq!((w.cores_used, w.memory_used_mb), (2, 2048));
    assert_eq!(w.driver_ids, vec![id.clone()]);
    assert_eq!(worker_view(&m, "small").cores_used, 0);

    let second = m.submit_driver(at(0), driver(1, 10, false)).unwrap();
    assert_eq!(second.as_str(), format!("driver-{STAMP}-0001"));
    assert_invariants(&m);
}

#[test]
fn driver_too_big_for_every_worker_waits_for_a_big_one() {
    let mut m = master();
    add_worker(&mut m, at(0), 1, reg("w1", 2, 2048));
    let id = m.submit_driver(at(0), driver(4, 1024, false)).unwrap();
    assert!(driver_launches(&m.take_outputs()).is_empty());
    let d = driver_view(&m, &id);
    assert_eq!(d.state, DriverState::Submitted);
    assert_eq!(d.worker_id, None);
    assert!(m.snapshot().active_drivers.iter().any(|x| x.id == id));

    let outs = add_worker(&mut m, at(10), 2, reg("w2", 8, 2048));
    assert_eq!(driver_launches(&outs), vec![(2, id.clone())]);
    assert_eq!(driver_view(&m, &id).state, DriverState::Running);
    assert_invariants(&m);
}

#[test]
fn killing_a_queued_driver_kills_it_directly() {
    let mut m = master();
    let id = m.submit_driver(at(0), driver(1, 512, false)).unwrap();
    m.take_outputs();
    let msg = m.kill_driver(at(10), &id).unwrap();
    assert!(msg.contains(id.as_str()), "{msg}");
    assert!(m.take_outputs().is_empty());
    let s = m.snapshot();
    assert!(s.active_drivers.is_empty());
    assert_eq!(s.completed_drivers.len(), 1);
    assert_eq!(s.completed_drivers[0].state, DriverState::Killed);
    // It will not be launched later.
    let outs = add_worker(&mut m, at(20), 1, reg("w1", 4, 4096));
    assert!(driver_launches(&outs).is_empty());
}

#[test]
fn killing_a_running_driver_asks_its_worker() {
    let mut m = master();
    add_worker(&mut m, at(0), 1, reg("w1", 4, 4096));
    let id = m.submit_driver(at(0), driver(1, 512, false)).unwrap();
    m.take_outputs();
    m.kill_driver(at(10), &id).unwrap();
    assert_eq!(driver_kills(&m.take_outputs()), vec![(1, id.clone())]);
    assert_eq!(
        driver_view(&m, &id).state,
        DriverState::Running,
        "until the worker says so"
    );
    assert_eq!(worker_view(&m, "w1").cores_used, 1);

    m.driver_state_changed(
        at(20),
        &id,
        DriverState::Killed,
        Some("killed".into()),
        None,
    );
    let d = driver_view(&m, &id);
    assert_eq!(d.state, DriverState::Killed);
    assert!(m.snapshot().completed_drivers.iter().any(|x| x.id == id));
    let w = worker_view(&m, "w1");
    assert_eq!((w.cores_used, w.memory_used_mb), (0, 0));
    assert!(w.driver_ids.is_empty());
    assert_invariants(&m);
}

#[test]
fn unknown_and_finished_drivers_are_refused() {
    let mut m = master();
    add_worker(&mut m, at(0), 1, reg("w1", 4, 4096));
    let unknown = DriverId::from("driver-20000101000000-0099");
    let before = m.snapshot();
    assert!(matches!(
        m.driver_status(&unknown),
        Err(CoreError::NotFound(_))
    ));
    assert!(matches!(
        m.kill_driver(at(0), &unknown),
        Err(CoreError::NotFound(_))
    ));
    assert!(m.take_outputs().is_empty());
    assert_eq!(m.snapshot(), before);

    let id = m.submit_driver(at(0), driver(1, 512, false)).unwrap();
    m.driver_state_changed(at(10), &id, DriverState::Finished, None, Some(0));
    m.take_outputs();
    let before = m.snapshot();
    assert!(matches!(
        m.kill_driver(at(20), &id),
        Err(CoreError::FailedPrecondition(_))
    ));
    assert!(m.take_outputs().is_empty());
    assert_eq!(m.snapshot(), before);
    // Its status is still known.
    assert_eq!(m.driver_status(&id).unwrap().state, DriverState::Finished);
}

#[test]
fn supervised_driver_is_relaunched_under_a_new_id_when_its_worker_dies() {
    let mut m = master();
    add_worker(&mut m, at(0), 1, reg("w1", 4, 4096));
    add_worker(&mut m, at(0), 2, reg("w2", 4, 4096));
    let old = m.submit_driver(at(0), driver(2, 1024, true)).unwrap();
    let outs = m.take_outputs();
    let [(conn, _)] = driver_launches(&outs)[..] else {
        panic!("{outs:?}")
    };
    let (dead_conn, other_conn, other) = if conn == 1 {
        (1, 2, "w2")
    } else {
        (2, 1, "w1")
    };

    m.worker_disconnected(at(100), dead_conn);
    let outs = m.take_outputs();
    let s = m.snapshot();
    let old_view = s.completed_drivers.iter().find(|d| d.id == old).unwrap();
    assert_eq!(old_view.state, DriverState::Relaunching);
    let new = old_view.relaunched_as.clone().expect("relaunched_as set");
    assert_ne!(new, old);
    assert_eq!(new.as_str(), format!("driver-{STAMP}-0001"));
    assert_eq!(driver_launches(&outs), vec![(other_conn, new.clone())]);
    let d = driver_view(&m, &new);
    assert_eq!(d.state, DriverState::Running);
    assert_eq!(d.worker_id, Some(wid(other)));
    assert_eq!(d.desc, driver(2, 1024, true));
    assert_eq!(worker_view(&m, other).cores_used, 2);
    assert!(s.active_drivers.iter().all(|d| d.id != old));
    assert_invariants(&m);
}

#[test]
fn unsupervised_driver_errors_when_its_worker_dies() {
    let mut m = master();
    add_worker(&mut m, at(0), 1, reg("w1", 4, 4096));
    let id = m.submit_driver(at(0), driver(2, 1024, false)).unwrap();
    m.take_outputs();
    add_worker(&mut m, at(1), 2, reg("w2", 4, 4096));
    m.worker_disconnected(at(100), 1);
    let outs = m.take_outputs();
    assert!(driver_launches(&outs).is_empty(), "{outs:?}");
    let d = driver_view(&m, &id);
    assert_eq!(d.state, DriverState::Error);
    assert_eq!(d.relaunched_as, None);
    let s = m.snapshot();
    assert!(s.active_drivers.is_empty());
    assert_eq!(s.completed_drivers.len(), 1);
    assert_invariants(&m);
}

#[test]
fn finished_and_failed_drivers_free_their_worker() {
    let mut m = master();
    add_worker(&mut m, at(0), 1, reg("w1", 4, 4096));
    let a = m.submit_driver(at(0), driver(2, 1024, false)).unwrap();
    let b = m.submit_driver(at(0), driver(2, 1024, false)).unwrap();
    let c = m.submit_driver(at(0), driver(2, 1024, false)).unwrap();
    let outs = m.take_outputs();
    assert_eq!(driver_launches(&outs).len(), 2);
    assert_eq!(driver_view(&m, &c).state, DriverState::Submitted);
    let w = worker_view(&m, "w1");
    assert_eq!((w.cores_used, w.memory_used_mb), (4, 2048));

    m.driver_state_changed(at(10), &a, DriverState::Running, None, None);
    m.driver_state_changed(at(20), &a, DriverState::Finished, None, Some(0));
    let outs = m.take_outputs();
    assert_eq!(
        driver_launches(&outs),
        vec![(1, c.clone())],
        "the queued driver takes the room"
    );
    assert_eq!(driver_view(&m, &a).state, DriverState::Finished);
    assert_eq!(driver_view(&m, &a).exit_status, Some(0));

    m.driver_state_changed(
        at(30),
        &b,
        DriverState::Failed,
        Some("oops".into()),
        Some(3),
    );
    m.driver_state_changed(at(30), &c, DriverState::Finished, None, Some(0));
    let d = driver_view(&m, &b);
    assert_eq!(
        (d.state, d.exit_status, d.message.as_deref()),
        (DriverState::Failed, Some(3), Some("oops"))
    );
    let w = worker_view(&m, "w1");
    assert_eq!((w.cores_used, w.memory_used_mb), (0, 0));
    assert!(w.driver_ids.is_empty());
    assert_invariants(&m);
}

#[test]
fn drivers_and_executors_share_a_worker_without_overcommit() {
    let mut m = master();
    add_worker(&mut m, at(0), 1, reg("w1", 4, 4096));
    m.submit_driver(at(0), driver(1, 1024, false)).unwrap();
    let (app_id, outs) = add_app(&mut m, at(1), 100, app(Some(1), 1024, None));
    // 3 cores and 3 GiB are left after the driver.
    assert_eq!(launches(&outs).len(), 3);
    assert_eq!(app_view(&m, &app_id).cores_granted, 3);
    let w = worker_view(&m, "w1");
    assert_eq!((w.cores_used, w.memory_used_mb), (4, 4096));
    assert_invariants(&m);
}

/// Spark only accepts terminal driver states from workers; a RUNNING report for a driver
/// the master has not placed yet must not make it look RUNNING while it is still queued.
#[test]
fn running_update_for_a_queued_driver_is_ignored() {
    let mut m = master();
    let id = m.submit_driver(at(0), driver(1, 512, false)).unwrap();
    m.driver_state_changed(at(10), &id, DriverState::Running, None, None);
    let d = driver_view(&m, &id);
    assert_eq!((d.state, d.worker_id), (DriverState::Submitted, None));
    assert_invariants(&m);
}

// ---------------------------------------------------------------------------- 10. latest state

#[test]
fn worker_latest_state_kills_what_the_master_does_not_know() {
    let mut m = master();
    add_worker(&mut m, at(0), 1, reg("w1", 4, 4096));
    let (app_id, _) = add_app(&mut m, at(0), 100, app(Some(1), 512, Some(1)));
    let drv = m.submit_driver(at(0), driver(1, 512, false)).unwrap();
    m.take_outputs();
    let before = m.snapshot();

    let stray_app = AppId::from("app-20000101000000-0007");
    let stray_driver = DriverId::from("driver-20000101000000-0003");
    m.worker_latest_state(
        1,
        &wid("w1"),
        &[
            (app_id.clone(), 0),
            (app_id.clone(), 5),
            (stray_app.clone(), 0),
        ],
        &[drv.clone(), stray_driver.clone()],
    );
    let outs = m.take_outputs();
    assert_eq!(
        worker_cmds(&outs, 1),
        vec![
            WorkerCommand::KillExecutor {
                app_id: app_id.clone(),
                executor_id: 5,
            },
            WorkerCommand::KillExecutor {
                app_id: stray_app,
                executor_id: 0,
            },
            WorkerCommand::KillDriver {
                driver_id: stray_driver,
            },
        ]
    );
    assert_eq!(outs.len(), 3);
    assert_eq!(m.snapshot(), before);

    // Everything known: nothing to kill. Unknown worker: ignored.
    m.worker_latest_state(1, &wid("w1"), &[(app_id, 0)], &[drv]);
    m.worker_latest_state(9, &wid("ghost"), &[(AppId::from("x"), 0)], &[]);
    assert!(m.take_outputs().is_empty());
}

// ---------------------------------------------------------------------------- 11. bad input

#[test]
fn requests_without_a_registered_app_are_refused_without_change() {
    let mut m = master();
    add_worker(&mut m, at(0), 1, reg("w1", 4, 4096));
    add_app(&mut m, at(0), 100, app(Some(1), 512, Some(2)));
    let before = m.snapshot();

    let r = m.request_executors(at(10), 555, 10);
    assert!(matches!(r, Err(CoreError::FailedPrecondition(_))), "{r:?}");
    assert_eq!(m.snapshot(), before);
    let r = m.kill_executors(at(10), 555, &[0]);
    assert!(matches!(r, Err(CoreError::FailedPrecondition(_))), "{r:?}");
    assert_eq!(m.snapshot(), before);
    let r = m.unregister_application(at(10), 555);
    assert!(matches!(r, Err(CoreError::FailedPrecondition(_))), "{r:?}");
    assert_eq!(m.snapshot(), before);
    assert!(m.take_outputs().is_empty());
}

#[test]
fn second_registration_on_the_same_session_is_refused_without_change() {
    let mut m = master();
    add_worker(&mut m, at(0), 1, reg("w1", 4, 4096));
    let (first, _) = add_app(&mut m, at(0), 100, app(Some(1), 512, Some(2)));
    let before = m.snapshot();
    let r = m.register_application(at(10), 100, app(Some(1), 512, Some(2)), "d2".into());
    match r {
        Err(CoreError::FailedPrecondition(msg)) => assert!(msg.contains(first.as_str()), "{msg}"),
        other => panic!("{other:?}"),
    }
    assert!(m.take_outputs().is_empty());
    assert_eq!(m.snapshot(), before);
    // The refused registration did not use up an application number.
    let (next, _) = add_app(&mut m, at(20), 101, app(Some(1), 512, Some(2)));
    assert_eq!(next, AppId(format!("app-{STAMP}-0001")));
}

#[test]
fn core_errors_map_to_error_codes() {
    use flint_domain::error::ErrorCode;
    assert_eq!(CoreError::NotFound("x".into()).code(), ErrorCode::NotFound);
    assert_eq!(
        CoreError::InvalidArgument("x".into()).code(),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        CoreError::FailedPrecondition("x".into()).code(),
        ErrorCode::FailedPrecondition
    );
    assert_eq!(
        CoreError::NotAlive(MasterStatus::Standby).code(),
        ErrorCode::Unavailable
    );
    assert_eq!(
        CoreError::Unavailable("x".into()).code(),
        ErrorCode::Unavailable
    );
}

// ---------------------------------------------------------------------------- 12. retention

#[test]
fn completed_apps_are_capped_dropping_the_oldest_tenth() {
    let mut m = MasterState::new(CoreConfig {
        retained_applications: 20,
        ..cfg()
    });
    let mut ids = Vec::new();
    for i in 0..20u64 {
        let (id, _) = add_app(&mut m, at(i), 100 + i, app(Some(1), 512, None));
        m.kill_application(at(i), &id).unwrap();
        ids.push(id);
    }
    let completed = |m: &MasterState| -> Vec<AppId> {
        m.snapshot()
            .completed_apps
            .iter()
            .map(|a| a.id.clone())
            .collect()
    };
    assert_eq!(completed(&m), ids);

    // The 21st drops the oldest 10% (2 applications) first.
    let (id, _) = add_app(&mut m, at(20), 120, app(Some(1), 512, None));
    m.unregister_application(at(20), 120).unwrap();
    ids.push(id);
    let got = completed(&m);
    assert_eq!(got.len(), 19);
    assert_eq!(got, ids[2..].to_vec());
    assert_eq!(got[0], AppId(format!("app-{STAMP}-0002")));
    // Dropped applications are unknown now.
    assert!(matches!(
        m.kill_application(at(30), &ids[0]),
        Err(CoreError::NotFound(_))
    ));
}

#[test]
fn small_retention_drops_at_least_one() {
    let mut m = MasterState::new(CoreConfig {
        retained_applications: 3,
        retained_drivers: 2,
        ..cfg()
    });
    for i in 0..6u64 {
        let (id, _) = add_app(&mut m, at(i), 100 + i, app(Some(1), 512, None));
        m.kill_application(at(i), &id).unwrap();
        assert!(m.snapshot().completed_apps.len() <= 3);
    }
    let s = m.snapshot();
    assert_eq!(s.completed_apps.len(), 3);
    assert_eq!(s.completed_apps[2].id, AppId(format!("app-{STAMP}-0005")));
    for _ in 0..5 {
        let id = m.submit_driver(at(0), driver(1, 1, false)).unwrap();
        m.kill_driver(at(0), &id).unwrap();
    }
    let s = m.snapshot();
    assert_eq!(s.completed_drivers.len(), 2);
    assert_eq!(
        s.completed_drivers[1].id,
        DriverId(format!("driver-{STAMP}-0004"))
    );
}

// ---------------------------------------------------------------------------- property test

#[derive(Clone, Debug)]
enum Op {
    RegisterWorker {
        slot: u8,
        cores: u32,
        mem: u64,
    },
    Heartbeat,
    Tick(u64),
    DisconnectWorker(prop::sample::Index),
    RegisterApp {
        cpe: Option<u32>,
        mem: u64,
        max_cores: Option<u32>,
        limit: Option<u32>,
    },
    ExecutorUpdate {
        app: prop::sample::Index,
        exec: prop::sample::Index,
        state: ExecutorState,
        status: Option<i32>,
    },
    KillApp(prop::sample::Index),
    UnregisterApp(prop::sample::Index),
    RequestExecutors(prop::sample::Index, u32),
    KillExecutors(prop::sample::Index, prop::sample::Index),
    SubmitDriver {
        cores: u32,
        mem: u64,
        supervise: bool,
    },
    DriverDone(prop::sample::Index, DriverState),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let idx = any::<prop::sample::Index>;
    prop_oneof![
        3 => (0u8..6, 1u32..9, 256u64..8192).prop_map(|(slot, cores, mem)| Op::RegisterWorker { slot, cores, mem }),
        4 => Just(Op::Heartbeat),
        3 => (0u64..1500).prop_map(Op::Tick),
        1 => idx().prop_map(Op::DisconnectWorker),
        3 => (
            prop::option::of(1u32..4),
            64u64..4096,
            prop::option::of(1u32..12),
            prop::option::of(0u32..5),
        )
            .prop_map(|(cpe, mem, max_cores, limit)| Op::RegisterApp { cpe, mem, max_cores, limit }),
        5 => (
            idx(),
            idx(),
            prop::sample::select(vec![
                ExecutorState::Running,
                ExecutorState::Exited,
                ExecutorState::Failed,
                ExecutorState::Killed,
                ExecutorState::Lost,
                ExecutorState::Decommissioned,
            ]),
            prop::option::of(prop::sample::select(vec![0, 1, 137])),
        )
            .prop_map(|(app, exec, state, status)| Op::ExecutorUpdate { app, exec, state, status }),
        1 => idx().prop_map(Op::KillApp),
        1 => idx().prop_map(Op::UnregisterApp),
        2 => (idx(), 0u32..6).prop_map(|(a, n)| Op::RequestExecutors(a, n)),
        2 => (idx(), idx()).prop_map(|(a, e)| Op::KillExecutors(a, e)),
        1 => (1u32..4, 128u64..2048, any::<bool>())
            .prop_map(|(cores, mem, supervise)| Op::SubmitDriver { cores, mem, supervise }),
        1 => (
            idx(),
            prop::sample::select(vec![
                DriverState::Running,
                DriverState::Finished,
                DriverState::Failed,
                DriverState::Killed,
            ]),
        )
            .prop_map(|(d, s)| Op::DriverDone(d, s)),
    ]
}

/// Drives a [`MasterState`] with generated operations, keeping track of sessions.
struct Harness {
    m: MasterState,
    now: u64,
    next_conn: ConnId,
    /// Session of each registered worker id (the latest one used).
    worker_conn: BTreeMap<WorkerId, ConnId>,
    /// Session of each application ever registered.
    app_conn: BTreeMap<AppId, ConnId>,
}

impl Harness {
    fn new() -> Self {
        Self {
            m: MasterState::new(CoreConfig {
                max_executor_retries: 2,
                retained_applications: 5,
                retained_drivers: 5,
                ..cfg()
            }),
            now: 0,
            next_conn: 1,
            worker_conn: BTreeMap::new(),
            app_conn: BTreeMap::new(),
        }
    }

    fn conn(&mut self) -> ConnId {
        self.next_conn += 1;
        self.next_conn
    }

    fn apply(&mut self, op: &Op) {
        let now = at(self.now);
        let s = self.m.snapshot();
        match op {
            Op::RegisterWorker { slot, cores, mem } => {
                // Slots 0..6 map to 4 addresses, so some registrations clash with ALIVE
                // workers at the same address, and some re-use an id (duplicates/replacements).
                let id = format!("w{slot}");
                let host = format!("h{}", slot % 4);
                let conn = self.conn();
                self.m
                    .register_worker(now, conn, reg_at(&id, &host, 7078, *cores, *mem));
                self.worker_conn.insert(wid(&id), conn);
            }
            Op::Heartbeat => {
                for w in s.alive_workers() {
                    let conn = self.worker_conn[&w.id];
                    self.m.worker_heartbeat(now, conn, &w.id);
                }
            }
            Op::Tick(ms) => {
                self.now += ms;
                self.m.tick(at(self.now));
            }
            Op::DisconnectWorker(i) => {
                if !self.worker_conn.is_empty() {
                    let conns: Vec<ConnId> = self.worker_conn.values().copied().collect();
                    self.m.worker_disconnected(now, *i.get(&conns));
                }
            }
            Op::RegisterApp {
                cpe,
                mem,
                max_cores,
                limit,
            } => {
                let mut desc = app(*cpe, *mem, *max_cores);
                desc.initial_executor_limit = *limit;
                let conn = self.conn();
                let id = self
                    .m
                    .register_application(now, conn, desc, "d".into())
                    .unwrap();
                self.app_conn.insert(id, conn);
            }
            Op::ExecutorUpdate {
                app,
                exec,
                state,
                status,
            } => {
                if !s.active_apps.is_empty() {
                    let a = app.get(&s.active_apps);
                    // Sometimes an executor that no longer exists (late messages).
                    let e = if a.executors.is_empty() {
                        a.removed_executors
                            .first()
                            .map(|e| e.executor_id)
                            .unwrap_or(0)
                    } else {
                        exec.get(&a.executors).executor_id
                    };
                    self.m
                        .executor_state_changed(now, &a.id, e, *state, None, *status);
                }
            }
            Op::KillApp(i) => {
                let all: Vec<&AppId> = self.app_conn.keys().collect();
                if !all.is_empty() {
                    let id = (*i.get(&all)).clone();
                    let active = s.active_apps.iter().any(|a| a.id == id);
                    let r = self.m.kill_application(now, &id);
                    assert_eq!(r.is_ok(), active, "{r:?}");
                }
            }
            Op::UnregisterApp(i) => {
                if !s.active_apps.is_empty() {
                    let conn = self.app_conn[&i.get(&s.active_apps).id];
                    self.m.unregister_application(now, conn).unwrap();
                }
            }
            Op::RequestExecutors(i, total) => {
                if !s.active_apps.is_empty() {
                    let conn = self.app_conn[&i.get(&s.active_apps).id];
                    self.m.request_executors(now, conn, *total).unwrap();
                }
            }
            Op::KillExecutors(i, e) => {
                if !s.active_apps.is_empty() {
                    let a = i.get(&s.active_apps);
                    let conn = self.app_conn[&a.id];
                    let ids: Vec<ExecutorId> = if a.executors.is_empty() {
                        vec![1000]
                    } else {
                        vec![e.get(&a.executors).executor_id]
                    };
                    self.m.kill_executors(now, conn, &ids).unwrap();
                }
            }
            Op::SubmitDriver {
                cores,
                mem,
                supervise,
            } => {
                self.m
                    .submit_driver(now, driver(*cores, *mem, *supervise))
                    .unwrap();
            }
            Op::DriverDone(i, state) => {
                // Only the worker running a driver reports RUNNING; a terminal state may also
                // concern a queued driver (a late message). See
                // `running_update_for_a_queued_driver_is_ignored`.
                let candidates: Vec<&DriverView> = s
                    .active_drivers
                    .iter()
                    .filter(|d| *state != DriverState::Running || d.worker_id.is_some())
                    .collect();
                if !candidates.is_empty() {
                    let id = i.get(&candidates).id.clone();
                    self.m.driver_state_changed(now, &id, *state, None, None);
                }
            }
        }
    }

    /// Every output goes to a session the harness handed out; launches go to workers that
    /// were ALIVE before the operation or still are. (Strictly they should still be ALIVE, but
    /// `tick` may launch on a worker it expires a moment later: see
    /// `workers_expiring_in_the_same_tick_get_no_new_work`.)
    fn check_outputs(&self, before: &ClusterSnapshot, outs: &[Output]) -> Result<(), String> {
        let after = self.m.snapshot();
        for (conn, l) in launches(outs) {
            let on_alive_worker = before.workers.iter().chain(after.workers.iter()).any(|w| {
                self.worker_conn.get(&w.id) == Some(&conn) && w.state == WorkerState::Alive
            });
            if !on_alive_worker {
                return Err(format!(
                    "launch of {}/{} on session {conn} of no ALIVE worker",
                    l.app_id, l.executor_id
                ));
            }
        }
        for o in outs {
            let conn = match o {
                Output::ToWorker { conn, .. }
                | Output::ToApp { conn, .. }
                | Output::CloseApp { conn } => *conn,
            };
            if conn == 0 || conn > self.next_conn {
                return Err(format!("output to a session never opened: {o:?}"));
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 200,
        // Do not write proptest-regressions/ files next to the sources.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn invariants_hold_under_random_operations(ops in prop::collection::vec(op_strategy(), 1..80)) {
        let mut h = Harness::new();
        for (i, op) in ops.iter().enumerate() {
            let before = h.m.snapshot();
            h.apply(op);
            let outs = h.m.take_outputs();
            let s = h.m.snapshot();
            check_invariants(&s)
                .and_then(|()| h.check_outputs(&before, &outs))
                .map_err(|e| TestCaseError::fail(format!("after op {i} ({op:?}): {e}")))?;
        }
    }
}

#[test]
fn descriptions_break_one_rule_set_whatever_front_end_sent_them() {
    let mut m = master();
    add_worker(&mut m, at(0), 1, reg("worker-1", 4, 4096));
    m.take_outputs();
    for bad in [
        app(Some(0), 512, None),
        app(Some(1), 0, None),
        app(Some(1), 512, Some(0)),
        AppDescription {
            name: " ".into(),
            ..app(Some(1), 512, None)
        },
    ] {
        let err = m
            .register_application(at(1), 50, bad, "d".into())
            .expect_err("refused");
        assert!(matches!(err, CoreError::InvalidArgument(_)), "{err:?}");
    }
    for bad in [driver(0, 512, false), driver(1, 0, false)] {
        let err = m.submit_driver(at(2), bad).expect_err("refused");
        assert!(err.to_string().starts_with("invalid driver."), "{err}");
    }
    // Nothing changed: no application, no driver, nothing sent.
    let s = m.snapshot();
    assert!(s.active_apps.is_empty() && s.active_drivers.is_empty());
    assert!(m.take_outputs().is_empty());
}
