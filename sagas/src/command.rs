//! [`SagaCommand`]: what the saga asks of the services.

use domain::{
    CancelReason, CustomerId, DeliveryId, Money, OrderId, OrderLines, PaymentId, Service,
};
use serde::{Deserialize, Serialize};

/// A command to a service. Every command is about the saga's order (see
/// [`OutgoingCommand::order_id`], also the Kafka key).
///
/// # What services must do (the contract the saga relies on)
/// - Answer each command with its reply ([`SagaInput`](crate::SagaInput)), or with
///   [`SagaInput::StepFailed`](crate::SagaInput::StepFailed) if it could not be done.
/// - Treat repeats as harmless: a command may be sent again (a retry, with a higher
///   `attempt`) after it already took effect; answer with the same success reply.
/// - Compensations undo "whatever this order holds": releasing stock the order does not
///   hold, voiding a payment that was never authorized or cancelling a delivery that was
///   never booked succeeds with the usual reply. The saga sends them when a forward
///   step timed out and it cannot know whether the step took effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum SagaCommand {
    /// Reserve the lines' quantities.
    ReserveStock {
        /// What to reserve.
        lines: OrderLines,
    },
    /// Give the order's reservation back (compensation).
    ReleaseStock,
    /// The order was dispatched: its reserved units leave the warehouse.
    CommitStock,
    /// Authorize the order total.
    AuthorizePayment {
        /// Who pays.
        customer_id: CustomerId,
        /// The order total.
        amount: Money,
    },
    /// Capture the authorized amount.
    CapturePayment {
        /// The authorized payment.
        payment_id: PaymentId,
    },
    /// Void the order's authorization (compensation). `payment_id` is `None` when the
    /// authorization timed out: void whatever the order holds.
    VoidPayment {
        /// The payment, when known.
        payment_id: Option<PaymentId>,
    },
    /// Refund the captured payment (compensation after dispatch).
    RefundPayment {
        /// The captured payment.
        payment_id: PaymentId,
        /// The amount to refund: the captured total.
        amount: Money,
    },
    /// Book a delivery.
    ScheduleDelivery {
        /// To whom.
        customer_id: CustomerId,
        /// What to ship.
        lines: OrderLines,
    },
    /// Cancel the order's delivery before dispatch (compensation). `delivery_id` is
    /// `None` when scheduling timed out: cancel whatever the order holds.
    CancelDelivery {
        /// The delivery, when known.
        delivery_id: Option<DeliveryId>,
    },
    /// Mark the order fulfilled (the saga's last command on success).
    CompleteOrder,
    /// Cancel the order (the saga's last command after compensation).
    CancelOrder {
        /// Why.
        reason: CancelReason,
    },
}

impl SagaCommand {
    /// The command's name, e.g. `"ReserveStock"` (also its serde tag).
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::ReserveStock { .. } => "ReserveStock",
            Self::ReleaseStock => "ReleaseStock",
            Self::CommitStock => "CommitStock",
            Self::AuthorizePayment { .. } => "AuthorizePayment",
            Self::CapturePayment { .. } => "CapturePayment",
            Self::VoidPayment { .. } => "VoidPayment",
            Self::RefundPayment { .. } => "RefundPayment",
            Self::ScheduleDelivery { .. } => "ScheduleDelivery",
            Self::CancelDelivery { .. } => "CancelDelivery",
            Self::CompleteOrder => "CompleteOrder",
            Self::CancelOrder { .. } => "CancelOrder",
        }
    }

    /// The service the command goes to.
    #[must_use]
    pub const fn service(&self) -> Service {
        match self {
            Self::ReserveStock { .. } | Self::ReleaseStock | Self::CommitStock => {
                Service::Inventory
            }
            Self::AuthorizePayment { .. }
            | Self::CapturePayment { .. }
            | Self::VoidPayment { .. }
            | Self::RefundPayment { .. } => Service::Payments,
            Self::ScheduleDelivery { .. } | Self::CancelDelivery { .. } => Service::Delivery,
            Self::CompleteOrder | Self::CancelOrder { .. } => Service::Orders,
        }
    }
}

/// A command to send, as the caller puts it into the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingCommand {
    /// The saga's order: the correlation id and the Kafka key.
    pub order_id: OrderId,
    /// 1 for the first send of a step, then 2, 3, ... for retries of the same command.
    pub attempt: u32,
    /// What to do.
    pub command: SagaCommand,
}
