//! The steps of the saga, and the durable timers that guard them.

use core::fmt;
use core::time::Duration;

use serde::{Deserialize, Serialize};

/// One step of the saga: a command sent and awaiting its reply, or a wait for the carrier.
///
/// Forward steps in order: [`ReserveStock`](Self::ReserveStock),
/// [`AuthorizePayment`](Self::AuthorizePayment), [`ScheduleDelivery`](Self::ScheduleDelivery),
/// [`AwaitDispatch`](Self::AwaitDispatch) (the pivot: once dispatched, the saga only goes
/// forward), [`CapturePayment`](Self::CapturePayment), [`CommitStock`](Self::CommitStock),
/// [`AwaitDelivery`](Self::AwaitDelivery). Compensation steps:
/// [`CancelDelivery`](Self::CancelDelivery), [`VoidPayment`](Self::VoidPayment),
/// [`RefundPayment`](Self::RefundPayment), [`ReleaseStock`](Self::ReleaseStock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Step {
    /// Waiting for inventory to reserve the lines.
    ReserveStock,
    /// Waiting for payments to authorize the total.
    AuthorizePayment,
    /// Waiting for delivery to book the carrier.
    ScheduleDelivery,
    /// Waiting for the carrier to pick the parcel up (no command; the carrier acts).
    AwaitDispatch,
    /// Waiting for payments to capture the authorized amount (after dispatch; retried).
    CapturePayment,
    /// Waiting for inventory to commit the reserved stock (after dispatch; retried).
    CommitStock,
    /// Waiting for the carrier to deliver (no command; the carrier acts).
    AwaitDelivery,
    /// Compensation: cancel the delivery (before dispatch).
    CancelDelivery,
    /// Compensation: void the authorization (nothing was captured).
    VoidPayment,
    /// Compensation: refund the captured payment.
    RefundPayment,
    /// Compensation: release the reserved stock.
    ReleaseStock,
}

impl Step {
    /// Every step, forward steps first.
    pub const ALL: [Self; 11] = [
        Self::ReserveStock,
        Self::AuthorizePayment,
        Self::ScheduleDelivery,
        Self::AwaitDispatch,
        Self::CapturePayment,
        Self::CommitStock,
        Self::AwaitDelivery,
        Self::CancelDelivery,
        Self::VoidPayment,
        Self::RefundPayment,
        Self::ReleaseStock,
    ];

    /// The step's name, e.g. `"ReserveStock"` (also its serde form).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::ReserveStock => "ReserveStock",
            Self::AuthorizePayment => "AuthorizePayment",
            Self::ScheduleDelivery => "ScheduleDelivery",
            Self::AwaitDispatch => "AwaitDispatch",
            Self::CapturePayment => "CapturePayment",
            Self::CommitStock => "CommitStock",
            Self::AwaitDelivery => "AwaitDelivery",
            Self::CancelDelivery => "CancelDelivery",
            Self::VoidPayment => "VoidPayment",
            Self::RefundPayment => "RefundPayment",
            Self::ReleaseStock => "ReleaseStock",
        }
    }

    /// Whether a failure or timeout of this step is retried with backoff (and escalated
    /// when the budget is spent) rather than answered with compensation.
    ///
    /// Compensations are retried: there is nothing left to fall back on. Capture and
    /// commit are retried too: they come after the pivot (the parcel left), so undoing
    /// the order is no longer an option.
    #[must_use]
    pub const fn is_retried(self) -> bool {
        match self {
            Self::ReserveStock
            | Self::AuthorizePayment
            | Self::ScheduleDelivery
            | Self::AwaitDispatch
            | Self::AwaitDelivery => false,
            Self::CapturePayment
            | Self::CommitStock
            | Self::CancelDelivery
            | Self::VoidPayment
            | Self::RefundPayment
            | Self::ReleaseStock => true,
        }
    }

    /// Whether this is a compensation step.
    #[must_use]
    pub const fn is_compensation(self) -> bool {
        match self {
            Self::ReserveStock
            | Self::AuthorizePayment
            | Self::ScheduleDelivery
            | Self::AwaitDispatch
            | Self::CapturePayment
            | Self::CommitStock
            | Self::AwaitDelivery => false,
            Self::CancelDelivery | Self::VoidPayment | Self::RefundPayment | Self::ReleaseStock => {
                true
            }
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TimerKind {
    /// The step's deadline: if it fires, the attempt has timed out.
    Deadline,
    /// The end of a backoff: if it fires, the step is attempted again.
    Retry,
}

impl TimerKind {
    /// Every kind.
    pub const ALL: [Self; 2] = [Self::Deadline, Self::Retry];

    /// The kind's name: `"deadline"` or `"retry"`, as stored in `saga_timers.kind` (whose check constraint
    /// allows exactly these) and shown in logs. Parsed back by [`FromStr`](core::str::FromStr).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Deadline => "deadline",
            Self::Retry => "retry",
        }
    }
}

impl fmt::Display for TimerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for TimerKind {
    type Err = UnknownTimerKind;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
            .ok_or_else(|| UnknownTimerKind(name.to_owned()))
    }
}

/// A name that is no [`TimerKind::as_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown timer kind {0:?}")]
pub struct UnknownTimerKind(pub String);

/// Names one timer of a saga: the step, the attempt it belongs to, and its kind.
///
/// For a [`Deadline`](TimerKind::Deadline) `attempt` is the attempt being waited for; for
/// a [`Retry`](TimerKind::Retry) it is the attempt that will be started. A fired timer is
/// fed back as [`SagaInput::Timeout`](crate::SagaInput::Timeout) with its key; a key
/// that is not the saga's [`pending_timer`](crate::OrderSaga::pending_timer) is stale and
/// ignored, so a timer never needs to be deleted for correctness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TimerKey {
    /// The step the timer guards.
    pub step: Step,
    /// The attempt (1 for the first).
    pub attempt: u32,
    /// Deadline or retry.
    pub kind: TimerKind,
}

impl TimerKey {
    /// The deadline of `attempt` of `step`.
    #[must_use]
    pub const fn deadline(step: Step, attempt: u32) -> Self {
        Self {
            step,
            attempt,
            kind: TimerKind::Deadline,
        }
    }

    /// The backoff that ends by starting `attempt` of `step`.
    #[must_use]
    pub const fn retry(step: Step, attempt: u32) -> Self {
        Self {
            step,
            attempt,
            kind: TimerKind::Retry,
        }
    }
}

impl fmt::Display for TimerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} #{}", self.step, self.kind, self.attempt)
    }
}

/// A timer to store durably: fire [`key`](Self::key) `due_after` from the moment the
/// transition that set it commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Timer {
    /// What fires.
    pub key: TimerKey,
    /// When, relative to the commit of the transition.
    pub due_after: Duration,
}

/// What a transition does to the saga's one timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimerChange {
    /// Leave the live timer as it is.
    Keep,
    /// Replace the saga's timer (if any) with this one.
    Set(Timer),
    /// Delete the saga's timer: it reached a terminal state.
    Clear,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timer_kind_reads_back_from_its_name() {
        for kind in TimerKind::ALL {
            assert_eq!(kind.as_str().parse::<TimerKind>(), Ok(kind));
            assert_eq!(kind.to_string(), kind.as_str());
        }
        assert_eq!(TimerKind::Deadline.as_str(), "deadline");
        assert_eq!(TimerKind::Retry.as_str(), "retry");
    }

    #[test]
    fn an_unknown_timer_kind_is_an_error_naming_it() {
        let error = "Retry".parse::<TimerKind>().unwrap_err();
        assert_eq!(error, UnknownTimerKind("Retry".to_owned()));
        assert_eq!(error.to_string(), r#"unknown timer kind "Retry""#);
    }

    #[test]
    fn a_timer_key_shows_its_step_kind_and_attempt() {
        assert_eq!(
            TimerKey::retry(Step::ReleaseStock, 3).to_string(),
            "ReleaseStock retry #3"
        );
    }
}
