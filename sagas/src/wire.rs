//! The saga's side of the wire, pure: [`SagaCommand`]s as the services' request messages, and the
//! services' events as [`SagaInput`]s.

use domain::{
    DeliveryEvent, DeliveryRequest, InventoryEvent, InventoryRequest, Message, OrderEvent, OrderId,
    OrderRequest, OrderStockEvent, PaymentEvent, PaymentRequest, Service, StockLine,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::command::{OutgoingCommand, SagaCommand};
use crate::input::SagaInput;

/// A saga command as the message its service reads from its commands topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireCommand {
    /// To `inventory.commands`.
    Inventory(InventoryRequest),
    /// To `payments.commands`.
    Payments(PaymentRequest),
    /// To `delivery.commands`.
    Delivery(DeliveryRequest),
    /// To `orders.commands`.
    Orders(OrderRequest),
}

impl WireCommand {
    /// The request message for `outgoing`. The attempt number does not travel: every send is a new
    /// message with an event id of its own, and services answer repeats with the same reply.
    #[must_use]
    pub fn of(outgoing: &OutgoingCommand) -> Self {
        let order_id = outgoing.order_id;
        match &outgoing.command {
            SagaCommand::ReserveStock { lines } => {
                Self::Inventory(InventoryRequest::ReserveStock {
                    order_id,
                    lines: lines
                        .iter()
                        .map(|line| StockLine {
                            sku: line.sku.clone(),
                            quantity: line.quantity,
                        })
                        .collect(),
                })
            }
            SagaCommand::ReleaseStock => {
                Self::Inventory(InventoryRequest::ReleaseStock { order_id })
            }
            SagaCommand::CommitStock => Self::Inventory(InventoryRequest::CommitStock { order_id }),
            SagaCommand::AuthorizePayment { amount, .. } => {
                Self::Payments(PaymentRequest::AuthorizePayment {
                    order_id,
                    amount: *amount,
                })
            }
            SagaCommand::CapturePayment { .. } => {
                Self::Payments(PaymentRequest::CapturePayment { order_id })
            }
            SagaCommand::VoidPayment { .. } => {
                Self::Payments(PaymentRequest::VoidPayment { order_id })
            }
            SagaCommand::RefundPayment { amount, .. } => {
                Self::Payments(PaymentRequest::RefundPayment {
                    order_id,
                    amount: *amount,
                })
            }
            SagaCommand::ScheduleDelivery { .. } => {
                Self::Delivery(DeliveryRequest::ScheduleDelivery { order_id })
            }
            SagaCommand::CancelDelivery { .. } => {
                Self::Delivery(DeliveryRequest::CancelDelivery { order_id })
            }
            SagaCommand::CompleteOrder => Self::Orders(OrderRequest::CompleteOrder { order_id }),
            SagaCommand::CancelOrder { reason } => Self::Orders(OrderRequest::CancelOrder {
                order_id,
                reason: *reason,
            }),
        }
    }

    /// The service whose commands topic carries it.
    #[must_use]
    pub const fn service(&self) -> Service {
        match self {
            Self::Inventory(_) => Service::Inventory,
            Self::Payments(_) => Service::Payments,
            Self::Delivery(_) => Service::Delivery,
            Self::Orders(_) => Service::Orders,
        }
    }

    /// The message's type name, e.g. `"ReserveStock"`.
    #[must_use]
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::Inventory(m) => m.event_type(),
            Self::Payments(m) => m.event_type(),
            Self::Delivery(m) => m.event_type(),
            Self::Orders(m) => m.event_type(),
        }
    }
}

/// What an incoming event means to the saga of `order_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The saga it is for.
    pub order_id: OrderId,
    /// What it tells the saga.
    pub input: SagaInput,
}

/// What the orchestrator makes of an incoming event, given its type name and serde form.
///
/// `Ok(Some(reply))` for an event that drives a saga; `Ok(None)` for one the saga does not act on
/// (`OrderCompleted`, `OrderCancelled`, the per-SKU `Stock*` events of inventory); `Err` with the reason for
/// a type the orchestrator does not know or a value that does not fit its type (dead-letter it).
///
/// # Errors
/// A description of why the event cannot be read.
pub fn reply_of(event_type: &str, event: Value) -> Result<Option<Reply>, String> {
    let is = |types: &[&str]| types.contains(&event_type);
    let reply = |order_id, input| Ok(Some(Reply { order_id, input }));
    if is(OrderEvent::EVENT_TYPES) {
        match parse::<OrderEvent>(event_type, event)? {
            OrderEvent::Placed {
                order_id,
                customer_id,
                lines,
                ..
            } => reply(
                order_id,
                SagaInput::Start {
                    order_id,
                    customer_id,
                    lines,
                },
            ),
            OrderEvent::Completed { .. } | OrderEvent::Cancelled { .. } => Ok(None),
        }
    } else if is(OrderStockEvent::EVENT_TYPES) {
        match parse::<OrderStockEvent>(event_type, event)? {
            OrderStockEvent::OrderStockReserved { order_id } => {
                reply(order_id, SagaInput::StockReserved)
            }
            OrderStockEvent::OrderStockRejected {
                order_id,
                sku,
                requested,
                available,
            } => reply(
                order_id,
                SagaInput::StockRejected {
                    sku,
                    requested,
                    available,
                },
            ),
            OrderStockEvent::OrderStockReleased { order_id } => {
                reply(order_id, SagaInput::StockReleased)
            }
            OrderStockEvent::OrderStockCommitted { order_id } => {
                reply(order_id, SagaInput::StockCommitted)
            }
        }
    } else if is(InventoryEvent::EVENT_TYPES) {
        Ok(None)
    } else if is(PaymentEvent::EVENT_TYPES) {
        let event = parse::<PaymentEvent>(event_type, event)?;
        let input = match &event {
            PaymentEvent::Authorized { payment_id, .. } => SagaInput::PaymentAuthorized {
                payment_id: *payment_id,
            },
            PaymentEvent::Declined { reason, .. } => SagaInput::PaymentDeclined {
                reason: reason.clone(),
            },
            PaymentEvent::Captured { .. } => SagaInput::PaymentCaptured,
            PaymentEvent::Voided { .. } => SagaInput::PaymentVoided,
            PaymentEvent::Refunded { .. } => SagaInput::PaymentRefunded,
        };
        reply(event.order_id(), input)
    } else if is(DeliveryEvent::EVENT_TYPES) {
        let event = parse::<DeliveryEvent>(event_type, event)?;
        let (_, order_id) = event.ids();
        let input = match event {
            DeliveryEvent::Scheduled { delivery_id, .. } => {
                SagaInput::DeliveryScheduled { delivery_id }
            }
            DeliveryEvent::Dispatched { .. } => SagaInput::DeliveryDispatched,
            DeliveryEvent::Completed { .. } => SagaInput::DeliveryCompleted,
            DeliveryEvent::Failed { reason, .. } => SagaInput::DeliveryFailed { reason },
            DeliveryEvent::Cancelled { .. } => SagaInput::DeliveryCancelled,
        };
        reply(order_id, input)
    } else {
        Err(format!("{event_type} is no event the orchestrator reads"))
    }
}

fn parse<T: DeserializeOwned>(event_type: &str, event: Value) -> Result<T, String> {
    serde_json::from_value(event).map_err(|e| format!("{event_type} does not read: {e}"))
}

#[cfg(test)]
mod tests {
    use domain::{
        CancelReason, Currency, CustomerId, DeliveryId, Money, OrderLine, OrderLines, PaymentId,
        Quantity, Sku,
    };

    use super::*;

    fn lines() -> OrderLines {
        OrderLines::new(vec![OrderLine {
            sku: Sku::new("MUG-RED").unwrap(),
            quantity: Quantity::new(2).unwrap(),
            unit_price: Money::new(1250, Currency::EUR).unwrap(),
        }])
        .unwrap()
    }

    #[test]
    fn every_command_goes_to_its_participants_topic() {
        let order_id = OrderId::new();
        let amount = Money::new(2500, Currency::EUR).unwrap();
        let commands = [
            SagaCommand::ReserveStock { lines: lines() },
            SagaCommand::ReleaseStock,
            SagaCommand::CommitStock,
            SagaCommand::AuthorizePayment {
                customer_id: CustomerId::new(),
                amount,
            },
            SagaCommand::CapturePayment {
                payment_id: PaymentId::new(),
            },
            SagaCommand::VoidPayment { payment_id: None },
            SagaCommand::RefundPayment {
                payment_id: PaymentId::new(),
                amount,
            },
            SagaCommand::ScheduleDelivery {
                customer_id: CustomerId::new(),
                lines: lines(),
            },
            SagaCommand::CancelDelivery { delivery_id: None },
            SagaCommand::CompleteOrder,
            SagaCommand::CancelOrder {
                reason: CancelReason::OutOfStock,
            },
        ];
        for command in commands {
            let name = command.name();
            let service = command.service();
            let wire = WireCommand::of(&OutgoingCommand {
                order_id,
                attempt: 1,
                command,
            });
            assert_eq!(wire.event_type(), name);
            assert_eq!(wire.service(), service);
        }
        let WireCommand::Inventory(InventoryRequest::ReserveStock { lines: stock, .. }) =
            WireCommand::of(&OutgoingCommand {
                order_id,
                attempt: 1,
                command: SagaCommand::ReserveStock { lines: lines() },
            })
        else {
            panic!("ReserveStock goes to inventory");
        };
        assert_eq!(stock.len(), 1);
        assert_eq!(stock[0].quantity.get(), 2);
    }

    #[test]
    fn events_become_inputs_or_are_skipped() {
        let order_id = OrderId::new();
        let placed = serde_json::to_value(OrderEvent::Placed {
            order_id,
            customer_id: CustomerId::new(),
            lines: lines(),
            total: lines().total(),
            idempotency_key: None,
        })
        .unwrap();
        let start = reply_of("OrderPlaced", placed).unwrap().unwrap();
        assert_eq!(start.order_id, order_id);
        assert!(matches!(start.input, SagaInput::Start { .. }));

        let scheduled = serde_json::to_value(DeliveryEvent::Scheduled {
            delivery_id: DeliveryId::new(),
            order_id,
        })
        .unwrap();
        assert!(matches!(
            reply_of("DeliveryScheduled", scheduled)
                .unwrap()
                .unwrap()
                .input,
            SagaInput::DeliveryScheduled { .. }
        ));

        let completed = serde_json::to_value(OrderEvent::Completed { order_id }).unwrap();
        assert_eq!(reply_of("OrderCompleted", completed).unwrap(), None);
        let per_sku = serde_json::to_value(InventoryEvent::Reserved {
            sku: Sku::new("MUG-RED").unwrap(),
            order_id,
            quantity: Quantity::new(1).unwrap(),
        })
        .unwrap();
        assert_eq!(reply_of("StockReserved", per_sku).unwrap(), None);

        assert!(reply_of("Nonsense", serde_json::json!({})).is_err());
        assert!(
            reply_of(
                "PaymentCaptured",
                serde_json::json!({"type": "PaymentCaptured"})
            )
            .is_err()
        );
    }
}
