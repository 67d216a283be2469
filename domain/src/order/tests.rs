use super::*;
use crate::aggregate::replay;
use crate::lines::{OrderLine, Quantity, Sku};
use crate::money::Currency;
use crate::testing::{Outcome, assert_table_complete, given};

struct Fixture {
    order_id: OrderId,
    customer_id: CustomerId,
    lines: OrderLines,
}

impl Fixture {
    fn new() -> Self {
        let lines = OrderLines::new(vec![
            OrderLine {
                sku: Sku::new("MUG-RED").unwrap(),
                quantity: Quantity::new(2).unwrap(),
                unit_price: Money::new(1250, Currency::EUR).unwrap(),
            },
            OrderLine {
                sku: Sku::new("TEA_GREEN").unwrap(),
                quantity: Quantity::new(1).unwrap(),
                unit_price: Money::new(499, Currency::EUR).unwrap(),
            },
        ])
        .unwrap();
        Self {
            order_id: OrderId::new(),
            customer_id: CustomerId::new(),
            lines,
        }
    }

    fn details(&self) -> OrderDetails {
        OrderDetails {
            order_id: self.order_id,
            customer_id: self.customer_id,
            lines: self.lines.clone(),
            total: Money::new(2999, Currency::EUR).unwrap(),
        }
    }

    fn placed(&self) -> OrderEvent {
        OrderEvent::Placed {
            order_id: self.order_id,
            customer_id: self.customer_id,
            lines: self.lines.clone(),
            total: Money::new(2999, Currency::EUR).unwrap(),
            idempotency_key: None,
        }
    }

    fn completed(&self) -> OrderEvent {
        OrderEvent::Completed {
            order_id: self.order_id,
        }
    }

    fn cancelled(&self, reason: CancelReason) -> OrderEvent {
        OrderEvent::Cancelled {
            order_id: self.order_id,
            reason,
        }
    }

    fn place(&self) -> OrderCommand {
        OrderCommand::Place {
            order_id: self.order_id,
            customer_id: self.customer_id,
            lines: self.lines.clone(),
            idempotency_key: None,
        }
    }

    fn history(&self, state: &str) -> Vec<OrderEvent> {
        match state {
            "NotPlaced" => vec![],
            "Placed" => vec![self.placed()],
            "Completed" => vec![self.placed(), self.completed()],
            "Cancelled" => vec![self.placed(), self.cancelled(CancelReason::OutOfStock)],
            other => panic!("no fixture for state {other}"),
        }
    }

    fn command(&self, command: &str) -> OrderCommand {
        match command {
            "Place" => self.place(),
            "Complete" => OrderCommand::Complete,
            "Cancel" => OrderCommand::Cancel {
                reason: CancelReason::PaymentDeclined,
            },
            other => panic!("no fixture for command {other}"),
        }
    }
}

const STATES: [&str; 4] = ["NotPlaced", "Placed", "Completed", "Cancelled"];
const COMMANDS: [&str; 3] = ["Place", "Complete", "Cancel"];

/// Adding a state variant breaks this match: add the state to `STATES` and the table.
const fn state_index(state: &OrderState) -> usize {
    match state {
        OrderState::NotPlaced => 0,
        OrderState::Placed(_) => 1,
        OrderState::Completed(_) => 2,
        OrderState::Cancelled { .. } => 3,
    }
}

/// Adding a command variant breaks this match: add the command to `COMMANDS` and the table.
const fn command_index(command: &OrderCommand) -> usize {
    match command {
        OrderCommand::Place { .. } => 0,
        OrderCommand::Complete => 1,
        OrderCommand::Cancel { .. } => 2,
    }
}

#[test]
fn fixtures_cover_every_state_and_command() {
    let f = Fixture::new();
    for (index, name) in STATES.iter().enumerate() {
        let state = replay::<OrderState>(f.history(name));
        assert_eq!(state.name(), *name);
        assert_eq!(state_index(&state), index);
    }
    for (index, name) in COMMANDS.iter().enumerate() {
        let command = f.command(name);
        assert_eq!(command.name(), *name);
        assert_eq!(command_index(&command), index);
    }
}

#[test]
fn every_state_and_command_pair() {
    use Outcome::{Emits, Illegal, NoOp};
    let f = Fixture::new();
    let table = [
        ("NotPlaced", "Place", Emits(vec![f.placed()])),
        ("NotPlaced", "Complete", Illegal),
        ("NotPlaced", "Cancel", Illegal),
        ("Placed", "Place", Illegal),
        ("Placed", "Complete", Emits(vec![f.completed()])),
        (
            "Placed",
            "Cancel",
            Emits(vec![f.cancelled(CancelReason::PaymentDeclined)]),
        ),
        ("Completed", "Place", Illegal),
        ("Completed", "Complete", NoOp),
        ("Completed", "Cancel", Illegal),
        ("Cancelled", "Place", Illegal),
        ("Cancelled", "Complete", Illegal),
        ("Cancelled", "Cancel", NoOp),
    ];
    assert_table_complete(&table, &STATES, &COMMANDS);
    for (state, command, expected) in table {
        given::<OrderState>(f.history(state))
            .when(f.command(command))
            .then_expect(expected);
    }
}

#[test]
fn placing_records_the_lines_and_their_total() {
    let f = Fixture::new();
    let state = given::<OrderState>([]).when(f.place()).then([f.placed()]);
    assert_eq!(state, OrderState::Placed(f.details()));
    assert_eq!(state.details().unwrap().total.to_string(), "29.99 EUR");
    assert!(!state.is_terminal());
}

#[test]
fn placing_twice_is_illegal_and_names_the_transition() {
    let f = Fixture::new();
    let command = given::<OrderState>([f.placed()])
        .when(f.place())
        .then_illegal();
    assert_eq!(command, "Place");
    let err = OrderState::Placed(f.details())
        .decide(f.place())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "command Place does not apply to order in state Placed"
    );
}

#[test]
fn completing_and_cancelling_are_terminal() {
    let f = Fixture::new();
    let completed = given::<OrderState>([f.placed()])
        .when(OrderCommand::Complete)
        .then([f.completed()]);
    assert_eq!(completed, OrderState::Completed(f.details()));
    assert!(completed.is_terminal());

    for reason in CancelReason::ALL {
        let cancelled = given::<OrderState>([f.placed()])
            .when(OrderCommand::Cancel { reason })
            .then([f.cancelled(reason)]);
        assert_eq!(
            cancelled,
            OrderState::Cancelled {
                order: f.details(),
                reason
            }
        );
        assert!(cancelled.is_terminal());
    }
}

#[test]
fn repeated_cancel_is_a_no_op_whatever_the_reason() {
    let f = Fixture::new();
    for reason in CancelReason::ALL {
        let state = given::<OrderState>([f.placed(), f.cancelled(CancelReason::Timeout)])
            .when(OrderCommand::Cancel { reason })
            .then_no_events();
        // The first reason stays.
        assert!(matches!(
            state,
            OrderState::Cancelled {
                reason: CancelReason::Timeout,
                ..
            }
        ));
    }
}

#[test]
fn repeated_complete_is_a_no_op() {
    let f = Fixture::new();
    let state = given::<OrderState>([f.placed(), f.completed()])
        .when(OrderCommand::Complete)
        .then_no_events();
    assert_eq!(state, OrderState::Completed(f.details()));
}

#[test]
fn evolve_ignores_events_that_cannot_follow() {
    let f = Fixture::new();
    let completed = replay::<OrderState>([f.placed(), f.completed()]);
    assert_eq!(
        completed
            .clone()
            .evolve(&f.cancelled(CancelReason::Timeout)),
        completed
    );
    assert_eq!(
        OrderState::NotPlaced.evolve(&f.completed()),
        OrderState::NotPlaced
    );
    assert_eq!(completed.clone().evolve(&f.placed()), completed);
}

#[test]
fn events_carry_type_version_id_and_round_trip_through_serde() {
    let f = Fixture::new();
    let events = [
        f.placed(),
        f.completed(),
        f.cancelled(CancelReason::CustomerRequest),
    ];
    for (event, event_type) in events.iter().zip(OrderEvent::EVENT_TYPES) {
        assert_eq!(event.event_type(), *event_type);
        assert_eq!(event.version(), 1);
        assert_eq!(event.aggregate_id(), f.order_id.to_string());
        let json = serde_json::to_value(event).unwrap();
        assert_eq!(json["type"], *event_type);
        assert_eq!(json["order_id"], f.order_id.to_string());
        assert_eq!(&serde_json::from_value::<OrderEvent>(json).unwrap(), event);
    }
    let json = serde_json::to_value(f.cancelled(CancelReason::OutOfStock)).unwrap();
    assert_eq!(json["reason"], "OutOfStock");
}

#[test]
fn deserializing_an_event_validates_its_values() {
    let f = Fixture::new();
    let mut json = serde_json::to_value(f.placed()).unwrap();
    json["lines"][0]["quantity"] = serde_json::json!(0);
    let err = serde_json::from_value::<OrderEvent>(json).unwrap_err();
    assert!(
        err.to_string().contains("quantity must be between"),
        "{err}"
    );

    let unknown = serde_json::json!({"type": "OrderShipped", "order_id": f.order_id.to_string()});
    assert!(serde_json::from_value::<OrderEvent>(unknown).is_err());
}

#[test]
fn cancel_reason_names_match_serde() {
    for reason in CancelReason::ALL {
        assert_eq!(serde_json::to_value(reason).unwrap(), reason.name());
    }
}
