//! What the worker shows about itself (its UI, `/json`, `/metrics`, readiness): the read
//! model the core keeps up to date and the shell publishes.

use std::path::PathBuf;

use flint_domain::types::*;

/// One executor as the worker's UI shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutorStatus {
    pub app_id: AppId,
    pub executor_id: ExecutorId,
    pub app_name: String,
    pub user: String,
    pub cores: u32,
    pub memory_mb: u64,
    pub state: ExecutorState,
    pub exit_status: Option<i32>,
    pub message: Option<String>,
    /// Program and arguments, placeholders not substituted.
    pub command: String,
    pub start_ms: i64,
    pub end_ms: Option<i64>,
}

/// One driver as the worker's UI shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriverStatus {
    pub driver_id: DriverId,
    pub name: String,
    pub cores: u32,
    pub memory_mb: u64,
    pub state: DriverState,
    pub exit_status: Option<i32>,
    pub message: Option<String>,
    pub app_resource: String,
    pub start_ms: i64,
    pub end_ms: Option<i64>,
}

/// What the worker publishes about itself.
#[derive(Clone, Debug, Default)]
pub struct WorkerStatus {
    pub worker_id: String,
    pub host: String,
    pub port: u16,
    pub webui_url: String,
    pub cores: u32,
    pub memory_mb: u64,
    pub work_dir: PathBuf,
    pub registered: bool,
    pub master_url: Option<String>,
    pub master_webui_url: Option<String>,
    pub executors: Vec<ExecutorStatus>,
    pub finished_executors: Vec<ExecutorStatus>,
    pub drivers: Vec<DriverStatus>,
    pub finished_drivers: Vec<DriverStatus>,
}

/// `spark.worker.ui.retainedExecutors` / `retainedDrivers` (Spark's default, 1000).
pub const RETAINED: usize = 1000;

/// Appends `item` to a list of finished things, dropping the oldest past `cap`.
pub fn retain<T>(list: &mut Vec<T>, item: T, cap: usize) {
    if cap == 0 {
        return;
    }
    if list.len() >= cap {
        let excess = list.len() + 1 - cap;
        list.drain(..excess);
    }
    list.push(item);
}

impl WorkerStatus {
    pub fn cores_used(&self) -> u32 {
        self.executors.iter().map(|e| e.cores).sum::<u32>()
            + self.drivers.iter().map(|d| d.cores).sum::<u32>()
    }

    pub fn memory_used_mb(&self) -> u64 {
        self.executors.iter().map(|e| e.memory_mb).sum::<u64>()
            + self.drivers.iter().map(|d| d.memory_mb).sum::<u64>()
    }

    pub(crate) fn executor_event(
        &mut self,
        key: &(AppId, ExecutorId),
        state: ExecutorState,
        message: &Option<String>,
        exit_status: Option<i32>,
        wall_ms: i64,
    ) {
        let Some(pos) = self
            .executors
            .iter()
            .position(|e| e.app_id == key.0 && e.executor_id == key.1)
        else {
            return;
        };
        let e = &mut self.executors[pos];
        e.state = state;
        e.message = message.clone();
        e.exit_status = exit_status;
        if state.is_finished() {
            let mut e = self.executors.remove(pos);
            e.end_ms = Some(wall_ms);
            retain(&mut self.finished_executors, e, RETAINED);
        }
    }

    pub(crate) fn driver_event(
        &mut self,
        id: &DriverId,
        state: DriverState,
        message: &Option<String>,
        exit_status: Option<i32>,
        wall_ms: i64,
    ) {
        let Some(pos) = self.drivers.iter().position(|d| &d.driver_id == id) else {
            return;
        };
        let d = &mut self.drivers[pos];
        d.state = state;
        d.message = message.clone();
        d.exit_status = exit_status;
        if state.is_finished() {
            let mut d = self.drivers.remove(pos);
            d.end_ms = Some(wall_ms);
            retain(&mut self.finished_drivers, d, RETAINED);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retain_keeps_the_newest() {
        let mut v = vec![1, 2, 3];
        retain(&mut v, 4, 3);
        assert_eq!(v, [2, 3, 4]);
        retain(&mut v, 5, 2);
        assert_eq!(v, [4, 5]);
        retain(&mut v, 6, 0);
        assert_eq!(v, [4, 5]);
    }
}
