//! What the saga's last word about an order comes to, decided from the order's state alone: [`respond`].
//! Pure, so every (state, request) pair is tested below without Postgres; [`Orders`] (run by the one
//! [`Shell`]) loads the order, records, updates the read model and replies.
//!
//! [`Orders`]: super::Orders
//! [`Shell`]: crate::Shell

use domain::{OrderCommand, OrderEvent, OrderRequest, OrderState};

/// What the service does about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Record `command` on the order's stream (its event is the reply) and update `orders_view`.
    Record(OrderCommand),
    /// Answer with this reply and change nothing: a repeat, or an order that already ended the other way.
    Repeat(OrderEvent),
    /// The order was never placed; the reason says so.
    NotApplicable(String),
}

/// What `request` comes to for an order in `state`.
#[must_use]
pub fn respond(state: &OrderState, request: &OrderRequest) -> Response {
    let order_id = request.order_id();
    match state {
        OrderState::Placed(_) => Response::Record(match request {
            OrderRequest::CompleteOrder { .. } => OrderCommand::Complete,
            OrderRequest::CancelOrder { reason, .. } => OrderCommand::Cancel { reason: *reason },
        }),
        OrderState::Completed(_) => Response::Repeat(OrderEvent::Completed { order_id }),
        OrderState::Cancelled { reason, .. } => Response::Repeat(OrderEvent::Cancelled {
            order_id,
            reason: *reason,
        }),
        OrderState::NotPlaced => Response::NotApplicable(format!(
            "order {order_id} is {}; it cannot be completed or cancelled",
            state.name()
        )),
    }
}

#[cfg(test)]
mod tests {
    use domain::{
        Aggregate as _, CancelReason, Currency, CustomerId, Message as _, Money, OrderId,
        OrderLine, OrderLines, Quantity, Sku,
    };

    use super::*;

    fn states(order_id: OrderId) -> Vec<(&'static str, OrderState)> {
        let lines = OrderLines::new(vec![OrderLine {
            sku: Sku::new("MUG-RED").unwrap(),
            quantity: Quantity::new(1).unwrap(),
            unit_price: Money::new(1299, Currency::EUR).unwrap(),
        }])
        .unwrap();
        let placed = OrderState::NotPlaced
            .execute(OrderCommand::Place {
                order_id,
                customer_id: CustomerId::new(),
                lines,
                idempotency_key: None,
            })
            .unwrap()
            .0;
        let ended = |command| placed.execute(command).unwrap().0;
        vec![
            ("not placed", OrderState::NotPlaced),
            ("placed", placed.clone()),
            ("completed", ended(OrderCommand::Complete)),
            (
                "cancelled",
                ended(OrderCommand::Cancel {
                    reason: CancelReason::OutOfStock,
                }),
            ),
        ]
    }

    fn summary(response: &Response) -> String {
        match response {
            Response::Record(OrderCommand::Complete) => "record Complete".into(),
            Response::Record(OrderCommand::Cancel { .. }) => "record Cancel".into(),
            Response::Record(other) => panic!("no request records {other:?}"),
            Response::Repeat(reply) => format!("reply {}", reply.event_type()),
            Response::NotApplicable(_) => "not applicable".into(),
        }
    }

    /// The whole reply contract of the orders service: every state x request.
    #[test]
    fn every_state_and_request_has_its_response() {
        let order_id = OrderId::new();
        let complete = OrderRequest::CompleteOrder { order_id };
        let cancel = OrderRequest::CancelOrder {
            order_id,
            reason: CancelReason::PaymentDeclined,
        };
        let expected = [
            ("not placed", "not applicable", "not applicable"),
            ("placed", "record Complete", "record Cancel"),
            ("completed", "reply OrderCompleted", "reply OrderCompleted"),
            ("cancelled", "reply OrderCancelled", "reply OrderCancelled"),
        ];
        for ((name, state), (expected_name, on_complete, on_cancel)) in
            states(order_id).iter().zip(expected)
        {
            assert_eq!(*name, expected_name);
            assert_eq!(
                summary(&respond(state, &complete)),
                on_complete,
                "complete on {name}"
            );
            assert_eq!(
                summary(&respond(state, &cancel)),
                on_cancel,
                "cancel on {name}"
            );
        }
        // A cancelled order answers with the reason it was cancelled for, not the one asked now.
        let cancelled = &states(order_id)[3].1;
        assert_eq!(
            respond(cancelled, &cancel),
            Response::Repeat(OrderEvent::Cancelled {
                order_id,
                reason: CancelReason::OutOfStock
            })
        );
    }
}
