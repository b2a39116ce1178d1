//! Spark's executor placement (`Master.scheduleExecutorsOnWorkers`) as a pure function.
//!
//! Given what one application still wants and what the usable workers offer, decide how
//! many cores each worker gives it. Cores are handed out in blocks of `cores_per_executor`
//! (1 when unset). With `spread_out` one block per worker per round (round-robin), otherwise
//! each worker is filled before moving on. Memory and the executor limit are checked only
//! when a block would start a *new* executor; when `cores_per_executor` is unset a worker
//! hosts at most one executor of this app per round, holding every core it was granted.

/// What one usable worker offers (already filtered and ordered by the caller).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offer {
    pub cores_free: u32,
    pub memory_free_mb: u64,
}

/// What the application still asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ask {
    /// Requested cores not granted yet (`spark.cores.max` − granted).
    pub cores_left: u32,
    pub cores_per_executor: Option<u32>,
    pub memory_per_executor_mb: u64,
    /// Executors the application already has.
    pub existing_executors: u32,
    /// Dynamic-allocation limit on the total number of executors.
    pub executor_limit: u32,
}

/// Cores assigned to each offer, index for index.
pub fn schedule_executors_on_workers(ask: &Ask, offers: &[Offer], spread_out: bool) -> Vec<u32> {
    let min_cores = ask.cores_per_executor.unwrap_or(1).max(1);
    let one_executor_per_worker = ask.cores_per_executor.is_none();
    let n = offers.len();
    let mut assigned_cores = vec![0u32; n];
    let mut assigned_execs = vec![0u32; n];
    let total_free: u64 = offers.iter().map(|o| u64::from(o.cores_free)).sum();
    let mut cores_to_assign = u64::from(ask.cores_left).min(total_free);

    let can_launch = |pos: usize,
                      cores_to_assign: u64,
                      assigned_cores: &[u32],
                      assigned_execs: &[u32]|
     -> bool {
        let keep_scheduling = cores_to_assign >= u64::from(min_cores);
        let enough_cores = offers[pos].cores_free - assigned_cores[pos] >= min_cores;
        let launching_new = !one_executor_per_worker || assigned_execs[pos] == 0;
        if launching_new {
            let assigned_memory = u64::from(assigned_execs[pos]) * ask.memory_per_executor_mb;
            let enough_memory = offers[pos]
                .memory_free_mb
                .checked_sub(assigned_memory)
                .is_some_and(|left| left >= ask.memory_per_executor_mb);
            let total_execs: u64 = assigned_execs.iter().map(|&e| u64::from(e)).sum::<u64>()
                + u64::from(ask.existing_executors);
            let under_limit = total_execs < u64::from(ask.executor_limit);
            keep_scheduling && enough_cores && enough_memory && under_limit
        } else {
            keep_scheduling && enough_cores
        }
    };

    let mut free: Vec<usize> = (0..n)
        .filter(|&p| can_launch(p, cores_to_assign, &assigned_cores, &assigned_execs))
        .collect();
    while !free.is_empty() {
        for &pos in &free {
            let mut keep = true;
            while keep && can_launch(pos, cores_to_assign, &assigned_cores, &assigned_execs) {
                cores_to_assign -= u64::from(min_cores);
                assigned_cores[pos] += min_cores;
                if one_executor_per_worker {
                    assigned_execs[pos] = 1;
                } else {
                    assigned_execs[pos] += 1;
                }
                if spread_out {
                    keep = false;
                }
            }
        }
        free.retain(|&p| can_launch(p, cores_to_assign, &assigned_cores, &assigned_execs));
    }
    assigned_cores
}

/// Splits the cores a worker granted into executor sizes (Spark's
/// `allocateWorkerResourceToExecutors`).
pub fn executors_for(assigned_cores: u32, cores_per_executor: Option<u32>) -> Vec<u32> {
    match cores_per_executor {
        None if assigned_cores > 0 => vec![assigned_cores],
        None => vec![],
        Some(c) if c > 0 => vec![c; (assigned_cores / c) as usize],
        Some(_) => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn offers(cores: &[u32], mem: u64) -> Vec<Offer> {
        cores
            .iter()
            .map(|&c| Offer {
                cores_free: c,
                memory_free_mb: mem,
            })
            .collect()
    }

    fn ask(cores_left: u32, cpe: Option<u32>, mem: u64) -> Ask {
        Ask {
            cores_left,
            cores_per_executor: cpe,
            memory_per_executor_mb: mem,
            existing_executors: 0,
            executor_limit: u32::MAX,
        }
    }

    #[test]
    fn spread_out_balances_four_single_core_executors() {
        let got =
            schedule_executors_on_workers(&ask(4, Some(1), 512), &offers(&[4, 4], 4096), true);
        assert_eq!(got, vec![2, 2]);
    }

    #[test]
    fn consolidate_packs_the_first_worker() {
        let got =
            schedule_executors_on_workers(&ask(4, Some(1), 512), &offers(&[4, 4], 4096), false);
        assert_eq!(got, vec![4, 0]);
    }

    #[test]
    fn unset_executor_cores_takes_all_granted_cores_in_one_executor() {
        let got =
            schedule_executors_on_workers(&ask(u32::MAX, None, 512), &offers(&[2, 3], 4096), true);
        assert_eq!(got, vec![2, 3]);
        assert_eq!(executors_for(3, None), vec![3]);
        assert_eq!(executors_for(4, Some(2)), vec![2, 2]);
        assert_eq!(executors_for(0, None), Vec::<u32>::new());
    }

    #[test]
    fn memory_limits_the_number_of_executors() {
        // 3 x 1 GiB executors do not fit in 2.5 GiB.
        let got = schedule_executors_on_workers(&ask(8, Some(1), 1024), &offers(&[8], 2560), false);
        assert_eq!(got, vec![2]);
    }

    #[test]
    fn executor_limit_is_respected() {
        let mut a = ask(8, Some(1), 100);
        a.executor_limit = 3;
        a.existing_executors = 1;
        let got = schedule_executors_on_workers(&a, &offers(&[4, 4], 4096), true);
        assert_eq!(got.iter().sum::<u32>(), 2);
        a.executor_limit = 0;
        a.existing_executors = 0;
        assert_eq!(
            schedule_executors_on_workers(&a, &offers(&[4, 4], 4096), true),
            vec![0, 0]
        );
    }

    #[test]
    fn blocks_smaller_than_cores_per_executor_are_not_used() {
        let got =
            schedule_executors_on_workers(&ask(10, Some(3), 10), &offers(&[5, 2], 4096), true);
        assert_eq!(got, vec![3, 0]);
    }

    proptest! {
        #[test]
        fn never_overcommits(
            cores in proptest::collection::vec(0u32..16, 0..12),
            mems in proptest::collection::vec(0u64..8192, 12),
            cores_left in 0u32..64,
            cpe in proptest::option::of(1u32..5),
            mem in 1u64..3000,
            limit in 0u32..20,
            existing in 0u32..5,
            spread in any::<bool>(),
        ) {
            let offers: Vec<Offer> = cores.iter().zip(mems.iter()).map(|(&c, &m)| Offer { cores_free: c, memory_free_mb: m }).collect();
            let a = Ask { cores_left, cores_per_executor: cpe, memory_per_executor_mb: mem, existing_executors: existing, executor_limit: limit };
            let got = schedule_executors_on_workers(&a, &offers, spread);
            prop_assert_eq!(got.len(), offers.len());
            let total: u32 = got.iter().sum();
            prop_assert!(total <= cores_left);
            let mut new_execs = 0u32;
            for (g, o) in got.iter().zip(offers.iter()) {
                prop_assert!(*g <= o.cores_free);
                let execs = executors_for(*g, cpe);
                // every executor respects its size, and the worker's memory is not overcommitted
                prop_assert_eq!(execs.iter().sum::<u32>(), *g);
                prop_assert!(execs.len() as u64 * mem <= o.memory_free_mb);
                if let Some(c) = cpe { prop_assert_eq!(g % c, 0); }
                new_execs += execs.len() as u32;
            }
            if new_execs > 0 {
                prop_assert!(new_execs + existing <= limit);
            }
        }

        #[test]
        fn spread_out_is_balanced(n in 1usize..10, per in 1u32..8, want in 1u32..40) {
            // identical workers, plenty of memory: per-worker grants differ by at most one block
            let offers = offers(&vec![per; n], 1 << 30);
            let got = schedule_executors_on_workers(&ask(want, Some(1), 1), &offers, true);
            let max = *got.iter().max().unwrap_or(&0);
            let min = *got.iter().min().unwrap_or(&0);
            prop_assert!(max - min <= 1);
            prop_assert_eq!(got.iter().sum::<u32>(), want.min(per * n as u32));
        }

        #[test]
        fn consolidate_fills_in_order(n in 1usize..10, per in 1u32..8, want in 1u32..40) {
            let offers = offers(&vec![per; n], 1 << 30);
            let got = schedule_executors_on_workers(&ask(want, Some(1), 1), &offers, false);
            // at most one partially filled worker, and it comes after the full ones
            let mut seen_partial = false;
            for g in &got {
                if seen_partial { prop_assert_eq!(*g, 0); }
                if *g < per { seen_partial = true; }
            }
            prop_assert_eq!(got.iter().sum::<u32>(), want.min(per * n as u32));
        }

        #[test]
        fn idempotent(cores in proptest::collection::vec(0u32..16, 0..8), want in 0u32..40, spread in any::<bool>()) {
            let o = offers(&cores, 1 << 20);
            let a = ask(want, Some(1), 64);
            prop_assert_eq!(schedule_executors_on_workers(&a, &o, spread), schedule_executors_on_workers(&a, &o, spread));
        }
    }
}
