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
        let kind = match self.kind {
            TimerKind::Deadline => "deadline",
            TimerKind::Retry => "retry",
        };
        write!(f, "{} {kind} #{}", self.step, self.attempt)
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
