//! The one place where the driver protocol's generated types (`flint_proto::pb_driver`) are
//! converted to and from the runtime's types ([`super::message`]). Malformed input from the
//! network becomes a [`ProtocolError`], never a panic.

use flint_domain::types::AppId;
use flint_proto::pb_driver as pb;

use super::message::*;

/// A message from the other side that does not follow `driver.proto`'s rules.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("missing field {0}")]
    Missing(&'static str),
    #[error("{field} out of range: {value}")]
    OutOfRange { field: &'static str, value: i64 },
    #[error("{0} must not be empty")]
    Empty(&'static str),
}

fn non_negative(field: &'static str, v: i32) -> Result<u32, ProtocolError> {
    u32::try_from(v).map_err(|_| ProtocolError::OutOfRange {
        field,
        value: i64::from(v),
    })
}

fn positive(field: &'static str, v: i32) -> Result<u32, ProtocolError> {
    match non_negative(field, v)? {
        0 => Err(ProtocolError::OutOfRange { field, value: 0 }),
        n => Ok(n),
    }
}

/// Values the runtime sends are bounded (partition counts and attempts are checked when a
/// job is submitted), so saturating here never changes a real value.
fn to_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

impl TryFrom<pb::RegisterExecutor> for ExecutorRegistration {
    type Error = ProtocolError;

    fn try_from(r: pb::RegisterExecutor) -> Result<Self, ProtocolError> {
        if r.app_id.trim().is_empty() {
            return Err(ProtocolError::Empty("register.app_id"));
        }
        Ok(Self {
            app_id: AppId(r.app_id),
            executor_id: non_negative("register.executor_id", r.executor_id)?,
            cores: positive("register.cores", r.cores)?,
            host: r.host,
            pid: non_negative("register.pid", r.pid)?,
        })
    }
}

impl From<ExecutorRegistration> for pb::RegisterExecutor {
    fn from(r: ExecutorRegistration) -> Self {
        Self {
            app_id: r.app_id.0,
            executor_id: to_i32(r.executor_id),
            cores: to_i32(r.cores),
            host: r.host,
            pid: to_i32(r.pid),
        }
    }
}

impl TryFrom<pb::TaskFinished> for TaskReport {
    type Error = ProtocolError;

    fn try_from(t: pb::TaskFinished) -> Result<Self, ProtocolError> {
        use pb::task_finished::Outcome;
        Ok(Self {
            task_id: t.task_id,
            attempt: non_negative("task_finished.attempt", t.attempt)?,
            outcome: match t.outcome {
                Some(Outcome::Output(b)) => Ok(b),
                Some(Outcome::Error(e)) => Err(e),
                None => return Err(ProtocolError::Missing("task_finished.outcome")),
            },
        })
    }
}

impl From<TaskReport> for pb::TaskFinished {
    fn from(t: TaskReport) -> Self {
        use pb::task_finished::Outcome;
        Self {
            task_id: t.task_id,
            attempt: to_i32(t.attempt),
            outcome: Some(match t.outcome {
                Ok(b) => Outcome::Output(b),
                Err(e) => Outcome::Error(e),
            }),
        }
    }
}

impl TryFrom<pb::ExecutorToDriver> for ExecutorMessage {
    type Error = ProtocolError;

    fn try_from(m: pb::ExecutorToDriver) -> Result<Self, ProtocolError> {
        use pb::executor_to_driver::Msg;
        match m.msg {
            Some(Msg::Register(r)) => Ok(Self::Register(r.try_into()?)),
            Some(Msg::TaskFinished(t)) => Ok(Self::TaskFinished(t.try_into()?)),
            None => Err(ProtocolError::Missing("executor_to_driver.msg")),
        }
    }
}

impl From<ExecutorMessage> for pb::ExecutorToDriver {
    fn from(m: ExecutorMessage) -> Self {
        use pb::executor_to_driver::Msg;
        Self {
            msg: Some(match m {
                ExecutorMessage::Register(r) => Msg::Register(r.into()),
                ExecutorMessage::TaskFinished(t) => Msg::TaskFinished(t.into()),
            }),
        }
    }
}

impl TryFrom<pb::LaunchTask> for TaskLaunch {
    type Error = ProtocolError;

    fn try_from(l: pb::LaunchTask) -> Result<Self, ProtocolError> {
        if l.task_name.is_empty() {
            return Err(ProtocolError::Empty("launch_task.task_name"));
        }
        Ok(Self {
            task_id: l.task_id,
            attempt: non_negative("launch_task.attempt", l.attempt)?,
            task_name: l.task_name,
            stage_id: non_negative("launch_task.stage_id", l.stage_id)?,
            partition: non_negative("launch_task.partition_index", l.partition_index)?,
            payload: l.payload,
        })
    }
}

impl From<TaskLaunch> for pb::LaunchTask {
    fn from(l: TaskLaunch) -> Self {
        Self {
            task_id: l.task_id,
            attempt: to_i32(l.attempt),
            task_name: l.task_name,
            stage_id: to_i32(l.stage_id),
            partition_index: to_i32(l.partition),
            payload: l.payload,
        }
    }
}

impl TryFrom<pb::DriverToExecutor> for DriverMessage {
    type Error = ProtocolError;

    fn try_from(m: pb::DriverToExecutor) -> Result<Self, ProtocolError> {
        use pb::driver_to_executor::Msg;
        match m.msg {
            Some(Msg::Registered(r)) => Ok(Self::Registered {
                task_cpus: positive("registered.task_cpus", r.task_cpus)?,
            }),
            Some(Msg::Rejected(r)) => Ok(Self::Rejected { message: r.message }),
            Some(Msg::LaunchTask(l)) => Ok(Self::Launch(l.try_into()?)),
            Some(Msg::Stop(s)) => Ok(Self::Stop { reason: s.reason }),
            None => Err(ProtocolError::Missing("driver_to_executor.msg")),
        }
    }
}

impl From<DriverMessage> for pb::DriverToExecutor {
    fn from(m: DriverMessage) -> Self {
        use pb::driver_to_executor::Msg;
        Self {
            msg: Some(match m {
                DriverMessage::Registered { task_cpus } => {
                    Msg::Registered(pb::ExecutorRegistered {
                        task_cpus: to_i32(task_cpus),
                    })
                }
                DriverMessage::Rejected { message } => {
                    Msg::Rejected(pb::RegisterRejected { message })
                }
                DriverMessage::Launch(l) => Msg::LaunchTask(l.into()),
                DriverMessage::Stop { reason } => Msg::Stop(pb::StopExecutor { reason }),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let reg = ExecutorMessage::Register(ExecutorRegistration {
            app_id: AppId("app-20260101000000-0000".into()),
            executor_id: 3,
            cores: 2,
            host: "h".into(),
            pid: 42,
        });
        let back = ExecutorMessage::try_from(pb::ExecutorToDriver::from(reg.clone()));
        assert_eq!(back, Ok(reg));
        for outcome in [Ok(vec![1, 2, 3]), Ok(vec![]), Err("boom".to_owned())] {
            let m = ExecutorMessage::TaskFinished(TaskReport {
                task_id: 7,
                attempt: 1,
                outcome,
            });
            assert_eq!(
                ExecutorMessage::try_from(pb::ExecutorToDriver::from(m.clone())),
                Ok(m)
            );
        }
        for m in [
            DriverMessage::Registered { task_cpus: 2 },
            DriverMessage::Rejected {
                message: "no".into(),
            },
            DriverMessage::Stop {
                reason: "done".into(),
            },
            DriverMessage::Launch(TaskLaunch {
                task_id: 1,
                attempt: 0,
                task_name: "t".into(),
                stage_id: 4,
                partition: 9,
                payload: b"x".to_vec(),
            }),
        ] {
            assert_eq!(
                DriverMessage::try_from(pb::DriverToExecutor::from(m.clone())),
                Ok(m)
            );
        }
    }

    #[test]
    fn malformed_messages_are_typed_errors() {
        assert_eq!(
            ExecutorMessage::try_from(pb::ExecutorToDriver { msg: None }),
            Err(ProtocolError::Missing("executor_to_driver.msg"))
        );
        let reg = |app_id: &str, executor_id, cores| {
            ExecutorMessage::try_from(pb::ExecutorToDriver {
                msg: Some(pb::executor_to_driver::Msg::Register(
                    pb::RegisterExecutor {
                        app_id: app_id.into(),
                        executor_id,
                        cores,
                        host: String::new(),
                        pid: 0,
                    },
                )),
            })
        };
        assert_eq!(reg("", 0, 1), Err(ProtocolError::Empty("register.app_id")));
        assert_eq!(
            reg("app", -1, 1),
            Err(ProtocolError::OutOfRange {
                field: "register.executor_id",
                value: -1
            })
        );
        assert_eq!(
            reg("app", 0, 0),
            Err(ProtocolError::OutOfRange {
                field: "register.cores",
                value: 0
            })
        );
        assert_eq!(
            TaskReport::try_from(pb::TaskFinished {
                task_id: 1,
                attempt: 0,
                outcome: None
            }),
            Err(ProtocolError::Missing("task_finished.outcome"))
        );
        assert!(
            DriverMessage::try_from(pb::DriverToExecutor {
                msg: Some(pb::driver_to_executor::Msg::Registered(
                    pb::ExecutorRegistered { task_cpus: 0 }
                ))
            })
            .is_err()
        );
        assert!(
            TaskLaunch::try_from(pb::LaunchTask {
                task_name: "t".into(),
                partition_index: -3,
                ..Default::default()
            })
            .is_err()
        );
    }
}
