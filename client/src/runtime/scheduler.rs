//! The driver's task scheduler, sans-IO: it is told about executors, jobs and task
//! outcomes, and answers with task launches and finished jobs. It reads no clock and does
//! no I/O, so every decision is unit-tested here (the driver actor in `driver.rs` owns it).
//!
//! Spark's rules, simplified to one stage per job:
//! - resource offers: each executor offers its free cores, a task takes `spark.task.cpus`
//!   of them; offers are served round-robin, one task per executor per round, so tasks
//!   spread over executors;
//! - jobs are served first-in first-out, tasks of a job by partition, retries first;
//! - a failed attempt is retried, on another executor when one that has not failed this
//!   task is alive, until the task has failed `spark.task.maxFailures` times; then the job
//!   is aborted;
//! - an executor lost while running tasks counts as a failure of each of them (Spark's
//!   `ExecutorLostFailure`), and they are rescheduled;
//! - attempts still running when their job is aborted keep their cores until they end.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use flint_domain::types::ExecutorId;

use super::message::{StageId, TaskId, TaskLaunch, TaskReport};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// `spark.task.cpus` (at least 1).
    pub task_cpus: u32,
    /// `spark.task.maxFailures` (at least 1).
    pub max_failures: u32,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            task_cpus: 1,
            max_failures: 4,
        }
    }
}

/// A task attempt to send to `executor`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    pub executor: ExecutorId,
    pub task: TaskLaunch,
}

/// Why a job failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobFailure {
    /// A task failed `failures` times (`spark.task.maxFailures`).
    TaskFailed {
        partition: u32,
        failures: u32,
        last_error: String,
    },
    /// Every job was cancelled (the application ended).
    Cancelled(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    /// One result per partition, in partition order.
    Succeeded {
        stage: StageId,
        results: Vec<Vec<u8>>,
    },
    Failed {
        stage: StageId,
        failure: JobFailure,
    },
}

/// What a stage's progress bar shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StageProgress {
    pub stage: StageId,
    pub done: u32,
    pub running: u32,
    pub total: u32,
}

/// What happened to a task report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportEffect {
    /// Not a running attempt of this executor (a duplicate, or from a lost executor).
    Ignored,
    Succeeded,
    /// Failed; it will be retried.
    Retrying,
    /// Failed for the last time: its job is aborted.
    JobAborted,
    /// The attempt belonged to a job that had already ended.
    Orphan,
}

#[derive(Debug)]
struct ExecutorSlot {
    host: String,
    cores: u32,
    free: u32,
}

#[derive(Debug)]
struct RunningAttempt {
    executor: ExecutorId,
}

#[derive(Debug, PartialEq, Eq)]
enum TaskStatus {
    Pending,
    Running,
    Done,
}

#[derive(Debug)]
struct TaskState {
    stage: StageId,
    partition: u32,
    next_attempt: u32,
    failures: u32,
    failed_on: BTreeSet<ExecutorId>,
    status: TaskStatus,
}

#[derive(Debug)]
struct Stage {
    task_name: String,
    first_task: TaskId,
    payloads: Vec<Vec<u8>>,
    results: Vec<Option<Vec<u8>>>,
    done: u32,
    running: u32,
    /// Partitions waiting for an offer, retries at the front.
    pending: VecDeque<u32>,
}

#[derive(Debug, Default)]
pub struct Scheduler {
    cfg: SchedulerConfig,
    executors: BTreeMap<ExecutorId, ExecutorSlot>,
    /// Executors known to be gone: never accepted again.
    dead: BTreeSet<ExecutorId>,
    stages: BTreeMap<StageId, Stage>,
    tasks: BTreeMap<TaskId, TaskState>,
    running: BTreeMap<(TaskId, u32), RunningAttempt>,
    next_stage: StageId,
    next_task: TaskId,
    /// Where the next offer round starts (rotates, so no executor is always first).
    rr_start: usize,
    outcomes: Vec<JobOutcome>,
}

impl Scheduler {
    pub fn new(cfg: SchedulerConfig) -> Self {
        Self {
            cfg: SchedulerConfig {
                task_cpus: cfg.task_cpus.max(1),
                max_failures: cfg.max_failures.max(1),
            },
            ..Self::default()
        }
    }

    /// Adds an executor with `cores` free cores. Returns false (and changes nothing) if the
    /// id is already registered or was lost before.
    pub fn add_executor(&mut self, id: ExecutorId, host: &str, cores: u32) -> bool {
        if self.dead.contains(&id) || self.executors.contains_key(&id) {
            return false;
        }
        self.executors.insert(
            id,
            ExecutorSlot {
                host: host.to_owned(),
                cores,
                free: cores,
            },
        );
        true
    }

    pub fn is_dead(&self, id: ExecutorId) -> bool {
        self.dead.contains(&id)
    }

    pub fn executor_count(&self) -> usize {
        self.executors.len()
    }

    /// Cores of every registered executor.
    pub fn total_cores(&self) -> u32 {
        self.executors.values().map(|e| e.cores).sum()
    }

    /// Executors running nothing.
    pub fn idle_executors(&self) -> Vec<ExecutorId> {
        self.executors
            .iter()
            .filter(|(_, e)| e.free == e.cores)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Cores the active jobs could use right now: pending and running tasks × task cpus.
    pub fn demanded_cores(&self) -> u64 {
        let tasks: u64 = self
            .stages
            .values()
            .map(|s| s.pending.len() as u64 + u64::from(s.running))
            .sum();
        tasks * u64::from(self.cfg.task_cpus)
    }

    /// Submits a job of one stage: one task per payload. Returns its stage id.
    pub fn submit(&mut self, task_name: &str, payloads: Vec<Vec<u8>>) -> StageId {
        let stage = self.next_stage;
        self.next_stage += 1;
        let n = payloads.len() as u32;
        if n == 0 {
            self.outcomes.push(JobOutcome::Succeeded {
                stage,
                results: Vec::new(),
            });
            return stage;
        }
        let first_task = self.next_task;
        self.next_task += u64::from(n);
        for partition in 0..n {
            self.tasks.insert(
                first_task + u64::from(partition),
                TaskState {
                    stage,
                    partition,
                    next_attempt: 0,
                    failures: 0,
                    failed_on: BTreeSet::new(),
                    status: TaskStatus::Pending,
                },
            );
        }
        self.stages.insert(
            stage,
            Stage {
                task_name: task_name.to_owned(),
                first_task,
                results: vec![None; payloads.len()],
                payloads,
                done: 0,
                running: 0,
                pending: (0..n).collect(),
            },
        );
        stage
    }

    /// Places pending tasks on the executors' free cores.
    pub fn offers(&mut self) -> Vec<Launch> {
        let mut launches = Vec::new();
        let ids: Vec<ExecutorId> = self.executors.keys().copied().collect();
        if ids.is_empty() || self.stages.values().all(|s| s.pending.is_empty()) {
            return launches;
        }
        let start = self.rr_start % ids.len();
        self.rr_start = self.rr_start.wrapping_add(1);
        loop {
            let mut placed = false;
            for i in 0..ids.len() {
                let id = ids[(start + i) % ids.len()];
                let free = self.executors.get(&id).map_or(0, |e| e.free);
                if free < self.cfg.task_cpus {
                    continue;
                }
                if let Some(l) = self.place_one(id) {
                    launches.push(l);
                    placed = true;
                }
            }
            if !placed {
                return launches;
            }
        }
    }

    /// Picks the first pending task `id` may run and launches it there.
    fn place_one(&mut self, id: ExecutorId) -> Option<Launch> {
        let executors = &self.executors;
        let tasks = &self.tasks;
        let cpus = self.cfg.task_cpus;
        // Not where it failed before, unless every executor able to run it failed it too.
        let may_run = |task: &TaskState| {
            !task.failed_on.contains(&id)
                || executors
                    .iter()
                    .filter(|(_, e)| e.cores >= cpus)
                    .all(|(e, _)| task.failed_on.contains(e))
        };
        let (stage_id, pos) = self.stages.iter().find_map(|(sid, s)| {
            s.pending
                .iter()
                .position(|p| {
                    tasks
                        .get(&(s.first_task + u64::from(*p)))
                        .is_some_and(may_run)
                })
                .map(|pos| (*sid, pos))
        })?;
        let stage = self.stages.get_mut(&stage_id)?;
        let partition = stage.pending.remove(pos)?;
        let task_id = stage.first_task + u64::from(partition);
        let task = self.tasks.get_mut(&task_id)?;
        let attempt = task.next_attempt;
        task.next_attempt += 1;
        task.status = TaskStatus::Running;
        stage.running += 1;
        if let Some(e) = self.executors.get_mut(&id) {
            e.free -= self.cfg.task_cpus;
        }
        self.running
            .insert((task_id, attempt), RunningAttempt { executor: id });
        Some(Launch {
            executor: id,
            task: TaskLaunch {
                task_id,
                attempt,
                task_name: stage.task_name.clone(),
                stage_id,
                partition,
                payload: stage.payloads.get(partition as usize)?.clone(),
            },
        })
    }

    /// An executor reports the end of an attempt.
    pub fn task_finished(&mut self, executor: ExecutorId, report: TaskReport) -> ReportEffect {
        let key = (report.task_id, report.attempt);
        match self.running.get(&key) {
            Some(r) if r.executor == executor => {}
            _ => return ReportEffect::Ignored,
        }
        self.running.remove(&key);
        let host = match self.executors.get_mut(&executor) {
            Some(e) => {
                e.free = (e.free + self.cfg.task_cpus).min(e.cores);
                e.host.clone()
            }
            None => String::new(),
        };
        let Some(task) = self.tasks.get_mut(&report.task_id) else {
            return ReportEffect::Orphan;
        };
        let (stage_id, partition) = (task.stage, task.partition);
        let Some(stage) = self.stages.get_mut(&stage_id) else {
            return ReportEffect::Orphan;
        };
        stage.running = stage.running.saturating_sub(1);
        match report.outcome {
            Ok(output) => {
                task.status = TaskStatus::Done;
                if let Some(slot) = stage.results.get_mut(partition as usize) {
                    *slot = Some(output);
                }
                stage.done += 1;
                if stage.done as usize == stage.results.len() {
                    self.finish_stage(stage_id);
                }
                ReportEffect::Succeeded
            }
            Err(error) => {
                let why = format!(
                    "lost task {partition}.{} in stage {stage_id} (TID {}) on executor {executor}{}: {error}",
                    report.attempt,
                    report.task_id,
                    if host.is_empty() {
                        String::new()
                    } else {
                        format!(" ({host})")
                    }
                );
                self.attempt_failed(report.task_id, executor, why)
            }
        }
    }

    /// An executor is gone (its stream ended, or the master reported it finished). Its
    /// running attempts fail and are rescheduled. Returns the partitions it was running
    /// `(stage, partition)`; empty if it was unknown or idle.
    pub fn executor_lost(&mut self, id: ExecutorId, reason: &str) -> Vec<(StageId, u32)> {
        self.dead.insert(id);
        let Some(slot) = self.executors.remove(&id) else {
            return Vec::new();
        };
        let lost: Vec<(TaskId, u32)> = self
            .running
            .iter()
            .filter(|(_, r)| r.executor == id)
            .map(|(k, _)| *k)
            .collect();
        let mut affected = Vec::new();
        for (task_id, attempt) in lost {
            self.running.remove(&(task_id, attempt));
            let Some(task) = self.tasks.get(&task_id) else {
                continue; // an attempt of an aborted job
            };
            let (stage_id, partition) = (task.stage, task.partition);
            if let Some(stage) = self.stages.get_mut(&stage_id) {
                stage.running = stage.running.saturating_sub(1);
            }
            affected.push((stage_id, partition));
            let why = format!(
                "lost task {partition}.{attempt} in stage {stage_id} (TID {task_id}) on executor {id} ({}): executor lost: {reason}",
                slot.host
            );
            self.attempt_failed(task_id, id, why);
        }
        affected
    }

    fn attempt_failed(
        &mut self,
        task_id: TaskId,
        executor: ExecutorId,
        why: String,
    ) -> ReportEffect {
        let max = self.cfg.max_failures;
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return ReportEffect::Orphan;
        };
        task.failures += 1;
        task.failed_on.insert(executor);
        let (stage_id, partition, failures) = (task.stage, task.partition, task.failures);
        if failures >= max {
            self.abort_stage(
                stage_id,
                JobFailure::TaskFailed {
                    partition,
                    failures,
                    last_error: why,
                },
            );
            return ReportEffect::JobAborted;
        }
        task.status = TaskStatus::Pending;
        if let Some(stage) = self.stages.get_mut(&stage_id) {
            stage.pending.push_front(partition);
        }
        ReportEffect::Retrying
    }

    fn remove_stage_tasks(&mut self, stage_id: StageId) -> Option<Stage> {
        let stage = self.stages.remove(&stage_id)?;
        let n = stage.results.len() as u64;
        for t in stage.first_task..stage.first_task + n {
            self.tasks.remove(&t);
        }
        Some(stage)
    }

    fn finish_stage(&mut self, stage_id: StageId) {
        if let Some(stage) = self.remove_stage_tasks(stage_id) {
            let results = stage
                .results
                .into_iter()
                .map(Option::unwrap_or_default)
                .collect();
            self.outcomes.push(JobOutcome::Succeeded {
                stage: stage_id,
                results,
            });
        }
    }

    fn abort_stage(&mut self, stage_id: StageId, failure: JobFailure) {
        if self.remove_stage_tasks(stage_id).is_some() {
            self.outcomes.push(JobOutcome::Failed {
                stage: stage_id,
                failure,
            });
        }
    }

    /// Fails every active job (the application is ending).
    pub fn cancel_all(&mut self, reason: &str) {
        let ids: Vec<StageId> = self.stages.keys().copied().collect();
        for id in ids {
            self.abort_stage(id, JobFailure::Cancelled(reason.to_owned()));
        }
    }

    /// Jobs that ended since the last call.
    pub fn take_outcomes(&mut self) -> Vec<JobOutcome> {
        std::mem::take(&mut self.outcomes)
    }

    pub fn has_active_jobs(&self) -> bool {
        !self.stages.is_empty()
    }

    /// Progress of the active jobs, oldest first.
    pub fn progress(&self) -> Vec<StageProgress> {
        self.stages
            .iter()
            .map(|(id, s)| StageProgress {
                stage: *id,
                done: s.done,
                running: s.running,
                total: s.results.len() as u32,
            })
            .collect()
    }

    /// Checks the bookkeeping invariants (tests).
    #[cfg(test)]
    pub fn check_invariants(&self) {
        for (id, e) in &self.executors {
            let used = self.running.values().filter(|r| r.executor == *id).count() as u32
                * self.cfg.task_cpus;
            assert!(e.free <= e.cores, "executor {id}: free > cores");
            assert_eq!(e.cores - e.free, used, "executor {id}: core accounting");
        }
        for r in self.running.values() {
            assert!(
                self.executors.contains_key(&r.executor),
                "attempt on an unknown executor"
            );
        }
        for (sid, s) in &self.stages {
            let n = s.results.len() as u64;
            let mut pending = 0;
            let mut running = 0;
            let mut done = 0;
            for t in s.first_task..s.first_task + n {
                let task = self.tasks.get(&t).expect("task of an active stage");
                assert_eq!(task.stage, *sid);
                match task.status {
                    TaskStatus::Pending => pending += 1,
                    TaskStatus::Running => running += 1,
                    TaskStatus::Done => done += 1,
                }
                let attempts = self.running.keys().filter(|(id, _)| *id == t).count();
                assert_eq!(
                    attempts,
                    usize::from(task.status == TaskStatus::Running),
                    "task {t}: one running attempt iff running"
                );
            }
            assert_eq!(pending, s.pending.len(), "stage {sid}: pending");
            assert_eq!(running, s.running, "stage {sid}: running");
            assert_eq!(done, s.done, "stage {sid}: done");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(task_cpus: u32, max_failures: u32) -> Scheduler {
        Scheduler::new(SchedulerConfig {
            task_cpus,
            max_failures,
        })
    }

    fn payloads(n: u32) -> Vec<Vec<u8>> {
        (0..n).map(|i| vec![i as u8]).collect()
    }

    fn ok(l: &Launch) -> TaskReport {
        TaskReport {
            task_id: l.task.task_id,
            attempt: l.task.attempt,
            outcome: Ok(l.task.payload.clone()),
        }
    }

    fn err(l: &Launch, e: &str) -> TaskReport {
        TaskReport {
            task_id: l.task.task_id,
            attempt: l.task.attempt,
            outcome: Err(e.into()),
        }
    }

    fn per_executor(launches: &[Launch]) -> BTreeMap<ExecutorId, usize> {
        let mut m = BTreeMap::new();
        for l in launches {
            *m.entry(l.executor).or_default() += 1;
        }
        m
    }

    #[test]
    fn offers_fill_free_cores_round_robin() {
        let mut s = sched(1, 4);
        s.add_executor(0, "a", 2);
        s.add_executor(1, "b", 3);
        let stage = s.submit("t", payloads(10));
        let l = s.offers();
        assert_eq!(l.len(), 5);
        assert_eq!(per_executor(&l), BTreeMap::from([(0, 2), (1, 3)]));
        assert!(
            l.iter()
                .all(|l| l.task.stage_id == stage && l.task.attempt == 0)
        );
        // Round-robin: the first two launches go to different executors.
        assert_ne!(l[0].executor, l[1].executor);
        assert!(s.offers().is_empty(), "no free cores left");
        s.check_invariants();
        assert_eq!(
            s.progress(),
            vec![StageProgress {
                stage,
                done: 0,
                running: 5,
                total: 10
            }]
        );
        // A finished task frees its core for the next pending one.
        assert_eq!(
            s.task_finished(l[0].executor, ok(&l[0])),
            ReportEffect::Succeeded
        );
        let next = s.offers();
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].executor, l[0].executor);
        assert_eq!(next[0].task.partition, 5);
        s.check_invariants();
    }

    #[test]
    fn task_cpus_limits_tasks_per_executor() {
        let mut s = sched(2, 4);
        s.add_executor(0, "a", 5); // room for two 2-cpu tasks, one core wasted
        s.add_executor(1, "b", 1); // too small for any task
        s.submit("t", payloads(10));
        let l = s.offers();
        assert_eq!(per_executor(&l), BTreeMap::from([(0, 2)]));
        s.check_invariants();
        assert_eq!(s.demanded_cores(), 20);
    }

    #[test]
    fn results_come_back_in_partition_order() {
        let mut s = sched(1, 4);
        s.add_executor(0, "a", 8);
        let stage = s.submit("t", payloads(5));
        let l = s.offers();
        for launch in l.iter().rev() {
            s.task_finished(0, ok(launch));
        }
        assert_eq!(
            s.take_outcomes(),
            vec![JobOutcome::Succeeded {
                stage,
                results: payloads(5)
            }]
        );
        assert!(!s.has_active_jobs());
        assert_eq!(s.idle_executors(), vec![0]);
        s.check_invariants();
    }

    #[test]
    fn empty_job_succeeds_at_once() {
        let mut s = sched(1, 4);
        let stage = s.submit("t", Vec::new());
        assert_eq!(
            s.take_outcomes(),
            vec![JobOutcome::Succeeded {
                stage,
                results: vec![]
            }]
        );
    }

    #[test]
    fn failed_task_is_retried_on_another_executor() {
        let mut s = sched(1, 4);
        s.add_executor(0, "a", 1);
        s.add_executor(1, "b", 1);
        s.submit("t", payloads(3));
        let l = s.offers();
        assert_eq!(l.len(), 2);
        let on0 = l.iter().find(|l| l.executor == 0).expect("a task on 0");
        let on1 = l.iter().find(|l| l.executor == 1).expect("a task on 1");
        assert_eq!(s.task_finished(0, err(on0, "boom")), ReportEffect::Retrying);
        // Executor 0 is free, but it failed that task: it gets the next partition instead.
        let l2 = s.offers();
        assert_eq!(l2.len(), 1);
        assert_eq!(l2[0].executor, 0);
        assert_eq!(l2[0].task.partition, 2);
        // Executor 1 frees up: it takes the retry, attempt 1.
        s.task_finished(1, ok(on1));
        let l3 = s.offers();
        assert_eq!(l3.len(), 1);
        assert_eq!(
            (l3[0].executor, l3[0].task.partition, l3[0].task.attempt),
            (1, on0.task.partition, 1)
        );
        s.check_invariants();
    }

    #[test]
    fn an_executor_too_small_for_any_task_does_not_block_retries() {
        let mut s = sched(2, 4);
        s.add_executor(0, "a", 2);
        s.add_executor(1, "b", 1); // cannot run a 2-cpu task
        s.submit("t", payloads(1));
        let l = s.offers();
        s.task_finished(0, err(&l[0], "boom"));
        let l2 = s.offers();
        assert_eq!((l2[0].executor, l2[0].task.attempt), (0, 1));
    }

    #[test]
    fn a_lone_executor_retries_the_task_itself() {
        let mut s = sched(1, 4);
        s.add_executor(0, "a", 1);
        s.submit("t", payloads(1));
        let l = s.offers();
        s.task_finished(0, err(&l[0], "boom"));
        let l2 = s.offers();
        assert_eq!((l2[0].executor, l2[0].task.attempt), (0, 1));
    }

    #[test]
    fn job_aborts_after_max_failures_with_the_last_error() {
        let mut s = sched(1, 4);
        s.add_executor(0, "host-a", 1);
        s.add_executor(1, "host-b", 1);
        let stage = s.submit("t", payloads(1));
        let mut effects = Vec::new();
        for i in 0..4 {
            let l = s.offers();
            assert_eq!(l.len(), 1, "round {i}");
            assert_eq!(l[0].task.attempt, i);
            effects.push(s.task_finished(l[0].executor, err(&l[0], &format!("boom {i}"))));
            s.check_invariants();
        }
        assert_eq!(
            effects,
            vec![
                ReportEffect::Retrying,
                ReportEffect::Retrying,
                ReportEffect::Retrying,
                ReportEffect::JobAborted
            ]
        );
        let out = s.take_outcomes();
        let [JobOutcome::Failed { stage: st, failure }] = out.as_slice() else {
            panic!("expected one failure, got {out:?}");
        };
        assert_eq!(*st, stage);
        let JobFailure::TaskFailed {
            partition,
            failures,
            last_error,
        } = failure
        else {
            panic!("{failure:?}");
        };
        assert_eq!((*partition, *failures), (0, 4));
        assert!(
            last_error.starts_with("lost task 0.3 in stage 0 (TID 0) on executor"),
            "{last_error}"
        );
        assert!(last_error.ends_with(": boom 3"), "{last_error}");
        assert!(s.offers().is_empty());
        assert!(!s.has_active_jobs());
    }

    #[test]
    fn lost_executor_tasks_are_rescheduled() {
        let mut s = sched(1, 4);
        s.add_executor(0, "a", 2);
        s.add_executor(1, "b", 2);
        let stage = s.submit("t", payloads(6));
        let l = s.offers();
        assert_eq!(l.len(), 4);
        let lost = s.executor_lost(0, "worker lost");
        assert_eq!(lost.len(), 2);
        s.check_invariants();
        assert_eq!(s.progress()[0].running, 2);
        // A late report from the lost executor is ignored.
        let from0 = l.iter().find(|l| l.executor == 0).expect("on 0");
        assert_eq!(s.task_finished(0, ok(from0)), ReportEffect::Ignored);
        // The lost executor never comes back under the same id.
        assert!(!s.add_executor(0, "a", 2));
        // Everything finishes on executor 1.
        let mut reports: Vec<Launch> = l.into_iter().filter(|l| l.executor == 1).collect();
        let mut attempts_seen = BTreeMap::new();
        while let Some(launch) = reports.pop() {
            attempts_seen.insert(launch.task.partition, launch.task.attempt);
            s.task_finished(1, ok(&launch));
            reports.extend(s.offers());
            s.check_invariants();
        }
        assert_eq!(
            s.take_outcomes(),
            vec![JobOutcome::Succeeded {
                stage,
                results: payloads(6)
            }]
        );
        for (stage_id, p) in lost {
            assert_eq!(stage_id, stage);
            assert_eq!(attempts_seen[&p], 1, "partition {p} ran a second attempt");
        }
    }

    #[test]
    fn losing_an_unknown_or_idle_executor_changes_nothing() {
        let mut s = sched(1, 4);
        assert!(s.executor_lost(9, "gone").is_empty());
        assert!(s.is_dead(9));
        s.add_executor(1, "b", 1);
        assert!(s.executor_lost(1, "gone").is_empty());
        assert_eq!(s.executor_count(), 0);
    }

    #[test]
    fn repeated_executor_loss_aborts_the_job() {
        let mut s = sched(1, 2);
        s.submit("t", payloads(1));
        for id in 0..2 {
            s.add_executor(id, "h", 1);
            assert_eq!(s.offers().len(), 1);
            s.executor_lost(id, "crashed");
        }
        let out = s.take_outcomes();
        assert!(
            matches!(&out[..], [JobOutcome::Failed { failure: JobFailure::TaskFailed { failures: 2, last_error, .. }, .. }] if last_error.contains("executor lost: crashed")),
            "{out:?}"
        );
    }

    #[test]
    fn attempts_of_an_aborted_job_keep_their_cores_until_they_end() {
        let mut s = sched(1, 1);
        s.add_executor(0, "a", 2);
        let first = s.submit("t", payloads(2));
        let l = s.offers();
        assert_eq!(l.len(), 2);
        s.task_finished(0, err(&l[0], "boom"));
        assert!(matches!(
            s.take_outcomes().as_slice(),
            [JobOutcome::Failed { stage, .. }] if *stage == first
        ));
        let second = s.submit("t", payloads(2));
        let l2 = s.offers();
        assert_eq!(l2.len(), 1, "one core is still held by the orphan attempt");
        s.check_invariants();
        assert_eq!(s.task_finished(0, ok(&l[1])), ReportEffect::Orphan);
        assert_eq!(s.offers().len(), 1);
        s.check_invariants();
        assert!(s.take_outcomes().is_empty());
        assert_eq!(s.progress()[0].stage, second);
    }

    #[test]
    fn jobs_are_served_in_order_and_cancel_all_fails_them() {
        let mut s = sched(1, 4);
        s.add_executor(0, "a", 3);
        let a = s.submit("t", payloads(2));
        let b = s.submit("u", payloads(2));
        let l = s.offers();
        let names: Vec<(&str, u32)> = l
            .iter()
            .map(|l| (l.task.task_name.as_str(), l.task.stage_id))
            .collect();
        assert_eq!(names, vec![("t", a), ("t", a), ("u", b)]);
        s.cancel_all("application killed");
        let out = s.take_outcomes();
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|o| matches!(o, JobOutcome::Failed { failure: JobFailure::Cancelled(m), .. } if m == "application killed")));
    }

    #[test]
    fn a_report_from_the_wrong_executor_is_ignored() {
        let mut s = sched(1, 4);
        s.add_executor(0, "a", 1);
        s.add_executor(1, "b", 1);
        s.submit("t", payloads(1));
        let l = s.offers();
        let other = 1 - l[0].executor;
        assert_eq!(s.task_finished(other, ok(&l[0])), ReportEffect::Ignored);
        assert_eq!(
            s.task_finished(l[0].executor, ok(&l[0])),
            ReportEffect::Succeeded
        );
        assert_eq!(
            s.task_finished(l[0].executor, ok(&l[0])),
            ReportEffect::Ignored
        );
    }

    mod proptests {
        use super::*;
        use proptest::prelude::*;

        #[derive(Clone, Debug)]
        enum Step {
            AddExecutor(u32),
            LoseExecutor(usize),
            Submit(u32),
            Finish { pick: usize, ok: bool },
            Offer,
        }

        fn step() -> impl Strategy<Value = Step> {
            prop_oneof![
                (1u32..5).prop_map(Step::AddExecutor),
                any::<usize>().prop_map(Step::LoseExecutor),
                (0u32..6).prop_map(Step::Submit),
                (any::<usize>(), prop::bool::weighted(0.8))
                    .prop_map(|(pick, ok)| Step::Finish { pick, ok }),
                Just(Step::Offer),
            ]
        }

        proptest! {
            /// Whatever happens: cores are never overcommitted, every job ends exactly once
            /// when executors keep working, and successful jobs return every partition.
            #[test]
            fn bookkeeping_holds(steps in prop::collection::vec(step(), 1..80), task_cpus in 1u32..3) {
                let mut s = sched(task_cpus, 3);
                let mut next_exec = 0;
                let mut running: Vec<Launch> = Vec::new();
                let mut submitted = BTreeMap::new();
                let mut ended = BTreeMap::new();
                for st in steps {
                    match st {
                        Step::AddExecutor(c) => { s.add_executor(next_exec, "h", c); next_exec += 1; }
                        Step::LoseExecutor(i) => {
                            let ids: Vec<_> = s.executors.keys().copied().collect();
                            if !ids.is_empty() {
                                let id = ids[i % ids.len()];
                                s.executor_lost(id, "lost");
                                running.retain(|l| l.executor != id);
                            }
                        }
                        Step::Submit(n) => { let id = s.submit("t", payloads(n)); submitted.insert(id, n); }
                        Step::Finish { pick, ok: good } => {
                            if !running.is_empty() {
                                let l = running.swap_remove(pick % running.len());
                                let r = if good { ok(&l) } else { err(&l, "x") };
                                prop_assert_ne!(s.task_finished(l.executor, r), ReportEffect::Ignored);
                            }
                        }
                        Step::Offer => running.extend(s.offers()),
                    }
                    s.check_invariants();
                    for o in s.take_outcomes() {
                        let (id, results) = match o {
                            JobOutcome::Succeeded { stage, results } => (stage, Some(results)),
                            JobOutcome::Failed { stage, .. } => (stage, None),
                        };
                        prop_assert!(ended.insert(id, ()).is_none(), "job {} ended twice", id);
                        if let Some(r) = results {
                            prop_assert_eq!(r, payloads(submitted[&id]));
                        }
                    }
                }
                // Drain: with a healthy executor, every job ends.
                s.add_executor(next_exec, "h", 4);
                for _ in 0..10_000 {
                    running.extend(s.offers());
                    let Some(l) = running.pop() else { break };
                    s.task_finished(l.executor, ok(&l));
                    for o in s.take_outcomes() {
                        let id = match o { JobOutcome::Succeeded { stage, .. } | JobOutcome::Failed { stage, .. } => stage };
                        prop_assert!(ended.insert(id, ()).is_none());
                    }
                }
                prop_assert!(!s.has_active_jobs());
                prop_assert_eq!(ended.len(), submitted.len());
            }
        }
    }
}
