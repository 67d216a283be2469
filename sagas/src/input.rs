//! [`SagaInput`]: what drives a saga.

use domain::{CustomerId, DeliveryId, OrderId, OrderLines, PaymentId, Quantity, Sku};

use crate::step::{Step, TimerKey};

/// What drives a saga: its start, the services' replies, and its fired timers.
///
/// Replies carry no order id: the caller routes them to the saga by the record's key
/// (the order id) and correlation id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SagaInput {
    /// An order was placed (`OrderPlaced`): start its saga.
    Start {
        /// The order, and the saga's key.
        order_id: OrderId,
        /// Who ordered.
        customer_id: CustomerId,
        /// What was ordered; the total is theirs.
        lines: OrderLines,
    },
    /// Inventory reserved every line.
    StockReserved,
    /// Inventory could not reserve a line.
    StockRejected {
        /// The SKU short of stock.
        sku: Sku,
        /// What the order asked for.
        requested: Quantity,
        /// What was available.
        available: u32,
    },
    /// Inventory released the order's reservation.
    StockReleased,
    /// Inventory committed the order's reservation.
    StockCommitted,
    /// Payments authorized the total.
    PaymentAuthorized {
        /// The payment.
        payment_id: PaymentId,
    },
    /// Payments (the provider) declined.
    PaymentDeclined {
        /// What the provider said.
        reason: String,
    },
    /// Payments captured the authorized amount.
    PaymentCaptured,
    /// Payments voided the authorization.
    PaymentVoided,
    /// Payments refunded the captured amount.
    PaymentRefunded,
    /// Delivery booked the carrier.
    DeliveryScheduled {
        /// The delivery.
        delivery_id: DeliveryId,
    },
    /// The carrier picked the parcel up.
    DeliveryDispatched,
    /// The parcel reached the customer.
    DeliveryCompleted,
    /// The delivery could not be booked, or failed (before or after dispatch).
    DeliveryFailed {
        /// Why.
        reason: String,
    },
    /// Delivery cancelled the booking.
    DeliveryCancelled,
    /// A durable timer fired.
    Timeout(TimerKey),
    /// A service could not carry out the command of `step` (a technical failure, not a
    /// business "no": those have their own replies). Retried steps are retried; for the
    /// others it counts as the step's timeout.
    #[doc(alias = "CompensationFailed")]
    StepFailed {
        /// The step whose command failed.
        step: Step,
        /// What went wrong.
        error: String,
    },
    /// An operator retries the step an escalated saga gave up on (`NeedsAttention`), with a
    /// fresh retry budget. Not a message from a service: it comes from `orderflow saga retry`
    /// or the console.
    Resume,
}

impl SagaInput {
    /// The input's name, e.g. `"StockReserved"`.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Start { .. } => "Start",
            Self::StockReserved => "StockReserved",
            Self::StockRejected { .. } => "StockRejected",
            Self::StockReleased => "StockReleased",
            Self::StockCommitted => "StockCommitted",
            Self::PaymentAuthorized { .. } => "PaymentAuthorized",
            Self::PaymentDeclined { .. } => "PaymentDeclined",
            Self::PaymentCaptured => "PaymentCaptured",
            Self::PaymentVoided => "PaymentVoided",
            Self::PaymentRefunded => "PaymentRefunded",
            Self::DeliveryScheduled { .. } => "DeliveryScheduled",
            Self::DeliveryDispatched => "DeliveryDispatched",
            Self::DeliveryCompleted => "DeliveryCompleted",
            Self::DeliveryFailed { .. } => "DeliveryFailed",
            Self::DeliveryCancelled => "DeliveryCancelled",
            Self::Timeout(_) => "Timeout",
            Self::StepFailed { .. } => "StepFailed",
            Self::Resume => "Resume",
        }
    }
}
