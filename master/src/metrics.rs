//! The master's `/metrics`: Prometheus (OpenMetrics) text computed from the latest cluster
//! snapshot at scrape time, plus a histogram of the time from application registration to
//! its executors RUNNING, fed by a task that watches the snapshots and observes each
//! application exactly once.
//!
//! Spark's own names (`metrics_master_aliveWorkers_Value{type="gauges"}`, …, as its
//! PrometheusServlet writes them) are exported next to Flint's so existing dashboards work.

use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use flint_domain::types::*;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

/// OpenMetrics text, which Prometheus scrapes natively.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type StateLabel = [(&'static str, &'static str); 1];
type StateFamily = Family<StateLabel, Gauge>;
type FloatGauge = Gauge<f64, AtomicU64>;

/// Buckets (seconds) of the registration → RUNNING histogram: 50 ms to 10 min.
pub const TIME_TO_RUNNING_BUCKETS: [f64; 13] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

struct Gauges {
    registry: Registry,
    status: StateFamily,
    workers: StateFamily,
    apps: StateFamily,
    completed_apps: StateFamily,
    drivers: StateFamily,
    executors: StateFamily,
    cores: Gauge,
    cores_used: Gauge,
    memory: Gauge,
    memory_used: Gauge,
    heartbeat_lag_max: FloatGauge,
    spark: Vec<(&'static str, StateFamily)>,
}

pub struct MasterMetrics {
    gauges: Mutex<Gauges>,
    time_to_running: Histogram,
    observed: Mutex<HashSet<AppId>>,
}

impl Default for MasterMetrics {
    fn default() -> Self {
        Self::new()
    }
}

fn family(registry: &mut Registry, name: &str, help: &str) -> StateFamily {
    let f = StateFamily::default();
    registry.register(name, help, f.clone());
    f
}

fn gauge(registry: &mut Registry, name: &str, help: &str) -> Gauge {
    let g = Gauge::default();
    registry.register(name, help, g.clone());
    g
}

/// Spark's PrometheusServlet names: `metrics_master_<name>_{Number,Value}{type="gauges"}`.
const SPARK_GAUGES: [&str; 4] = ["aliveWorkers", "apps", "waitingApps", "workers"];

impl MasterMetrics {
    pub fn new() -> Self {
        let mut r = Registry::default();
        let status = family(
            &mut r,
            "flint_master_status",
            "1 for the master's current status (ALIVE, STANDBY, RECOVERING, COMPLETING_RECOVERY)",
        );
        let workers = family(&mut r, "flint_master_workers", "Workers by state");
        let apps = family(
            &mut r,
            "flint_master_applications",
            "Active applications by state (WAITING, RUNNING)",
        );
        let completed_apps = family(
            &mut r,
            "flint_master_completed_applications",
            "Retained completed applications by final state",
        );
        let drivers = family(
            &mut r,
            "flint_master_drivers",
            "Drivers (active and retained completed) by state",
        );
        let executors = family(
            &mut r,
            "flint_master_executors",
            "Executors of active applications by state",
        );
        let cores = gauge(&mut r, "flint_master_cores", "Cores of ALIVE workers");
        let cores_used = gauge(
            &mut r,
            "flint_master_cores_used",
            "Cores in use on ALIVE workers",
        );
        let memory = gauge(
            &mut r,
            "flint_master_memory_bytes",
            "Memory of ALIVE workers",
        );
        let memory_used = gauge(
            &mut r,
            "flint_master_memory_used_bytes",
            "Memory in use on ALIVE workers",
        );
        let heartbeat_lag_max = FloatGauge::default();
        r.register(
            "flint_master_worker_heartbeat_lag_max_seconds",
            "Longest time since an ALIVE worker's last heartbeat",
            heartbeat_lag_max.clone(),
        );
        let time_to_running = Histogram::new(TIME_TO_RUNNING_BUCKETS);
        r.register(
            "flint_master_app_time_to_running_seconds",
            "Time from application registration until all its requested executors were RUNNING (each application counted once)",
            time_to_running.clone(),
        );
        let mut spark = Vec::new();
        for name in SPARK_GAUGES {
            for suffix in ["Number", "Value"] {
                let f = family(
                    &mut r,
                    &format!("metrics_master_{name}_{suffix}"),
                    "Spark MasterSource gauge",
                );
                spark.push((name, f));
            }
        }
        Self {
            gauges: Mutex::new(Gauges {
                registry: r,
                status,
                workers,
                apps,
                completed_apps,
                drivers,
                executors,
                cores,
                cores_used,
                memory,
                memory_used,
                heartbeat_lag_max,
                spark,
            }),
            time_to_running,
            observed: Mutex::new(HashSet::new()),
        }
    }

    /// Observes the registration → RUNNING time of every application that has one and was
    /// not observed before. Ids no longer in the snapshot are forgotten, so the set stays as
    /// small as the retained applications.
    pub fn observe_apps(&self, snap: &ClusterSnapshot) {
        let Ok(mut seen) = self.observed.lock() else {
            return;
        };
        let apps = || snap.active_apps.iter().chain(snap.completed_apps.iter());
        for a in apps() {
            if let Some(ms) = a.time_to_running_ms
                && seen.insert(a.id.clone())
            {
                self.time_to_running.observe(ms as f64 / 1000.0);
            }
        }
        if seen.len() > apps().count() {
            let present: HashSet<&AppId> = apps().map(|a| &a.id).collect();
            seen.retain(|id| present.contains(id));
        }
    }

    /// The exposition for this snapshot, `now_ms` being the wall clock (heartbeat lag).
    pub fn render(&self, snap: &ClusterSnapshot, now_ms: i64) -> String {
        self.observe_apps(snap);
        let Ok(g) = self.gauges.lock() else {
            return String::from("# EOF\n");
        };
        fn set_all<T: Copy>(
            f: &StateFamily,
            all: &[T],
            name: impl Fn(T) -> &'static str,
            count: impl Fn(T) -> usize,
        ) {
            f.clear();
            for s in all {
                f.get_or_create(&[("state", name(*s))])
                    .set(count(*s) as i64);
            }
        }
        g.status.clear();
        for s in MasterStatus::ALL {
            g.status
                .get_or_create(&[("status", s.as_str())])
                .set(i64::from(*s == snap.status));
        }
        set_all(&g.workers, WorkerState::ALL, WorkerState::as_str, |s| {
            snap.workers.iter().filter(|w| w.state == s).count()
        });
        set_all(
            &g.apps,
            &[ApplicationState::Waiting, ApplicationState::Running],
            ApplicationState::as_str,
            |s| snap.active_apps.iter().filter(|a| a.state == s).count(),
        );
        set_all(
            &g.completed_apps,
            &[
                ApplicationState::Finished,
                ApplicationState::Failed,
                ApplicationState::Killed,
            ],
            ApplicationState::as_str,
            |s| snap.completed_apps.iter().filter(|a| a.state == s).count(),
        );
        set_all(&g.drivers, DriverState::ALL, DriverState::as_str, |s| {
            snap.active_drivers
                .iter()
                .chain(snap.completed_drivers.iter())
                .filter(|d| d.state == s)
                .count()
        });
        set_all(
            &g.executors,
            ExecutorState::ALL,
            ExecutorState::as_str,
            |s| {
                snap.active_apps
                    .iter()
                    .flat_map(|a| a.executors.iter())
                    .filter(|e| e.state == s)
                    .count()
            },
        );
        let alive: Vec<&WorkerView> = snap.alive_workers().collect();
        g.cores
            .set(alive.iter().map(|w| i64::from(w.cores)).sum::<i64>());
        g.cores_used
            .set(alive.iter().map(|w| i64::from(w.cores_used)).sum::<i64>());
        let mib = |mb: u64| (mb as i64).saturating_mul(1024 * 1024);
        g.memory
            .set(alive.iter().map(|w| mib(w.memory_mb)).sum::<i64>());
        g.memory_used
            .set(alive.iter().map(|w| mib(w.memory_used_mb)).sum::<i64>());
        let lag_ms = alive
            .iter()
            .map(|w| now_ms.saturating_sub(w.last_heartbeat_ms).max(0))
            .max()
            .unwrap_or(0);
        g.heartbeat_lag_max.set(lag_ms as f64 / 1000.0);
        let waiting = snap
            .active_apps
            .iter()
            .filter(|a| a.state == ApplicationState::Waiting)
            .count();
        for (name, f) in &g.spark {
            let v = match *name {
                "aliveWorkers" => alive.len(),
                "apps" => snap.active_apps.len(),
                "waitingApps" => waiting,
                _ => snap.workers.len(),
            };
            f.get_or_create(&[("type", "gauges")]).set(v as i64);
        }
        let mut out = String::with_capacity(8 * 1024);
        if encode(&mut out, &g.registry).is_err() {
            return String::from("# EOF\n");
        }
        out
    }
}

/// Observes applications as snapshots arrive, so none is missed even when nobody scrapes.
pub async fn observe(
    metrics: Arc<MasterMetrics>,
    mut snapshots: watch::Receiver<Arc<ClusterSnapshot>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let snap = snapshots.borrow_and_update().clone();
        metrics.observe_apps(&snap);
        tokio::select! {
            r = snapshots.changed() => if r.is_err() { break },
            _ = crate::web::stopped(&mut stop) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn app(id: &str, state: ApplicationState, ttr: Option<u64>) -> AppView {
        AppView {
            id: AppId(id.into()),
            desc: AppDescription {
                name: "a".into(),
                user: "u".into(),
                cores_per_executor: None,
                memory_per_executor_mb: 512,
                max_cores: None,
                command: CommandSpec::default(),
                initial_executor_limit: None,
                app_ui_url: String::new(),
            },
            state,
            start_time_ms: 0,
            end_time_ms: None,
            cores_granted: 0,
            executor_limit: 0,
            retry_count: 0,
            executors: vec![],
            removed_executors: vec![],
            waiting_reason: String::new(),
            driver_url: String::new(),
            time_to_running_ms: ttr,
        }
    }

    fn snapshot(active: Vec<AppView>, completed: Vec<AppView>) -> ClusterSnapshot {
        ClusterSnapshot {
            master_url: "spark://m:7077".into(),
            status: MasterStatus::Alive,
            webui_url: "http://m:8080".into(),
            workers: vec![WorkerView {
                id: WorkerId("worker-1".into()),
                host: "h".into(),
                port: 1,
                webui_url: "http://h:8081".into(),
                cores: 4,
                cores_used: 1,
                memory_mb: 1024,
                memory_used_mb: 512,
                state: WorkerState::Alive,
                last_heartbeat_ms: 1_000,
                executors: vec![],
                driver_ids: vec![],
            }],
            active_apps: active,
            completed_apps: completed,
            active_drivers: vec![],
            completed_drivers: vec![],
        }
    }

    #[test]
    fn each_application_is_observed_once() {
        let m = MasterMetrics::new();
        let s1 = snapshot(
            vec![
                app("app-1", ApplicationState::Running, Some(1500)),
                app("app-2", ApplicationState::Waiting, None),
            ],
            vec![],
        );
        m.observe_apps(&s1);
        m.observe_apps(&s1);
        let text = m.render(&s1, 3_500);
        assert!(
            text.contains("flint_master_app_time_to_running_seconds_count 1"),
            "{text}"
        );
        assert!(text.contains("flint_master_app_time_to_running_seconds_sum 1.5"));
        // app-1 completes, app-2 runs: one more observation, not two.
        let s2 = snapshot(
            vec![app("app-2", ApplicationState::Running, Some(200))],
            vec![app("app-1", ApplicationState::Finished, Some(1500))],
        );
        let text = m.render(&s2, 3_500);
        assert!(text.contains("flint_master_app_time_to_running_seconds_count 2"));
        for line in [
            "flint_master_applications{state=\"RUNNING\"} 1",
            "flint_master_applications{state=\"WAITING\"} 0",
            "flint_master_completed_applications{state=\"FINISHED\"} 1",
            "flint_master_workers{state=\"ALIVE\"} 1",
            "flint_master_workers{state=\"DEAD\"} 0",
            "flint_master_cores 4",
            "flint_master_cores_used 1",
            "flint_master_memory_bytes 1073741824",
            "flint_master_memory_used_bytes 536870912",
            "flint_master_worker_heartbeat_lag_max_seconds 2.5",
            "flint_master_status{status=\"ALIVE\"} 1",
            "flint_master_status{status=\"STANDBY\"} 0",
            "metrics_master_aliveWorkers_Value{type=\"gauges\"} 1",
            "metrics_master_apps_Number{type=\"gauges\"} 1",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
        // Forgotten ids do not grow the set without bound.
        m.observe_apps(&snapshot(vec![], vec![]));
        assert!(m.observed.lock().expect("lock").is_empty());
    }
}
