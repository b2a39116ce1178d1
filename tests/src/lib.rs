//! Test harness: starts real `flint-master` and `flint-worker` processes on ephemeral
//! ports, waits on conditions with deadlines, and kills everything it started on drop.

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flint_client::MasterClient;
use flint_domain::types::*;

pub use tempfile::TempDir;

mod http;
pub mod k8s;

pub use http::{HttpResponse, http, http_get, try_http};

/// Where cargo put the workspace's binaries (next to the test executable's `deps/`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(|d| {
            if d.ends_with("deps") {
                d.parent()
            } else {
                Some(d)
            }
        })
        .expect("target dir");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is missing: build the binaries first (cargo build --workspace --bins)",
        p.display()
    );
    p
}

/// Polls `cond` until it returns `Some`, or panics after `timeout` with `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut cond: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = cond().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A child process that is SIGKILLed (and reaped) when dropped.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command, log: PathBuf) -> Proc {
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        cmd.env("RUST_LOG", "info");
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Proc {
            name: name.to_owned(),
            child: Some(child),
            log,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(-1)
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2) on a pid we own.
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// Sends `sig` and waits for the exit; returns the exit status and how long it took.
    pub fn stop_with(
        &mut self,
        sig: i32,
        timeout: Duration,
    ) -> (Option<std::process::ExitStatus>, Duration) {
        let start = Instant::now();
        self.signal(sig);
        let Some(child) = self.child.as_mut() else {
            return (None, Duration::ZERO);
        };
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                self.child = None;
                return (Some(st), start.elapsed());
            }
            if start.elapsed() > timeout {
                return (None, start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Waits until a line of the log contains `needle`; returns that line.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(f) = std::fs::File::open(&self.log) {
                for line in BufReader::new(f).lines().map_while(Result::ok) {
                    if line.contains(needle) {
                        return line;
                    }
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "{}: no log line with {needle:?} within {timeout:?}; log:\n{}",
                    self.name,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("---- {} log ----\n{}", self.name, self.log_text());
        }
    }
}

/// Extracts `key=value` (up to the next space) from a log line.
pub fn field(line: &str, key: &str) -> Option<String> {
    let pat = format!("{key}=");
    let start = line.find(&pat)? + pat.len();
    let rest = &line[start..];
    Some(rest.split_whitespace().next()?.trim_matches('"').to_owned())
}

pub fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// A master and its workers, all real processes.
pub struct Cluster {
    pub master: Proc,
    pub master_url: String,
    pub master_port: u16,
    pub workers: Vec<Proc>,
    pub worker_ids: Vec<WorkerId>,
    conf: Vec<(String, String)>,
    /// Last: dropped after the processes, so their logs can still be printed.
    pub dir: TempDir,
}

pub struct WorkerSpec {
    pub cores: u32,
    pub memory: &'static str,
}

impl Default for WorkerSpec {
    fn default() -> Self {
        Self {
            cores: 4,
            memory: "4g",
        }
    }
}

fn start_master(dir: &Path, conf: &[(String, String)], port: u16, n: usize) -> (Proc, String, u16) {
    let props = dir.join("master.conf");
    let mut text: String = conf.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
    if !conf.iter().any(|(k, _)| k == "spark.master.artifacts.dir") {
        text.push_str(&format!(
            "spark.master.artifacts.dir {}\n",
            dir.join("artifacts").display()
        ));
    }
    std::fs::write(&props, text).expect("write conf");
    let mut cmd = Command::new(bin("flint-master"));
    cmd.args([
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--webui-port",
        "0",
    ])
    .arg("--properties-file")
    .arg(&props)
    .env_remove("SPARK_MASTER_PORT")
    .env_remove("SPARK_MASTER_OPTS")
    .env_remove("SPARK_CONF_DIR");
    let master = Proc::spawn("master", cmd, dir.join(format!("master-{n}.log")));
    let line = master.wait_log("Starting Flint master", Duration::from_secs(20));
    let url = field(&line, "master_url").expect("master_url in log");
    let port = url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    (master, url, port)
}

impl Cluster {
    /// Starts a master with these `spark.*` properties.
    pub fn master(conf: &[(&str, &str)]) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("flint-test-")
            .tempdir()
            .expect("temp dir");
        let conf: Vec<(String, String)> = conf
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (master, master_url, master_port) = start_master(dir.path(), &conf, 0, 0);
        Cluster {
            dir,
            master,
            master_url,
            master_port,
            workers: Vec::new(),
            worker_ids: Vec::new(),
            conf,
        }
    }

    /// Starts a worker and waits until it says it registered.
    pub fn add_worker(&mut self, spec: WorkerSpec) -> WorkerId {
        self.add_worker_with_env(spec, &[])
    }

    /// As [`Cluster::add_worker`], with extra environment variables for the worker.
    pub fn add_worker_with_env(&mut self, spec: WorkerSpec, env: &[(&str, &str)]) -> WorkerId {
        let n = self.workers.len();
        let work = self.dir.path().join(format!("work-{n}"));
        let mut cmd = Command::new(bin("flint-worker"));
        cmd.arg(&self.master_url)
            .args(["--host", "127.0.0.1", "--port", "0", "--webui-port", "0"])
            .args(["--cores", &spec.cores.to_string(), "--memory", spec.memory])
            .arg("--work-dir")
            .arg(&work)
            .env(
                "SPARK_WORKER_OPTS",
                "-Dspark.worker.killGracePeriod=1s -Dspark.worker.reconnect.maxBackoff=500ms",
            )
            .env_remove("SPARK_WORKER_PORT")
            .env_remove("SPARK_CONF_DIR");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let p = Proc::spawn(
            &format!("worker-{n}"),
            cmd,
            self.dir.path().join(format!("worker-{n}.log")),
        );
        let line = p.wait_log("Starting Flint worker", Duration::from_secs(20));
        let id = WorkerId(field(&line, "worker_id").expect("worker_id"));
        p.wait_log("Successfully registered", Duration::from_secs(20));
        self.workers.push(p);
        self.worker_ids.push(id.clone());
        id
    }

    /// The master web UI's base URL (`http://127.0.0.1:PORT`), from its start-up log line.
    pub fn webui_url(&self) -> String {
        let line = self
            .master
            .wait_log("Starting Flint master", Duration::from_secs(5));
        field(&line, "webui_url").expect("webui_url in the master's log")
    }

    /// The REST submission server's URL (`spark://127.0.0.1:PORT`), when enabled.
    pub fn rest_url(&self) -> Option<String> {
        let line = self
            .master
            .wait_log("Starting Flint master", Duration::from_secs(5));
        field(&line, "rest_url").filter(|u| u.starts_with("spark://"))
    }

    /// Worker `n`'s web UI base URL, from its start-up log line.
    pub fn worker_webui_url(&self, n: usize) -> String {
        let line = self.workers[n].wait_log("Starting Flint worker", Duration::from_secs(5));
        field(&line, "webui_url").expect("webui_url in the worker's log")
    }

    /// The master's artifact store (unless the test configured another).
    pub fn artifacts_dir(&self) -> PathBuf {
        self.dir.path().join("artifacts")
    }

    pub fn work_dir(&self, worker: usize) -> PathBuf {
        self.dir.path().join(format!("work-{worker}"))
    }

    pub async fn client(&self) -> MasterClient {
        MasterClient::connect(&self.master_url)
            .await
            .expect("connect to master")
    }

    pub async fn state(&self) -> ClusterSnapshot {
        self.client()
            .await
            .cluster_state()
            .await
            .expect("cluster state")
    }

    /// Waits until the snapshot satisfies `pred`; returns it.
    pub async fn wait_state(
        &self,
        what: &str,
        pred: impl Fn(&ClusterSnapshot) -> bool,
    ) -> ClusterSnapshot {
        wait_for(what, Duration::from_secs(30), || async {
            let mut c = MasterClient::connect(&self.master_url).await.ok()?;
            let s = c.cluster_state().await.ok()?;
            pred(&s).then_some(s)
        })
        .await
    }

    /// Kills the master (SIGKILL) and starts a new one on the same port.
    pub fn restart_master(&mut self) {
        self.master.stop_with(libc::SIGKILL, Duration::from_secs(5));
        let (m, url, _) = start_master(self.dir.path(), &self.conf, self.master_port, 1);
        assert_eq!(url, self.master_url);
        self.master = m;
    }
}

/// An executor command (`/bin/sh -c SCRIPT`) for tests.
pub fn shell(script: &str) -> CommandSpec {
    CommandSpec {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
        env: Default::default(),
        ..Default::default()
    }
}

pub fn app(
    name: &str,
    cores_per_executor: Option<u32>,
    memory_mb: u64,
    max_cores: Option<u32>,
    command: CommandSpec,
) -> AppDescription {
    AppDescription {
        name: name.into(),
        user: "test".into(),
        cores_per_executor,
        memory_per_executor_mb: memory_mb,
        max_cores,
        command,
        initial_executor_limit: None,
        app_ui_url: String::new(),
    }
}

/// Runs `flint-submit` with `args` (no `--master` added) and returns its output.
pub fn flint_submit(args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(bin("flint-submit"));
    cmd.args(args)
        .env_remove("SPARK_CONF_DIR")
        .stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run flint-submit")
}

/// Writes an executable shell script.
pub fn write_script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// An application binary of this workspace (`pi`, `wordcount`, `flint-test-app`) running
/// as a client-mode driver, with stdout and stderr in separate files. SIGKILLed on drop.
pub struct AppDriver {
    pub name: String,
    child: Option<Child>,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

/// How an [`AppDriver`] ended.
#[derive(Debug)]
pub struct AppOutput {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Cluster {
    /// Starts `app` with `args` the way `flint-submit --deploy-mode client` does:
    /// `FLINT_MASTER_URL` is this cluster, `FLINT_CONF` holds `conf` plus
    /// `spark.driver.host=127.0.0.1`, `spark.executor.memory=256m` and
    /// `spark.flint.executor.binary=local` (workers here share the filesystem, so the debug
    /// binary need not be shipped; the shipping path is covered by the submit tests) unless given.
    pub fn spawn_app(&self, app: &str, args: &[&str], conf: &[(&str, &str)]) -> AppDriver {
        let mut lines: Vec<String> = conf.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for (k, v) in [
            ("spark.driver.host", "127.0.0.1"),
            ("spark.executor.memory", "256m"),
            ("spark.flint.executor.binary", "local"),
        ] {
            if !conf.iter().any(|(ck, _)| *ck == k) {
                lines.push(format!("{k}={v}"));
            }
        }
        let n = std::fs::read_dir(self.dir.path())
            .map(|d| d.count())
            .unwrap_or(0);
        let stdout = self.dir.path().join(format!("{app}-{n}.stdout"));
        let stderr = self.dir.path().join(format!("{app}-{n}.stderr"));
        let mut cmd = Command::new(bin(app));
        cmd.args(args)
            .env("FLINT_MASTER_URL", &self.master_url)
            .env("FLINT_APP_NAME", app)
            .env("FLINT_CONF", lines.join("\n"))
            .env("FLINT_DEPLOY_MODE", "client")
            .env("RUST_LOG", "info")
            .env_remove("FLINT_ROLE")
            .env_remove("FLINT_HOSTNAME")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"));
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {app}: {e}"));
        AppDriver {
            name: app.to_owned(),
            child: Some(child),
            stdout,
            stderr,
        }
    }

    /// Runs `app` as a client-mode driver (see [`Cluster::spawn_app`]) until it exits.
    pub fn run_app(
        &self,
        app: &str,
        args: &[&str],
        conf: &[(&str, &str)],
        timeout: Duration,
    ) -> AppOutput {
        self.spawn_app(app, args, conf).wait(timeout)
    }
}

impl AppDriver {
    /// Waits for the exit (panics after `timeout`, printing both logs).
    pub fn wait(mut self, timeout: Duration) -> AppOutput {
        let deadline = Instant::now() + timeout;
        let code = loop {
            let Some(child) = self.child.as_mut() else {
                break None;
            };
            if let Ok(Some(st)) = child.try_wait() {
                self.child = None;
                break st.code();
            }
            if Instant::now() > deadline {
                panic!(
                    "{} did not exit within {timeout:?}\n--- stdout\n{}\n--- stderr\n{}",
                    self.name,
                    self.stdout_text(),
                    self.stderr_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        AppOutput {
            code,
            stdout: self.stdout_text(),
            stderr: self.stderr_text(),
        }
    }

    pub fn stdout_text(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits until a line of stderr contains `needle`; returns that line.
    pub fn wait_stderr(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.stderr_text().lines().find(|l| l.contains(needle)) {
                return l.to_owned();
            }
            if Instant::now() > deadline {
                panic!(
                    "{}: no stderr line with {needle:?} within {timeout:?}\n--- stderr\n{}",
                    self.name,
                    self.stderr_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for AppDriver {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- {} stdout ----\n{}\n---- {} stderr ----\n{}",
                self.name,
                self.stdout_text(),
                self.name,
                self.stderr_text()
            );
        }
    }
}

/// Processes whose working directory is inside `dir` (from /proc): executors run in
/// `work-dir/<app-id>/<executor-id>/`, so tests use it to check that none is left behind.
pub fn processes_in(dir: &Path) -> Vec<i32> {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(&dir))
        })
        .collect()
}

/// Figures of a process from `/proc`, for the benchmark binaries. `pid` is a number or
/// `self`.
pub mod procfs {
    use std::fmt::Display;

    /// VmRSS, in KiB.
    pub fn vm_rss_kb(pid: impl Display) -> Result<u64, String> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
        text.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| format!("no VmRSS in /proc/{pid}/status"))
    }

    /// utime + stime of a process (its own threads, not its children), in seconds.
    pub fn cpu_seconds(pid: impl Display) -> Result<f64, String> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
        // The command name (field 2) may hold spaces: count from the last ')'.
        let rest = text
            .rsplit_once(')')
            .map(|(_, r)| r)
            .ok_or_else(|| format!("bad /proc/{pid}/stat"))?;
        let f: Vec<&str> = rest.split_whitespace().collect();
        // rest starts at field 3 (state); utime and stime are fields 14 and 15.
        let tick = |i: usize| -> Result<u64, String> {
            f.get(i)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("bad /proc/{pid}/stat field {}", i + 3))
        };
        let ticks = tick(11)? + tick(12)?;
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if hz <= 0 {
            return Err("sysconf(_SC_CLK_TCK) failed".into());
        }
        Ok(ticks as f64 / hz as f64)
    }
}
