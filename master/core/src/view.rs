//! Read-only views of the core's records, for ClusterState, `/json` and the UI.

use flint_domain::types::*;

use super::MasterState;
use super::model::{AppInfo, DriverInfo, ExecutorInfo, WorkerInfo};

fn executor_view(app_id: &AppId, e: &ExecutorInfo) -> ExecutorView {
    ExecutorView {
        app_id: app_id.clone(),
        executor_id: e.id,
        worker_id: e.worker_id.clone(),
        host_port: e.host_port.clone(),
        cores: e.cores,
        memory_mb: e.memory_mb,
        state: e.state,
        exit_status: e.exit_status,
        message: e.message.clone(),
    }
}

fn worker_view(s: &MasterState, w: &WorkerInfo) -> WorkerView {
    WorkerView {
        id: w.reg.id.clone(),
        host: w.reg.host.clone(),
        port: w.reg.port,
        webui_url: w.reg.webui_url.clone(),
        cores: w.reg.cores,
        cores_used: w.cores_used,
        memory_mb: w.reg.memory_mb,
        memory_used_mb: w.memory_used_mb,
        state: w.state,
        last_heartbeat_ms: w.last_heartbeat_wall,
        executors: w
            .executors
            .iter()
            .filter_map(|(a, e)| {
                s.apps
                    .get(a)
                    .and_then(|app| app.executors.get(e))
                    .map(|x| executor_view(a, x))
            })
            .collect(),
        driver_ids: w.drivers.iter().cloned().collect(),
    }
}

/// Why an application has no executors yet, in words an operator can act on.
fn waiting_reason(s: &MasterState, a: &AppInfo) -> String {
    if a.state != ApplicationState::Waiting {
        return String::new();
    }
    let alive: Vec<&WorkerInfo> = s
        .workers
        .values()
        .filter(|w| w.state == WorkerState::Alive)
        .collect();
    let mem = a.desc.memory_per_executor_mb;
    let cores = a.desc.cores_per_executor.unwrap_or(1);
    if alive.is_empty() {
        return "no alive workers".into();
    }
    let max_mem = alive.iter().map(|w| w.reg.memory_mb).max().unwrap_or(0);
    let max_cores = alive.iter().map(|w| w.reg.cores).max().unwrap_or(0);
    if max_mem < mem || max_cores < cores {
        return format!(
            "requires more resource than any of Workers could have: each executor needs {cores} core(s) and {mem} MB, the largest worker has {max_cores} core(s) and {max_mem} MB"
        );
    }
    if a.executor_limit == 0 {
        return "executor limit is 0: no executors requested yet".into();
    }
    if a.cores_left(s.cfg.default_cores) < cores {
        return "spark.cores.max reached".into();
    }
    "waiting for free cores and memory on the workers".into()
}

fn app_view(s: &MasterState, a: &AppInfo) -> AppView {
    AppView {
        id: a.id.clone(),
        desc: a.desc.clone(),
        state: a.state,
        start_time_ms: a.start_wall,
        end_time_ms: a.end_wall,
        cores_granted: a.cores_granted,
        executor_limit: a.executor_limit,
        retry_count: a.retry_count,
        executors: a
            .executors
            .values()
            .map(|e| executor_view(&a.id, e))
            .collect(),
        removed_executors: a
            .removed_executors
            .iter()
            .map(|e| executor_view(&a.id, e))
            .collect(),
        waiting_reason: waiting_reason(s, a),
        driver_url: a.driver_url.clone(),
        time_to_running_ms: a.time_to_running_ms,
    }
}

pub(super) fn driver_view(d: &DriverInfo) -> DriverView {
    DriverView {
        id: d.id.clone(),
        desc: d.desc.clone(),
        state: d.state,
        worker_id: d.worker.clone(),
        worker_host_port: d.worker_host_port.clone(),
        start_time_ms: d.start_wall,
        message: d.message.clone(),
        exit_status: d.exit_status,
        relaunched_as: d.relaunched_as.clone(),
    }
}

pub(super) fn snapshot(s: &MasterState) -> ClusterSnapshot {
    let mut active_apps: Vec<AppView> = s.apps.values().map(|a| app_view(s, a)).collect();
    active_apps.sort_by(|a, b| a.start_time_ms.cmp(&b.start_time_ms).then(a.id.cmp(&b.id)));
    ClusterSnapshot {
        master_url: s.cfg.master_url.clone(),
        status: s.status,
        webui_url: s.cfg.webui_url.clone(),
        workers: s.workers.values().map(|w| worker_view(s, w)).collect(),
        active_apps,
        completed_apps: s.completed_apps.iter().map(|a| app_view(s, a)).collect(),
        active_drivers: s.drivers.values().map(driver_view).collect(),
        completed_drivers: s.completed_drivers.iter().map(driver_view).collect(),
    }
}
