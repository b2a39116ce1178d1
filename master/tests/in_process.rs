//! The master's front ends (gRPC, Spark RPC) and its actor, driven in process: the master
//! runs in this test's runtime on port 0, fake workers and applications speak to it over
//! real sockets, and no child process is started.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use flint_domain::types::*;
use flint_proto::pb;
use flint_proto::pb::master_client::MasterClient;
use flint_spark_proto::{
    Frame, FrameDecoder, MessageEncoder, RequestHeader, RequestMessage, RpcAddress, SparkLine,
    SparkMessage, decode_message,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

const DEADLINE: Duration = Duration::from_secs(20);

/// The master in this test's runtime, with its scratch directory.
struct InProcessMaster {
    inner: flint_master::in_process::InProcessMaster,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl InProcessMaster {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let inner = flint_master::in_process::InProcessMaster::start(&[], dir.path())
            .await
            .expect("master starts");
        Self {
            addr: inner.addr,
            inner,
            _dir: dir,
        }
    }

    async fn client(&self) -> MasterClient<tonic::transport::Channel> {
        self.inner.client().await.expect("connect")
    }

    async fn shutdown(self) {
        self.inner.shutdown().await.expect("master stops");
    }
}

/// A worker played by the test over a real gRPC session.
struct FakeWorker {
    id: WorkerId,
    tx: mpsc::Sender<pb::WorkerToMaster>,
    inbound: Streaming<pb::MasterToWorker>,
}

impl FakeWorker {
    async fn register(master: &InProcessMaster, name: &str, cores: u32) -> Self {
        let id = WorkerId::from(name);
        let (tx, rx) = mpsc::channel(64);
        let reg = WorkerEvent::Register(WorkerRegistration {
            id: id.clone(),
            host: "127.0.0.1".into(),
            port: 1,
            cores,
            memory_mb: 2048,
            webui_url: "http://127.0.0.1:1".into(),
        });
        tx.send(reg.into()).await.expect("queue");
        let inbound = master
            .client()
            .await
            .worker_session(ReceiverStream::new(rx))
            .await
            .expect("session")
            .into_inner();
        let mut w = Self { id, tx, inbound };
        let cmd = w.next().await;
        assert!(
            matches!(&cmd, WorkerCommand::Registered { worker_id, .. } if *worker_id == w.id),
            "{cmd:?}"
        );
        w
    }

    async fn next(&mut self) -> WorkerCommand {
        let msg = tokio::time::timeout(DEADLINE, self.inbound.message())
            .await
            .expect("a command in time")
            .expect("stream")
            .expect("not ended");
        WorkerCommand::try_from(msg).expect("valid command")
    }

    /// The next command that is not a heartbeat-related no-op for the test.
    async fn next_launch(&mut self) -> LaunchExecutor {
        loop {
            if let WorkerCommand::LaunchExecutor(l) = self.next().await {
                return *l;
            }
        }
    }

    async fn send(&self, ev: WorkerEvent) {
        self.tx.send(ev.into()).await.expect("send");
    }
}

struct FakeApp {
    tx: mpsc::Sender<pb::AppToMaster>,
    inbound: Streaming<pb::MasterToApp>,
}

impl FakeApp {
    async fn register(master: &InProcessMaster, desc: AppDescription) -> (Self, AppId) {
        let (tx, rx) = mpsc::channel(64);
        tx.send(
            AppRequest::Register {
                app: desc,
                driver_url: "flint://driver".into(),
            }
            .into(),
        )
        .await
        .expect("queue");
        let inbound = master
            .client()
            .await
            .application_session(ReceiverStream::new(rx))
            .await
            .expect("session")
            .into_inner();
        let mut app = Self { tx, inbound };
        match app.next().await {
            Ok(AppEvent::Registered { app_id, .. }) => (app, app_id),
            other => panic!("{other:?}"),
        }
    }

    async fn next(&mut self) -> Result<AppEvent, tonic::Status> {
        let msg = tokio::time::timeout(DEADLINE, self.inbound.message())
            .await
            .expect("an event in time")?
            .ok_or_else(|| tonic::Status::cancelled("ended"))?;
        Ok(AppEvent::try_from(msg).expect("valid event"))
    }
}

fn app_desc(cores: Option<u32>) -> AppDescription {
    AppDescription {
        name: "in-process".into(),
        user: "test".into(),
        cores_per_executor: cores,
        memory_per_executor_mb: 256,
        max_cores: Some(2),
        command: CommandSpec {
            program: "/bin/true".into(),
            args: vec![],
            env: Default::default(),
            ..Default::default()
        },
        initial_executor_limit: None,
        app_ui_url: String::new(),
    }
}

#[tokio::test]
async fn a_fake_worker_runs_a_fake_apps_executor_through_the_actor() {
    let master = InProcessMaster::start().await;
    let mut worker = FakeWorker::register(&master, "worker-a", 4).await;
    let (mut app, app_id) = FakeApp::register(&master, app_desc(Some(2))).await;
    let launch = worker.next_launch().await;
    assert_eq!((launch.app_id.clone(), launch.cores), (app_id.clone(), 2));
    match app.next().await {
        Ok(AppEvent::ExecutorAdded {
            executor_id,
            worker_id,
            cores,
            ..
        }) => assert_eq!(
            (executor_id, worker_id, cores),
            (launch.executor_id, worker.id.clone(), 2)
        ),
        other => panic!("{other:?}"),
    }
    worker
        .send(WorkerEvent::ExecutorStateChanged {
            app_id: app_id.clone(),
            executor_id: launch.executor_id,
            state: ExecutorState::Running,
            message: None,
            exit_status: None,
        })
        .await;
    loop {
        match app.next().await {
            Ok(AppEvent::ExecutorUpdated {
                state: ExecutorState::Running,
                ..
            }) => break,
            Ok(_) => {}
            Err(e) => panic!("{e}"),
        }
    }
    // The cluster state as the gRPC front end answers it.
    let state: ClusterSnapshot = master
        .client()
        .await
        .cluster_state(pb::ClusterStateRequest {})
        .await
        .expect("state")
        .into_inner()
        .try_into()
        .expect("valid snapshot");
    assert_eq!(state.workers.len(), 1);
    assert_eq!(state.active_apps.len(), 1);
    assert_eq!(state.workers[0].cores_used, 2);
    // The application leaves: its executor is killed on the worker.
    app.tx
        .send(AppRequest::Unregister.into())
        .await
        .expect("unregister");
    drop(app);
    loop {
        match worker.next().await {
            WorkerCommand::KillExecutor { app_id: a, .. }
            | WorkerCommand::ApplicationFinished { app_id: a } => {
                assert_eq!(a, app_id);
                break;
            }
            _ => {}
        }
    }
    master.shutdown().await;
}

#[tokio::test]
async fn bad_grpc_input_is_refused_and_changes_nothing() {
    let master = InProcessMaster::start().await;
    let mut client = master.client().await;
    // A driver with no command, and an unknown driver.
    let err = client
        .submit_driver(pb::SubmitDriverRequest { driver: None })
        .await
        .expect_err("refused");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let err = client
        .driver_status(pb::DriverStatusRequest {
            driver_id: "driver-nope".into(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), tonic::Code::NotFound);
    // An application with zero memory per executor ends its own session only.
    let mut bad = app_desc(Some(1));
    bad.memory_per_executor_mb = 0;
    let (tx, rx) = mpsc::channel::<pb::AppToMaster>(4);
    tx.send(
        AppRequest::Register {
            app: bad,
            driver_url: String::new(),
        }
        .into(),
    )
    .await
    .expect("queue");
    let mut inbound = client
        .application_session(ReceiverStream::new(rx))
        .await
        .expect("session")
        .into_inner();
    let end = tokio::time::timeout(DEADLINE, inbound.message())
        .await
        .expect("answer in time");
    assert!(
        matches!(&end, Err(s) if s.code() == tonic::Code::InvalidArgument),
        "{end:?}"
    );
    let state: ClusterSnapshot = client
        .cluster_state(pb::ClusterStateRequest {})
        .await
        .expect("state")
        .into_inner()
        .try_into()
        .expect("valid snapshot");
    assert!(state.active_apps.is_empty() && state.active_drivers.is_empty());
    master.shutdown().await;
}

fn check_existence_frame(request_id: i64) -> Vec<u8> {
    let ask = MessageEncoder::new(SparkLine::V3_5)
        .encode(&SparkMessage::CheckExistence {
            name: "Master".into(),
        })
        .expect("encode");
    let body = RequestMessage {
        header: RequestHeader {
            sender: Some(RpcAddress::new("127.0.0.1", 40000)),
            receiver: Some(RpcAddress::new("127.0.0.1", 7077)),
            endpoint: "endpoint-verifier".into(),
        },
        payload: ask.into(),
    }
    .encode()
    .expect("request");
    Frame::RpcRequest {
        request_id,
        body: body.into(),
    }
    .to_bytes()
    .expect("frame")
    .to_vec()
}

/// Asks `CheckExistence("Master")` on a fresh connection and reads the answer.
async fn master_exists(addr: SocketAddr) -> bool {
    let mut sock = TcpStream::connect(addr).await.expect("connect");
    sock.write_all(&check_existence_frame(1))
        .await
        .expect("write");
    let decoder = FrameDecoder::new();
    let mut buf = BytesMut::new();
    loop {
        if let Some(frame) = decoder.decode(&mut buf).expect("a Spark frame") {
            let Frame::RpcResponse { request_id, body } = frame else {
                panic!("{frame:?}")
            };
            assert_eq!(request_id, 1);
            let decoded = decode_message(&body).expect("decodes");
            return decoded.message == SparkMessage::Boolean(true);
        }
        let n = tokio::time::timeout(DEADLINE, sock.read_buf(&mut buf))
            .await
            .expect("answer in time")
            .expect("read");
        assert!(n > 0, "connection closed");
    }
}

#[tokio::test]
async fn spark_rpc_is_answered_on_the_grpc_port() {
    let master = InProcessMaster::start().await;
    assert!(master_exists(master.addr).await);
    master.shutdown().await;
}

#[tokio::test]
async fn a_spark_peer_that_never_reads_its_replies_is_not_read_further() {
    let master = InProcessMaster::start().await;
    let mut sock = TcpStream::connect(master.addr).await.expect("connect");
    // Asks written in 64 KiB batches, replies never read. An unbounded reply queue would take
    // them all (the master growing by every reply); a bounded one stops reading the
    // connection, the kernel's buffers fill and the writes stall.
    let frame = check_existence_frame(7);
    let batch: Vec<u8> = frame
        .iter()
        .copied()
        .cycle()
        .take(frame.len() * (65_536 / frame.len()))
        .collect();
    // Stalled means no progress for 5 s; an unbounded queue keeps reading, so it reaches the
    // limit instead (only a master starved of CPU for 5 s could look stalled).
    const LIMIT: usize = 64 << 20;
    let mut written = 0usize;
    let stalled = loop {
        if written >= LIMIT {
            break false;
        }
        match tokio::time::timeout(Duration::from_secs(5), sock.write_all(&batch)).await {
            Ok(Ok(())) => written += batch.len(),
            Ok(Err(e)) => panic!("the master closed the connection: {e}"),
            Err(_) => break true,
        }
    };
    // What the master holds for this peer is the bounded queue plus socket buffers.
    assert!(
        stalled,
        "the master read {} MiB of asks whose replies nobody read",
        written >> 20
    );
    // Everyone else is still served.
    assert!(master_exists(master.addr).await);
    drop(sock);
    master.shutdown().await;
}
