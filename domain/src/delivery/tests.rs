use super::*;
use crate::aggregate::replay;
use crate::error::ValidationError;
use crate::testing::{Outcome, assert_table_complete, given};

struct Fixture {
    delivery_id: DeliveryId,
    order_id: OrderId,
}

impl Fixture {
    fn new() -> Self {
        Self {
            delivery_id: DeliveryId::new(),
            order_id: OrderId::new(),
        }
    }

    fn scheduled(&self) -> DeliveryEvent {
        DeliveryEvent::Scheduled {
            delivery_id: self.delivery_id,
            order_id: self.order_id,
        }
    }

    fn dispatched(&self) -> DeliveryEvent {
        DeliveryEvent::Dispatched {
            delivery_id: self.delivery_id,
            order_id: self.order_id,
        }
    }

    fn completed(&self) -> DeliveryEvent {
        DeliveryEvent::Completed {
            delivery_id: self.delivery_id,
            order_id: self.order_id,
        }
    }

    fn failed(&self, reason: &str) -> DeliveryEvent {
        DeliveryEvent::Failed {
            delivery_id: self.delivery_id,
            order_id: self.order_id,
            reason: reason.to_owned(),
        }
    }

    fn cancelled(&self) -> DeliveryEvent {
        DeliveryEvent::Cancelled {
            delivery_id: self.delivery_id,
            order_id: self.order_id,
        }
    }

    fn history(&self, state: &str) -> Vec<DeliveryEvent> {
        match state {
            "NotScheduled" => vec![],
            "Scheduled" => vec![self.scheduled()],
            "Dispatched" => vec![self.scheduled(), self.dispatched()],
            "Delivered" => vec![self.scheduled(), self.dispatched(), self.completed()],
            "Failed" => vec![self.scheduled(), self.failed("address not found")],
            "Cancelled" => vec![self.scheduled(), self.cancelled()],
            other => panic!("no fixture for state {other}"),
        }
    }

    fn command(&self, command: &str) -> DeliveryCommand {
        match command {
            "Schedule" => DeliveryCommand::Schedule {
                delivery_id: self.delivery_id,
                order_id: self.order_id,
            },
            "Dispatch" => DeliveryCommand::Dispatch,
            "Deliver" => DeliveryCommand::Deliver,
            "Fail" => DeliveryCommand::Fail {
                reason: "parcel damaged".to_owned(),
            },
            "Fail blank" => DeliveryCommand::Fail {
                reason: " ".to_owned(),
            },
            "Cancel" => DeliveryCommand::Cancel,
            "CancelUnscheduled" => DeliveryCommand::CancelUnscheduled {
                delivery_id: self.delivery_id,
                order_id: self.order_id,
            },
            other => panic!("no fixture for command {other}"),
        }
    }
}

const STATES: [&str; 6] = [
    "NotScheduled",
    "Scheduled",
    "Dispatched",
    "Delivered",
    "Failed",
    "Cancelled",
];
const COMMANDS: [&str; 7] = [
    "Schedule",
    "Dispatch",
    "Deliver",
    "Fail",
    "Fail blank",
    "Cancel",
    "CancelUnscheduled",
];

/// Adding a state variant breaks this match: add the state to `STATES` and the table.
const fn state_index(state: &DeliveryState) -> usize {
    match state {
        DeliveryState::NotScheduled => 0,
        DeliveryState::Scheduled { .. } => 1,
        DeliveryState::Dispatched { .. } => 2,
        DeliveryState::Delivered { .. } => 3,
        DeliveryState::Failed { .. } => 4,
        DeliveryState::Cancelled { .. } => 5,
    }
}

/// Adding a command variant breaks this match: add the command to `COMMANDS` and the table.
const fn command_kind(command: &DeliveryCommand) -> &'static str {
    match command {
        DeliveryCommand::Schedule { .. } => "Schedule",
        DeliveryCommand::Dispatch => "Dispatch",
        DeliveryCommand::Deliver => "Deliver",
        DeliveryCommand::Fail { .. } => "Fail",
        DeliveryCommand::Cancel => "Cancel",
        DeliveryCommand::CancelUnscheduled { .. } => "CancelUnscheduled",
    }
}

#[test]
fn fixtures_cover_every_state_and_command() {
    let f = Fixture::new();
    for (index, name) in STATES.iter().enumerate() {
        let state = replay::<DeliveryState>(f.history(name));
        assert_eq!(state.name(), *name);
        assert_eq!(state_index(&state), index);
    }
    for name in COMMANDS {
        let command = f.command(name);
        assert!(name.starts_with(command_kind(&command)), "{name}");
        assert_eq!(command.name(), command_kind(&command));
    }
    for kind in [
        "Schedule",
        "Dispatch",
        "Deliver",
        "Fail",
        "Cancel",
        "CancelUnscheduled",
    ] {
        assert!(COMMANDS.contains(&kind), "{kind}");
    }
}

#[test]
fn every_state_and_command_pair() {
    use Outcome::{Emits, Illegal, Invalid, NoOp};
    let f = Fixture::new();
    let table = [
        ("NotScheduled", "Schedule", Emits(vec![f.scheduled()])),
        ("NotScheduled", "Dispatch", Illegal),
        ("NotScheduled", "Deliver", Illegal),
        ("NotScheduled", "Fail", Illegal),
        ("NotScheduled", "Fail blank", Illegal),
        ("NotScheduled", "Cancel", Illegal),
        (
            "NotScheduled",
            "CancelUnscheduled",
            Emits(vec![f.cancelled()]),
        ),
        ("Scheduled", "Schedule", Illegal),
        ("Scheduled", "Dispatch", Emits(vec![f.dispatched()])),
        ("Scheduled", "Deliver", Illegal),
        ("Scheduled", "Fail", Emits(vec![f.failed("parcel damaged")])),
        ("Scheduled", "Fail blank", Invalid),
        ("Scheduled", "Cancel", Emits(vec![f.cancelled()])),
        ("Scheduled", "CancelUnscheduled", Illegal),
        ("Dispatched", "Schedule", Illegal),
        ("Dispatched", "Dispatch", NoOp),
        ("Dispatched", "Deliver", Emits(vec![f.completed()])),
        (
            "Dispatched",
            "Fail",
            Emits(vec![f.failed("parcel damaged")]),
        ),
        ("Dispatched", "Fail blank", Invalid),
        ("Dispatched", "Cancel", Illegal),
        ("Dispatched", "CancelUnscheduled", Illegal),
        ("Delivered", "Schedule", Illegal),
        ("Delivered", "Dispatch", Illegal),
        ("Delivered", "Deliver", NoOp),
        ("Delivered", "Fail", Illegal),
        ("Delivered", "Fail blank", Illegal),
        ("Delivered", "Cancel", Illegal),
        ("Delivered", "CancelUnscheduled", Illegal),
        ("Failed", "Schedule", Illegal),
        ("Failed", "Dispatch", Illegal),
        ("Failed", "Deliver", Illegal),
        ("Failed", "Fail", NoOp),
        ("Failed", "Fail blank", NoOp),
        ("Failed", "Cancel", Illegal),
        ("Failed", "CancelUnscheduled", Illegal),
        ("Cancelled", "Schedule", Illegal),
        ("Cancelled", "Dispatch", Illegal),
        ("Cancelled", "Deliver", Illegal),
        ("Cancelled", "Fail", Illegal),
        ("Cancelled", "Fail blank", Illegal),
        ("Cancelled", "Cancel", NoOp),
        ("Cancelled", "CancelUnscheduled", NoOp),
    ];
    assert_table_complete(&table, &STATES, &COMMANDS);
    for (state, command, expected) in table {
        given::<DeliveryState>(f.history(state))
            .when(f.command(command))
            .then_expect(expected);
    }
}

#[test]
fn happy_path_ends_delivered() {
    let f = Fixture::new();
    let scheduled = given::<DeliveryState>([])
        .when(f.command("Schedule"))
        .then([f.scheduled()]);
    assert_eq!(scheduled.ids(), Some((f.delivery_id, f.order_id)));
    let delivered = given::<DeliveryState>(f.history("Dispatched"))
        .when(DeliveryCommand::Deliver)
        .then([f.completed()]);
    assert_eq!(
        delivered,
        DeliveryState::Delivered {
            delivery_id: f.delivery_id,
            order_id: f.order_id
        }
    );
    assert!(delivered.is_terminal());
}

#[test]
fn cancel_only_before_dispatch() {
    let f = Fixture::new();
    let cancelled = given::<DeliveryState>(f.history("Scheduled"))
        .when(DeliveryCommand::Cancel)
        .then([f.cancelled()]);
    assert!(cancelled.is_terminal());
    let err = replay::<DeliveryState>(f.history("Dispatched"))
        .decide(DeliveryCommand::Cancel)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "command Cancel does not apply to delivery in state Dispatched"
    );
}

#[test]
fn failure_keeps_the_reason_and_its_repeat_is_harmless() {
    let f = Fixture::new();
    let failed = given::<DeliveryState>(f.history("Dispatched"))
        .when(DeliveryCommand::Fail {
            reason: "lost in transit".to_owned(),
        })
        .then([f.failed("lost in transit")]);
    assert!(
        matches!(failed, DeliveryState::Failed { ref reason, .. } if reason == "lost in transit")
    );
    // A repeated failure report with another reason does not overwrite the first.
    let again = given::<DeliveryState>(f.history("Failed"))
        .when(DeliveryCommand::Fail {
            reason: "other".to_owned(),
        })
        .then_no_events();
    assert!(
        matches!(again, DeliveryState::Failed { ref reason, .. } if reason == "address not found")
    );
}

#[test]
fn failure_reason_must_not_be_blank() {
    let f = Fixture::new();
    let err = given::<DeliveryState>(f.history("Scheduled"))
        .when(DeliveryCommand::Fail {
            reason: String::new(),
        })
        .then_invalid();
    assert_eq!(
        err,
        ValidationError::BlankText {
            field: "failure reason"
        }
    );
}

#[test]
fn terminal_states_are_exactly_delivered_failed_cancelled() {
    let f = Fixture::new();
    for name in STATES {
        let state = replay::<DeliveryState>(f.history(name));
        assert_eq!(
            state.is_terminal(),
            matches!(name, "Delivered" | "Failed" | "Cancelled"),
            "{name}"
        );
    }
}

#[test]
fn events_carry_type_version_ids_and_round_trip_through_serde() {
    let f = Fixture::new();
    let events = [
        f.scheduled(),
        f.dispatched(),
        f.completed(),
        f.failed("x"),
        f.cancelled(),
    ];
    for (event, event_type) in events.iter().zip(DeliveryEvent::EVENT_TYPES) {
        assert_eq!(event.event_type(), *event_type);
        assert_eq!(event.version(), 1);
        assert_eq!(event.aggregate_id(), f.delivery_id.to_string());
        assert_eq!(event.ids(), (f.delivery_id, f.order_id));
        let json = serde_json::to_value(event).unwrap();
        assert_eq!(json["type"], *event_type);
        assert_eq!(
            &serde_json::from_value::<DeliveryEvent>(json).unwrap(),
            event
        );
    }
}
