use super::*;
use crate::aggregate::replay;
use crate::money::Currency;
use crate::testing::{Outcome, assert_table_complete, given};

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR).unwrap()
}

struct Fixture {
    payment_id: PaymentId,
    order_id: OrderId,
}

/// The authorized and captured amount: 100.00 EUR.
const AMOUNT: i64 = 10_000;

impl Fixture {
    fn new() -> Self {
        Self {
            payment_id: PaymentId::new(),
            order_id: OrderId::new(),
        }
    }

    fn authorized(&self) -> PaymentEvent {
        PaymentEvent::Authorized {
            payment_id: self.payment_id,
            order_id: self.order_id,
            amount: eur(AMOUNT),
            provider_ref: "psp-123".to_owned(),
        }
    }

    fn declined(&self) -> PaymentEvent {
        PaymentEvent::Declined {
            payment_id: self.payment_id,
            order_id: self.order_id,
            amount: eur(AMOUNT),
            reason: "insufficient funds".to_owned(),
        }
    }

    fn captured(&self) -> PaymentEvent {
        PaymentEvent::Captured {
            payment_id: self.payment_id,
            order_id: self.order_id,
            amount: eur(AMOUNT),
        }
    }

    fn voided_unauthorized(&self) -> PaymentEvent {
        PaymentEvent::Voided {
            payment_id: self.payment_id,
            order_id: self.order_id,
            amount: eur(0),
        }
    }

    fn voided(&self) -> PaymentEvent {
        PaymentEvent::Voided {
            payment_id: self.payment_id,
            order_id: self.order_id,
            amount: eur(AMOUNT),
        }
    }

    fn refunded(&self, amount: i64, total_refunded: i64) -> PaymentEvent {
        PaymentEvent::Refunded {
            payment_id: self.payment_id,
            order_id: self.order_id,
            amount: eur(amount),
            total_refunded: eur(total_refunded),
            captured: eur(AMOUNT),
        }
    }

    fn authorize(&self) -> PaymentCommand {
        PaymentCommand::Authorize {
            payment_id: self.payment_id,
            order_id: self.order_id,
            amount: eur(AMOUNT),
            provider_ref: "psp-123".to_owned(),
        }
    }

    fn decline(&self) -> PaymentCommand {
        PaymentCommand::Decline {
            payment_id: self.payment_id,
            order_id: self.order_id,
            amount: eur(AMOUNT),
            reason: "insufficient funds".to_owned(),
        }
    }

    fn history(&self, state: &str) -> Vec<PaymentEvent> {
        match state {
            "NotStarted" => vec![],
            "Authorized" => vec![self.authorized()],
            "Declined" => vec![self.declined()],
            "Captured" => vec![self.authorized(), self.captured()],
            // Captured, 30.00 of 100.00 refunded.
            "PartlyRefunded" => vec![
                self.authorized(),
                self.captured(),
                self.refunded(3_000, 3_000),
            ],
            "Voided" => vec![self.authorized(), self.voided()],
            "Refunded" => vec![
                self.authorized(),
                self.captured(),
                self.refunded(3_000, 3_000),
                self.refunded(7_000, AMOUNT),
            ],
            other => panic!("no fixture for state {other}"),
        }
    }

    fn command(&self, command: &str) -> PaymentCommand {
        let refund = |amount| PaymentCommand::Refund { amount };
        match command {
            "Authorize" => self.authorize(),
            "Decline" => self.decline(),
            "Capture" => PaymentCommand::Capture,
            "Void" => PaymentCommand::Void,
            "VoidUnauthorized" => PaymentCommand::VoidUnauthorized {
                payment_id: self.payment_id,
                order_id: self.order_id,
                currency: Currency::EUR,
            },
            "Refund 20.00" => refund(eur(2_000)),
            "Refund 70.00" => refund(eur(7_000)),
            "Refund 100.01" => refund(eur(AMOUNT + 1)),
            "Refund 0.00" => refund(eur(0)),
            "Refund in USD" => refund(Money::new(2_000, Currency::USD).unwrap()),
            other => panic!("no fixture for command {other}"),
        }
    }
}

const STATES: [&str; 7] = [
    "NotStarted",
    "Authorized",
    "Declined",
    "Captured",
    "PartlyRefunded",
    "Voided",
    "Refunded",
];
const COMMANDS: [&str; 10] = [
    "Authorize",
    "Decline",
    "Capture",
    "Void",
    "VoidUnauthorized",
    "Refund 20.00",
    "Refund 70.00",
    "Refund 100.01",
    "Refund 0.00",
    "Refund in USD",
];

/// Adding a state variant breaks this match: add the state to `STATES` and the table.
const fn state_name(state: &PaymentState) -> &'static str {
    match state {
        PaymentState::NotStarted => "NotStarted",
        PaymentState::Authorized { .. } => "Authorized",
        PaymentState::Declined { .. } => "Declined",
        PaymentState::Captured { refunded, .. } if refunded.is_zero() => "Captured",
        PaymentState::Captured { .. } => "PartlyRefunded",
        PaymentState::Voided { .. } => "Voided",
        PaymentState::Refunded { .. } => "Refunded",
    }
}

/// Adding a command variant breaks this match: add the command to `COMMANDS` and the table.
const fn command_kind(command: &PaymentCommand) -> &'static str {
    match command {
        PaymentCommand::Authorize { .. } => "Authorize",
        PaymentCommand::Decline { .. } => "Decline",
        PaymentCommand::Capture => "Capture",
        PaymentCommand::Void => "Void",
        PaymentCommand::VoidUnauthorized { .. } => "VoidUnauthorized",
        PaymentCommand::Refund { .. } => "Refund",
    }
}

#[test]
fn fixtures_cover_every_state_and_command() {
    let f = Fixture::new();
    for name in STATES {
        assert_eq!(state_name(&replay::<PaymentState>(f.history(name))), name);
    }
    for name in COMMANDS {
        let command = f.command(name);
        assert!(name.starts_with(command_kind(&command)), "{name}");
        assert_eq!(command.name(), command_kind(&command));
    }
    for kind in [
        "Authorize",
        "Decline",
        "Capture",
        "Void",
        "VoidUnauthorized",
        "Refund",
    ] {
        assert!(COMMANDS.iter().any(|name| name.starts_with(kind)), "{kind}");
    }
}

#[test]
fn every_state_and_command_pair() {
    use Outcome::{Emits, Illegal, Invalid, NoOp, Rejected};
    let f = Fixture::new();
    let exceeds = |requested: i64, refundable: i64| {
        Rejected(Rejection::RefundExceedsCaptured {
            requested: eur(requested),
            refundable: eur(refundable),
        })
    };
    let table = [
        ("NotStarted", "Authorize", Emits(vec![f.authorized()])),
        ("NotStarted", "Decline", Emits(vec![f.declined()])),
        ("NotStarted", "Capture", Illegal),
        ("NotStarted", "Void", Illegal),
        (
            "NotStarted",
            "VoidUnauthorized",
            Emits(vec![f.voided_unauthorized()]),
        ),
        ("NotStarted", "Refund 20.00", Illegal),
        ("NotStarted", "Refund 70.00", Illegal),
        ("NotStarted", "Refund 100.01", Illegal),
        ("NotStarted", "Refund 0.00", Illegal),
        ("NotStarted", "Refund in USD", Illegal),
        ("Authorized", "Authorize", Illegal),
        ("Authorized", "Decline", Illegal),
        ("Authorized", "Capture", Emits(vec![f.captured()])),
        ("Authorized", "Void", Emits(vec![f.voided()])),
        ("Authorized", "VoidUnauthorized", Illegal),
        ("Authorized", "Refund 20.00", Illegal),
        ("Authorized", "Refund 70.00", Illegal),
        ("Authorized", "Refund 100.01", Illegal),
        ("Authorized", "Refund 0.00", Illegal),
        ("Authorized", "Refund in USD", Illegal),
        ("Declined", "Authorize", Illegal),
        ("Declined", "Decline", Illegal),
        ("Declined", "Capture", Illegal),
        ("Declined", "Void", Illegal),
        ("Declined", "VoidUnauthorized", Illegal),
        ("Declined", "Refund 20.00", Illegal),
        ("Declined", "Refund 70.00", Illegal),
        ("Declined", "Refund 100.01", Illegal),
        ("Declined", "Refund 0.00", Illegal),
        ("Declined", "Refund in USD", Illegal),
        ("Captured", "Authorize", Illegal),
        ("Captured", "Decline", Illegal),
        ("Captured", "Capture", NoOp),
        ("Captured", "Void", Illegal),
        ("Captured", "VoidUnauthorized", Illegal),
        (
            "Captured",
            "Refund 20.00",
            Emits(vec![f.refunded(2_000, 2_000)]),
        ),
        (
            "Captured",
            "Refund 70.00",
            Emits(vec![f.refunded(7_000, 7_000)]),
        ),
        ("Captured", "Refund 100.01", exceeds(AMOUNT + 1, AMOUNT)),
        ("Captured", "Refund 0.00", Invalid),
        ("Captured", "Refund in USD", Invalid),
        ("PartlyRefunded", "Authorize", Illegal),
        ("PartlyRefunded", "Decline", Illegal),
        ("PartlyRefunded", "Capture", NoOp),
        ("PartlyRefunded", "Void", Illegal),
        ("PartlyRefunded", "VoidUnauthorized", Illegal),
        (
            "PartlyRefunded",
            "Refund 20.00",
            Emits(vec![f.refunded(2_000, 5_000)]),
        ),
        (
            "PartlyRefunded",
            "Refund 70.00",
            Emits(vec![f.refunded(7_000, AMOUNT)]),
        ),
        (
            "PartlyRefunded",
            "Refund 100.01",
            exceeds(AMOUNT + 1, 7_000),
        ),
        ("PartlyRefunded", "Refund 0.00", Invalid),
        ("PartlyRefunded", "Refund in USD", Invalid),
        ("Voided", "Authorize", Illegal),
        ("Voided", "Decline", Illegal),
        ("Voided", "Capture", Illegal),
        ("Voided", "Void", NoOp),
        ("Voided", "VoidUnauthorized", NoOp),
        ("Voided", "Refund 20.00", Illegal),
        ("Voided", "Refund 70.00", Illegal),
        ("Voided", "Refund 100.01", Illegal),
        ("Voided", "Refund 0.00", Illegal),
        ("Voided", "Refund in USD", Illegal),
        ("Refunded", "Authorize", Illegal),
        ("Refunded", "Decline", Illegal),
        ("Refunded", "Capture", Illegal),
        ("Refunded", "Void", Illegal),
        ("Refunded", "VoidUnauthorized", Illegal),
        ("Refunded", "Refund 20.00", exceeds(2_000, 0)),
        ("Refunded", "Refund 70.00", exceeds(7_000, 0)),
        ("Refunded", "Refund 100.01", exceeds(AMOUNT + 1, 0)),
        ("Refunded", "Refund 0.00", Invalid),
        ("Refunded", "Refund in USD", Invalid),
    ];
    assert_table_complete(&table, &STATES, &COMMANDS);
    for (state, command, expected) in table {
        given::<PaymentState>(f.history(state))
            .when(f.command(command))
            .then_expect(expected);
    }
}

#[test]
fn authorize_then_capture_takes_the_full_authorized_amount() {
    let f = Fixture::new();
    let authorized = given::<PaymentState>([])
        .when(f.authorize())
        .then([f.authorized()]);
    assert_eq!(authorized.ids(), Some((f.payment_id, f.order_id)));
    let captured = given::<PaymentState>([f.authorized()])
        .when(PaymentCommand::Capture)
        .then([f.captured()]);
    assert_eq!(
        captured,
        PaymentState::Captured {
            payment_id: f.payment_id,
            order_id: f.order_id,
            amount: eur(AMOUNT),
            refunded: eur(0),
        }
    );
    assert!(!captured.is_terminal());
}

#[test]
fn never_double_captures() {
    let f = Fixture::new();
    let (state, events) = replay::<PaymentState>([f.authorized()])
        .execute(PaymentCommand::Capture)
        .unwrap();
    assert_eq!(events.len(), 1);
    let (again, repeat) = state.execute(PaymentCommand::Capture).unwrap();
    assert!(repeat.is_empty());
    assert_eq!(again, state);
}

#[test]
fn partial_refunds_accumulate_until_fully_refunded() {
    let f = Fixture::new();
    let refund = |minor| PaymentCommand::Refund { amount: eur(minor) };

    let state = given::<PaymentState>(f.history("Captured"))
        .when(refund(2_500))
        .then([f.refunded(2_500, 2_500)]);
    assert!(matches!(state, PaymentState::Captured { refunded, .. } if refunded == eur(2_500)));

    let history = [f.authorized(), f.captured(), f.refunded(2_500, 2_500)];
    let state = given::<PaymentState>(history.clone())
        .when(refund(2_500))
        .then([f.refunded(2_500, 5_000)]);
    assert!(matches!(state, PaymentState::Captured { refunded, .. } if refunded == eur(5_000)));

    let history = [
        f.authorized(),
        f.captured(),
        f.refunded(2_500, 2_500),
        f.refunded(2_500, 5_000),
    ];
    let state = given::<PaymentState>(history.clone())
        .when(refund(5_000))
        .then([f.refunded(5_000, AMOUNT)]);
    assert_eq!(
        state,
        PaymentState::Refunded {
            payment_id: f.payment_id,
            order_id: f.order_id,
            amount: eur(AMOUNT),
        }
    );
    assert!(state.is_terminal());
}

#[test]
fn over_refund_is_rejected_with_what_is_left() {
    let f = Fixture::new();
    given::<PaymentState>(f.history("PartlyRefunded"))
        .when(PaymentCommand::Refund { amount: eur(7_001) })
        .then_rejected(Rejection::RefundExceedsCaptured {
            requested: eur(7_001),
            refundable: eur(7_000),
        });
    let err = replay::<PaymentState>(f.history("PartlyRefunded"))
        .decide(PaymentCommand::Refund { amount: eur(7_001) })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "rejected: refund of 70.01 EUR exceeds the 70.00 EUR still refundable"
    );
}

#[test]
fn refund_in_another_currency_or_of_zero_is_invalid() {
    let f = Fixture::new();
    let err = given::<PaymentState>(f.history("Captured"))
        .when(PaymentCommand::Refund {
            amount: Money::new(100, Currency::GBP).unwrap(),
        })
        .then_invalid();
    assert_eq!(
        err,
        ValidationError::CurrencyMismatch {
            field: "refund amount",
            expected: Currency::EUR,
            found: Currency::GBP
        }
    );
    let err = given::<PaymentState>(f.history("Captured"))
        .when(PaymentCommand::Refund { amount: eur(0) })
        .then_invalid();
    assert_eq!(err.to_string(), "refund amount must be greater than zero");
}

#[test]
fn authorize_and_decline_validate_their_input() {
    let f = Fixture::new();
    let with = |amount: Money, text: &str| {
        (
            PaymentCommand::Authorize {
                payment_id: f.payment_id,
                order_id: f.order_id,
                amount,
                provider_ref: text.to_owned(),
            },
            PaymentCommand::Decline {
                payment_id: f.payment_id,
                order_id: f.order_id,
                amount,
                reason: text.to_owned(),
            },
        )
    };
    let (authorize, decline) = with(eur(0), "ok");
    assert_eq!(
        given::<PaymentState>([]).when(authorize).then_invalid(),
        ValidationError::NotPositive {
            field: "authorized amount"
        }
    );
    assert_eq!(
        given::<PaymentState>([]).when(decline).then_invalid(),
        ValidationError::NotPositive {
            field: "declined amount"
        }
    );
    let (authorize, decline) = with(eur(1), "  ");
    assert_eq!(
        given::<PaymentState>([]).when(authorize).then_invalid(),
        ValidationError::BlankText {
            field: "provider_ref"
        }
    );
    assert_eq!(
        given::<PaymentState>([]).when(decline).then_invalid(),
        ValidationError::BlankText {
            field: "decline reason"
        }
    );
    let (authorize, _) = with(eur(1), &"x".repeat(crate::MAX_TEXT_LEN + 1));
    assert!(matches!(
        given::<PaymentState>([]).when(authorize).then_invalid(),
        ValidationError::TextTooLong { .. }
    ));
}

#[test]
fn declined_is_terminal_and_keeps_the_reason() {
    let f = Fixture::new();
    let state = given::<PaymentState>([])
        .when(f.decline())
        .then([f.declined()]);
    assert!(state.is_terminal());
    assert!(
        matches!(state, PaymentState::Declined { ref reason, .. } if reason == "insufficient funds")
    );
}

#[test]
fn terminal_states_are_exactly_declined_voided_refunded() {
    let f = Fixture::new();
    for name in STATES {
        let state = replay::<PaymentState>(f.history(name));
        assert_eq!(
            state.is_terminal(),
            matches!(name, "Declined" | "Voided" | "Refunded"),
            "{name}"
        );
    }
}

#[test]
fn events_carry_type_version_ids_and_round_trip_through_serde() {
    let f = Fixture::new();
    let events = [
        f.authorized(),
        f.declined(),
        f.captured(),
        f.voided(),
        f.refunded(100, 100),
    ];
    for (event, event_type) in events.iter().zip(PaymentEvent::EVENT_TYPES) {
        assert_eq!(event.event_type(), *event_type);
        assert_eq!(event.version(), PaymentEvent::CURRENT_VERSION);
        assert_eq!(event.aggregate_id(), f.payment_id.to_string());
        assert_eq!(event.order_id(), f.order_id);
        let json = serde_json::to_value(event).unwrap();
        assert_eq!(json["type"], *event_type);
        assert_eq!(
            &serde_json::from_value::<PaymentEvent>(json).unwrap(),
            event
        );
    }
    let mut json = serde_json::to_value(f.captured()).unwrap();
    json["amount"]["minor"] = serde_json::json!(-5);
    assert!(serde_json::from_value::<PaymentEvent>(json).is_err());
}
