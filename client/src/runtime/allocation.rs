//! Dynamic allocation (`spark.dynamicAllocation.enabled`), sans-IO: from the scheduler's
//! backlog and the executors' idleness, decides the total number of executors to ask the
//! master for and which idle executors to release. Simplified from Spark's
//! ExecutorAllocationManager: the target jumps to what the backlog needs at once instead of
//! ramping up, and executors idle for `executorIdleTimeout` are released down to
//! `minExecutors` (never below what the backlog needs).

use std::collections::BTreeMap;
use std::time::Instant;

use flint_domain::types::ExecutorId;

use super::conf::DynamicAllocation;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllocAction {
    /// Ask the master for this many executors in all.
    SetTotal(u32),
    /// Release these idle executors.
    Kill(Vec<ExecutorId>),
}

#[derive(Debug)]
pub struct Allocator {
    cfg: DynamicAllocation,
    target: u32,
    idle_since: BTreeMap<ExecutorId, Instant>,
}

impl Allocator {
    pub fn new(cfg: DynamicAllocation) -> Self {
        Self {
            target: cfg.initial_executors,
            cfg,
            idle_since: BTreeMap::new(),
        }
    }

    #[cfg(test)]
    pub fn target(&self) -> u32 {
        self.target
    }

    /// `demanded_cores`: pending and running tasks × task cpus; `cores_per_executor`: what
    /// one executor brings; `executors`: the registered executors and whether each is idle.
    pub fn update(
        &mut self,
        now: Instant,
        demanded_cores: u64,
        cores_per_executor: u32,
        executors: &[(ExecutorId, bool)],
    ) -> Vec<AllocAction> {
        let cpe = u64::from(cores_per_executor.max(1));
        let needed = demanded_cores.div_ceil(cpe).min(u64::from(u32::MAX)) as u32;
        let needed = needed.clamp(self.cfg.min_executors, self.cfg.max_executors);
        let mut actions = Vec::new();
        self.idle_since
            .retain(|id, _| executors.iter().any(|(e, idle)| e == id && *idle));
        for (id, idle) in executors {
            if *idle {
                self.idle_since.entry(*id).or_insert(now);
            }
        }
        let expired: Vec<ExecutorId> = self
            .idle_since
            .iter()
            .filter(|(_, since)| now.duration_since(**since) >= self.cfg.idle_timeout)
            .map(|(id, _)| *id)
            .collect();
        let keep = needed.max(self.cfg.min_executors) as usize;
        let removable = executors.len().saturating_sub(keep);
        let kill: Vec<ExecutorId> = expired.into_iter().take(removable).collect();
        let new_target = if kill.is_empty() {
            needed
        } else {
            needed.max((executors.len() - kill.len()) as u32)
        };
        if new_target != self.target {
            self.target = new_target;
            actions.push(AllocAction::SetTotal(new_target));
        }
        if !kill.is_empty() {
            for id in &kill {
                self.idle_since.remove(id);
            }
            actions.push(AllocAction::Kill(kill));
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn alloc(min: u32, max: u32, initial: u32) -> Allocator {
        Allocator::new(DynamicAllocation {
            min_executors: min,
            max_executors: max,
            initial_executors: initial,
            idle_timeout: Duration::from_secs(60),
        })
    }

    #[test]
    fn backlog_raises_the_target_within_bounds() {
        let t0 = Instant::now();
        let mut a = alloc(0, 3, 0);
        assert_eq!(a.update(t0, 0, 2, &[]), vec![]);
        assert_eq!(a.update(t0, 5, 2, &[]), vec![AllocAction::SetTotal(3)]);
        assert_eq!(a.update(t0, 100, 2, &[]), vec![]);
        // The backlog drains: the target falls, running executors stay until idle.
        assert_eq!(
            a.update(t0, 2, 2, &[(0, false), (1, true), (2, true)]),
            vec![AllocAction::SetTotal(1)]
        );
    }

    #[test]
    fn idle_executors_are_released_after_the_timeout_down_to_min() {
        let t0 = Instant::now();
        let mut a = alloc(1, 10, 3);
        let execs = [(0, true), (1, true), (2, true)];
        assert_eq!(a.update(t0, 0, 1, &execs), vec![AllocAction::SetTotal(1)]);
        assert_eq!(a.update(t0 + Duration::from_secs(59), 0, 1, &execs), vec![]);
        assert_eq!(
            a.update(t0 + Duration::from_secs(60), 0, 1, &execs),
            vec![AllocAction::Kill(vec![0, 1])]
        );
        assert_eq!(a.target(), 1);
    }

    #[test]
    fn busy_executors_reset_their_idle_clock() {
        let t0 = Instant::now();
        let mut a = alloc(0, 10, 0);
        a.update(t0, 0, 1, &[(0, true)]);
        a.update(t0 + Duration::from_secs(30), 1, 1, &[(0, false)]);
        assert_eq!(
            a.update(t0 + Duration::from_secs(61), 0, 1, &[(0, true)]),
            vec![AllocAction::SetTotal(0)]
        );
        assert_eq!(
            a.update(t0 + Duration::from_secs(121), 0, 1, &[(0, true)]),
            vec![AllocAction::Kill(vec![0])]
        );
    }
}
