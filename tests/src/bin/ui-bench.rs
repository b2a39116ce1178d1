//! UI benchmark (not a test): render times of the master's `/` and `/json` for a large
//! cluster, and whether slow UI clients delay scheduling on a real cluster.
//!
//! ```sh
//! cargo build --release --workspace --bins
//! target/release/ui-bench            # --workers 1000 --apps 1000 --iterations 50
//! ```

use std::time::{Duration, Instant};

use flint_domain::types::*;
use flint_master::web::{WebConfig, render_master_json, render_master_page};
use flint_tests::*;
use tokio::io::AsyncWriteExt;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn exec(app: &AppId, id: u32, worker: &WorkerId, state: ExecutorState) -> ExecutorView {
    ExecutorView {
        app_id: app.clone(),
        executor_id: id,
        worker_id: worker.clone(),
        host_port: "10.0.0.1:7078".into(),
        cores: 2,
        memory_mb: 2048,
        state,
        exit_status: None,
        message: None,
    }
}

fn big_snapshot(n_workers: usize, n_apps: usize) -> ClusterSnapshot {
    let t0 = 1_795_320_000_000i64;
    let workers: Vec<WorkerView> = (0..n_workers)
        .map(|i| WorkerView {
            id: WorkerId(format!(
                "worker-20261122040251-10.0.{}.{}-7078",
                i / 250,
                i % 250
            )),
            host: format!("10.0.{}.{}", i / 250, i % 250),
            port: 7078,
            webui_url: format!("http://10.0.{}.{}:8081", i / 250, i % 250),
            cores: 16,
            cores_used: (i % 17) as u32,
            memory_mb: 65536,
            memory_used_mb: (i % 17) as u64 * 2048,
            state: if i % 50 == 0 {
                WorkerState::Dead
            } else {
                WorkerState::Alive
            },
            last_heartbeat_ms: t0 - (i as i64 % 15_000),
            executors: vec![],
            driver_ids: vec![],
        })
        .collect();
    let mk_app = |i: usize, done: bool| {
        let id = AppId(format!("app-20261122040305-{i:04}"));
        let w = &workers[i % n_workers.max(1)].id;
        AppView {
            id: id.clone(),
            desc: AppDescription {
                name: format!("nightly-etl-{i} <&> \"quoted\""),
                user: "spark".into(),
                cores_per_executor: Some(2),
                memory_per_executor_mb: 2048,
                max_cores: Some(8),
                command: CommandSpec::default(),
                initial_executor_limit: None,
                app_ui_url: "http://driver:4040".into(),
            },
            state: if done {
                ApplicationState::Finished
            } else {
                ApplicationState::Running
            },
            start_time_ms: t0 + i as i64 * 1000,
            end_time_ms: done.then_some(t0 + i as i64 * 1000 + 60_000),
            cores_granted: 8,
            executor_limit: 4,
            retry_count: 0,
            executors: if done {
                vec![]
            } else {
                (0..4)
                    .map(|e| exec(&id, e, w, ExecutorState::Running))
                    .collect()
            },
            removed_executors: if done {
                (0..4)
                    .map(|e| exec(&id, e, w, ExecutorState::Killed))
                    .collect()
            } else {
                vec![]
            },
            waiting_reason: String::new(),
            driver_url: String::new(),
            time_to_running_ms: Some(1200),
        }
    };
    ClusterSnapshot {
        master_url: "spark://spark-master:7077".into(),
        status: MasterStatus::Alive,
        webui_url: "http://spark-master:8080".into(),
        active_apps: (0..50).map(|i| mk_app(n_apps + i, false)).collect(),
        completed_apps: (0..n_apps).map(|i| mk_app(i, true)).collect(),
        active_drivers: vec![],
        completed_drivers: vec![],
        workers,
    }
}

fn stats(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    format!(
        "min {:.2} ms, median {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        p(0.0),
        p(0.5),
        p(0.95),
        p(1.0)
    )
}

fn bench_render(workers: usize, apps: usize, iterations: usize) {
    let snap = big_snapshot(workers, apps);
    let cfg = WebConfig::default();
    let now = 1_795_330_000_000;
    println!(
        "== render, {workers} workers, {apps} completed + 50 running applications, {iterations} iterations"
    );
    for (name, f) in [
        (
            "/",
            &(|| render_master_page(&snap, &cfg, now)) as &dyn Fn() -> String,
        ),
        ("/json", &|| render_master_json(&snap, now)),
    ] {
        let size = f().len();
        let times: Vec<f64> = (0..iterations)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        println!("{name:6} {size:>9} bytes  {}", stats(times));
    }
}

/// Registration → every executor RUNNING, as the client sees it.
async fn time_to_running(c: &Cluster, n: usize) -> (Duration, Option<u64>) {
    let mut client = c.client().await;
    let t = Instant::now();
    let session = client
        .register_application(
            app(
                &format!("probe-{n}"),
                Some(1),
                128,
                Some(4),
                shell("exec sleep 1000"),
            ),
            "",
        )
        .await
        .expect("register");
    let id = session.app_id().clone();
    let s = c
        .wait_state("executors RUNNING", |s| {
            s.app(&id).is_some_and(|a| {
                a.executors.len() == 4
                    && a.executors
                        .iter()
                        .all(|e| e.state == ExecutorState::Running)
            })
        })
        .await;
    let took = t.elapsed();
    let master = s.app(&id).and_then(|a| a.time_to_running_ms);
    session.unregister().await.expect("unregister");
    c.wait_state("cores free", |s| {
        s.workers.iter().all(|w| w.cores_used == 0)
    })
    .await;
    (took, master)
}

async fn bench_slow_clients(rounds: usize, stuck: usize) {
    println!(
        "== scheduling with slow UI clients ({rounds} probe apps per scenario, 4 executors each)"
    );
    let mut c = Cluster::master(&[]);
    for _ in 0..2 {
        c.add_worker(WorkerSpec {
            cores: 2,
            memory: "2g",
        });
    }
    let ui = c.webui_url();
    let auth = ui.trim_start_matches("http://").to_owned();
    let report = |label: &str, v: Vec<(Duration, Option<u64>)>| {
        let client: Vec<f64> = v.iter().map(|x| x.0.as_secs_f64() * 1000.0).collect();
        let master: Vec<f64> = v.iter().filter_map(|x| x.1.map(|m| m as f64)).collect();
        println!("{label:44} client-observed: {}", stats(client));
        println!("{:44} master time_to_running: {}", "", stats(master));
    };
    let mut base = Vec::new();
    for n in 0..rounds {
        base.push(time_to_running(&c, n).await);
    }
    report("no UI clients", base);

    // Stuck connections: half never finish their request, half pipeline requests and
    // never read the answers.
    let mut held = Vec::new();
    for i in 0..stuck {
        let Ok(mut s) = tokio::net::TcpStream::connect(&auth).await else {
            break;
        };
        if i % 2 == 0 {
            let _ = s.write_all(b"GET /json HTTP/1.1\r\nHost: x\r\n").await;
        } else {
            for _ in 0..50 {
                let _ = s
                    .write_all(
                        b"GET /json HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
                    )
                    .await;
            }
        }
        held.push(s);
    }
    let mut v = Vec::new();
    for n in 0..rounds {
        v.push(time_to_running(&c, 100 + n).await);
    }
    report(&format!("{} stuck UI connections", held.len()), v);
    drop(held);

    // Busy readers: 4 clients fetching /json and / back to back.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let fetched = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut busy = Vec::new();
    for i in 0..4 {
        let (stop, fetched, ui) = (stop.clone(), fetched.clone(), ui.clone());
        busy.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let path = if i % 2 == 0 { "/json" } else { "/" };
                let _ = http_get(&format!("{ui}{path}")).await;
                fetched.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    let t = Instant::now();
    let mut v = Vec::new();
    for n in 0..rounds {
        v.push(time_to_running(&c, 200 + n).await);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let pages = fetched.load(std::sync::atomic::Ordering::Relaxed);
    for b in busy {
        let _ = b.await;
    }
    report(
        &format!(
            "4 busy readers, no stuck ones ({:.0} pages/s)",
            pages as f64 / t.elapsed().as_secs_f64()
        ),
        v,
    );
}

#[tokio::main]
async fn main() {
    let workers = arg("--workers", 1000);
    let apps = arg("--apps", 1000);
    bench_render(workers, apps, arg("--iterations", 50));
    if arg("--skip-cluster", 0) == 0 {
        bench_slow_clients(arg("--rounds", 5), arg("--stuck", 1000)).await;
    }
}
