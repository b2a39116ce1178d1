//! The master's `/json`, field for field as Spark's `JsonProtocol.writeMasterState`
//! (struct fields are serialized in declaration order, which is Spark's order).

use flint_domain::ids::java_date;
use flint_domain::types::*;
use flint_spark_proto::rest::to_spark_json;
use serde::Serialize;

/// Flint has no custom resources (GPUs…): Spark's resource maps are always empty.
#[derive(Serialize)]
pub struct Empty {}

#[derive(Serialize)]
pub struct WorkerJson<'a> {
    pub id: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub webuiaddress: &'a str,
    pub cores: u32,
    pub coresused: u32,
    pub coresfree: u32,
    pub memory: u64,
    pub memoryused: u64,
    pub memoryfree: u64,
    pub resources: Empty,
    pub resourcesused: Empty,
    pub resourcesfree: Empty,
    pub state: &'static str,
    pub lastheartbeat: i64,
}

#[derive(Serialize)]
pub struct AppJson<'a> {
    pub id: &'a str,
    pub starttime: i64,
    pub name: &'a str,
    pub cores: u32,
    pub user: &'a str,
    pub memoryperexecutor: u64,
    pub memoryperslave: u64,
    pub resourcesperexecutor: [Empty; 0],
    pub resourcesperslave: [Empty; 0],
    pub submitdate: String,
    pub state: &'static str,
    pub duration: i64,
}

#[derive(Serialize)]
pub struct DriverJson<'a> {
    pub id: &'a str,
    /// A string in Spark (unlike the application's).
    pub starttime: String,
    pub state: &'static str,
    pub cores: u32,
    pub memory: u64,
    pub resources: Empty,
    pub submitdate: String,
    pub worker: &'a str,
    pub mainclass: &'a str,
}

#[derive(Serialize)]
pub struct MasterJson<'a> {
    pub url: &'a str,
    pub workers: Vec<WorkerJson<'a>>,
    pub aliveworkers: usize,
    pub cores: u64,
    pub coresused: u64,
    pub memory: u64,
    pub memoryused: u64,
    pub resources: Vec<Empty>,
    pub resourcesused: Vec<Empty>,
    pub activeapps: Vec<AppJson<'a>>,
    pub completedapps: Vec<AppJson<'a>>,
    pub activedrivers: Vec<DriverJson<'a>>,
    pub completeddrivers: Vec<DriverJson<'a>>,
    pub status: &'static str,
}

pub use flint_spark_proto::command::DRIVER_WRAPPER;

/// Spark shows `command.arguments(2)`, the main class given to DriverWrapper. A Flint driver
/// with another command shows its name.
pub fn main_class(d: &DriverDescription) -> &str {
    d.command
        .spark_jvm()
        .filter(|j| j.main_class == DRIVER_WRAPPER)
        .and_then(|_| d.command.args.get(2))
        .map(String::as_str)
        .unwrap_or(&d.name)
}

fn worker(w: &WorkerView) -> WorkerJson<'_> {
    WorkerJson {
        id: w.id.as_str(),
        host: &w.host,
        port: w.port,
        webuiaddress: &w.webui_url,
        cores: w.cores,
        coresused: w.cores_used,
        coresfree: w.cores.saturating_sub(w.cores_used),
        memory: w.memory_mb,
        memoryused: w.memory_used_mb,
        memoryfree: w.memory_mb.saturating_sub(w.memory_used_mb),
        resources: Empty {},
        resourcesused: Empty {},
        resourcesfree: Empty {},
        state: w.state.as_str(),
        lastheartbeat: w.last_heartbeat_ms,
    }
}

fn app(a: &AppView, now_ms: i64) -> AppJson<'_> {
    AppJson {
        id: a.id.as_str(),
        starttime: a.start_time_ms,
        name: &a.desc.name,
        cores: a.cores_granted,
        user: &a.desc.user,
        memoryperexecutor: a.desc.memory_per_executor_mb,
        memoryperslave: a.desc.memory_per_executor_mb,
        resourcesperexecutor: [],
        resourcesperslave: [],
        submitdate: java_date(a.start_time_ms),
        state: a.state.as_str(),
        duration: a.end_time_ms.unwrap_or(now_ms) - a.start_time_ms,
    }
}

fn driver(d: &DriverView) -> DriverJson<'_> {
    DriverJson {
        id: d.id.as_str(),
        starttime: d.start_time_ms.to_string(),
        state: d.state.as_str(),
        cores: d.desc.cores,
        memory: d.desc.memory_mb,
        resources: Empty {},
        submitdate: java_date(d.start_time_ms),
        worker: d.worker_id.as_ref().map(|w| w.as_str()).unwrap_or("None"),
        mainclass: main_class(&d.desc),
    }
}

pub fn master_json(s: &ClusterSnapshot, now_ms: i64) -> MasterJson<'_> {
    let alive: Vec<&WorkerView> = s.alive_workers().collect();
    MasterJson {
        url: &s.master_url,
        workers: s.workers.iter().map(worker).collect(),
        aliveworkers: alive.len(),
        cores: alive.iter().map(|w| u64::from(w.cores)).sum(),
        coresused: alive.iter().map(|w| u64::from(w.cores_used)).sum(),
        memory: alive.iter().map(|w| w.memory_mb).sum(),
        memoryused: alive.iter().map(|w| w.memory_used_mb).sum(),
        resources: alive.iter().map(|_| Empty {}).collect(),
        resourcesused: alive.iter().map(|_| Empty {}).collect(),
        activeapps: s.active_apps.iter().map(|a| app(a, now_ms)).collect(),
        completedapps: s.completed_apps.iter().map(|a| app(a, now_ms)).collect(),
        activedrivers: s.active_drivers.iter().map(driver).collect(),
        completeddrivers: s.completed_drivers.iter().map(driver).collect(),
        status: s.status.as_str(),
    }
}

/// The body of `GET /json/`, in Spark's (Jackson's) layout.
pub fn render_master_json(s: &ClusterSnapshot, now_ms: i64) -> String {
    to_spark_json(&master_json(s, now_ms))
}
