//! A stock Spark 3.5 driver against Flint: `spark-submit --master spark://…` (client deploy
//! mode, PySpark) registers with flint-master over Spark's own RPC on the gRPC port, and
//! flint-workers launch its JVM executors (`CoarseGrainedExecutorBackend`).
//!
//! Needs the project-local Spark from `tests/spark/setup.sh` (`.venv-spark35`) and a Java 17
//! runtime (`tests/run.sh` installs both). Without them the test fails; it never skips.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use flint_proto::types::*;
use flint_tests::*;

/// Pi from the Leibniz series, summed on the executors: deterministic (unlike Monte Carlo,
/// whose 20,000-sample estimate leaves "3.1" now and then).
const PI_JOB: &str = r#"
from pyspark import SparkContext

sc = SparkContext(appName="flint-spark-compat-pi")
n = 200000
total = sc.parallelize(range(n), 4).map(lambda k: (-1.0) ** k / (2 * k + 1)).reduce(lambda a, b: a + b)
print("Pi is roughly %f" % (4.0 * total))
sc.stop()
"#;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// `(spark-submit, SPARK_HOME)` of the project-local Spark 3.5, if installed.
fn spark35() -> Option<(PathBuf, PathBuf)> {
    let venv = repo_root().join(".venv-spark35");
    let submit = venv.join("bin/spark-submit");
    if !submit.exists() {
        return None;
    }
    let home = std::fs::read_dir(venv.join("lib"))
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("site-packages/pyspark"))
        .find(|p| p.join("jars").is_dir())?;
    Some((submit, home))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_spark_35_client_mode_pi_runs_on_flint() {
    let Some((submit, spark_home)) = spark35() else {
        panic!("Spark 3.5 is not installed: run tests/spark/setup.sh (creates .venv-spark35)");
    };
    let home = spark_home.display().to_string();
    let mut c = Cluster::master(&[]);
    let workers = [
        c.add_worker_with_env(
            WorkerSpec {
                cores: 1,
                memory: "2g",
            },
            &[("SPARK_HOME", &home)],
        ),
        c.add_worker_with_env(
            WorkerSpec {
                cores: 1,
                memory: "2g",
            },
            &[("SPARK_HOME", &home)],
        ),
    ];
    let script = c.dir.path().join("pi.py");
    std::fs::write(&script, PI_JOB).expect("write pi.py");
    let log = c.dir.path().join("spark-submit.log");
    let out = std::fs::File::create(&log).expect("log");
    let started = Instant::now();
    let mut cmd = Command::new(&submit);
    cmd.args(["--master", &c.master_url])
        .args(["--conf", "spark.driver.host=127.0.0.1"])
        .args(["--conf", "spark.ui.enabled=false"])
        .args(["--total-executor-cores", "2", "--executor-memory", "512m"])
        .arg(&script)
        .current_dir(c.dir.path())
        .env("SPARK_HOME", &spark_home)
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .env_remove("SPARK_CONF_DIR")
        .env_remove("PYSPARK_DRIVER_PYTHON")
        .stdout(out.try_clone().expect("log"))
        .stderr(out);
    let mut child = cmd.spawn().expect("spark-submit");
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait spark-submit") {
            break s;
        }
        if started.elapsed() > Duration::from_secs(180) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "spark-submit did not finish in 180 s:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    for line in text.lines().filter(|l| {
        [
            "Connected to Spark cluster",
            "Granted executor",
            "Registered executor",
            "Pi is roughly",
        ]
        .iter()
        .any(|k| l.contains(k))
    }) {
        eprintln!("spark-submit: {line}");
    }
    assert!(status.success(), "spark-submit failed ({status}):\n{text}");
    assert!(text.contains("Pi is roughly 3.1415"), "{text}");
    let s = c
        .wait_state("the Spark application FINISHED", |s| {
            s.completed_apps
                .iter()
                .any(|a| a.desc.name == "flint-spark-compat-pi")
        })
        .await;
    let app = s
        .completed_apps
        .iter()
        .find(|a| a.desc.name == "flint-spark-compat-pi")
        .expect("app");
    assert_eq!(app.state, ApplicationState::Finished, "{app:?}");
    let mut executors: Vec<_> = app
        .executors
        .iter()
        .chain(app.removed_executors.iter())
        .collect();
    executors.sort_by_key(|e| e.executor_id);
    assert!(!executors.is_empty(), "no executors: {app:?}");
    for e in &executors {
        assert!(workers.contains(&e.worker_id), "{e:?}");
    }
    // The executors really were Spark JVMs started by the Flint workers.
    let stderr = std::fs::read_to_string(
        c.work_dir(0)
            .join(app.id.as_str())
            .join(executors[0].executor_id.to_string())
            .join("stderr"),
    )
    .or_else(|_| {
        std::fs::read_to_string(
            c.work_dir(1)
                .join(app.id.as_str())
                .join(executors[0].executor_id.to_string())
                .join("stderr"),
        )
    })
    .unwrap_or_default();
    eprintln!(
        "executor {} stderr: {} lines",
        executors[0].executor_id,
        stderr.lines().count()
    );
    assert!(
        stderr.contains("CoarseGrainedExecutorBackend"),
        "executor stderr:\n{stderr}"
    );
    // `--worker-url` is the worker's endpoint, which the executor's WorkerWatcher dials (that
    // the endpoint answers the check is `master_port_speaks_spark_rpc_and_grpc`'s job; whether
    // the executor logs "Successfully connected" is a race inside Spark).
    assert!(
        stderr.contains("WorkerWatcher: Connecting to worker spark://Worker@127.0.0.1:"),
        "executor stderr:\n{stderr}"
    );
}

/// Sends `CheckExistence(name)` as Spark's endpoint verifier does and returns the Boolean the
/// peer answered (with the same request id).
fn check_existence(port: u16, name: &str) -> bool {
    use flint_proto::spark::{
        Frame, MessageEncoder, RequestHeader, RequestMessage, RpcAddress, SparkLine, SparkMessage,
        decode_message,
    };
    use std::io::{Read, Write};
    let payload = MessageEncoder::new(SparkLine::V3_5)
        .encode(&SparkMessage::CheckExistence { name: name.into() })
        .expect("encode");
    let body = RequestMessage {
        header: RequestHeader {
            sender: Some(RpcAddress::new("127.0.0.1", 1)),
            receiver: Some(RpcAddress::new("127.0.0.1", i32::from(port))),
            endpoint: "endpoint-verifier".into(),
        },
        payload: payload.into(),
    }
    .encode()
    .expect("header");
    let frame = Frame::RpcRequest {
        request_id: 4242,
        body: body.into(),
    }
    .to_bytes()
    .expect("frame");
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    sock.write_all(&frame).expect("send");
    let mut head = [0u8; 21];
    sock.read_exact(&mut head).expect("response header");
    assert_eq!(head[8], 4, "an RpcResponse: {head:?}");
    assert_eq!(&head[9..17], &4242i64.to_be_bytes(), "same request id");
    let len = u32::from_be_bytes([head[17], head[18], head[19], head[20]]) as usize;
    let mut body = vec![0u8; len];
    sock.read_exact(&mut body).expect("response body");
    match decode_message(&body).expect("decode").message {
        SparkMessage::Boolean(b) => b,
        other => panic!("not a Boolean: {other:?}"),
    }
}

/// Without Spark: the master's one port tells Spark RPC from gRPC, answers Spark's endpoint
/// check, drops garbage, and keeps serving gRPC; the worker's endpoint answers its check too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_port_speaks_spark_rpc_and_grpc() {
    use std::io::{Read, Write};
    let mut c = Cluster::master(&[]);
    let worker = c.add_worker(WorkerSpec::default());
    let master_port = c.master_port;
    let worker_port: u16 = worker
        .as_str()
        .rsplit('-')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("worker port in its id");
    let (m, w, other) = tokio::task::spawn_blocking(move || {
        (
            check_existence(master_port, "Master"),
            check_existence(worker_port, "Worker"),
            check_existence(master_port, "Worker"),
        )
    })
    .await
    .expect("checks");
    assert!(
        m && w && !other,
        "Master {m}, Worker {w}, Worker@master {other}"
    );
    // Garbage (a frame length shorter than a frame header) closes the connection.
    let closed = tokio::task::spawn_blocking(move || {
        let mut sock = std::net::TcpStream::connect(("127.0.0.1", master_port)).expect("connect");
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        sock.write_all(&[0, 0, 0, 0, 0, 0, 0, 1, 9, 9, 9])
            .expect("send");
        let mut buf = [0u8; 16];
        matches!(sock.read(&mut buf), Ok(0) | Err(_))
    })
    .await
    .expect("garbage");
    assert!(closed, "the master kept a garbage connection open");
    let s = c.state().await;
    assert_eq!(s.alive_workers().count(), 1);
}
