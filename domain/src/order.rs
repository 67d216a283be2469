//! The order aggregate: placed once, then completed or cancelled.
//!
//! ```text
//! NotPlaced --Place--> Placed --Complete--> Completed
//!                        |
//!                        +----Cancel------> Cancelled
//! ```
//!
//! | state \ command | `Place`   | `Complete`  | `Cancel`    |
//! |-----------------|-----------|-------------|-------------|
//! | `NotPlaced`     | `OrderPlaced` | illegal | illegal     |
//! | `Placed`        | illegal   | `OrderCompleted` | `OrderCancelled` |
//! | `Completed`     | illegal   | no-op       | illegal     |
//! | `Cancelled`     | illegal   | illegal     | no-op       |
//!
//! Completing a completed order and cancelling a cancelled one (whatever the reason)
//! succeed with no events: a duplicate delivery of the command is harmless. Placing an
//! order twice is illegal, even with the same content: the order id must be fresh.

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, DomainEvent, Message, illegal};
use crate::error::DomainError;
use crate::ids::{CustomerId, OrderId};
use crate::lines::OrderLines;
use crate::money::Money;

/// Why an order was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CancelReason {
    /// Inventory could not reserve the lines.
    OutOfStock,
    /// The payment was declined.
    PaymentDeclined,
    /// The delivery failed.
    DeliveryFailed,
    /// A saga step did not answer in time.
    Timeout,
    /// The customer asked for it.
    CustomerRequest,
}

impl CancelReason {
    /// Every reason.
    pub const ALL: [Self; 5] = [
        Self::OutOfStock,
        Self::PaymentDeclined,
        Self::DeliveryFailed,
        Self::Timeout,
        Self::CustomerRequest,
    ];

    /// The reason's name, e.g. `"OutOfStock"` (also its serde form).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::OutOfStock => "OutOfStock",
            Self::PaymentDeclined => "PaymentDeclined",
            Self::DeliveryFailed => "DeliveryFailed",
            Self::Timeout => "Timeout",
            Self::CustomerRequest => "CustomerRequest",
        }
    }
}

/// What a placed order is: the facts of `OrderPlaced`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderDetails {
    #[allow(missing_docs)]
    pub order_id: OrderId,
    /// Who ordered.
    pub customer_id: CustomerId,
    /// What was ordered.
    pub lines: OrderLines,
    /// The order total (the sum of the line totals).
    pub total: Money,
}

/// The state of one order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OrderState {
    /// No order yet (the state before the first event).
    #[default]
    NotPlaced,
    /// Placed; the saga is working on it.
    Placed(OrderDetails),
    /// Fulfilled. Terminal.
    Completed(OrderDetails),
    /// Cancelled. Terminal.
    Cancelled {
        /// The order as placed.
        order: OrderDetails,
        /// Why it was cancelled.
        reason: CancelReason,
    },
}

impl OrderState {
    /// The state's name, e.g. `"Placed"`.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::NotPlaced => "NotPlaced",
            Self::Placed(_) => "Placed",
            Self::Completed(_) => "Completed",
            Self::Cancelled { .. } => "Cancelled",
        }
    }

    /// The order, once placed.
    #[must_use]
    pub const fn details(&self) -> Option<&OrderDetails> {
        match self {
            Self::NotPlaced => None,
            Self::Placed(order) | Self::Completed(order) | Self::Cancelled { order, .. } => {
                Some(order)
            }
        }
    }
}

/// What can be asked of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderCommand {
    /// Place a new order.
    Place {
        /// A fresh order id.
        order_id: OrderId,
        /// Who orders.
        customer_id: CustomerId,
        /// What is ordered (validated by [`OrderLines::new`]).
        lines: OrderLines,
        /// The client's key for this submission, if it sent one; recorded on the event.
        idempotency_key: Option<String>,
    },
    /// Mark the order fulfilled (the saga's last step).
    Complete,
    /// Cancel the order (the saga's compensation, or the customer).
    Cancel {
        /// Why.
        reason: CancelReason,
    },
}

impl OrderCommand {
    /// The command's name, e.g. `"Place"`.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Place { .. } => "Place",
            Self::Complete => "Complete",
            Self::Cancel { .. } => "Cancel",
        }
    }
}

/// What happened to an order. Serialized with a `"type"` tag equal to
/// [`Message::event_type`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum OrderEvent {
    /// `OrderPlaced` v1.
    #[serde(rename = "OrderPlaced")]
    #[allow(missing_docs)]
    Placed {
        order_id: OrderId,
        /// Who ordered.
        customer_id: CustomerId,
        /// What was ordered.
        lines: OrderLines,
        /// The order total.
        total: Money,
        /// The client's key for the submission that placed the order (schema v2; absent in v1 records).
        #[serde(default)]
        idempotency_key: Option<String>,
    },
    /// `OrderCompleted` v1.
    #[serde(rename = "OrderCompleted")]
    #[allow(missing_docs)]
    Completed { order_id: OrderId },
    /// `OrderCancelled` v1.
    #[serde(rename = "OrderCancelled")]
    #[allow(missing_docs)]
    Cancelled {
        order_id: OrderId,
        /// Why.
        reason: CancelReason,
    },
}

impl OrderEvent {
    /// The order the event belongs to.
    #[must_use]
    pub const fn order_id(&self) -> OrderId {
        match self {
            Self::Placed { order_id, .. }
            | Self::Completed { order_id }
            | Self::Cancelled { order_id, .. } => *order_id,
        }
    }
}

impl Message for OrderEvent {
    const EVENT_TYPES: &'static [&'static str] =
        &["OrderPlaced", "OrderCompleted", "OrderCancelled"];

    fn event_type(&self) -> &'static str {
        match self {
            Self::Placed { .. } => "OrderPlaced",
            Self::Completed { .. } => "OrderCompleted",
            Self::Cancelled { .. } => "OrderCancelled",
        }
    }
}

impl crate::AboutOrder for OrderEvent {
    fn order_id(&self) -> OrderId {
        self.order_id()
    }
}

impl DomainEvent for OrderEvent {
    fn aggregate_id(&self) -> String {
        self.order_id().to_string()
    }
}

impl Aggregate for OrderState {
    type Command = OrderCommand;
    type Event = OrderEvent;

    const SERVICE: crate::Service = crate::Service::Orders;

    fn decide(&self, command: OrderCommand) -> Result<Vec<OrderEvent>, DomainError> {
        use OrderCommand as C;
        use OrderState as S;
        match (self, command) {
            (
                S::NotPlaced,
                C::Place {
                    order_id,
                    customer_id,
                    lines,
                    idempotency_key,
                },
            ) => Ok(vec![OrderEvent::Placed {
                order_id,
                customer_id,
                total: lines.total(),
                lines,
                idempotency_key,
            }]),
            (S::Placed(order), C::Complete) => Ok(vec![OrderEvent::Completed {
                order_id: order.order_id,
            }]),
            (S::Placed(order), C::Cancel { reason }) => Ok(vec![OrderEvent::Cancelled {
                order_id: order.order_id,
                reason,
            }]),
            // Harmless repeats.
            (S::Completed(_), C::Complete) | (S::Cancelled { .. }, C::Cancel { .. }) => Ok(vec![]),
            (S::NotPlaced, command @ (C::Complete | C::Cancel { .. }))
            | (S::Placed(_), command @ C::Place { .. })
            | (S::Completed(_), command @ (C::Place { .. } | C::Cancel { .. }))
            | (S::Cancelled { .. }, command @ (C::Place { .. } | C::Complete)) => {
                Err(illegal(self, command.name()))
            }
        }
    }

    fn evolve(self, event: &OrderEvent) -> Self {
        use OrderEvent as E;
        use OrderState as S;
        match (self, event) {
            (
                S::NotPlaced,
                E::Placed {
                    order_id,
                    customer_id,
                    lines,
                    total,
                    ..
                },
            ) => S::Placed(OrderDetails {
                order_id: *order_id,
                customer_id: *customer_id,
                lines: lines.clone(),
                total: *total,
            }),
            (S::Placed(order), E::Completed { .. }) => S::Completed(order),
            (S::Placed(order), E::Cancelled { reason, .. }) => S::Cancelled {
                order,
                reason: *reason,
            },
            // Events that cannot follow the state: ignored (see `Aggregate::evolve`).
            (state @ (S::Placed(_) | S::Completed(_) | S::Cancelled { .. }), E::Placed { .. })
            | (
                state @ (S::NotPlaced | S::Completed(_) | S::Cancelled { .. }),
                E::Completed { .. } | E::Cancelled { .. },
            ) => state,
        }
    }

    fn is_terminal(&self) -> bool {
        match self {
            Self::NotPlaced | Self::Placed(_) => false,
            Self::Completed(_) | Self::Cancelled { .. } => true,
        }
    }

    fn state_name(&self) -> &'static str {
        self.name()
    }
}

#[cfg(test)]
mod tests;
