//! The worker's IO shell against a real master, both in this test's runtime, with a fake
//! `ChildLauncher`: the test plays the children (no process is started) and checks what the
//! shell and its core do with what the master says and the children report.

use std::path::PathBuf;
use std::time::Duration;

use flint_domain::types::*;
use flint_master::in_process::InProcessMaster;
use flint_proto::pb;
use flint_proto::pb::master_client::MasterClient;
use flint_worker::launcher::{ChildControl, ChildLauncher};
use flint_worker::session::{ShellSettings, Worker, WorkerStatus};
use flint_worker_core::{ChildEvent, CoreConfig};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

const DEADLINE: Duration = Duration::from_secs(20);

/// A child the shell asked the fake launcher to start.
struct FakeChild {
    launch: Launched,
    events: mpsc::Sender<ChildEvent>,
    control: mpsc::Receiver<ChildControl>,
}

enum Launched {
    Executor(Box<LaunchExecutor>),
    Driver(DriverId),
}

impl FakeChild {
    async fn report(&self, ev: ChildEvent) {
        self.events.send(ev).await.expect("the shell listens");
    }

    async fn order(&mut self) -> Option<ChildControl> {
        tokio::time::timeout(DEADLINE, self.control.recv())
            .await
            .expect("an order in time")
    }
}

struct FakeLauncher(mpsc::UnboundedSender<FakeChild>);

impl ChildLauncher for FakeLauncher {
    fn start_executor(
        &self,
        launch: LaunchExecutor,
        _master_url: String,
        events: mpsc::Sender<ChildEvent>,
        control: mpsc::Receiver<ChildControl>,
    ) {
        let _ = self.0.send(FakeChild {
            launch: Launched::Executor(Box::new(launch)),
            events,
            control,
        });
    }

    fn start_driver(
        &self,
        driver_id: DriverId,
        _driver: DriverDescription,
        _master_url: String,
        events: mpsc::Sender<ChildEvent>,
        control: mpsc::Receiver<ChildControl>,
    ) {
        let _ = self.0.send(FakeChild {
            launch: Launched::Driver(driver_id),
            events,
            control,
        });
    }
}

struct Setup {
    master: InProcessMaster,
    children: mpsc::UnboundedReceiver<FakeChild>,
    status: watch::Receiver<WorkerStatus>,
    stop: watch::Sender<bool>,
    worker: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let master = InProcessMaster::start(&[], dir.path())
        .await
        .expect("master");
    let (tx, children) = mpsc::unbounded_channel();
    let core = CoreConfig {
        worker_id: WorkerId::from("worker-20261207000000-127.0.0.1-1"),
        host: "127.0.0.1".into(),
        port: 1,
        cores: 4,
        memory_mb: 4096,
        webui_url: "http://127.0.0.1:1".into(),
        work_dir: PathBuf::from(dir.path()),
        master_url: master.url.clone(),
        max_backoff_ms: 1_000,
        seed: 3,
    };
    let settings = ShellSettings {
        masters: vec![("127.0.0.1".into(), master.addr.port())],
        kill_grace: Duration::from_secs(1),
        work_dir: dir.path().to_path_buf(),
    };
    let (stop, stop_rx) = watch::channel(false);
    let (worker, status) = Worker::new(core, settings, FakeLauncher(tx));
    let worker = tokio::spawn(worker.run(stop_rx));
    let mut s = Setup {
        master,
        children,
        status,
        stop,
        worker,
        _dir: dir,
    };
    s.wait_status("the worker registered", |st| st.registered)
        .await;
    s
}

impl Setup {
    async fn client(&self) -> MasterClient<tonic::transport::Channel> {
        self.master.client().await.expect("connect")
    }

    async fn child(&mut self) -> FakeChild {
        tokio::time::timeout(DEADLINE, self.children.recv())
            .await
            .expect("a child started in time")
            .expect("launcher alive")
    }

    async fn wait_status(&mut self, what: &str, cond: impl Fn(&WorkerStatus) -> bool) {
        tokio::time::timeout(DEADLINE, self.status.wait_for(|s| cond(s)))
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .expect("status published");
    }

    async fn snapshot(&self) -> ClusterSnapshot {
        self.client()
            .await
            .cluster_state(pb::ClusterStateRequest {})
            .await
            .expect("state")
            .into_inner()
            .try_into()
            .expect("valid")
    }

    async fn wait_master(&self, what: &str, cond: impl Fn(&ClusterSnapshot) -> bool) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            if cond(&self.snapshot().await) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn app_desc() -> AppDescription {
    AppDescription {
        name: "fake".into(),
        user: "test".into(),
        cores_per_executor: Some(2),
        memory_per_executor_mb: 256,
        max_cores: Some(2),
        command: CommandSpec {
            program: "/bin/app".into(),
            ..Default::default()
        },
        initial_executor_limit: None,
        app_ui_url: String::new(),
    }
}

#[tokio::test]
async fn executors_launch_run_and_are_killed_through_the_shell() {
    let mut s = setup().await;
    let (app_tx, rx) = mpsc::channel::<pb::AppToMaster>(8);
    app_tx
        .send(
            AppRequest::Register {
                app: app_desc(),
                driver_url: String::new(),
            }
            .into(),
        )
        .await
        .expect("queue");
    let mut app = s
        .client()
        .await
        .application_session(ReceiverStream::new(rx))
        .await
        .expect("session")
        .into_inner();
    let mut child = s.child().await;
    let Launched::Executor(l) = &child.launch else {
        panic!("expected an executor")
    };
    let (app_id, exec_id) = (l.app_id.clone(), l.executor_id);
    assert_eq!(l.cores, 2);
    s.wait_status("the executor on the UI", |st| {
        st.executors.len() == 1 && st.cores_used() == 2
    })
    .await;
    child
        .report(ChildEvent::Executor {
            app_id: app_id.clone(),
            executor_id: exec_id,
            state: ExecutorState::Running,
            message: None,
            exit_status: None,
        })
        .await;
    // The application hears it from the master.
    loop {
        let msg = tokio::time::timeout(DEADLINE, app.message())
            .await
            .expect("in time")
            .expect("stream")
            .expect("open");
        if let Ok(AppEvent::ExecutorUpdated {
            state: ExecutorState::Running,
            ..
        }) = AppEvent::try_from(msg)
        {
            break;
        }
    }
    // The application leaves: the master tells the worker, which orders the kill.
    app_tx
        .send(AppRequest::Unregister.into())
        .await
        .expect("unregister");
    assert_eq!(child.order().await, Some(ChildControl::Kill));
    child
        .report(ChildEvent::Executor {
            app_id,
            executor_id: exec_id,
            state: ExecutorState::Killed,
            message: Some("killed by the worker".into()),
            exit_status: Some(143),
        })
        .await;
    s.wait_status("the executor finished", |st| {
        st.executors.is_empty() && st.finished_executors.len() == 1
    })
    .await;
    s.wait_master("the worker's cores freed", |snap| {
        snap.workers.len() == 1 && snap.workers[0].cores_used == 0
    })
    .await;
    let _ = s.stop.send(true);
    tokio::time::timeout(DEADLINE, s.worker)
        .await
        .expect("the worker stops in time")
        .expect("worker task");
    s.master.shutdown().await.expect("master stops");
}

#[tokio::test]
async fn a_supervised_driver_is_relaunched_then_killed_and_shutdown_kills_the_rest() {
    let mut s = setup().await;
    let driver = DriverDescription {
        name: "supervised".into(),
        app_resource: String::new(),
        app_sha256: None,
        command: CommandSpec {
            program: "/bin/driver".into(),
            ..Default::default()
        },
        cores: 1,
        memory_mb: 128,
        supervise: true,
    };
    let mut client = s.client().await;
    let id = client
        .submit_driver(pb::SubmitDriverRequest {
            driver: Some(driver.clone().into()),
        })
        .await
        .expect("submitted")
        .into_inner()
        .driver_id;
    let mut child = s.child().await;
    let Launched::Driver(d) = &child.launch else {
        panic!("expected a driver")
    };
    let driver_id = d.clone();
    assert_eq!(driver_id.as_str(), id);
    child
        .report(ChildEvent::DriverStarted {
            driver_id: driver_id.clone(),
            attempt: 1,
        })
        .await;
    child
        .report(ChildEvent::DriverExited {
            driver_id: driver_id.clone(),
            success: false,
            exit_status: 2,
            description: "exited with code 2".into(),
            run_ms: 10,
        })
        .await;
    // The core decides to relaunch after its backoff; the shell passes the order on.
    assert_eq!(
        child.order().await,
        Some(ChildControl::Relaunch { attempt: 2 })
    );
    child
        .report(ChildEvent::DriverStarted {
            driver_id: driver_id.clone(),
            attempt: 2,
        })
        .await;
    s.wait_status("the relaunched driver", |st| {
        st.drivers.first().and_then(|d| d.message.as_deref()) == Some("relaunched (attempt 2)")
    })
    .await;
    client
        .kill_driver(pb::KillDriverRequest {
            driver_id: id.clone(),
        })
        .await
        .expect("kill");
    assert_eq!(child.order().await, Some(ChildControl::Kill));
    child
        .report(ChildEvent::DriverEnded {
            driver_id: driver_id.clone(),
            state: DriverState::Killed,
            message: Some("killed by request".into()),
            exit_status: Some(143),
        })
        .await;
    s.wait_master("the driver KILLED", |snap| {
        snap.completed_drivers
            .iter()
            .any(|d| d.id == driver_id && d.state == DriverState::Killed)
    })
    .await;
    // A second driver is still running when the worker stops: it is killed and reported.
    client
        .submit_driver(pb::SubmitDriverRequest {
            driver: Some(
                DriverDescription {
                    supervise: false,
                    ..driver
                }
                .into(),
            ),
        })
        .await
        .expect("submitted");
    let mut second = s.child().await;
    let Launched::Driver(second_id) = &second.launch else {
        panic!("expected a driver")
    };
    let second_id = second_id.clone();
    second
        .report(ChildEvent::DriverStarted {
            driver_id: second_id.clone(),
            attempt: 1,
        })
        .await;
    s.wait_status("the second driver running", |st| {
        st.drivers
            .iter()
            .any(|d| d.driver_id == second_id && d.state == DriverState::Running)
    })
    .await;
    let _ = s.stop.send(true);
    assert_eq!(second.order().await, Some(ChildControl::Kill));
    second
        .report(ChildEvent::DriverEnded {
            driver_id: second_id.clone(),
            state: DriverState::Killed,
            message: Some("killed by request".into()),
            exit_status: Some(143),
        })
        .await;
    tokio::time::timeout(DEADLINE, s.worker)
        .await
        .expect("the worker stops once its children are gone")
        .expect("worker task");
    s.master.shutdown().await.expect("master stops");
}
