//! `submit-bench`: issue 3's figures on a local cluster of release binaries (not a test).
//!
//! ```text
//! cargo build --release --workspace --bins
//! target/release/submit-bench [--rounds 5] [--slices 1000]
//! ```
//!
//! * `flint-submit` launch → first executor RUNNING (client mode, `pi 4`), first run (the
//!   binary is shipped and fetched) and the following ones (cached);
//! * the same in cluster mode (driver placed on a worker first);
//! * wall time of `pi <slices>` on 2 workers × 2 cores against the same computation in
//!   one thread of this process.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flint_client::MasterClient;
use flint_domain::types::*;
use flint_tests::{bin, field};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_line(log: &std::path::Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(t) = std::fs::read_to_string(log)
            && let Some(l) = t.lines().find(|l| l.contains(needle))
        {
            return l.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no '{needle}' in {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn spawn(cmd: &mut Command, log: &std::path::Path) -> Killed {
    let f = std::fs::File::create(log).expect("log");
    let e = f.try_clone().expect("log");
    Killed(
        cmd.stdout(f)
            .stderr(e)
            .stdin(Stdio::null())
            .env("RUST_LOG", "warn,flint_master=info,flint_worker=info")
            .spawn()
            .expect("spawn"),
    )
}

/// The pi example's computation, in one thread here.
fn pi_single_process(slices: u64) -> f64 {
    const POINTS: u64 = 100_000;
    let mut count = 0u64;
    for index in 0..slices {
        let mut rng = fastrand::Rng::with_seed(0x5eed_0000 + index);
        for _ in 0..POINTS {
            let x = rng.f64() * 2.0 - 1.0;
            let y = rng.f64() * 2.0 - 1.0;
            if x * x + y * y <= 1.0 {
                count += 1;
            }
        }
    }
    4.0 * count as f64 / (POINTS * slices) as f64
}

async fn first_running_after(client: &mut MasterClient, known: usize, start: Instant) -> Duration {
    loop {
        if let Ok(s) = client.cluster_state().await {
            let apps: Vec<&AppView> = s
                .active_apps
                .iter()
                .chain(s.completed_apps.iter())
                .collect();
            if apps.len() > known
                && apps.iter().skip(known).any(|a| {
                    a.executors
                        .iter()
                        .chain(a.removed_executors.iter())
                        .any(|e| e.state == ExecutorState::Running || e.state.is_finished())
                })
            {
                return start.elapsed();
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no executor RUNNING"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn app_count(s: &ClusterSnapshot) -> usize {
    s.active_apps.len() + s.completed_apps.len()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let mut rounds = 5usize;
    let mut slices = 1000u64;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rounds" => rounds = it.next().and_then(|v| v.parse().ok()).expect("--rounds N"),
            "--slices" => slices = it.next().and_then(|v| v.parse().ok()).expect("--slices N"),
            other => panic!("unknown argument {other}"),
        }
    }
    let dir = tempfile::Builder::new()
        .prefix("submit-bench-")
        .tempdir()
        .expect("tmp");
    let d = dir.path();
    let _master = spawn(
        Command::new(bin("flint-master"))
            .args(["--host", "127.0.0.1", "--port", "0", "--webui-port", "0"])
            .arg("--properties-file")
            .arg({
                let p = d.join("m.conf");
                std::fs::write(
                    &p,
                    format!("spark.master.artifacts.dir {}\n", d.join("art").display()),
                )
                .expect("conf");
                p
            }),
        &d.join("master.log"),
    );
    let url = field(
        &wait_line(&d.join("master.log"), "Starting Flint master"),
        "master_url",
    )
    .expect("url");
    let mut workers = Vec::new();
    for i in 0..2 {
        let log = d.join(format!("worker-{i}.log"));
        workers.push(spawn(
            Command::new(bin("flint-worker"))
                .arg(&url)
                .args([
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--webui-port",
                    "0",
                    "--cores",
                    "2",
                    "--memory",
                    "4g",
                ])
                .arg("--work-dir")
                .arg(d.join(format!("w{i}"))),
            &log,
        ));
        wait_line(&log, "Successfully registered");
    }
    let mut client = MasterClient::connect(&url).await.expect("client");
    let pi = bin("pi");
    let pi = pi.to_str().expect("path");
    let submit = |extra: &[&str], pi_args: &[&str]| {
        let mut c = Command::new(bin("flint-submit"));
        c.args([
            "--master",
            &url,
            "--executor-memory",
            "512m",
            "--conf",
            "spark.driver.host=127.0.0.1",
        ])
        .args(extra)
        .arg(pi)
        .args(pi_args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
        c
    };

    for (mode, extra) in [
        ("client", vec![]),
        ("cluster", vec!["--deploy-mode", "cluster", "--wait"]),
    ] {
        let mut times = Vec::new();
        for round in 0..rounds {
            let known = app_count(&client.cluster_state().await.expect("state"));
            let start = Instant::now();
            let child = submit(&extra, &["4"]).spawn().expect("flint-submit");
            let t = first_running_after(&mut client, known, start).await;
            let out = child.wait_with_output().expect("wait");
            assert!(out.status.success(), "pi failed");
            let ms = t.as_secs_f64() * 1000.0;
            println!(
                "{mode} mode round {round}: flint-submit -> first executor RUNNING {ms:.1} ms"
            );
            times.push(ms);
        }
        let warm: Vec<f64> = times[1..].to_vec();
        println!(
            "{mode} mode: first run {:.1} ms (binary shipped and fetched), median of the rest {:.1} ms",
            times[0],
            median(warm)
        );
    }

    let start = Instant::now();
    let out = submit(&[], &[&slices.to_string()]).output().expect("pi");
    let cluster = start.elapsed();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("Pi is roughly"))
        .unwrap_or("(no result)")
        .to_owned();
    let start = Instant::now();
    let single = pi_single_process(slices);
    let local = start.elapsed();
    println!(
        "pi {slices} on 2 workers x 2 cores (flint-submit, client mode): {:.2} s — {line}",
        cluster.as_secs_f64()
    );
    println!(
        "same computation in one thread here: {:.2} s — Pi is roughly {single}",
        local.as_secs_f64()
    );
    println!(
        "speed-up {:.2}x",
        local.as_secs_f64() / cluster.as_secs_f64()
    );
}
