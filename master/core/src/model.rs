//! The master's bookkeeping records (plain data, owned by [`super::MasterState`]).

use std::collections::{BTreeMap, BTreeSet};

use flint_domain::types::*;

/// Identifies one session (a worker's or an application's stream). Assigned by whichever
/// front end carries the session (gRPC today, Spark's RPC later).
pub type ConnId = u64;

pub use flint_domain::time::Now;

#[derive(Clone, Debug)]
pub struct WorkerInfo {
    pub reg: WorkerRegistration,
    pub conn: ConnId,
    pub state: WorkerState,
    pub last_heartbeat_mono: u64,
    pub last_heartbeat_wall: i64,
    pub cores_used: u32,
    pub memory_used_mb: u64,
    pub executors: BTreeSet<(AppId, ExecutorId)>,
    pub drivers: BTreeSet<DriverId>,
}

impl WorkerInfo {
    pub fn cores_free(&self) -> u32 {
        self.reg.cores.saturating_sub(self.cores_used)
    }

    pub fn memory_free_mb(&self) -> u64 {
        self.reg.memory_mb.saturating_sub(self.memory_used_mb)
    }

    pub fn host_port(&self) -> String {
        format!("{}:{}", self.reg.host, self.reg.port)
    }

    /// Gives back what an executor held on this worker; false when it was not here.
    pub fn release_executor(
        &mut self,
        key: &(AppId, ExecutorId),
        cores: u32,
        memory_mb: u64,
    ) -> bool {
        if !self.executors.remove(key) {
            return false;
        }
        self.release(cores, memory_mb);
        true
    }

    /// Gives back what a driver held on this worker; false when it was not here.
    pub fn release_driver(&mut self, id: &DriverId, cores: u32, memory_mb: u64) -> bool {
        if !self.drivers.remove(id) {
            return false;
        }
        self.release(cores, memory_mb);
        true
    }

    fn release(&mut self, cores: u32, memory_mb: u64) {
        self.cores_used = self.cores_used.saturating_sub(cores);
        self.memory_used_mb = self.memory_used_mb.saturating_sub(memory_mb);
    }
}

impl AppInfo {
    /// Takes an executor out of the application's live ones, with the cores it was granted.
    pub fn take_executor(&mut self, id: ExecutorId) -> Option<ExecutorInfo> {
        let e = self.executors.remove(&id)?;
        self.cores_granted = self.cores_granted.saturating_sub(e.cores);
        Some(e)
    }
}

/// Keeps a finished application or driver for the UI, as Spark does: when `cap` is reached,
/// the oldest tenth (at least one) makes room (`spark.deploy.retainedApplications`,
/// `spark.deploy.retainedDrivers`).
pub fn retain_completed<T>(list: &mut std::collections::VecDeque<T>, item: T, cap: usize) {
    let cap = cap.max(1);
    if list.len() >= cap {
        let drop = (cap / 10).max(1).min(list.len());
        list.drain(..drop);
    }
    list.push_back(item);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_drops_the_oldest_tenth() {
        let mut l: std::collections::VecDeque<u32> = (0..20).collect();
        retain_completed(&mut l, 20, 20);
        assert_eq!(l.front(), Some(&2));
        assert_eq!(l.len(), 19);
        let mut one = std::collections::VecDeque::from([1]);
        retain_completed(&mut one, 2, 0);
        assert_eq!(one, [2]);
    }
}

#[derive(Clone, Debug)]
pub struct ExecutorInfo {
    pub id: ExecutorId,
    pub worker_id: WorkerId,
    pub host_port: String,
    pub cores: u32,
    pub memory_mb: u64,
    pub state: ExecutorState,
    pub exit_status: Option<i32>,
    pub message: Option<String>,
    /// When it reported RUNNING (monotonic ms).
    pub running_since_mono: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct AppInfo {
    pub id: AppId,
    pub desc: AppDescription,
    pub driver_url: String,
    pub conn: ConnId,
    pub state: ApplicationState,
    pub start_wall: i64,
    pub registered_mono: u64,
    pub end_wall: Option<i64>,
    pub executors: BTreeMap<ExecutorId, ExecutorInfo>,
    pub removed_executors: Vec<ExecutorInfo>,
    pub next_executor_id: ExecutorId,
    pub cores_granted: u32,
    pub executor_limit: u32,
    pub retry_count: u32,
    /// Milliseconds from registration until every executor asked for so far was RUNNING
    /// (first time that happened), for the metrics.
    pub time_to_running_ms: Option<u64>,
}

impl AppInfo {
    /// Cores the application may still be granted.
    pub fn cores_left(&self, default_cores: u32) -> u32 {
        self.desc
            .max_cores
            .unwrap_or(default_cores)
            .saturating_sub(self.cores_granted)
    }
}

#[derive(Clone, Debug)]
pub struct DriverInfo {
    pub id: DriverId,
    pub desc: DriverDescription,
    pub state: DriverState,
    pub worker: Option<WorkerId>,
    pub worker_host_port: Option<String>,
    pub start_wall: i64,
    pub message: Option<String>,
    pub exit_status: Option<i32>,
    pub relaunched_as: Option<DriverId>,
}
