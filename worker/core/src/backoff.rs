//! The two waits a worker makes: reconnecting to its master, and relaunching a supervised
//! driver.

/// Exponential backoff with jitter: 100 ms doubling up to `max_ms`, each wait scaled by a
/// random factor in [0.5, 1.5) so a fleet of workers does not reconnect in lockstep.
#[derive(Clone, Debug)]
pub struct Backoff {
    next_ms: u64,
    max_ms: u64,
    rng: fastrand::Rng,
}

const FIRST_MS: u64 = 100;

impl Backoff {
    pub fn new(max_ms: u64, seed: u64) -> Self {
        Self {
            next_ms: FIRST_MS,
            max_ms,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    pub fn reset(&mut self) {
        self.next_ms = FIRST_MS;
    }

    pub fn next_wait_ms(&mut self) -> u64 {
        let base = self.next_ms.min(self.max_ms);
        self.next_ms = self.next_ms.saturating_mul(2).min(self.max_ms);
        (base as f64 * (0.5 + self.rng.f64())) as u64
    }
}

/// Spark's `--supervise` backoff: 1, 2, 4, 8 … s (at most 60 s), back to 1 s after a run
/// longer than 5 s.
pub fn next_supervise_backoff_ms(current_ms: u64, last_run_ms: u64) -> u64 {
    if last_run_ms > 5_000 {
        1_000
    } else {
        current_ms.saturating_mul(2).min(60_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_with_jitter() {
        let mut b = Backoff::new(2_000, 7);
        let waits: Vec<u64> = (0..10).map(|_| b.next_wait_ms()).collect();
        assert!((50..150).contains(&waits[0]), "{waits:?}");
        assert!(waits.iter().all(|w| *w < 3_000), "{waits:?}");
        assert!(waits[9] >= 1_000, "{waits:?}");
        b.reset();
        assert!(b.next_wait_ms() < 150);
    }

    #[test]
    fn supervise_backoff_doubles_and_resets() {
        assert_eq!(next_supervise_backoff_ms(1_000, 0), 2_000);
        assert_eq!(next_supervise_backoff_ms(2_000, 1_000), 4_000);
        assert_eq!(next_supervise_backoff_ms(8_000, 6_000), 1_000);
        assert_eq!(next_supervise_backoff_ms(60_000, 0), 60_000);
    }
}
