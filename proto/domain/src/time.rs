//! Time as the cores see it, and the one place that reads the clocks.
//!
//! The cores never read a clock: every event carries a [`Now`], made by the IO shells with a
//! [`Clock`]. [`wall_ms`] is for shells that only need the wall clock (ids, displayed times).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A monotonic clock for timeouts and the wall clock for ids and displayed timestamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    pub mono_ms: u64,
    pub wall_ms: i64,
}

impl Now {
    pub fn plus_ms(self, ms: u64) -> Now {
        Now {
            mono_ms: self.mono_ms + ms,
            wall_ms: self.wall_ms + ms as i64,
        }
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Reads both clocks; monotonic time counts from the clock's creation.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }

    pub fn now(&self) -> Now {
        Now {
            mono_ms: self.start.elapsed().as_millis() as u64,
            wall_ms: wall_ms(),
        }
    }

    /// The monotonic instant of a core deadline (`mono_ms`), for the shell's timers.
    pub fn instant_at(&self, mono_ms: u64) -> Instant {
        self.start + std::time::Duration::from_millis(mono_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_moves_both_clocks() {
        let n = Now {
            mono_ms: 5,
            wall_ms: 1_000,
        };
        assert_eq!(
            n.plus_ms(10),
            Now {
                mono_ms: 15,
                wall_ms: 1_010
            }
        );
    }

    #[test]
    fn clock_is_monotonic_and_maps_deadlines_back() {
        let c = Clock::new();
        let a = c.now();
        let b = c.now();
        assert!(b.mono_ms >= a.mono_ms);
        assert!(c.instant_at(b.mono_ms) <= Instant::now());
        assert!(a.wall_ms > 1_600_000_000_000);
    }
}
