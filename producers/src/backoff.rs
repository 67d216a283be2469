//! [`Backoff`]: the one retry wait of the pipeline, used by the relay, the consumer runtime and the sagas.
//!
//! A doubling wait capped at a maximum, computed from the attempt number so that callers keep no running
//! state and no attempt count can overflow it. [`Backoff::jittered`] spreads retries of many clients
//! that failed together; the plain [`Backoff::after`] is for waits that must be reproducible (a saga's
//! timers, the relay's held-back keys).
//!
//! ```
//! use std::time::Duration;
//! use producers::backoff::Backoff;
//!
//! let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
//! assert_eq!(backoff.after(1), Duration::from_millis(100));
//! assert_eq!(backoff.after(3), Duration::from_millis(400));
//! assert_eq!(backoff.after(u32::MAX), Duration::from_secs(1));
//! ```

use std::time::Duration;

use rand::Rng as _;

/// `first`, doubled after each further failure, never more than `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure.
    pub first: Duration,
    /// The longest wait, however many failures.
    pub max: Duration,
}

impl Backoff {
    #[must_use]
    pub const fn new(first: Duration, max: Duration) -> Self {
        Self { first, max }
    }

    /// The wait after failed attempt `attempt` (1-based; 0 counts as 1): `first × 2^(attempt-1)`, capped
    /// at `max` (and `max` when `first` is above it). Never overflows, whatever `attempt`.
    #[must_use]
    pub fn after(&self, attempt: u32) -> Duration {
        let mut wait = self.first.min(self.max);
        // At most ~100 doublings take even 1 ns past any Duration: the loop ends long before `attempt`.
        for _ in 1..attempt {
            if wait >= self.max || wait.is_zero() {
                break;
            }
            wait = wait.saturating_mul(2).min(self.max);
        }
        wait
    }

    /// [`after`](Self::after) with [`jitter`]: between half and one and a half times the wait, so that
    /// clients that failed together do not retry together. It may exceed `max` by up to half.
    #[must_use]
    pub fn jittered(&self, attempt: u32) -> Duration {
        jitter(self.after(attempt))
    }
}

/// `wait` scaled by a random factor in [0.5, 1.5); [`Duration::MAX`] where that would not fit.
#[must_use]
pub fn jitter(wait: Duration) -> Duration {
    let factor = rand::rng().random_range(0.5..1.5);
    Duration::try_from_secs_f64(wait.as_secs_f64() * factor).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn doubles_from_the_first_wait_up_to_the_cap() {
        let backoff = Backoff::new(200 * MS, Duration::from_secs(1));
        let waits: Vec<Duration> = (1..=5).map(|n| backoff.after(n)).collect();
        assert_eq!(waits, [200 * MS, 400 * MS, 800 * MS, 1000 * MS, 1000 * MS]);
        assert_eq!(backoff.after(0), 200 * MS, "attempt 0 counts as the first");
    }

    #[test]
    fn a_huge_attempt_count_gives_the_cap_without_overflow() {
        let backoff = Backoff::new(Duration::from_nanos(1), Duration::MAX);
        assert_eq!(backoff.after(u32::MAX), Duration::MAX);
        assert_eq!(backoff.after(33), Duration::from_nanos(1 << 32));
        let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
        assert_eq!(backoff.after(u32::MAX), Duration::from_secs(300));
        let huge = Backoff::new(Duration::MAX, Duration::MAX);
        assert_eq!(huge.after(u32::MAX), Duration::MAX);
        assert!(huge.jittered(u32::MAX) >= Duration::from_secs(u64::MAX / 4));
    }

    #[test]
    fn a_first_wait_above_the_cap_or_zero_stays_there() {
        assert_eq!(
            Backoff::new(Duration::from_secs(5), Duration::from_secs(1)).after(1),
            Duration::from_secs(1)
        );
        assert_eq!(
            Backoff::new(Duration::ZERO, Duration::from_secs(1)).after(u32::MAX),
            Duration::ZERO
        );
    }

    #[test]
    fn jitter_stays_within_half_and_one_and_a_half_times_the_wait() {
        let backoff = Backoff::new(100 * MS, Duration::from_secs(10));
        let waits: Vec<Duration> = (0..1000).map(|_| backoff.jittered(3)).collect();
        for wait in &waits {
            assert!(*wait >= 200 * MS && *wait < 600 * MS, "{wait:?}");
        }
        assert!(
            waits.iter().any(|w| *w != waits[0]),
            "a thousand waits are not all the same"
        );
    }
}
