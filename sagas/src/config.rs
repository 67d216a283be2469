//! [`SagaConfig`]: per-step timeouts and the retry budget.

use core::time::Duration;

use producers::backoff::Backoff;

use crate::step::{Step, Timer, TimerKey, TimerKind};

/// How long the saga waits, and how often it retries. The machine only reads it; the
/// same config need not be used for a replay (timers are not part of the events).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SagaConfig {
    /// How long each step may take.
    pub timeouts: StepTimeouts,
    /// Retries of the retried steps (compensations, capture, commit).
    pub retry: RetryPolicy,
}

impl SagaConfig {
    /// The timer for `key`: the step's timeout for a deadline, the backoff before
    /// `key.attempt` for a retry.
    #[must_use]
    pub fn timer(&self, key: TimerKey) -> Timer {
        let due_after = match key.kind {
            TimerKind::Deadline => self.timeouts.of(key.step),
            TimerKind::Retry => self.retry.backoff(key.attempt.saturating_sub(1)),
        };
        Timer { key, due_after }
    }
}

/// How long each step may take before it times out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepTimeouts {
    /// [`Step::ReserveStock`]. Default 30 s.
    pub reserve_stock: Duration,
    /// [`Step::AuthorizePayment`]. Default 60 s.
    pub authorize_payment: Duration,
    /// [`Step::ScheduleDelivery`]. Default 60 s.
    pub schedule_delivery: Duration,
    /// [`Step::AwaitDispatch`]: scheduling to pickup. Default 72 h.
    pub dispatch: Duration,
    /// [`Step::CapturePayment`], per attempt. Default 60 s.
    pub capture_payment: Duration,
    /// [`Step::CommitStock`], per attempt. Default 30 s.
    pub commit_stock: Duration,
    /// [`Step::AwaitDelivery`]: the time after which a parcel counts as lost. Default 30 days.
    pub delivery: Duration,
    /// Every compensation step, per attempt. Default 60 s.
    pub compensation: Duration,
}

impl StepTimeouts {
    /// The timeout of `step`.
    #[must_use]
    pub const fn of(&self, step: Step) -> Duration {
        match step {
            Step::ReserveStock => self.reserve_stock,
            Step::AuthorizePayment => self.authorize_payment,
            Step::ScheduleDelivery => self.schedule_delivery,
            Step::AwaitDispatch => self.dispatch,
            Step::CapturePayment => self.capture_payment,
            Step::CommitStock => self.commit_stock,
            Step::AwaitDelivery => self.delivery,
            Step::CancelDelivery | Step::VoidPayment | Step::RefundPayment | Step::ReleaseStock => {
                self.compensation
            }
        }
    }
}

impl Default for StepTimeouts {
    fn default() -> Self {
        const MINUTE: Duration = Duration::from_secs(60);
        const HOUR: Duration = Duration::from_secs(60 * 60);
        Self {
            reserve_stock: Duration::from_secs(30),
            authorize_payment: MINUTE,
            schedule_delivery: MINUTE,
            dispatch: HOUR.saturating_mul(72),
            capture_payment: MINUTE,
            commit_stock: Duration::from_secs(30),
            delivery: HOUR.saturating_mul(24 * 30),
            compensation: MINUTE,
        }
    }
}

/// The retry budget of a retried step: at most [`max_attempts`](Self::max_attempts)
/// attempts in all, with a doubling backoff between them, capped at
/// [`max_backoff`](Self::max_backoff).
///
/// The backoff is deterministic; the timer store may add jitter when it turns
/// `due_after` into a due time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included. 0 is taken as 1. Default 5.
    pub max_attempts: u32,
    /// The wait after the first failed attempt. Default 1 s.
    pub first_backoff: Duration,
    /// The longest wait. Default 5 min.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// Attempts in all (at least 1).
    #[must_use]
    pub const fn attempts(&self) -> u32 {
        if self.max_attempts == 0 {
            1
        } else {
            self.max_attempts
        }
    }

    /// The wait after attempt `failed` (1-based) failed: `first_backoff × 2^(failed-1)`,
    /// capped at `max_backoff` ([`Backoff::after`], without jitter). Never overflows.
    #[must_use]
    pub fn backoff(&self, failed: u32) -> Duration {
        Backoff::new(self.first_backoff, self.max_backoff).after(failed)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(5 * 60),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let policy = RetryPolicy {
            max_attempts: 10,
            first_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(20),
        };
        let waits: Vec<u64> = (1..=6).map(|n| policy.backoff(n).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 20, 20]);
        assert_eq!(policy.backoff(u32::MAX), Duration::from_secs(20));
        assert_eq!(policy.backoff(0), Duration::from_secs(2));
    }

    #[test]
    fn zero_attempts_means_one() {
        let policy = RetryPolicy {
            max_attempts: 0,
            ..RetryPolicy::default()
        };
        assert_eq!(policy.attempts(), 1);
        assert_eq!(RetryPolicy::default().attempts(), 5);
    }

    #[test]
    fn timers_use_the_step_timeout_or_the_backoff() {
        let config = SagaConfig::default();
        assert_eq!(
            config
                .timer(TimerKey::deadline(Step::ReserveStock, 1))
                .due_after,
            Duration::from_secs(30)
        );
        assert_eq!(
            config
                .timer(TimerKey::deadline(Step::ReleaseStock, 3))
                .due_after,
            Duration::from_secs(60)
        );
        // The retry that starts attempt 3 waits the backoff after attempt 2.
        assert_eq!(
            config
                .timer(TimerKey::retry(Step::ReleaseStock, 3))
                .due_after,
            Duration::from_secs(2)
        );
        for step in Step::ALL {
            assert!(!config.timeouts.of(step).is_zero(), "{step}");
        }
    }
}
