//! `flint-bench`: measures a real `flint-master` process (and `flint-worker` start-up).
//!
//! Not a test and never run in CI. Build everything in release first, then run it from the
//! same directory as the binaries it starts:
//!
//! ```text
//! cargo build --release -p flint-master -p flint-worker -p flint-tests --bins
//! target/release/flint-bench all --cpu-window 30 --out /tmp/bench.json
//! ```
//!
//! * `startup`: master launch → accepting TCP (and → first ClusterState reply); worker
//!   launch → ALIVE in the master's ClusterState.
//! * `scale`: N simulated workers (one TCP connection and one WorkerSession each, in this
//!   process): registration wall time, master RSS idle/after, master CPU while they all
//!   heartbeat, and a check that all N are ALIVE at the end.
//! * `app`: 100 simulated workers that start executors instantly; time from
//!   `register_application` to the first and to the 100th executor RUNNING.

use std::collections::HashSet;
use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};
use flint_client::{MasterClient, connect_channel};
use flint_domain::types::*;
use flint_proto::pb;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_stream::wrappers::ReceiverStream;

type Res<T> = Result<T, String>;

use flint_tests::procfs::{cpu_seconds, vm_rss_kb};

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    Startup,
    Scale,
    App,
    All,
}

#[derive(Parser, Debug)]
#[command(name = "flint-bench", about = "Benchmarks a real flint-master process")]
struct Args {
    /// Which benchmark to run.
    #[arg(value_enum)]
    mode: Mode,
    /// Simulated worker counts for `scale` (one master process per count).
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    workers: Vec<usize>,
    /// Seconds over which the master's CPU is measured while all workers heartbeat.
    #[arg(long, default_value_t = 30)]
    cpu_window: u64,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Runs of each start-up measurement.
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Rounds of the application benchmark.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Simulated workers (and executors asked for) in the application benchmark.
    #[arg(long, default_value_t = 100)]
    app_workers: usize,
    /// Worker registrations in flight at once in `scale`.
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
    /// RUST_LOG for the master processes of `scale` and `app` (`startup` uses `info`,
    /// the binaries' default).
    #[arg(long, default_value = "warn")]
    master_log: String,
}

// ---------------------------------------------------------------------------- results

/// The rows of the final table and the same results as JSON.
#[derive(Default)]
struct Report {
    rows: Vec<[String; 3]>,
    json: serde_json::Map<String, Value>,
}

impl Report {
    fn row(&mut self, section: &str, metric: &str, value: impl Into<String>) {
        self.rows
            .push([section.to_owned(), metric.to_owned(), value.into()]);
    }

    fn print(&self) {
        let w0 = self
            .rows
            .iter()
            .map(|r| r[0].len())
            .max()
            .unwrap_or(0)
            .max(7);
        let w1 = self
            .rows
            .iter()
            .map(|r| r[1].len())
            .max()
            .unwrap_or(0)
            .max(6);
        let w2 = self
            .rows
            .iter()
            .map(|r| r[2].len())
            .max()
            .unwrap_or(0)
            .max(5);
        println!();
        println!("{:<w0$}  {:<w1$}  {:<w2$}", "section", "metric", "value");
        println!("{}  {}  {}", "-".repeat(w0), "-".repeat(w1), "-".repeat(w2));
        let mut last = "";
        for r in &self.rows {
            let section = if r[0] == last { "" } else { r[0].as_str() };
            last = &r[0];
            println!("{section:<w0$}  {:<w1$}  {}", r[1], r[2]);
        }
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn round3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    let idx = ((p / 100.0) * (s.len() - 1) as f64).round() as usize;
    s[idx.min(s.len() - 1)]
}

/// min / median / max of a series of milliseconds, as JSON and as a table cell.
fn summary(v: &[f64]) -> (Value, String) {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let med = median(v);
    (
        json!({ "runs_ms": v, "min_ms": min, "median_ms": round3(med), "max_ms": max }),
        format!(
            "min {min:.2} / median {med:.2} / max {max:.2} ms ({} runs)",
            v.len()
        ),
    )
}

fn mib(kb: u64) -> String {
    format!("{:.1} MiB", kb as f64 / 1024.0)
}

// ---------------------------------------------------------------------------- processes

/// A child process that is SIGKILLed and reaped when dropped (unlike
/// `flint_tests::Proc`, it lets us choose `RUST_LOG`).
struct Spawned {
    name: String,
    child: Option<Child>,
    log: PathBuf,
    /// Taken just before `spawn(2)`.
    started: Instant,
}

impl Spawned {
    fn spawn(name: &str, mut cmd: Command, log: PathBuf, rust_log: &str) -> Res<Spawned> {
        let out = File::create(&log).map_err(|e| format!("create {}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("dup {}: {e}", log.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .env("RUST_LOG", rust_log);
        let started = Instant::now();
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawn {name} ({:?}): {e}", cmd.get_program()))?;
        Ok(Spawned {
            name: name.to_owned(),
            child: Some(child),
            log,
            started,
        })
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(-1)
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// An error if the process has exited, with the end of its log.
    fn check_running(&mut self) -> Res<()> {
        match self.exited() {
            None => Ok(()),
            Some(st) => Err(format!(
                "{} exited ({st}); last log lines:\n{}",
                self.name,
                self.log_tail(20)
            )),
        }
    }

    /// How many WARN/ERROR lines the log holds, and the first few of them.
    fn log_problems(&self) -> (usize, Vec<String>) {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let bad: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .collect();
        (
            bad.len(),
            bad.iter().take(3).map(|l| l.to_string()).collect(),
        )
    }

    fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> Res<u16> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("local_addr: {e}"))
}

fn master_command(port: u16) -> Command {
    let mut cmd = Command::new(flint_tests::bin("flint-master"));
    cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--webui-port", "0"])
        .env_remove("SPARK_MASTER_HOST")
        .env_remove("SPARK_MASTER_PORT")
        .env_remove("SPARK_MASTER_WEBUI_PORT")
        .env_remove("SPARK_MASTER_OPTS")
        .env_remove("SPARK_CONF_DIR");
    cmd
}

/// Polls `127.0.0.1:port` (sleeping 200 µs between attempts) until it accepts; returns the
/// time since the process was spawned.
fn wait_tcp(p: &mut Spawned, port: u16, timeout: Duration) -> Res<Duration> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Ok(p.started.elapsed());
        }
        p.check_running()?;
        if p.started.elapsed() > timeout {
            return Err(format!(
                "{} not accepting on {addr} after {timeout:?}",
                p.name
            ));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Polls until the master answers ClusterState; returns the client.
async fn wait_grpc(p: &mut Spawned, url: &str, timeout: Duration) -> Res<MasterClient> {
    loop {
        let last = match MasterClient::connect_with_timeout(url, Duration::from_secs(2)).await {
            Ok(mut c) => match c.cluster_state().await {
                Ok(_) => return Ok(c),
                Err(e) => e.to_string(),
            },
            Err(e) => e.to_string(),
        };
        p.check_running()?;
        if p.started.elapsed() > timeout {
            return Err(format!(
                "{} gave no ClusterState within {timeout:?}: {last}",
                p.name
            ));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Starts a master on a free port and waits until it answers gRPC.
async fn start_master(
    dir: &Path,
    tag: &str,
    rust_log: &str,
) -> Res<(Spawned, String, MasterClient)> {
    let port = free_port()?;
    let url = format!("spark://127.0.0.1:{port}");
    let mut m = Spawned::spawn(
        &format!("master ({tag})"),
        master_command(port),
        dir.join(format!("master-{tag}.log")),
        rust_log,
    )?;
    let client = wait_grpc(&mut m, &url, Duration::from_secs(20)).await?;
    Ok((m, url, client))
}

// ---------------------------------------------------------------------------- /proc

/// Raises RLIMIT_NOFILE's soft limit to the hard limit; returns (soft, hard).
fn raise_nofile() -> Res<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(format!("getrlimit: {}", std::io::Error::last_os_error()));
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(format!("setrlimit: {}", std::io::Error::last_os_error()));
            }
        }
    }
    Ok((lim.rlim_cur, lim.rlim_max))
}

// ---------------------------------------------------------------------------- simulated workers

/// What the simulated workers did, shared by all of them.
#[derive(Default)]
struct Counters {
    heartbeats: AtomicU64,
    launches: AtomicU64,
    kills: AtomicU64,
    reconnects: AtomicU64,
    broken: AtomicU64,
    errors: Mutex<Vec<String>>,
}

impl Counters {
    fn note_error(&self, e: String) {
        if let Ok(mut v) = self.errors.lock()
            && v.len() < 5
        {
            v.push(e);
        }
    }
}

/// A registered simulated worker's live session.
struct Session {
    id: WorkerId,
    reg: WorkerRegistration,
    /// Kept so the connection stays up for the whole session.
    _client: pb::master_client::MasterClient<tonic::transport::Channel>,
    tx: mpsc::Sender<pb::WorkerToMaster>,
    inbound: tonic::Streaming<pb::MasterToWorker>,
    heartbeat_ms: u64,
}

fn sim_registration(i: usize, cores: u32, memory_mb: u64) -> WorkerRegistration {
    WorkerRegistration {
        id: WorkerId(format!("worker-bench-{i}")),
        host: "127.0.0.1".into(),
        port: (10_000 + i % 50_000) as u16,
        cores,
        memory_mb,
        webui_url: String::new(),
    }
}

fn status_text(s: &tonic::Status) -> String {
    format!("{:?}: {}", s.code(), s.message())
}

/// Opens one TCP connection and one WorkerSession, registers, waits for `Registered`.
async fn register_sim(url: &str, reg: WorkerRegistration) -> Res<Session> {
    let ch = connect_channel(url, Duration::from_secs(20))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut client = pb::master_client::MasterClient::new(ch);
    let (tx, rx) = mpsc::channel::<pb::WorkerToMaster>(64);
    tx.send(WorkerEvent::Register(reg.clone()).into())
        .await
        .map_err(|_| "session closed before Register was sent".to_string())?;
    let mut inbound = client
        .worker_session(ReceiverStream::new(rx))
        .await
        .map_err(|e| format!("WorkerSession: {}", status_text(&e)))?
        .into_inner();
    loop {
        let msg = inbound
            .message()
            .await
            .map_err(|e| format!("waiting for Registered: {}", status_text(&e)))?
            .ok_or("master closed the session before Registered")?;
        match WorkerCommand::try_from(msg).map_err(|e| format!("bad command: {e}"))? {
            WorkerCommand::Registered {
                heartbeat_interval_ms,
                ..
            } => {
                return Ok(Session {
                    id: reg.id.clone(),
                    reg,
                    _client: client,
                    tx,
                    inbound,
                    heartbeat_ms: heartbeat_interval_ms.max(1),
                });
            }
            WorkerCommand::RegisterFailed { message } => {
                return Err(format!("registration refused: {message}"));
            }
            _ => {}
        }
    }
}

/// Heartbeats (first one after `phase`), answers LaunchExecutor with RUNNING and
/// KillExecutor with EXITED(0), until the session breaks or the task is aborted.
async fn run_sim(mut s: Session, phase: Duration, c: Arc<Counters>) {
    let period = Duration::from_millis(s.heartbeat_ms);
    let mut hb = tokio::time::interval_at(tokio::time::Instant::now() + phase, period);
    hb.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let fail = |why: String| {
        c.broken.fetch_add(1, Ordering::Relaxed);
        c.note_error(why);
    };
    loop {
        let reply = tokio::select! {
            msg = s.inbound.message() => match msg {
                Ok(Some(m)) => match WorkerCommand::try_from(m) {
                    Ok(WorkerCommand::LaunchExecutor(l)) => {
                        c.launches.fetch_add(1, Ordering::Relaxed);
                        Some(WorkerEvent::ExecutorStateChanged {
                            app_id: l.app_id,
                            executor_id: l.executor_id,
                            state: ExecutorState::Running,
                            message: None,
                            exit_status: None,
                        })
                    }
                    Ok(WorkerCommand::KillExecutor { app_id, executor_id }) => {
                        c.kills.fetch_add(1, Ordering::Relaxed);
                        Some(WorkerEvent::ExecutorStateChanged {
                            app_id,
                            executor_id,
                            state: ExecutorState::Exited,
                            message: None,
                            exit_status: Some(0),
                        })
                    }
                    Ok(WorkerCommand::Reconnect { .. }) => {
                        c.reconnects.fetch_add(1, Ordering::Relaxed);
                        Some(WorkerEvent::Register(s.reg.clone()))
                    }
                    Ok(_) => None,
                    Err(e) => {
                        c.note_error(format!("{}: bad command: {e}", s.id));
                        None
                    }
                },
                Ok(None) => return fail(format!("{}: master closed the session", s.id)),
                Err(e) => return fail(format!("{}: session broke: {}", s.id, status_text(&e))),
            },
            _ = hb.tick() => {
                c.heartbeats.fetch_add(1, Ordering::Relaxed);
                Some(WorkerEvent::Heartbeat { worker_id: s.id.clone() })
            }
        };
        if let Some(ev) = reply
            && s.tx.send(ev.into()).await.is_err()
        {
            return fail(format!("{}: outbound stream closed", s.id));
        }
    }
}

/// splitmix64: enough randomness for heartbeat phases.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The simulated workers of one benchmark; dropping this aborts them all.
struct SimFleet {
    _tasks: JoinSet<()>,
    counters: Arc<Counters>,
    /// Wall time from the first connect to the last `Registered`.
    wall: Duration,
    /// connect → Registered of each worker, in ms (excludes waiting for a slot).
    latencies_ms: Vec<f64>,
    failures: Vec<String>,
    failed: usize,
    heartbeat_ms: u64,
}

/// Registers `n` simulated workers with at most `concurrency` registrations in flight.
async fn start_fleet(
    url: &str,
    n: usize,
    concurrency: usize,
    cores: u32,
    memory_mb: u64,
) -> SimFleet {
    let counters = Arc::new(Counters::default());
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let (res_tx, mut res_rx) = mpsc::unbounded_channel::<Res<(f64, u64)>>();
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let url: Arc<str> = url.into();
    let mut tasks = JoinSet::new();
    let start = Instant::now();
    for i in 0..n {
        let (url, sem, res_tx, c) = (url.clone(), sem.clone(), res_tx.clone(), counters.clone());
        tasks.spawn(async move {
            let Ok(permit) = sem.acquire_owned().await else {
                return;
            };
            let t = Instant::now();
            let reg = sim_registration(i, cores, memory_mb);
            let r = tokio::time::timeout(Duration::from_secs(60), register_sim(&url, reg)).await;
            drop(permit);
            let s = match r {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    let _ = res_tx.send(Err(format!("worker-bench-{i}: {e}")));
                    return;
                }
                Err(_) => {
                    let _ =
                        res_tx.send(Err(format!("worker-bench-{i}: no Registered within 60 s")));
                    return;
                }
            };
            let _ = res_tx.send(Ok((ms(t.elapsed()), s.heartbeat_ms)));
            drop(res_tx);
            let phase = Duration::from_millis(mix(seed ^ i as u64) % s.heartbeat_ms);
            run_sim(s, phase, c).await;
        });
    }
    drop(res_tx);
    let mut fleet = SimFleet {
        _tasks: tasks,
        counters,
        wall: Duration::ZERO,
        latencies_ms: Vec::with_capacity(n),
        failures: Vec::new(),
        failed: 0,
        heartbeat_ms: 0,
    };
    // Every task sends exactly one result (or panics, which closes its sender).
    while let Some(r) = res_rx.recv().await {
        match r {
            Ok((lat, hb)) => {
                fleet.latencies_ms.push(lat);
                fleet.heartbeat_ms = hb;
            }
            Err(e) => {
                fleet.failed += 1;
                if fleet.failures.len() < 10 {
                    fleet.failures.push(e);
                }
            }
        }
    }
    fleet.wall = start.elapsed();
    let accounted = fleet.latencies_ms.len() + fleet.failed;
    if accounted < n {
        fleet.failed += n - accounted;
        fleet.failures.push(format!(
            "{} registration tasks ended without a result",
            n - accounted
        ));
    }
    fleet
}

// ---------------------------------------------------------------------------- startup

async fn bench_startup(args: &Args, dir: &Path, rep: &mut Report) -> Res<Value> {
    let mut tcp = Vec::new();
    let mut grpc = Vec::new();
    for run in 0..args.runs {
        let port = free_port()?;
        let mut m = Spawned::spawn(
            "master",
            master_command(port),
            dir.join(format!("startup-master-{run}.log")),
            "info",
        )?;
        let t = tokio::task::block_in_place(|| wait_tcp(&mut m, port, Duration::from_secs(20)))?;
        let url = format!("spark://127.0.0.1:{port}");
        wait_grpc(&mut m, &url, Duration::from_secs(20)).await?;
        let g = m.started.elapsed();
        tcp.push(ms(t));
        grpc.push(ms(g));
        drop(m);
    }
    let (tcp_json, tcp_text) = summary(&tcp);
    let (grpc_json, grpc_text) = summary(&grpc);
    rep.row("startup", "master launch → TCP accept", tcp_text);
    rep.row(
        "startup",
        "master launch → first ClusterState reply",
        grpc_text,
    );

    // Workers: one master for all runs; each worker is killed before the next starts.
    let (_master, url, mut client) = start_master(dir, "startup-workers", "info").await?;
    let mut seen: HashSet<WorkerId> = HashSet::new();
    let mut reg = Vec::new();
    for run in 0..args.runs {
        let work = dir.join(format!("work-{run}"));
        let mut cmd = Command::new(flint_tests::bin("flint-worker"));
        cmd.arg(&url)
            .args(["--host", "127.0.0.1", "--port", "0", "--webui-port", "0"])
            .args(["--cores", "2", "--memory", "2g"])
            .arg("--work-dir")
            .arg(&work)
            .env_remove("SPARK_WORKER_OPTS")
            .env_remove("SPARK_WORKER_PORT")
            .env_remove("SPARK_WORKER_WEBUI_PORT")
            .env_remove("SPARK_MASTER_URL")
            .env_remove("SPARK_CONF_DIR");
        let mut w = Spawned::spawn(
            &format!("worker {run}"),
            cmd,
            dir.join(format!("startup-worker-{run}.log")),
            "info",
        )?;
        let elapsed = loop {
            let snap = client
                .cluster_state()
                .await
                .map_err(|e| format!("ClusterState: {e}"))?;
            let new = snap.alive_workers().find(|v| !seen.contains(&v.id));
            if let Some(v) = new {
                let t = w.started.elapsed();
                seen.insert(v.id.clone());
                break t;
            }
            w.check_running()?;
            if w.started.elapsed() > Duration::from_secs(20) {
                return Err(format!(
                    "worker {run} not ALIVE after 20 s; its log:\n{}",
                    w.log_tail(20)
                ));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        reg.push(ms(elapsed));
        drop(w);
    }
    let (reg_json, reg_text) = summary(&reg);
    rep.row("startup", "worker launch → ALIVE in ClusterState", reg_text);
    Ok(json!({
        "master_tcp_accept": tcp_json,
        "master_first_cluster_state": grpc_json,
        "worker_alive": reg_json,
    }))
}

// ---------------------------------------------------------------------------- scale

async fn bench_scale_one(args: &Args, dir: &Path, n: usize, rep: &mut Report) -> Res<Value> {
    let sec = format!("scale {n}");
    let (mut master, url, mut client) =
        start_master(dir, &format!("scale-{n}"), &args.master_log).await?;
    let pid = master.pid();
    let pid_s = pid.to_string();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = vm_rss_kb(pid)?;
    let cpu_before_reg = cpu_seconds(&pid_s)?;

    let fleet = start_fleet(&url, n, args.concurrency, 4, 8192).await;
    let master_state = master.check_running();
    let cpu_reg = cpu_seconds(&pid_s).unwrap_or(f64::NAN) - cpu_before_reg;
    let registered = fleet.latencies_ms.len();
    rep.row(
        &sec,
        "registered",
        format!(
            "{registered}/{n} in {:.3} s ({:.0} workers/s)",
            fleet.wall.as_secs_f64(),
            registered as f64 / fleet.wall.as_secs_f64()
        ),
    );
    rep.row(
        &sec,
        "register latency (connect → Registered)",
        format!(
            "p50 {:.1} / p99 {:.1} / max {:.1} ms",
            percentile(&fleet.latencies_ms, 50.0),
            percentile(&fleet.latencies_ms, 99.0),
            percentile(&fleet.latencies_ms, 100.0)
        ),
    );
    rep.row(
        &sec,
        "master CPU during registration",
        format!("{cpu_reg:.2} s"),
    );
    let mut out = json!({
        "workers": n,
        "concurrency": args.concurrency,
        "registered": registered,
        "failed": fleet.failed,
        "failures": fleet.failures,
        "register_wall_ms": ms(fleet.wall),
        "register_latency_ms": {
            "p50": percentile(&fleet.latencies_ms, 50.0),
            "p99": percentile(&fleet.latencies_ms, 99.0),
            "max": percentile(&fleet.latencies_ms, 100.0),
        },
        "master_cpu_during_registration_s": round3(cpu_reg),
        "master_rss_idle_kb": rss_idle,
        "heartbeat_interval_ms": fleet.heartbeat_ms,
    });
    if fleet.failed > 0 {
        rep.row(
            &sec,
            "FAILED registrations",
            format!("{}; first: {}", fleet.failed, fleet.failures.join(" | ")),
        );
    }
    if let Err(e) = master_state {
        rep.row(&sec, "MASTER DIED", e.clone());
        out["error"] = json!(e);
        return Ok(out);
    }
    let rss_reg = vm_rss_kb(pid)?;
    rep.row(
        &sec,
        "master RSS idle → after N registered",
        format!(
            "{} → {} (+{:.1} KiB/worker)",
            mib(rss_idle),
            mib(rss_reg),
            (rss_reg as f64 - rss_idle as f64) / n as f64
        ),
    );
    out["master_rss_registered_kb"] = json!(rss_reg);

    // Steady state: everyone heartbeats at the master's interval.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let window = Duration::from_secs(args.cpu_window.max(1));
    let hb0 = fleet.counters.heartbeats.load(Ordering::Relaxed);
    let (m0, s0, t0) = (cpu_seconds(&pid_s)?, cpu_seconds("self")?, Instant::now());
    tokio::time::sleep(window).await;
    let (m1, s1, el) = (
        cpu_seconds(&pid_s)?,
        cpu_seconds("self")?,
        t0.elapsed().as_secs_f64(),
    );
    let hbs = fleet.counters.heartbeats.load(Ordering::Relaxed) - hb0;
    let master_pct = (m1 - m0) / el * 100.0;
    let bench_pct = (s1 - s0) / el * 100.0;
    let rss_end = vm_rss_kb(pid)?;
    rep.row(
        &sec,
        "master CPU while heartbeating",
        format!(
            "{master_pct:.2} % of one core over {el:.1} s ({hbs} heartbeats, {:.0}/s, interval {} ms)",
            hbs as f64 / el,
            fleet.heartbeat_ms
        ),
    );
    rep.row(
        &sec,
        "bench process CPU (same window)",
        format!("{bench_pct:.2} % of one core"),
    );
    rep.row(&sec, "master RSS after window", mib(rss_end));
    out["cpu_window_s"] = json!(round3(el));
    out["master_cpu_pct"] = json!(round3(master_pct));
    out["bench_cpu_pct"] = json!(round3(bench_pct));
    out["heartbeats_in_window"] = json!(hbs);
    out["master_rss_end_kb"] = json!(rss_end);

    let t = Instant::now();
    let snap = client
        .cluster_state()
        .await
        .map_err(|e| format!("ClusterState with {n} workers: {e}"))?;
    let cs_ms = ms(t.elapsed());
    let alive: HashSet<&str> = snap
        .alive_workers()
        .map(|w| w.id.as_str())
        .filter(|id| id.starts_with("worker-bench-"))
        .collect();
    let all_alive = (0..n).all(|i| alive.contains(format!("worker-bench-{i}").as_str()));
    let broken = fleet.counters.broken.load(Ordering::Relaxed);
    let reconnects = fleet.counters.reconnects.load(Ordering::Relaxed);
    rep.row(
        &sec,
        "ALIVE in ClusterState at end",
        format!(
            "{}/{n} ({}); ClusterState took {cs_ms:.1} ms",
            alive.len(),
            if all_alive { "all" } else { "NOT ALL" }
        ),
    );
    if broken > 0 || reconnects > 0 {
        let errs = fleet
            .counters
            .errors
            .lock()
            .map(|v| v.join(" | "))
            .unwrap_or_default();
        rep.row(
            &sec,
            "sessions broken / reconnect requests",
            format!("{broken} / {reconnects}: {errs}"),
        );
    }
    out["alive_at_end"] = json!(alive.len());
    out["all_alive"] = json!(all_alive);
    out["cluster_state_ms"] = json!(cs_ms);
    out["sessions_broken"] = json!(broken);
    out["reconnect_requests"] = json!(reconnects);
    if let Err(e) = master.check_running() {
        rep.row(&sec, "MASTER DIED", e.clone());
        out["error"] = json!(e);
    }
    let (problems, first) = master.log_problems();
    rep.row(
        &sec,
        "master log WARN/ERROR lines",
        format!(
            "{problems}{}",
            if problems > 0 {
                format!(": {}", first.join(" | "))
            } else {
                String::new()
            }
        ),
    );
    out["master_log_problems"] = json!({ "count": problems, "first": first });
    // Stop the simulated workers before the master goes.
    drop(fleet);
    drop(master);
    Ok(out)
}

async fn bench_scale(args: &Args, dir: &Path, rep: &mut Report) -> Value {
    let mut runs = Vec::new();
    for &n in &args.workers {
        match bench_scale_one(args, dir, n, rep).await {
            Ok(v) => runs.push(v),
            Err(e) => {
                rep.row(&format!("scale {n}"), "ERROR", e.clone());
                runs.push(json!({ "workers": n, "error": e }));
            }
        }
    }
    Value::Array(runs)
}

// ---------------------------------------------------------------------------- app

const UNREGISTER_TIMEOUT: Duration = Duration::from_secs(5);

async fn bench_app(args: &Args, dir: &Path, rep: &mut Report) -> Res<Value> {
    let n = args.app_workers;
    let (mut master, url, mut client) = start_master(dir, "app", &args.master_log).await?;
    let fleet = start_fleet(&url, n, n.max(1), 4, 8192).await;
    if fleet.failed > 0 {
        return Err(format!(
            "{} of {n} simulated workers failed to register: {}",
            fleet.failed,
            fleet.failures.join(" | ")
        ));
    }
    let app = AppDescription {
        name: "flint-bench".into(),
        user: "bench".into(),
        cores_per_executor: Some(1),
        memory_per_executor_mb: 512,
        max_cores: Some(n as u32),
        command: CommandSpec {
            program: "/bin/true".into(),
            args: Vec::new(),
            env: Default::default(),
            ..Default::default()
        },
        initial_executor_limit: None,
        app_ui_url: String::new(),
    };
    let mut rounds = Vec::new();
    let (mut firsts, mut alls) = (Vec::new(), Vec::new());
    for round in 0..args.rounds {
        let t0 = Instant::now();
        let mut session = client
            .register_application(app.clone(), "spark://CoarseGrainedScheduler@127.0.0.1:1")
            .await
            .map_err(|e| format!("round {round}: register_application: {e}"))?;
        let registered = t0.elapsed();
        let mut first = None;
        let mut running: HashSet<ExecutorId> = HashSet::new();
        let deadline = t0 + Duration::from_secs(30);
        while running.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            let ev = tokio::time::timeout(left, session.next_event())
                .await
                .map_err(|_| {
                    format!(
                        "round {round}: only {} of {n} executors RUNNING after 30 s",
                        running.len()
                    )
                })?
                .map_err(|e| format!("round {round}: application session: {e}"))?
                .ok_or_else(|| format!("round {round}: master ended the application session"))?;
            match ev {
                AppEvent::ExecutorUpdated {
                    executor_id,
                    state: ExecutorState::Running,
                    ..
                } => {
                    first.get_or_insert_with(|| t0.elapsed());
                    running.insert(executor_id);
                }
                AppEvent::ExecutorUpdated {
                    executor_id,
                    state,
                    message,
                    ..
                } if state.is_finished() => {
                    return Err(format!(
                        "round {round}: executor {executor_id} {state}: {message:?}"
                    ));
                }
                AppEvent::ApplicationRemoved { state, message } => {
                    return Err(format!(
                        "round {round}: application removed ({state}): {message}"
                    ));
                }
                _ => {}
            }
        }
        let all = t0.elapsed();
        let first = first.unwrap_or(all);
        let app_id = session.app_id().clone();
        // `AppSession::unregister` waits for the master to end the session; bound it so a
        // session that never ends is reported instead of hanging the benchmark.
        let tu = Instant::now();
        let unregister_ms =
            match tokio::time::timeout(UNREGISTER_TIMEOUT, session.unregister()).await {
                Ok(Ok(())) => Some(ms(tu.elapsed())),
                Ok(Err(e)) => return Err(format!("round {round}: unregister: {e}")),
                Err(_) => None, // the session was dropped with the timed-out future
            };
        // Wait until the master holds no executors at all.
        let wait = Instant::now();
        loop {
            let s = client
                .cluster_state()
                .await
                .map_err(|e| format!("ClusterState: {e}"))?;
            let busy = s
                .workers
                .iter()
                .any(|w| !w.executors.is_empty() || w.cores_used > 0);
            if !busy && s.active_apps.is_empty() {
                break;
            }
            if wait.elapsed() > Duration::from_secs(30) {
                return Err(format!(
                    "round {round}: executors of {app_id} still on the master after 30 s"
                ));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        rep.row(
            "app",
            &format!("round {}", round + 1),
            format!(
                "registered {:.2} ms, first RUNNING {:.2} ms, all {n} RUNNING {:.2} ms, unregister {}",
                ms(registered),
                ms(first),
                ms(all),
                match unregister_ms {
                    Some(u) => format!("{u:.2} ms"),
                    None => format!("TIMED OUT after {UNREGISTER_TIMEOUT:?} (session dropped)"),
                }
            ),
        );
        firsts.push(ms(first));
        alls.push(ms(all));
        rounds.push(json!({
            "app_id": app_id.as_str(),
            "registered_ms": ms(registered),
            "first_running_ms": ms(first),
            "all_running_ms": ms(all),
            "unregister_ms": unregister_ms,
            "unregister_timed_out": unregister_ms.is_none(),
        }));
    }
    let (mf, ma) = (median(&firsts), median(&alls));
    rep.row(
        "app",
        "median",
        format!("first RUNNING {mf:.2} ms, all {n} RUNNING {ma:.2} ms"),
    );
    master.check_running()?;
    let (problems, first) = master.log_problems();
    rep.row(
        "app",
        "master log WARN/ERROR lines",
        format!(
            "{problems}{}",
            if problems > 0 {
                format!(": {}", first.join(" | "))
            } else {
                String::new()
            }
        ),
    );
    let out = json!({
        "master_log_problems": { "count": problems, "first": first },
        "workers": n,
        "executors": n,
        "rounds": rounds,
        "median_first_running_ms": round3(mf),
        "median_all_running_ms": round3(ma),
        "launches_answered": fleet.counters.launches.load(Ordering::Relaxed),
        "kills_answered": fleet.counters.kills.load(Ordering::Relaxed),
    });
    drop(fleet);
    drop(master);
    Ok(out)
}

// ---------------------------------------------------------------------------- main

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let mut rep = Report::default();
    match raise_nofile() {
        Ok((soft, hard)) => {
            rep.row(
                "env",
                "RLIMIT_NOFILE (soft/hard, inherited by masters)",
                format!("{soft}/{hard}"),
            );
            rep.json.insert(
                "rlimit_nofile".into(),
                json!({ "soft": soft, "hard": hard }),
            );
        }
        Err(e) => rep.row("env", "RLIMIT_NOFILE", format!("could not raise: {e}")),
    }
    let dir = match tempfile::Builder::new().prefix("flint-bench-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("flint-bench: temp dir: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    rep.row("env", "CPUs available", cpus.to_string());
    rep.json.insert("cpus".into(), json!(cpus));
    let mut failed = false;
    let run = |m: Mode| args.mode == m || args.mode == Mode::All;

    if run(Mode::Startup) {
        eprintln!("flint-bench: startup ({} runs each)…", args.runs);
        let v = bench_startup(&args, dir.path(), &mut rep)
            .await
            .unwrap_or_else(|e| {
                failed = true;
                rep.row("startup", "ERROR", e.clone());
                json!({ "error": e })
            });
        rep.json.insert("startup".into(), v);
    }
    if run(Mode::Scale) {
        eprintln!(
            "flint-bench: scale {:?} (cpu window {} s)…",
            args.workers, args.cpu_window
        );
        let v = bench_scale(&args, dir.path(), &mut rep).await;
        failed |= v.as_array().is_some_and(|a| {
            a.iter().any(|r| {
                r.get("error").is_some()
                    || r["failed"].as_u64() != Some(0)
                    || r["all_alive"] != json!(true)
            })
        });
        rep.json.insert("scale".into(), v);
    }
    if run(Mode::App) {
        eprintln!("flint-bench: app ({} rounds)…", args.rounds);
        let v = bench_app(&args, dir.path(), &mut rep)
            .await
            .unwrap_or_else(|e| {
                failed = true;
                rep.row("app", "ERROR", e.clone());
                json!({ "error": e })
            });
        rep.json.insert("app".into(), v);
    }

    rep.print();
    if let Some(path) = &args.out {
        let text =
            serde_json::to_string_pretty(&Value::Object(rep.json.clone())).unwrap_or_default();
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("flint-bench: cannot write {}: {e}", path.display());
            failed = true;
        } else {
            println!("\nJSON written to {}", path.display());
        }
    }
    if failed {
        // Keep the logs of a failed run for inspection.
        let kept = dir.keep();
        eprintln!(
            "flint-bench: some measurements failed; process logs kept in {}",
            kept.display()
        );
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}
