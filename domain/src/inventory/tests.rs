use super::*;
use crate::aggregate::replay;
use crate::testing::{Outcome, assert_table_complete, given};

fn qty(n: u32) -> Quantity {
    Quantity::new(n).unwrap()
}

struct Fixture {
    sku: Sku,
    /// Holds 4 units in the "Reserved" and "SoldOut" states.
    a: OrderId,
    /// Holds nothing.
    b: OrderId,
    /// Holds the 6 other units in "SoldOut".
    c: OrderId,
}

impl Fixture {
    fn new() -> Self {
        Self {
            sku: Sku::new("MUG-RED").unwrap(),
            a: OrderId::new(),
            b: OrderId::new(),
            c: OrderId::new(),
        }
    }

    fn received(&self, quantity: u32) -> InventoryEvent {
        InventoryEvent::Received {
            sku: self.sku.clone(),
            quantity,
        }
    }

    fn reserved(&self, order_id: OrderId, quantity: u32) -> InventoryEvent {
        InventoryEvent::Reserved {
            sku: self.sku.clone(),
            order_id,
            quantity: qty(quantity),
        }
    }

    fn released(&self, order_id: OrderId, quantity: u32) -> InventoryEvent {
        InventoryEvent::Released {
            sku: self.sku.clone(),
            order_id,
            quantity: qty(quantity),
        }
    }

    fn committed(&self, order_id: OrderId, quantity: u32) -> InventoryEvent {
        InventoryEvent::Committed {
            sku: self.sku.clone(),
            order_id,
            quantity: qty(quantity),
        }
    }

    fn out_of_stock(&self, requested: u32, available: u32) -> Outcome<InventoryEvent> {
        Outcome::Rejected(Rejection::OutOfStock {
            sku: self.sku.clone(),
            requested: qty(requested),
            available,
        })
    }

    fn history(&self, state: &str) -> Vec<InventoryEvent> {
        match state {
            "NotStocked" => vec![],
            // 10 on hand, nothing reserved.
            "Stocked" => vec![self.received(10)],
            // 10 on hand, 4 reserved by A.
            "Reserved" => vec![self.received(10), self.reserved(self.a, 4)],
            // 10 on hand, all reserved: 4 by A, 6 by C.
            "SoldOut" => vec![
                self.received(10),
                self.reserved(self.a, 4),
                self.reserved(self.c, 6),
            ],
            // Everything received was committed: 0 on hand, nothing reserved.
            "Emptied" => vec![
                self.received(4),
                self.reserved(self.a, 4),
                self.committed(self.a, 4),
            ],
            other => panic!("no fixture for state {other}"),
        }
    }

    fn command(&self, command: &str) -> InventoryCommand {
        let reserve = |order_id, n| InventoryCommand::Reserve {
            order_id,
            quantity: qty(n),
        };
        match command {
            "Receive 5" => InventoryCommand::Receive {
                sku: self.sku.clone(),
                quantity: 5,
            },
            "Receive 0" => InventoryCommand::Receive {
                sku: self.sku.clone(),
                quantity: 0,
            },
            "Receive other SKU" => InventoryCommand::Receive {
                sku: Sku::new("TEA").unwrap(),
                quantity: 5,
            },
            "Receive max-5" => InventoryCommand::Receive {
                sku: self.sku.clone(),
                quantity: InventoryState::MAX_ON_HAND - 5,
            },
            "Reserve 3 for B" => reserve(self.b, 3),
            "Reserve 4 for A" => reserve(self.a, 4),
            "Reserve 5 for A" => reserve(self.a, 5),
            "Reserve 11 for B" => reserve(self.b, 11),
            "Release A" => InventoryCommand::Release { order_id: self.a },
            "Commit A" => InventoryCommand::Commit { order_id: self.a },
            other => panic!("no fixture for command {other}"),
        }
    }
}

const STATES: [&str; 5] = ["NotStocked", "Stocked", "Reserved", "SoldOut", "Emptied"];
const COMMANDS: [&str; 10] = [
    "Receive 5",
    "Receive 0",
    "Receive other SKU",
    "Receive max-5",
    "Reserve 3 for B",
    "Reserve 4 for A",
    "Reserve 5 for A",
    "Reserve 11 for B",
    "Release A",
    "Commit A",
];

/// Adding a state variant breaks this match: add the state to `STATES` and the table.
const fn state_kind(state: &InventoryState) -> &'static str {
    match state {
        InventoryState::NotStocked => "NotStocked",
        InventoryState::Stocked(_) => "Stocked",
    }
}

/// Adding a command variant breaks this match: add the command to `COMMANDS` and the table.
const fn command_kind(command: &InventoryCommand) -> &'static str {
    match command {
        InventoryCommand::Receive { .. } => "Receive",
        InventoryCommand::Reserve { .. } => "Reserve",
        InventoryCommand::Release { .. } => "Release",
        InventoryCommand::Commit { .. } => "Commit",
    }
}

#[test]
fn fixtures_cover_every_state_and_command() {
    let f = Fixture::new();
    let expected = [
        ("NotStocked", 0, 0),
        ("Stocked", 10, 0),
        ("Reserved", 10, 4),
        ("SoldOut", 10, 10),
        ("Emptied", 0, 0),
    ];
    for (name, on_hand, reserved) in expected {
        let state = replay::<InventoryState>(f.history(name));
        let kind = state_kind(&state);
        assert_eq!(kind, state.name());
        assert!(
            name == kind || kind == "Stocked",
            "{name} is a {kind} state"
        );
        assert_eq!(
            (state.on_hand(), state.reserved()),
            (on_hand, reserved),
            "{name}"
        );
    }
    for name in COMMANDS {
        let command = f.command(name);
        assert!(name.starts_with(command_kind(&command)), "{name}");
        assert_eq!(command.name(), command_kind(&command));
    }
    for kind in ["Receive", "Reserve", "Release", "Commit"] {
        assert!(COMMANDS.iter().any(|name| name.starts_with(kind)), "{kind}");
    }
}

#[test]
fn every_state_and_command_pair() {
    use Outcome::{Emits, Illegal, Invalid, NoOp};
    let f = Fixture::new();
    let tea = InventoryEvent::Received {
        sku: Sku::new("TEA").unwrap(),
        quantity: 5,
    };
    let max_minus_5 = InventoryState::MAX_ON_HAND - 5;
    let table = [
        ("NotStocked", "Receive 5", Emits(vec![f.received(5)])),
        ("NotStocked", "Receive 0", Invalid),
        ("NotStocked", "Receive other SKU", Emits(vec![tea])),
        (
            "NotStocked",
            "Receive max-5",
            Emits(vec![f.received(max_minus_5)]),
        ),
        ("NotStocked", "Reserve 3 for B", Illegal),
        ("NotStocked", "Reserve 4 for A", Illegal),
        ("NotStocked", "Reserve 5 for A", Illegal),
        ("NotStocked", "Reserve 11 for B", Illegal),
        ("NotStocked", "Release A", NoOp),
        ("NotStocked", "Commit A", Illegal),
        ("Stocked", "Receive 5", Emits(vec![f.received(5)])),
        ("Stocked", "Receive 0", Invalid),
        ("Stocked", "Receive other SKU", Invalid),
        ("Stocked", "Receive max-5", Invalid),
        (
            "Stocked",
            "Reserve 3 for B",
            Emits(vec![f.reserved(f.b, 3)]),
        ),
        (
            "Stocked",
            "Reserve 4 for A",
            Emits(vec![f.reserved(f.a, 4)]),
        ),
        (
            "Stocked",
            "Reserve 5 for A",
            Emits(vec![f.reserved(f.a, 5)]),
        ),
        ("Stocked", "Reserve 11 for B", f.out_of_stock(11, 10)),
        ("Stocked", "Release A", NoOp),
        ("Stocked", "Commit A", Illegal),
        ("Reserved", "Receive 5", Emits(vec![f.received(5)])),
        ("Reserved", "Receive 0", Invalid),
        ("Reserved", "Receive other SKU", Invalid),
        ("Reserved", "Receive max-5", Invalid),
        (
            "Reserved",
            "Reserve 3 for B",
            Emits(vec![f.reserved(f.b, 3)]),
        ),
        ("Reserved", "Reserve 4 for A", NoOp),
        ("Reserved", "Reserve 5 for A", Illegal),
        ("Reserved", "Reserve 11 for B", f.out_of_stock(11, 6)),
        ("Reserved", "Release A", Emits(vec![f.released(f.a, 4)])),
        ("Reserved", "Commit A", Emits(vec![f.committed(f.a, 4)])),
        ("SoldOut", "Receive 5", Emits(vec![f.received(5)])),
        ("SoldOut", "Receive 0", Invalid),
        ("SoldOut", "Receive other SKU", Invalid),
        ("SoldOut", "Receive max-5", Invalid),
        ("SoldOut", "Reserve 3 for B", f.out_of_stock(3, 0)),
        ("SoldOut", "Reserve 4 for A", NoOp),
        ("SoldOut", "Reserve 5 for A", Illegal),
        ("SoldOut", "Reserve 11 for B", f.out_of_stock(11, 0)),
        ("SoldOut", "Release A", Emits(vec![f.released(f.a, 4)])),
        ("SoldOut", "Commit A", Emits(vec![f.committed(f.a, 4)])),
        ("Emptied", "Receive 5", Emits(vec![f.received(5)])),
        ("Emptied", "Receive 0", Invalid),
        ("Emptied", "Receive other SKU", Invalid),
        (
            "Emptied",
            "Receive max-5",
            Emits(vec![f.received(max_minus_5)]),
        ),
        ("Emptied", "Reserve 3 for B", f.out_of_stock(3, 0)),
        ("Emptied", "Reserve 4 for A", f.out_of_stock(4, 0)),
        ("Emptied", "Reserve 5 for A", f.out_of_stock(5, 0)),
        ("Emptied", "Reserve 11 for B", f.out_of_stock(11, 0)),
        ("Emptied", "Release A", NoOp),
        ("Emptied", "Commit A", Illegal),
    ];
    assert_table_complete(&table, &STATES, &COMMANDS);
    for (state, command, expected) in table {
        given::<InventoryState>(f.history(state))
            .when(f.command(command))
            .then_expect(expected);
    }
}

#[test]
fn reserving_exactly_what_is_available_succeeds_and_one_more_is_rejected() {
    let f = Fixture::new();
    let state = given::<InventoryState>(f.history("Reserved"))
        .when(InventoryCommand::Reserve {
            order_id: f.b,
            quantity: qty(6),
        })
        .then([f.reserved(f.b, 6)]);
    assert_eq!(
        (state.on_hand(), state.reserved(), state.available()),
        (10, 10, 0)
    );

    given::<InventoryState>(f.history("Reserved"))
        .when(InventoryCommand::Reserve {
            order_id: f.b,
            quantity: qty(7),
        })
        .then_rejected(Rejection::OutOfStock {
            sku: f.sku.clone(),
            requested: qty(7),
            available: 6,
        });
}

#[test]
fn no_oversell_when_many_orders_compete_for_the_last_units() {
    let f = Fixture::new();
    let mut state = replay::<InventoryState>([f.received(5)]);
    let mut accepted = 0;
    for _ in 0..20 {
        match state.execute(InventoryCommand::Reserve {
            order_id: OrderId::new(),
            quantity: qty(2),
        }) {
            Ok((next, events)) => {
                assert_eq!(events.len(), 1);
                accepted += 1;
                state = next;
            }
            Err(DomainError::Rejected(Rejection::OutOfStock { available, .. })) => {
                assert!(available < 2);
            }
            Err(other) => panic!("unexpected {other}"),
        }
        assert!(state.reserved() <= state.on_hand());
    }
    assert_eq!(accepted, 2);
    assert_eq!(state.available(), 1);
}

#[test]
fn commit_removes_the_reservation_and_the_units_on_hand() {
    let f = Fixture::new();
    let state = given::<InventoryState>(f.history("SoldOut"))
        .when(InventoryCommand::Commit { order_id: f.a })
        .then([f.committed(f.a, 4)]);
    let stock = state.stock().unwrap();
    assert_eq!(stock.on_hand(), 6);
    assert_eq!(stock.reserved(), 6);
    assert_eq!(stock.reservation(f.a), None);
    assert_eq!(stock.reservation(f.c), Some(qty(6)));
    assert_eq!(stock.sku(), &f.sku);
}

#[test]
fn release_gives_units_back_and_repeating_it_is_harmless() {
    let f = Fixture::new();
    let state = given::<InventoryState>(f.history("Reserved"))
        .when(InventoryCommand::Release { order_id: f.a })
        .then([f.released(f.a, 4)]);
    assert_eq!((state.on_hand(), state.available()), (10, 10));

    let history = [f.received(10), f.reserved(f.a, 4), f.released(f.a, 4)];
    let again = given::<InventoryState>(history)
        .when(InventoryCommand::Release { order_id: f.a })
        .then_no_events();
    assert_eq!(again, state);
}

#[test]
fn repeated_reserve_with_same_quantity_is_harmless_other_quantity_is_illegal() {
    let f = Fixture::new();
    let state = given::<InventoryState>(f.history("Reserved"))
        .when(InventoryCommand::Reserve {
            order_id: f.a,
            quantity: qty(4),
        })
        .then_no_events();
    assert_eq!(state.reserved(), 4);

    let command = given::<InventoryState>(f.history("Reserved"))
        .when(InventoryCommand::Reserve {
            order_id: f.a,
            quantity: qty(1),
        })
        .then_illegal();
    assert_eq!(command, "Reserve");
}

#[test]
fn receive_is_bounded_and_checks_the_sku() {
    let f = Fixture::new();
    let state = given::<InventoryState>([])
        .when(InventoryCommand::Receive {
            sku: f.sku.clone(),
            quantity: InventoryState::MAX_ON_HAND,
        })
        .then([f.received(InventoryState::MAX_ON_HAND)]);
    assert_eq!(state.on_hand(), InventoryState::MAX_ON_HAND);

    let err = given::<InventoryState>([f.received(InventoryState::MAX_ON_HAND)])
        .when(InventoryCommand::Receive {
            sku: f.sku.clone(),
            quantity: 1,
        })
        .then_invalid();
    assert_eq!(
        err,
        ValidationError::StockLimit {
            on_hand: InventoryState::MAX_ON_HAND,
            received: 1
        }
    );

    let err = given::<InventoryState>([])
        .when(InventoryCommand::Receive {
            sku: f.sku.clone(),
            quantity: u32::MAX,
        })
        .then_invalid();
    assert!(matches!(err, ValidationError::StockLimit { .. }));

    let err = given::<InventoryState>(f.history("Stocked"))
        .when(InventoryCommand::Receive {
            sku: Sku::new("TEA").unwrap(),
            quantity: 1,
        })
        .then_invalid();
    assert_eq!(
        err.to_string(),
        "sku must be MUG-RED for this stock, got TEA"
    );
}

#[test]
fn inventory_is_never_terminal() {
    let f = Fixture::new();
    for name in STATES {
        assert!(!replay::<InventoryState>(f.history(name)).is_terminal());
    }
}

#[test]
fn events_carry_type_version_sku_and_round_trip_through_serde() {
    let f = Fixture::new();
    let events = [
        f.received(3),
        f.reserved(f.a, 2),
        f.released(f.a, 2),
        f.committed(f.a, 2),
    ];
    for (event, event_type) in events.iter().zip(InventoryEvent::EVENT_TYPES) {
        assert_eq!(event.event_type(), *event_type);
        assert_eq!(event.version(), 1);
        assert_eq!(event.aggregate_id(), "MUG-RED");
        let json = serde_json::to_value(event).unwrap();
        assert_eq!(json["type"], *event_type);
        assert_eq!(json["sku"], "MUG-RED");
        assert_eq!(
            &serde_json::from_value::<InventoryEvent>(json).unwrap(),
            event
        );
    }
    let mut json = serde_json::to_value(f.reserved(f.a, 2)).unwrap();
    json["quantity"] = serde_json::json!(0);
    assert!(serde_json::from_value::<InventoryEvent>(json).is_err());
}
