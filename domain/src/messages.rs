//! Messages between the order saga and the services that are not events of one aggregate.
//!
//! - Requests: what the saga asks of a service, on `orders.commands`, `inventory.commands`,
//!   `payments.commands` and `delivery.commands`, keyed by the order id so that all requests of one order stay in order.
//! - [`OrderStockEvent`]: the inventory service's answer for a whole order. Stock is an aggregate per SKU
//!   ([`InventoryEvent`](crate::InventoryEvent)), but an order reserves several SKUs at once and the saga
//!   needs one answer: all lines reserved, or the first line that could not be.
//!
//! They are [`Message`]s, not events of a stream: a type name (the `"type"` tag of the serde form and the
//! Avro record name) and a version. [`AboutOrder`] gives the order id their publishers key them by.

use serde::{Deserialize, Serialize};

use crate::aggregate::{AboutOrder, Message};
use crate::ids::OrderId;
use crate::lines::{Quantity, Sku};
use crate::money::Money;
use crate::order::CancelReason;

/// One SKU and how many of it, without a price: what inventory reserves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StockLine {
    /// The stock-keeping unit.
    pub sku: Sku,
    /// How many.
    pub quantity: Quantity,
}

/// What the saga asks of the inventory service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum InventoryRequest {
    /// Reserve every line, or none of them.
    #[allow(missing_docs)]
    ReserveStock {
        order_id: OrderId,
        /// What to reserve.
        lines: Vec<StockLine>,
    },
    /// Give back what the order reserved (compensation).
    #[allow(missing_docs)]
    ReleaseStock { order_id: OrderId },
    /// Turn the order's reservation into a sale (on dispatch).
    #[allow(missing_docs)]
    CommitStock { order_id: OrderId },
}

/// What the saga asks of the payments service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum PaymentRequest {
    /// Authorize `amount` with the payment provider.
    #[allow(missing_docs)]
    AuthorizePayment {
        order_id: OrderId,
        /// The order total.
        amount: Money,
    },
    /// Capture the authorized amount (on dispatch).
    #[allow(missing_docs)]
    CapturePayment { order_id: OrderId },
    /// Release an authorization that was not captured (compensation).
    #[allow(missing_docs)]
    VoidPayment { order_id: OrderId },
    /// Give back `amount` of a captured payment (compensation).
    #[allow(missing_docs)]
    RefundPayment {
        order_id: OrderId,
        /// How much to refund.
        amount: Money,
    },
}

/// What the saga asks of the delivery service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum DeliveryRequest {
    /// Plan a delivery for the order.
    #[allow(missing_docs)]
    ScheduleDelivery { order_id: OrderId },
    /// Cancel a scheduled delivery that has not been dispatched (compensation).
    #[allow(missing_docs)]
    CancelDelivery { order_id: OrderId },
}

/// What the saga asks of the orders service: its last step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum OrderRequest {
    /// The order is fulfilled.
    #[allow(missing_docs)]
    CompleteOrder { order_id: OrderId },
    /// The order is cancelled, after compensation.
    #[allow(missing_docs)]
    CancelOrder {
        order_id: OrderId,
        /// Why.
        reason: CancelReason,
    },
}

/// The inventory service's answer for a whole order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum OrderStockEvent {
    /// Every line is reserved.
    #[allow(missing_docs)]
    OrderStockReserved { order_id: OrderId },
    /// A line could not be reserved; nothing of the order is reserved.
    #[allow(missing_docs)]
    OrderStockRejected {
        order_id: OrderId,
        /// The first line that could not be reserved.
        sku: Sku,
        /// What the order asked for.
        requested: Quantity,
        /// What was available at that moment.
        available: u32,
    },
    /// The order's reservation was given back.
    #[allow(missing_docs)]
    OrderStockReleased { order_id: OrderId },
    /// The order's reservation became a sale.
    #[allow(missing_docs)]
    OrderStockCommitted { order_id: OrderId },
}

/// Implements [`Message`] and [`AboutOrder`] for a message enum whose variant names are its type names and
/// whose every variant carries `order_id`.
macro_rules! order_message {
    ($name:ident { $($variant:ident),+ $(,)? }) => {
        impl $name {
            /// The order the message is about.
            #[must_use]
            pub const fn order_id(&self) -> OrderId {
                match self {
                    $(Self::$variant { order_id, .. } => *order_id,)+
                }
            }
        }

        impl Message for $name {
            const EVENT_TYPES: &'static [&'static str] = &[$(stringify!($variant)),+];

            fn event_type(&self) -> &'static str {
                match self {
                    $(Self::$variant { .. } => stringify!($variant),)+
                }
            }
        }

        impl AboutOrder for $name {
            fn order_id(&self) -> OrderId {
                $name::order_id(self)
            }
        }
    };
}

order_message!(InventoryRequest {
    ReserveStock,
    ReleaseStock,
    CommitStock
});
order_message!(PaymentRequest {
    AuthorizePayment,
    CapturePayment,
    VoidPayment,
    RefundPayment
});
order_message!(OrderRequest {
    CompleteOrder,
    CancelOrder
});
order_message!(DeliveryRequest {
    ScheduleDelivery,
    CancelDelivery
});
order_message!(OrderStockEvent {
    OrderStockReserved,
    OrderStockRejected,
    OrderStockReleased,
    OrderStockCommitted
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;

    fn order_id() -> OrderId {
        OrderId::new()
    }

    #[test]
    fn type_tag_is_the_event_type_and_key_is_the_order() {
        let id = order_id();
        let messages = [
            serde_json::to_value(PaymentRequest::RefundPayment {
                order_id: id,
                amount: Money::new(150, Currency::new("EUR").unwrap()).unwrap(),
            })
            .unwrap(),
            serde_json::to_value(InventoryRequest::ReleaseStock { order_id: id }).unwrap(),
            serde_json::to_value(DeliveryRequest::CancelDelivery { order_id: id }).unwrap(),
        ];
        let types: Vec<_> = messages
            .iter()
            .map(|m| m["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["RefundPayment", "ReleaseStock", "CancelDelivery"]);
        let request = InventoryRequest::CommitStock { order_id: id };
        assert_eq!(request.event_type(), "CommitStock");
        assert_eq!(AboutOrder::order_id(&request), id);
        assert_eq!(
            OrderStockEvent::EVENT_TYPES,
            [
                "OrderStockReserved",
                "OrderStockRejected",
                "OrderStockReleased",
                "OrderStockCommitted"
            ]
        );
    }

    #[test]
    fn serde_round_trip() {
        let request = InventoryRequest::ReserveStock {
            order_id: order_id(),
            lines: vec![StockLine {
                sku: "SKU-1".parse().unwrap(),
                quantity: Quantity::new(2).unwrap(),
            }],
        };
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(
            serde_json::from_str::<InventoryRequest>(&json).unwrap(),
            request
        );
    }
}
