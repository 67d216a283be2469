//! [`SagaEvent`]: what the saga persists, and [`Trigger`]: why it compensates.

use domain::{CancelReason, CustomerId, DeliveryId, Money, OrderId, OrderLines, PaymentId};
use domain::{Quantity, Sku};
use serde::{Deserialize, Serialize};

use crate::step::Step;

/// What happened to a saga; the saga's state is the fold of its events
/// ([`replay`](crate::replay)). Serialized with a `"type"` tag equal to
/// [`event_type`](Self::event_type).
///
/// The events of one saga form one stream whose id is the order id; they do not repeat
/// it. Every event type is at version [`SagaEvent::VERSION`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum SagaEvent {
    /// `SagaStarted` v1: the order to fulfil.
    #[serde(rename = "SagaStarted")]
    Started {
        /// The order.
        order_id: OrderId,
        /// Who ordered.
        customer_id: CustomerId,
        /// What was ordered.
        lines: OrderLines,
        /// The order total.
        total: Money,
    },
    /// `StockReserved` v1.
    StockReserved,
    /// `PaymentAuthorized` v1.
    PaymentAuthorized {
        /// The payment.
        payment_id: PaymentId,
    },
    /// `DeliveryScheduled` v1.
    DeliveryScheduled {
        /// The delivery.
        delivery_id: DeliveryId,
    },
    /// `DeliveryDispatched` v1: the pivot; from here the saga only goes forward.
    DeliveryDispatched,
    /// `PaymentCaptured` v1.
    PaymentCaptured,
    /// `StockCommitted` v1. Ends the settlement: the saga then waits for the delivery,
    /// completes (delivered meanwhile) or refunds (failed meanwhile).
    StockCommitted,
    /// `DeliveryCompleted` v1: the parcel arrived.
    DeliveryCompleted,
    /// `DeliveryFailed` v1: the parcel failed while payment and stock were still being
    /// settled (recorded; acted on once settled). A failure at any other time starts
    /// compensation directly ([`CompensationStarted`](Self::CompensationStarted)).
    DeliveryFailed {
        /// Why.
        reason: String,
    },
    /// `CompensationStarted` v1: the saga undoes what was done, in reverse order, and
    /// will cancel the order with [`Trigger::cancel_reason`].
    CompensationStarted {
        /// What made it compensate.
        trigger: Trigger,
    },
    /// `DeliveryCancelled` v1 (compensation step done).
    DeliveryCancelled,
    /// `PaymentVoided` v1 (compensation step done).
    PaymentVoided,
    /// `PaymentRefunded` v1 (compensation step done).
    PaymentRefunded,
    /// `StockReleased` v1 (compensation step done).
    StockReleased,
    /// `StepAttemptFailed` v1: an attempt of a retried step failed or timed out; a retry
    /// follows after the backoff.
    StepAttemptFailed {
        /// The step.
        step: Step,
        /// The attempt that failed.
        attempt: u32,
        /// Why.
        error: String,
    },
    /// `StepRetried` v1: the backoff ended and the step's command is sent again.
    StepRetried {
        /// The step.
        step: Step,
        /// The attempt that starts (2 or more).
        attempt: u32,
    },
    /// `SagaEscalated` v1: the saga gave up and needs a person. Terminal, unless an operator
    /// retries the step ([`Resumed`](Self::Resumed)).
    #[serde(rename = "SagaEscalated")]
    Escalated {
        /// The step that could not be done.
        step: Step,
        /// How many attempts were made.
        attempts: u32,
        /// The last failure.
        last_error: String,
        /// Whether retrying the step can help: true when it ran out of attempts, false when it
        /// cannot be done at all (a parcel dispatched before its cancellation). Absent in events
        /// written before it existed, which all ran out of attempts.
        #[serde(default = "retryable_by_default")]
        retryable: bool,
    },
    /// `SagaResumed` v1: an operator retries the step the saga escalated on, with a fresh
    /// retry budget; the saga is back where it escalated and sends the step's command again.
    #[serde(rename = "SagaResumed")]
    Resumed {
        /// The step retried.
        step: Step,
    },
}

const fn retryable_by_default() -> bool {
    true
}

impl SagaEvent {
    /// The schema version of every saga event type.
    pub const VERSION: u16 = 1;

    /// Every event type name.
    pub const EVENT_TYPES: &'static [&'static str] = &[
        "SagaStarted",
        "StockReserved",
        "PaymentAuthorized",
        "DeliveryScheduled",
        "DeliveryDispatched",
        "PaymentCaptured",
        "StockCommitted",
        "DeliveryCompleted",
        "DeliveryFailed",
        "CompensationStarted",
        "DeliveryCancelled",
        "PaymentVoided",
        "PaymentRefunded",
        "StockReleased",
        "StepAttemptFailed",
        "StepRetried",
        "SagaEscalated",
        "SagaResumed",
    ];

    /// The event type name, e.g. `"SagaStarted"`; also the `"type"` tag of the serde form.
    #[must_use]
    pub const fn event_type(&self) -> &'static str {
        match self {
            Self::Started { .. } => "SagaStarted",
            Self::StockReserved => "StockReserved",
            Self::PaymentAuthorized { .. } => "PaymentAuthorized",
            Self::DeliveryScheduled { .. } => "DeliveryScheduled",
            Self::DeliveryDispatched => "DeliveryDispatched",
            Self::PaymentCaptured => "PaymentCaptured",
            Self::StockCommitted => "StockCommitted",
            Self::DeliveryCompleted => "DeliveryCompleted",
            Self::DeliveryFailed { .. } => "DeliveryFailed",
            Self::CompensationStarted { .. } => "CompensationStarted",
            Self::DeliveryCancelled => "DeliveryCancelled",
            Self::PaymentVoided => "PaymentVoided",
            Self::PaymentRefunded => "PaymentRefunded",
            Self::StockReleased => "StockReleased",
            Self::StepAttemptFailed { .. } => "StepAttemptFailed",
            Self::StepRetried { .. } => "StepRetried",
            Self::Escalated { .. } => "SagaEscalated",
            Self::Resumed { .. } => "SagaResumed",
        }
    }

    /// The schema version of this event: [`SagaEvent::VERSION`].
    #[must_use]
    pub const fn version(&self) -> u16 {
        Self::VERSION
    }
}

/// Why a saga compensates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Trigger {
    /// Inventory could not reserve a line.
    StockRejected {
        /// The SKU short of stock.
        sku: Sku,
        /// What the order asked for.
        requested: Quantity,
        /// What was available.
        available: u32,
    },
    /// The payment was declined.
    PaymentDeclined {
        /// What the provider said.
        reason: String,
    },
    /// The delivery could not be booked, or failed.
    DeliveryFailed {
        /// Why.
        reason: String,
    },
    /// A step did not answer in time.
    TimedOut {
        /// The step.
        step: Step,
        /// Its attempt.
        attempt: u32,
    },
    /// A step's service reported a technical failure.
    StepFailed {
        /// The step.
        step: Step,
        /// What went wrong.
        error: String,
    },
}

impl Trigger {
    /// The reason the order will be cancelled with. A technical failure counts as a
    /// timeout: the domain has no other reason for "the step did not succeed".
    #[must_use]
    pub const fn cancel_reason(&self) -> CancelReason {
        match self {
            Self::StockRejected { .. } => CancelReason::OutOfStock,
            Self::PaymentDeclined { .. } => CancelReason::PaymentDeclined,
            Self::DeliveryFailed { .. } => CancelReason::DeliveryFailed,
            Self::TimedOut { .. } | Self::StepFailed { .. } => CancelReason::Timeout,
        }
    }

    /// Whether the step in flight may have taken effect anyway (it timed out or failed
    /// without a clear answer), so that compensation must undo it too.
    #[must_use]
    pub const fn step_may_have_happened(&self) -> bool {
        match self {
            Self::StockRejected { .. }
            | Self::PaymentDeclined { .. }
            | Self::DeliveryFailed { .. } => false,
            Self::TimedOut { .. } | Self::StepFailed { .. } => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_escalation_written_before_retryable_existed_reads_as_retryable() {
        let stored = serde_json::json!({
            "type": "SagaEscalated", "step": "RefundPayment", "attempts": 5, "last_error": "down"
        });
        let SagaEvent::Escalated { retryable, .. } = serde_json::from_value(stored).unwrap() else {
            panic!("not an escalation")
        };
        assert!(retryable);
        let resumed = SagaEvent::Resumed {
            step: Step::RefundPayment,
        };
        let json = serde_json::to_value(&resumed).unwrap();
        assert_eq!(json["type"], resumed.event_type());
        assert_eq!(serde_json::from_value::<SagaEvent>(json).unwrap(), resumed);
    }
}
