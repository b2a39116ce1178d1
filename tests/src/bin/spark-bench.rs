//! `spark-bench`: the same stock `spark-submit` job on Spark 3.5's own standalone cluster
//! and on Flint (not a test).
//!
//! ```text
//! bash tests/spark/setup.sh    # once: pyspark 3.5 in .venv-spark35 (Java 17 on PATH)
//! cargo build --release -p flint-master -p flint-worker -p flint-tests \
//!     --bin flint-master --bin flint-worker --bin spark-bench
//! target/release/spark-bench --rounds 5
//! ```
//!
//! Two clusters on 127.0.0.1, each 1 master + 2 workers (1 core, 1g each by default):
//! Spark's `deploy.master.Master` / `deploy.worker.Worker` JVMs started with
//! `bin/spark-class`, and `flint-master` / `flint-worker` (workers given `SPARK_HOME`, so
//! they launch Spark's JVM executors). Both are started once and kept up; the rounds
//! alternate (Spark first in rounds 1, 3, 5…, Flint first in 2, 4…) so drift hits both.
//! Each round runs `spark-submit … --class JavaPi pi.jar <slices>` (tests/spark/JavaPi.java)
//! against one cluster, checks `Pi is roughly 3.1…` and exit 0, and measures:
//!
//! * the wall time of `spark-submit`;
//! * master: application registration → first executor launched, from the master's log
//!   (Spark: `Registering app` → `Launching executor`, millisecond log4j timestamps;
//!   Flint: `registering application` → `launching executor`, microsecond tracing
//!   timestamps), and Flint's registration → all executors RUNNING histogram (`/metrics`);
//! * driver: the same phases seen by the (identical) Spark driver in its own log;
//! * peak VmRSS of the master and of each worker process (sampled every 100 ms while
//!   `spark-submit` runs; the Spark daemons' java pids, the Flint binaries' own pids — not
//!   the executors), and their CPU time during the job.
//!
//! Every process is started in its own process group and killed with it, also on an error,
//! a panic or Ctrl-C.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};

type Res<T> = Result<T, String>;

use flint_tests::procfs::{cpu_seconds, vm_rss_kb};

#[derive(Parser, Debug)]
#[command(
    name = "spark-bench",
    about = "Stock Spark standalone vs Flint on the same spark-submit job"
)]
struct Args {
    /// Rounds per system (alternating Spark and Flint).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// JavaPi slices (100,000 points each).
    #[arg(long, default_value_t = 100)]
    slices: u32,
    /// Cores of each of the two workers (both clusters).
    #[arg(long, default_value_t = 1)]
    worker_cores: u32,
    /// Memory of each of the two workers (both clusters).
    #[arg(long, default_value = "1g")]
    worker_memory: String,
    /// The Spark install (default: the pyspark 3.5 package in the repository's
    /// `.venv-spark35`, see tests/spark/setup.sh).
    #[arg(long)]
    spark_home: Option<PathBuf>,
    /// Seconds one spark-submit may take before the benchmark gives up.
    #[arg(long, default_value_t = 900)]
    job_timeout: u64,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Keep the temporary directory (all process logs) after a successful run too.
    #[arg(long)]
    keep_logs: bool,
}

/// Cluster start-up (JVMs on a busy 2-core machine can be slow) and post-job drain.
const READY_TIMEOUT: Duration = Duration::from_secs(180);
/// RSS sampling period while a job runs.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// What a job's output must contain.
const PI_OK: &str = "Pi is roughly 3.1";
/// Tracing filter for the Flint processes: the master's and workers' info lines only.
const FLINT_LOG: &str = "warn,flint_master=info,flint_worker=info";
/// Millisecond timestamps for every Spark JVM (daemons, driver, executors).
const LOG4J2: &str = "\
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss.SSS} %p %c{1}: %m%n%ex
logger.jetty.name = org.sparkproject.jetty
logger.jetty.level = warn
";

// ---------------------------------------------------------------------------- signals

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Ctrl-C and SIGTERM set a flag that every wait loop checks, so the benchmark unwinds
/// and its guards kill the process groups (which the terminal's SIGINT does not reach).
fn catch_signals() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

fn check_interrupted() -> Res<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        Err("interrupted".into())
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------- processes

/// A child leading its own process group; the whole group is SIGKILLed when dropped.
struct Group {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Group {
    fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Res<Group> {
        let out = File::create(log).map_err(|e| format!("create {}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("dup {}: {e}", log.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("spawn {name} ({:?}): {e}", cmd.get_program()))?;
        Ok(Group {
            name: name.to_owned(),
            child: Some(child),
            log: log.to_path_buf(),
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
                self.log_tail(30)
            )),
        }
    }

    fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    fn signal_group(&self, sig: i32) {
        if let Some(c) = &self.child {
            // SAFETY: kill(2) on the process group this child leads (spawned with
            // process_group(0)).
            unsafe {
                libc::kill(-(c.id() as i32), sig);
            }
        }
    }

    /// SIGTERM to the group, up to `grace` for the leader to exit, then SIGKILL to what is
    /// left of the group; reaps the leader.
    fn stop(&mut self, grace: Duration) {
        if self.child.is_none() {
            return;
        }
        self.signal_group(libc::SIGTERM);
        let start = Instant::now();
        while self.exited().is_none() && start.elapsed() < grace {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
    }

    fn kill(&mut self) {
        self.signal_group(libc::SIGKILL);
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Binds `n` distinct free ports on 127.0.0.1 (all held until all are bound).
fn free_ports(n: usize) -> Res<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind 127.0.0.1:0: {e}")))
        .collect::<Res<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| {
            l.local_addr()
                .map(|a| a.port())
                .map_err(|e| format!("local_addr: {e}"))
        })
        .collect()
}

// ---------------------------------------------------------------------------- /proc

/// `/proc/<pid>/comm` and the NUL-separated command line, joined by spaces.
fn proc_identity(pid: i32) -> Res<(String, String)> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map_err(|e| format!("/proc/{pid}/comm: {e}"))?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map_err(|e| format!("/proc/{pid}/cmdline: {e}"))?;
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    Ok((comm.trim().to_owned(), cmdline))
}

/// Checks that `pid` is the process we mean to sample: `comm` as given and, when set, a
/// command line containing `needle` (`spark-class` execs `java`, so the launcher's pid
/// becomes the daemon's JVM).
fn verify_process(pid: i32, comm: &str, needle: Option<&str>) -> Res<()> {
    let (c, cmdline) = proc_identity(pid)?;
    if c != comm || needle.is_some_and(|n| !cmdline.contains(n)) {
        return Err(format!(
            "pid {pid} is {c:?} ({cmdline}), expected {comm}{}",
            needle.map(|n| format!(" running {n}")).unwrap_or_default()
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------- HTTP

/// A plain HTTP/1.0 GET (the server closes the connection after the body); returns the
/// status code and the body.
fn http_get(port: u16, path: &str) -> Res<(u16, String)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .and_then(|()| s.set_write_timeout(Some(Duration::from_secs(10))))
        .map_err(|e| format!("socket timeouts: {e}"))?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("GET {addr}{path}: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .map_err(|e| format!("GET {addr}{path}: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("GET {addr}{path}: no end of headers"))?;
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("GET {addr}{path}: bad status line"))?;
    Ok((status, body.to_owned()))
}

/// The master's `/json/` (Spark's layout; Flint serves the same).
fn master_json(webui_port: u16) -> Res<Value> {
    let (status, body) = http_get(webui_port, "/json/")?;
    if status != 200 {
        return Err(format!("/json/ answered {status}"));
    }
    serde_json::from_str(&body).map_err(|e| format!("/json/ is not JSON: {e}"))
}

fn alive_workers(j: &Value) -> usize {
    j["workers"]
        .as_array()
        .map(|ws| ws.iter().filter(|w| w["state"] == "ALIVE").count())
        .unwrap_or(0)
}

/// No active application and no core in use on any worker.
fn idle(j: &Value) -> bool {
    j["activeapps"].as_array().is_some_and(|a| a.is_empty())
        && j["workers"]
            .as_array()
            .is_some_and(|ws| ws.iter().all(|w| w["coresused"].as_u64() == Some(0)))
}

/// `flint_master_app_time_to_running_seconds` (sum, count) from Flint's `/metrics`.
fn time_to_running_histogram(webui_port: u16) -> Res<(f64, u64)> {
    let (status, body) = http_get(webui_port, "/metrics")?;
    if status != 200 {
        return Err(format!("/metrics answered {status}"));
    }
    let value = |name: &str| {
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .ok_or_else(|| format!("no {name} in /metrics"))
    };
    Ok((
        value("flint_master_app_time_to_running_seconds_sum")?,
        value("flint_master_app_time_to_running_seconds_count")? as u64,
    ))
}

// ---------------------------------------------------------------------------- logs

/// Seconds since midnight of a log line's leading timestamp: log4j's `HH:mm:ss.SSS` or
/// tracing's RFC 3339 `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
fn time_of_day(line: &str) -> Option<f64> {
    let first = line.split_whitespace().next()?;
    let t = match first.split_once('T') {
        Some((_, t)) => t.trim_end_matches('Z'),
        None => first,
    };
    let mut parts = t.splitn(3, ':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// Milliseconds from `a` to `b` (time-of-day seconds; a job may cross midnight).
fn ms_between(a: f64, b: f64) -> f64 {
    let d = b - a;
    let d = if d < -43_200.0 { d + 86_400.0 } else { d };
    (d * 1e6).round() / 1e3
}

/// The time of the first line (in order) that contains `needle`.
fn first_time(lines: &[&str], needle: &str) -> Option<f64> {
    lines
        .iter()
        .find(|l| l.contains(needle))
        .and_then(|l| time_of_day(l))
}

/// The part of a log written after byte `from`.
fn log_since(path: &Path, from: u64) -> String {
    let mut text = Vec::new();
    if let Ok(mut f) = File::open(path) {
        use std::io::Seek;
        if f.seek(std::io::SeekFrom::Start(from)).is_ok() {
            let _ = f.read_to_end(&mut text);
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

fn log_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// What the Spark driver logged (its own log4j2 timestamps, the same for both systems),
/// in ms from `Connecting to master`.
#[derive(Default, Clone)]
struct DriverPhases {
    app_registered: Option<f64>,
    first_executor_added: Option<f64>,
    first_executor_running: Option<f64>,
    first_executor_registered: Option<f64>,
    /// `Job 0 finished: … took X s`.
    job_s: Option<f64>,
}

fn driver_phases(out: &str) -> DriverPhases {
    let lines: Vec<&str> = out.lines().collect();
    let Some(t0) = first_time(&lines, "Connecting to master") else {
        return DriverPhases::default();
    };
    let since = |needle: &str| first_time(&lines, needle).map(|t| ms_between(t0, t));
    let job_s = lines
        .iter()
        .find(|l| l.contains("Job 0 finished"))
        .and_then(|l| {
            l.rsplit_once(" took ")?
                .1
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        });
    DriverPhases {
        app_registered: since("Connected to Spark cluster with app ID"),
        first_executor_added: since("Executor added:"),
        first_executor_running: since("is now RUNNING"),
        first_executor_registered: since("Registered executor NettyRpcEndpointRef"),
        job_s,
    }
}

// ---------------------------------------------------------------------------- clusters

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum System {
    Spark,
    Flint,
}

impl System {
    fn key(self) -> &'static str {
        match self {
            System::Spark => "spark",
            System::Flint => "flint",
        }
    }

    fn label(self) -> &'static str {
        match self {
            System::Spark => "Spark 3.5 standalone",
            System::Flint => "Flint",
        }
    }

    /// The master log lines that mark an application's registration and an executor's
    /// launch.
    fn master_markers(self) -> (&'static str, &'static str) {
        match self {
            System::Spark => ("Master: Registering app ", "Master: Launching executor "),
            // The Spark RPC connection task's line, before the actor's own "registering
            // application": Flint's interval then includes the hop to the actor.
            System::Flint => (
                "Spark driver registering an application",
                "launching executor",
            ),
        }
    }
}

/// Where things are: the Spark install, the job, the shared log4j2 configuration.
struct Env {
    spark_home: PathBuf,
    /// `SPARK_CONF_DIR` (only `log4j2.properties`) for every Spark JVM of both systems.
    conf_dir: PathBuf,
    jar: PathBuf,
    dir: PathBuf,
}

impl Env {
    fn spark_tool(&self, tool: &str) -> Command {
        let mut cmd = Command::new(self.spark_home.join("bin").join(tool));
        cmd.env("SPARK_HOME", &self.spark_home)
            .env("SPARK_CONF_DIR", &self.conf_dir)
            .env("SPARK_LOCAL_IP", "127.0.0.1");
        scrub_spark_env(&mut cmd);
        cmd
    }
}

/// Spark settings from the calling shell must not leak into either cluster.
fn scrub_spark_env(cmd: &mut Command) {
    for k in [
        "SPARK_MASTER_HOST",
        "SPARK_MASTER_PORT",
        "SPARK_MASTER_WEBUI_PORT",
        "SPARK_MASTER_OPTS",
        "SPARK_MASTER_URL",
        "SPARK_WORKER_CORES",
        "SPARK_WORKER_MEMORY",
        "SPARK_WORKER_PORT",
        "SPARK_WORKER_WEBUI_PORT",
        "SPARK_WORKER_OPTS",
        "SPARK_WORKER_DIR",
        "SPARK_DAEMON_MEMORY",
        "SPARK_DAEMON_JAVA_OPTS",
        "SPARK_PUBLIC_DNS",
        "SPARK_SUBMIT_OPTS",
        "PYSPARK_PYTHON",
        "PYSPARK_DRIVER_PYTHON",
    ] {
        cmd.env_remove(k);
    }
}

/// One running cluster: a master and two workers, the pids sampled for RSS and CPU.
struct Cluster {
    system: System,
    master: Group,
    workers: Vec<Group>,
    master_url: String,
    webui_port: u16,
    work_dirs: Vec<PathBuf>,
    /// master launch → `/json/` answers, workers launch → all ALIVE in `/json/`.
    startup_ms: (f64, f64),
    /// VmRSS of master, worker 0, worker 1 once all workers are ALIVE (KiB).
    idle_rss_kb: Vec<u64>,
}

impl Cluster {
    fn procs(&self) -> impl Iterator<Item = &Group> {
        std::iter::once(&self.master).chain(self.workers.iter())
    }

    fn pids(&self) -> Vec<i32> {
        self.procs().map(Group::pid).collect()
    }

    fn check_running(&mut self) -> Res<()> {
        self.master.check_running()?;
        self.workers.iter_mut().try_for_each(Group::check_running)
    }

    /// Polls `cond` every 50 ms until it gives a value, the deadline passes, a process of
    /// the cluster exits or the benchmark is interrupted.
    fn wait_until<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut cond: impl FnMut(&Cluster) -> Option<T>,
    ) -> Res<T> {
        let start = Instant::now();
        loop {
            if let Some(v) = cond(self) {
                return Ok(v);
            }
            check_interrupted()?;
            self.check_running()?;
            if start.elapsed() > timeout {
                return Err(format!(
                    "{}: timed out after {timeout:?} waiting for {what}",
                    self.system.label()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for `/json/` to list `n` ALIVE workers.
    fn wait_alive(&mut self, n: usize) -> Res<()> {
        let port = self.webui_port;
        self.wait_until(
            &format!("{n} ALIVE workers in /json/"),
            READY_TIMEOUT,
            |_| {
                master_json(port)
                    .ok()
                    .filter(|j| alive_workers(j) >= n)
                    .map(|_| ())
            },
        )
    }

    /// Waits until the last application is gone and its executors' cores are free.
    fn wait_idle(&mut self) -> Res<()> {
        let port = self.webui_port;
        self.wait_until(
            "no active application and no cores used",
            READY_TIMEOUT,
            |_| master_json(port).ok().filter(idle).map(|_| ()),
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Workers first (they stop their executors), then the master; then anything still
        // running inside the work directories (executors that outlived their worker).
        for w in &mut self.workers {
            w.stop(Duration::from_secs(10));
        }
        self.master.stop(Duration::from_secs(10));
        for d in &self.work_dirs {
            for pid in flint_tests::processes_in(d) {
                eprintln!(
                    "spark-bench: {}: killing leftover process {pid} in {}",
                    self.system.label(),
                    d.display()
                );
                // SAFETY: kill(2) on a process running inside our own temporary work dir.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }
}

fn start_cluster(system: System, env: &Env, args: &Args) -> Res<Cluster> {
    let dir = env.dir.join(system.key());
    std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    let ports = free_ports(4)?;
    let (port, webui_port) = (ports[0], ports[1]);
    let master_url = format!("spark://127.0.0.1:{port}");
    let master_log = dir.join("master.log");
    let started = Instant::now();
    let master = match system {
        System::Spark => {
            let logs = dir.join("logs");
            std::fs::create_dir_all(&logs).map_err(|e| format!("mkdir: {e}"))?;
            let mut cmd = env.spark_tool("spark-class");
            cmd.arg("org.apache.spark.deploy.master.Master")
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--webui-port", &webui_port.to_string()])
                .env("SPARK_LOG_DIR", &logs)
                .env("SPARK_MASTER_OPTS", "-Dspark.master.rest.enabled=false")
                .current_dir(&dir);
            Group::spawn("Spark master", &mut cmd, &master_log)?
        }
        System::Flint => {
            let props = dir.join("master.conf");
            std::fs::write(
                &props,
                format!(
                    "spark.master.artifacts.dir {}\n",
                    dir.join("artifacts").display()
                ),
            )
            .map_err(|e| format!("write {}: {e}", props.display()))?;
            let mut cmd = Command::new(flint_tests::bin("flint-master"));
            cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--webui-port", &webui_port.to_string()])
                .arg("--properties-file")
                .arg(&props)
                .env("RUST_LOG", FLINT_LOG)
                .env_remove("SPARK_CONF_DIR")
                .current_dir(&dir);
            scrub_spark_env(&mut cmd);
            Group::spawn("flint-master", &mut cmd, &master_log)?
        }
    };
    let mut c = Cluster {
        system,
        master,
        workers: Vec::new(),
        master_url: master_url.clone(),
        webui_port,
        work_dirs: Vec::new(),
        startup_ms: (0.0, 0.0),
        idle_rss_kb: Vec::new(),
    };
    c.wait_until("the master's /json/", READY_TIMEOUT, |_| {
        master_json(webui_port).ok()
    })?;
    let master_up = started.elapsed();
    let started = Instant::now();
    for (i, &worker_webui) in ports[2..].iter().enumerate() {
        let work = dir.join(format!("work-{i}"));
        std::fs::create_dir_all(&work).map_err(|e| format!("mkdir {}: {e}", work.display()))?;
        let log = dir.join(format!("worker-{i}.log"));
        let name = format!("{} worker {i}", system.label());
        let w = match system {
            System::Spark => {
                let mut cmd = env.spark_tool("spark-class");
                cmd.arg("org.apache.spark.deploy.worker.Worker")
                    .args(["--host", "127.0.0.1"])
                    .args(["--cores", &args.worker_cores.to_string()])
                    .args(["--memory", &args.worker_memory])
                    .args(["--webui-port", &worker_webui.to_string()])
                    .arg(&master_url)
                    .env("SPARK_WORKER_DIR", &work)
                    .env("SPARK_LOG_DIR", dir.join("logs"))
                    .current_dir(&dir);
                Group::spawn(&name, &mut cmd, &log)?
            }
            System::Flint => {
                let mut cmd = Command::new(flint_tests::bin("flint-worker"));
                cmd.arg(&master_url)
                    .args(["--host", "127.0.0.1", "--port", "0"])
                    .args(["--webui-port", &worker_webui.to_string()])
                    .args(["--cores", &args.worker_cores.to_string()])
                    .args(["--memory", &args.worker_memory])
                    .arg("--work-dir")
                    .arg(&work)
                    .env("SPARK_HOME", &env.spark_home)
                    .env("SPARK_CONF_DIR", &env.conf_dir)
                    .env("SPARK_LOCAL_IP", "127.0.0.1")
                    .env("RUST_LOG", FLINT_LOG)
                    .current_dir(&dir);
                scrub_spark_env(&mut cmd);
                Group::spawn(&name, &mut cmd, &log)?
            }
        };
        c.workers.push(w);
        c.work_dirs.push(work);
    }
    c.wait_alive(2)?;
    c.startup_ms = (ms(master_up), ms(started.elapsed()));
    // The pids sampled must be the daemons themselves.
    match system {
        System::Spark => {
            verify_process(
                c.master.pid(),
                "java",
                Some("org.apache.spark.deploy.master.Master"),
            )?;
            for w in &c.workers {
                verify_process(
                    w.pid(),
                    "java",
                    Some("org.apache.spark.deploy.worker.Worker"),
                )?;
            }
        }
        System::Flint => {
            verify_process(c.master.pid(), "flint-master", None)?;
            for w in &c.workers {
                verify_process(w.pid(), "flint-worker", None)?;
            }
        }
    }
    c.idle_rss_kb = c.pids().into_iter().map(vm_rss_kb).collect::<Res<_>>()?;
    Ok(c)
}

// ---------------------------------------------------------------------------- one round

/// What one `spark-submit` measured.
struct Round {
    system: System,
    round: usize,
    wall_s: f64,
    pi: String,
    /// Master log: registration → first executor launched.
    master_reg_to_launch_ms: Option<f64>,
    executors_launched: usize,
    /// Flint's `/metrics`: registration → all executors RUNNING.
    metrics_time_to_running_ms: Option<f64>,
    driver: DriverPhases,
    /// Peak VmRSS of master, worker 0, worker 1 (KiB).
    rss_peak_kb: Vec<u64>,
    /// CPU seconds of master, worker 0, worker 1 during the job.
    cpu_s: Vec<f64>,
}

fn run_round(c: &mut Cluster, env: &Env, args: &Args, round: usize) -> Res<Round> {
    let system = c.system;
    c.wait_idle()?;
    let master_log = c.master.log.clone();
    let log_from = log_len(&master_log);
    let hist_before = match system {
        System::Flint => Some(time_to_running_histogram(c.webui_port)?),
        System::Spark => None,
    };
    let pids = c.pids();
    let cpu_before = pids
        .iter()
        .map(|&p| cpu_seconds(p))
        .collect::<Res<Vec<_>>>()?;
    let mut peaks = vec![0u64; pids.len()];

    let log = env
        .dir
        .join(format!("round-{}-{}.log", round + 1, system.key()));
    let mut cmd = env.spark_tool("spark-submit");
    cmd.args(["--master", &c.master_url])
        .args(["--conf", "spark.driver.host=127.0.0.1"])
        .args(["--conf", "spark.ui.enabled=false"])
        .args(["--total-executor-cores", "2"])
        .args(["--executor-memory", "512m"])
        .args(["--class", "JavaPi"])
        .arg(&env.jar)
        .arg(args.slices.to_string())
        .current_dir(&env.dir);
    let timeout = Duration::from_secs(args.job_timeout);
    let start = Instant::now();
    let mut submit = Group::spawn("spark-submit", &mut cmd, &log)?;
    let mut next_sample = start;
    let status = loop {
        if let Some(st) = submit.exited() {
            break st;
        }
        let now = Instant::now();
        if now >= next_sample {
            for (peak, &pid) in peaks.iter_mut().zip(&pids) {
                *peak = (*peak).max(vm_rss_kb(pid)?);
            }
            next_sample += SAMPLE_EVERY;
        }
        check_interrupted()?;
        c.check_running()?;
        if start.elapsed() > timeout {
            return Err(format!(
                "{} round {}: spark-submit still running after {timeout:?}; last lines:\n{}",
                system.label(),
                round + 1,
                submit.log_tail(30)
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let wall = start.elapsed();
    // Anything the driver left in its group goes too.
    submit.kill();
    let cpu_s: Vec<f64> = pids
        .iter()
        .zip(&cpu_before)
        .map(|(&p, b)| cpu_seconds(p).map(|a| round3(a - b)))
        .collect::<Res<_>>()?;
    let out = std::fs::read_to_string(&log).unwrap_or_default();
    let pi = out
        .lines()
        .find(|l| l.starts_with("Pi is roughly"))
        .map(str::to_owned);
    let pi = match (status.success(), pi) {
        (true, Some(pi)) if pi.starts_with(PI_OK) => pi,
        (ok, pi) => {
            return Err(format!(
                "{} round {}: spark-submit {status}{}, {}; last lines:\n{}",
                system.label(),
                round + 1,
                if ok { "" } else { " (failed)" },
                pi.unwrap_or_else(|| "no 'Pi is roughly' line".into()),
                submit.log_tail(40)
            ));
        }
    };
    // The master logs the executors' end after the driver has gone: wait for it, so the
    // next round starts on an idle cluster and this round's log is complete.
    c.wait_idle()?;
    let text = log_since(&master_log, log_from);
    let lines: Vec<&str> = text.lines().collect();
    let (reg, launch) = system.master_markers();
    let master_reg_to_launch_ms = first_time(&lines, reg)
        .zip(first_time(&lines, launch))
        .map(|(a, b)| ms_between(a, b));
    let executors_launched = lines.iter().filter(|l| l.contains(launch)).count();
    let metrics_time_to_running_ms = match hist_before {
        Some((sum0, count0)) => {
            let (sum1, count1) = time_to_running_histogram(c.webui_port)?;
            (count1 == count0 + 1).then(|| round3((sum1 - sum0) * 1000.0))
        }
        None => None,
    };
    Ok(Round {
        system,
        round,
        wall_s: round3(wall.as_secs_f64()),
        pi,
        master_reg_to_launch_ms,
        executors_launched,
        metrics_time_to_running_ms,
        driver: driver_phases(&out),
        rss_peak_kb: peaks,
        cpu_s,
    })
}

fn describe_round(r: &Round) -> String {
    let opt = |v: Option<f64>, unit: &str| match v {
        Some(v) if unit == "ms" && v < 10.0 => format!("{v:.3} {unit}"),
        Some(v) => format!("{v:.1} {unit}"),
        None => "n/a".into(),
    };
    format!(
        "round {} {:<20}  wall {:.2} s  master reg→launch {} ({} executors)  driver reg→RUNNING {}  \
         reg→executor registered {}  job {}  RSS peak master/workers {}  — {}",
        r.round + 1,
        r.system.label(),
        r.wall_s,
        opt(r.master_reg_to_launch_ms, "ms"),
        r.executors_launched,
        opt(
            r.driver
                .first_executor_running
                .zip(r.driver.app_registered)
                .map(|(a, b)| a - b),
            "ms"
        ),
        opt(
            r.driver
                .first_executor_registered
                .zip(r.driver.app_registered)
                .map(|(a, b)| a - b),
            "ms"
        ),
        opt(r.driver.job_s, "s"),
        r.rss_peak_kb
            .iter()
            .map(|&k| mib(k))
            .collect::<Vec<_>>()
            .join(" / "),
        r.pi
    )
}

// ---------------------------------------------------------------------------- figures

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn round3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}

fn mib(kb: u64) -> String {
    format!("{:.1} MiB", kb as f64 / 1024.0)
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

/// "median X (min A, max B) unit" over the rounds that have a value; JSON alongside.
fn summarize(v: &[Option<f64>], unit: &str, decimals: usize) -> (String, Value) {
    let have: Vec<f64> = v.iter().flatten().copied().collect();
    if have.is_empty() {
        return ("n/a".into(), Value::Null);
    }
    let min = have.iter().copied().fold(f64::INFINITY, f64::min);
    let max = have.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let med = median(&have);
    // Sub-10 ms intervals (Flint's) come from microsecond timestamps: show them.
    let decimals = if unit == "ms" && max < 10.0 {
        3
    } else {
        decimals
    };
    let missing = v.len() - have.len();
    let text = if have.len() == 1 {
        format!("{med:.decimals$} {unit}")
    } else {
        format!("{med:.decimals$} {unit} (min {min:.decimals$}, max {max:.decimals$})")
    };
    let text = if missing > 0 {
        format!("{text} [{missing} round(s) n/a]")
    } else {
        text
    };
    (
        text,
        json!({ "median": round3(med), "min": min, "max": max, "values": v }),
    )
}

/// The table: one row per metric, one column per system.
struct Table {
    rows: Vec<(String, [String; 2])>,
    json: serde_json::Map<String, Value>,
}

impl Table {
    fn print(&self) {
        let heads = ["metric", System::Spark.label(), System::Flint.label()];
        let width = |i: usize| {
            self.rows
                .iter()
                .map(|(m, v)| {
                    if i == 0 {
                        m.chars().count()
                    } else {
                        v[i - 1].chars().count()
                    }
                })
                .chain(std::iter::once(heads[i].chars().count()))
                .max()
                .unwrap_or(0)
        };
        let (w0, w1, w2) = (width(0), width(1), width(2));
        println!();
        println!("{:<w0$}  {:<w1$}  {}", heads[0], heads[1], heads[2]);
        println!("{}  {}  {}", "-".repeat(w0), "-".repeat(w1), "-".repeat(w2));
        for (m, v) in &self.rows {
            println!("{m:<w0$}  {:<w1$}  {}", v[0], v[1]);
        }
    }
}

fn build_table(args: &Args, clusters: &[&Cluster; 2], rounds: &[Round]) -> Table {
    let mut t = Table {
        rows: Vec::new(),
        json: serde_json::Map::new(),
    };
    let of = |s: System| -> Vec<&Round> { rounds.iter().filter(|r| r.system == s).collect() };
    let systems = [System::Spark, System::Flint];
    type Metric = (
        String,
        String,
        &'static str,
        usize,
        Box<dyn Fn(&Round) -> Option<f64>>,
    );
    fn metric(
        label: &str,
        key: &str,
        unit: &'static str,
        decimals: usize,
        f: impl Fn(&Round) -> Option<f64> + 'static,
    ) -> Metric {
        (label.into(), key.into(), unit, decimals, Box::new(f))
    }
    /// A driver phase, from the application's registration rather than from connecting.
    fn after_registration(f: fn(&DriverPhases) -> Option<f64>) -> impl Fn(&Round) -> Option<f64> {
        move |r: &Round| {
            f(&r.driver)
                .zip(r.driver.app_registered)
                .map(|(a, b)| a - b)
        }
    }
    let mut metrics: Vec<Metric> = vec![
        metric("spark-submit wall time", "wall_s", "s", 2, |r| {
            Some(r.wall_s)
        }),
        metric(
            "master log: registration → first executor launched",
            "master_reg_to_first_launch_ms",
            "ms",
            1,
            |r| r.master_reg_to_launch_ms,
        ),
        metric(
            "master /metrics: registration → all executors RUNNING",
            "metrics_time_to_running_ms",
            "ms",
            1,
            |r| r.metrics_time_to_running_ms,
        ),
        metric(
            "driver log: connecting → app registered",
            "driver_connect_to_registered_ms",
            "ms",
            0,
            |r| r.driver.app_registered,
        ),
        metric(
            "driver log: app registered → first executor added",
            "driver_registered_to_first_added_ms",
            "ms",
            0,
            after_registration(|d| d.first_executor_added),
        ),
        metric(
            "driver log: app registered → first executor RUNNING",
            "driver_registered_to_first_running_ms",
            "ms",
            0,
            after_registration(|d| d.first_executor_running),
        ),
        metric(
            "driver log: app registered → first executor JVM registered",
            "driver_registered_to_first_executor_registered_ms",
            "ms",
            0,
            after_registration(|d| d.first_executor_registered),
        ),
        metric("driver log: job 0 duration", "driver_job_s", "s", 2, |r| {
            r.driver.job_s
        }),
    ];
    for (i, name) in ["master", "worker 1", "worker 2"].iter().enumerate() {
        metrics.push(metric(
            &format!("{name} peak RSS during job"),
            &format!("rss_peak_mib_{}", name.replace(' ', "_")),
            "MiB",
            1,
            move |r| r.rss_peak_kb.get(i).map(|&k| k as f64 / 1024.0),
        ));
    }
    metrics.push(metric(
        "master + workers CPU time per job",
        "daemons_cpu_s",
        "s",
        2,
        |r| Some(r.cpu_s.iter().sum()),
    ));
    for (label, key, unit, decimals, f) in &metrics {
        let mut cells = [String::new(), String::new()];
        let mut j = serde_json::Map::new();
        for (k, s) in systems.iter().enumerate() {
            let vals: Vec<Option<f64>> = of(*s).into_iter().map(f).collect();
            let (text, v) = summarize(&vals, unit, *decimals);
            cells[k] = text;
            j.insert(s.key().into(), v);
        }
        t.rows.push((label.clone(), cells));
        t.json.insert(key.clone(), Value::Object(j));
    }
    // Start-up, once per cluster.
    let mut up = [String::new(), String::new()];
    let mut upj = serde_json::Map::new();
    for (k, c) in clusters.iter().enumerate() {
        up[k] = format!(
            "master {:.0} ms, workers ALIVE {:.0} ms",
            c.startup_ms.0, c.startup_ms.1
        );
        upj.insert(
            c.system.key().into(),
            json!({ "master_ms": c.startup_ms.0, "workers_alive_ms": c.startup_ms.1 }),
        );
    }
    t.rows.push(("cluster start-up (once)".into(), up));
    let mut idle = [String::new(), String::new()];
    for (k, c) in clusters.iter().enumerate() {
        idle[k] = c
            .idle_rss_kb
            .iter()
            .map(|&kb| mib(kb))
            .collect::<Vec<_>>()
            .join(" / ");
        upj.insert(
            format!("{}_idle_rss_kb", c.system.key()),
            json!(c.idle_rss_kb),
        );
    }
    t.rows
        .push(("RSS after start-up, master / workers".into(), idle));
    t.json.insert("startup".into(), Value::Object(upj));
    t.json.insert(
        "setup".into(),
        json!({
            "rounds": args.rounds,
            "slices": args.slices,
            "worker_cores": args.worker_cores,
            "worker_memory": args.worker_memory,
            "total_executor_cores": 2,
            "executor_memory": "512m",
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        }),
    );
    t.json.insert(
        "rounds".into(),
        Value::Array(
            rounds
                .iter()
                .map(|r| {
                    json!({
                        "system": r.system.key(),
                        "round": r.round + 1,
                        "wall_s": r.wall_s,
                        "pi": r.pi,
                        "master_reg_to_first_launch_ms": r.master_reg_to_launch_ms,
                        "executors_launched": r.executors_launched,
                        "metrics_time_to_running_ms": r.metrics_time_to_running_ms,
                        "driver_ms_from_connect": {
                            "app_registered": r.driver.app_registered,
                            "first_executor_added": r.driver.first_executor_added,
                            "first_executor_running": r.driver.first_executor_running,
                            "first_executor_registered": r.driver.first_executor_registered,
                        },
                        "driver_job_s": r.driver.job_s,
                        "rss_peak_kb": r.rss_peak_kb,
                        "cpu_s": r.cpu_s,
                    })
                })
                .collect(),
        ),
    );
    t
}

// ---------------------------------------------------------------------------- main

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// `.venv-spark35/lib/python3.*/site-packages/pyspark` (the one with `jars/`).
fn find_spark_home() -> Res<PathBuf> {
    let lib = repo_root().join(".venv-spark35/lib");
    std::fs::read_dir(&lib)
        .ok()
        .and_then(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("site-packages/pyspark"))
                .find(|p| p.join("jars").is_dir() && p.join("bin/spark-class").exists())
        })
        .ok_or_else(|| {
            format!(
                "no pyspark with jars/ under {}: run tests/spark/setup.sh, or pass --spark-home",
                lib.display()
            )
        })
}

fn prepare(args: &Args, dir: &Path) -> Res<Env> {
    let spark_home = match &args.spark_home {
        Some(h) => h.clone(),
        None => find_spark_home()?,
    };
    let spark_home = spark_home
        .canonicalize()
        .map_err(|e| format!("{}: {e}", spark_home.display()))?;
    let conf_dir = dir.join("conf");
    std::fs::create_dir_all(&conf_dir).map_err(|e| format!("mkdir: {e}"))?;
    std::fs::write(conf_dir.join("log4j2.properties"), LOG4J2)
        .map_err(|e| format!("write log4j2.properties: {e}"))?;
    let jar = dir.join("pi.jar");
    let out = Command::new("bash")
        .arg(repo_root().join("tests/spark/build-javapi.sh"))
        .arg(&spark_home)
        .arg(&jar)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run build-javapi.sh: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "building JavaPi failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(Env {
        spark_home,
        conf_dir,
        jar,
        dir: dir.to_path_buf(),
    })
}

fn run(args: &Args, dir: &Path) -> Res<Table> {
    if args.rounds == 0 {
        return Err("--rounds must be at least 1".into());
    }
    let env = prepare(args, dir)?;
    eprintln!(
        "spark-bench: SPARK_HOME {}; 2 workers × {} core(s), {} each; JavaPi {}; {} rounds",
        env.spark_home.display(),
        args.worker_cores,
        args.worker_memory,
        args.slices,
        args.rounds
    );
    eprintln!("spark-bench: starting Spark's standalone cluster…");
    let mut spark = start_cluster(System::Spark, &env, args)?;
    eprintln!("spark-bench: starting Flint's cluster…");
    let mut flint = start_cluster(System::Flint, &env, args)?;
    for c in [&spark, &flint] {
        eprintln!(
            "spark-bench: {} at {} (web UI :{}), pids {:?}; up in {:.0} + {:.0} ms",
            c.system.label(),
            c.master_url,
            c.webui_port,
            c.pids(),
            c.startup_ms.0,
            c.startup_ms.1
        );
    }
    let mut rounds = Vec::new();
    for round in 0..args.rounds {
        let order = if round % 2 == 0 {
            [System::Spark, System::Flint]
        } else {
            [System::Flint, System::Spark]
        };
        for system in order {
            let c = match system {
                System::Spark => &mut spark,
                System::Flint => &mut flint,
            };
            eprintln!("spark-bench: round {} on {}…", round + 1, system.label());
            let r = run_round(c, &env, args, round)?;
            println!("{}", describe_round(&r));
            rounds.push(r);
        }
    }
    let table = build_table(args, &[&spark, &flint], &rounds);
    // Stop both clusters before printing, so nothing of theirs outlives a broken pipe.
    drop(flint);
    drop(spark);
    Ok(table)
}

fn main() -> ExitCode {
    let args = Args::parse();
    catch_signals();
    let dir = match tempfile::Builder::new().prefix("spark-bench-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("spark-bench: temp dir: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run(&args, dir.path()) {
        Ok(table) => {
            table.print();
            if args.keep_logs {
                println!("\nlogs kept in {}", dir.keep().display());
            }
            if let Some(path) = &args.json {
                let text = serde_json::to_string_pretty(&Value::Object(table.json.clone()))
                    .unwrap_or_default();
                if let Err(e) = std::fs::write(path, text + "\n") {
                    eprintln!("spark-bench: cannot write {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
                println!("\nJSON written to {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("spark-bench: {e}");
            // Keep the logs of a failed run for inspection.
            let kept = dir.keep();
            eprintln!("spark-bench: logs kept in {}", kept.display());
            ExitCode::FAILURE
        }
    }
}
