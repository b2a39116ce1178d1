//! The runtime's own view of the driver <-> executor protocol (`proto/protos/driver.proto`).
//! [`super::convert`] is the only place that maps these to and from the generated types.

use flint_domain::types::{AppId, ExecutorId};

/// Identifies a task (one partition of one stage) for the driver's whole life.
pub type TaskId = u64;
/// One stage per job; stage ids count up from 0 like Spark's.
pub type StageId = u32;

/// An executor's first message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutorRegistration {
    pub app_id: AppId,
    pub executor_id: ExecutorId,
    pub cores: u32,
    pub host: String,
    pub pid: u32,
}

/// The outcome of one task attempt, as an executor reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskReport {
    pub task_id: TaskId,
    pub attempt: u32,
    pub outcome: Result<Vec<u8>, String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecutorMessage {
    Register(ExecutorRegistration),
    TaskFinished(TaskReport),
}

/// One task attempt to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskLaunch {
    pub task_id: TaskId,
    pub attempt: u32,
    pub task_name: String,
    pub stage_id: StageId,
    pub partition: u32,
    pub payload: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DriverMessage {
    Registered { task_cpus: u32 },
    Rejected { message: String },
    Launch(TaskLaunch),
    Stop { reason: String },
}
