//! Properties of the aggregates over arbitrary command sequences.
//!
//! Commands are generated from small pools (a few order ids, small quantities and
//! amounts) so that sequences often hit the interesting cases: reserving the last
//! units, refunding up to the captured amount, repeating commands.

use std::collections::BTreeMap;

use domain::{
    Aggregate, CancelReason, Currency, CustomerId, DeliveryCommand, DeliveryId, DeliveryState,
    DomainError, InventoryCommand, InventoryEvent, InventoryState, Money, OrderCommand, OrderId,
    OrderLine, OrderLines, OrderState, PaymentCommand, PaymentEvent, PaymentId, PaymentState,
    Quantity, Rejection, Sku, replay,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

const ORDER_POOL: usize = 4;

/// Runs `commands` and checks, after every step, that four states agree: the live state
/// obtained by [`Aggregate::execute`], the state obtained by evolving each produced event
/// in turn, the state replayed from the default over every event so far, and (at the
/// end) the state replayed from the events after a JSON round trip. Also checks that
/// `decide` gives the same answer as `execute` and that every event changes the state. Calls `check(before, command, outcome,
/// after)` after each command and returns all events.
fn run_checked<A>(
    commands: impl IntoIterator<Item = A::Command>,
    mut check: impl FnMut(
        &A,
        &A::Command,
        &Result<Vec<A::Event>, DomainError>,
        &A,
    ) -> Result<(), TestCaseError>,
) -> Result<Vec<A::Event>, TestCaseError>
where
    A: Aggregate,
    A::Command: Clone,
{
    let mut live = A::default();
    let mut stepwise = A::default();
    let mut log: Vec<A::Event> = Vec::new();
    for command in commands {
        let decided = live.decide(command.clone());
        let before = live.clone();
        match live.execute(command.clone()) {
            Ok((next, events)) => {
                prop_assert_eq!(decided.as_ref().ok(), Some(&events));
                for event in &events {
                    // An event that evolve ignores would be a decide/evolve mismatch.
                    let next = stepwise.clone().evolve(event);
                    prop_assert_ne!(&next, &stepwise, "{:?} changed nothing", event);
                    stepwise = next;
                }
                log.extend(events);
                live = next;
            }
            Err(error) => prop_assert_eq!(decided.as_ref().err(), Some(&error)),
        }
        check(&before, &command, &decided, &live)?;
        prop_assert_eq!(&stepwise, &live);
        prop_assert_eq!(&replay::<A>(&log), &live);
    }
    let json = serde_json::to_string(&log).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let stored: Vec<A::Event> =
        serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&stored, &log);
    prop_assert_eq!(replay::<A>(stored), live);
    Ok(log)
}

fn order_pool() -> Vec<OrderId> {
    (0..ORDER_POOL).map(|_| OrderId::new()).collect()
}

fn sku() -> Sku {
    Sku::new("MUG-RED").unwrap()
}

// ---------------------------------------------------------------------------- inventory

#[derive(Debug, Clone)]
enum InventoryOp {
    Receive(u32),
    Reserve(usize, u32),
    Release(usize),
    Commit(usize),
}

fn inventory_op() -> impl Strategy<Value = InventoryOp> {
    prop_oneof![
        1 => (1_u32..=20).prop_map(InventoryOp::Receive),
        3 => (0..ORDER_POOL, 1_u32..=12).prop_map(|(o, q)| InventoryOp::Reserve(o, q)),
        1 => (0..ORDER_POOL).prop_map(InventoryOp::Release),
        1 => (0..ORDER_POOL).prop_map(InventoryOp::Commit),
    ]
}

fn inventory_command(op: &InventoryOp, orders: &[OrderId]) -> InventoryCommand {
    match *op {
        InventoryOp::Receive(quantity) => InventoryCommand::Receive {
            sku: sku(),
            quantity,
        },
        InventoryOp::Reserve(order, quantity) => InventoryCommand::Reserve {
            order_id: orders[order],
            quantity: Quantity::new(quantity).unwrap(),
        },
        InventoryOp::Release(order) => InventoryCommand::Release {
            order_id: orders[order],
        },
        InventoryOp::Commit(order) => InventoryCommand::Commit {
            order_id: orders[order],
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Stock on hand never goes negative and reserved never exceeds on hand, after every
    /// step; a reservation is refused exactly when it asks for more than is available;
    /// the state agrees with a simple model of receipts, reservations and commits.
    #[test]
    fn inventory_never_oversells(ops in proptest::collection::vec(inventory_op(), 0..60)) {
        let orders = order_pool();
        let mut model_on_hand: i64 = 0;
        let mut model_reservations: BTreeMap<OrderId, u32> = BTreeMap::new();
        let commands = ops.iter().map(|op| inventory_command(op, &orders));
        run_checked::<InventoryState>(commands, |before, command, outcome, after| {
            match outcome {
                Ok(events) => {
                    for event in events {
                        match event {
                            InventoryEvent::Received { quantity, .. } => {
                                model_on_hand += i64::from(*quantity);
                            }
                            InventoryEvent::Reserved { order_id, quantity, .. } => {
                                prop_assert!(quantity.get() <= before.available());
                                prop_assert!(model_reservations.insert(*order_id, quantity.get()).is_none());
                            }
                            InventoryEvent::Released { order_id, quantity, .. } => {
                                prop_assert_eq!(model_reservations.remove(order_id), Some(quantity.get()));
                            }
                            InventoryEvent::Committed { order_id, quantity, .. } => {
                                prop_assert_eq!(model_reservations.remove(order_id), Some(quantity.get()));
                                model_on_hand -= i64::from(quantity.get());
                            }
                        }
                    }
                }
                Err(DomainError::Rejected(Rejection::OutOfStock { requested, available, .. })) => {
                    prop_assert!(matches!(command, InventoryCommand::Reserve { .. }), "{:?}", command);
                    prop_assert_eq!(*available, before.available());
                    prop_assert!(requested.get() > *available);
                }
                Err(DomainError::IllegalTransition { .. }) => {
                    // Reserve/commit before any stock, a reserve with another quantity,
                    // a commit without a reservation.
                    prop_assert!(
                        !matches!(command, InventoryCommand::Receive { .. } | InventoryCommand::Release { .. }),
                        "{:?}", command
                    );
                }
                Err(other) => prop_assert!(false, "unexpected error {other}"),
            }
            prop_assert!(model_on_hand >= 0, "on hand went negative: {model_on_hand}");
            prop_assert_eq!(i64::from(after.on_hand()), model_on_hand);
            prop_assert!(after.reserved() <= after.on_hand(),
                "reserved {} > on hand {}", after.reserved(), after.on_hand());
            prop_assert_eq!(after.available(), after.on_hand() - after.reserved());
            let reservations: BTreeMap<OrderId, u32> = after
                .stock()
                .map(|stock| stock.reservations().iter().map(|(o, q)| (*o, q.get())).collect())
                .unwrap_or_default();
            prop_assert_eq!(&reservations, &model_reservations);
            Ok(())
        })?;
    }
}

// -------------------------------------------------------------------------------- order

#[derive(Debug, Clone)]
enum OrderOp {
    Place,
    Complete,
    Cancel(CancelReason),
}

fn order_op() -> impl Strategy<Value = OrderOp> {
    prop_oneof![
        Just(OrderOp::Place),
        Just(OrderOp::Complete),
        proptest::sample::select(CancelReason::ALL.to_vec()).prop_map(OrderOp::Cancel),
    ]
}

fn order_lines() -> impl Strategy<Value = OrderLines> {
    proptest::collection::vec((1_u32..=5, 0_i64..=10_000), 1..=3).prop_map(|lines| {
        OrderLines::new(
            lines
                .into_iter()
                .enumerate()
                .map(|(i, (quantity, price))| OrderLine {
                    sku: Sku::new(format!("SKU-{i}")).unwrap(),
                    quantity: Quantity::new(quantity).unwrap(),
                    unit_price: Money::new(price, Currency::EUR).unwrap(),
                })
                .collect(),
        )
        .unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Once terminal, an order never changes again (so never leaves its terminal state),
    /// and nothing but illegal transitions is ever refused.
    #[test]
    fn order_never_leaves_a_terminal_state(
        ops in proptest::collection::vec(order_op(), 0..20),
        lines in order_lines(),
    ) {
        let order_id = OrderId::new();
        let customer_id = CustomerId::new();
        let commands = ops.iter().map(|op| match op {
            OrderOp::Place => OrderCommand::Place { order_id, customer_id, lines: lines.clone(), idempotency_key: None },
            OrderOp::Complete => OrderCommand::Complete,
            OrderOp::Cancel(reason) => OrderCommand::Cancel { reason: *reason },
        });
        let mut terminal: Option<OrderState> = None;
        run_checked::<OrderState>(commands, |_, _, outcome, after| {
            if let Err(error) = outcome {
                prop_assert!(matches!(error, DomainError::IllegalTransition { aggregate: "order", .. }), "{error}");
            }
            if let Some(first) = &terminal {
                prop_assert_eq!(after, first);
                prop_assert!(outcome.as_ref().map_or(true, Vec::is_empty));
            } else if after.is_terminal() {
                terminal = Some(after.clone());
            }
            if let Some(details) = after.details() {
                prop_assert_eq!(details.total, lines.total());
            }
            Ok(())
        })?;
    }
}

// ------------------------------------------------------------------------------ payment

#[derive(Debug, Clone)]
enum PaymentOp {
    Authorize(i64),
    Decline(i64),
    Capture,
    Void,
    VoidUnauthorized,
    Refund(i64, bool),
}

fn payment_op() -> impl Strategy<Value = PaymentOp> {
    prop_oneof![
        1 => (1_i64..=100).prop_map(PaymentOp::Authorize),
        1 => (1_i64..=100).prop_map(PaymentOp::Decline),
        1 => Just(PaymentOp::Capture),
        1 => Just(PaymentOp::Void),
        1 => Just(PaymentOp::VoidUnauthorized),
        4 => (0_i64..=60, proptest::bool::weighted(0.9)).prop_map(|(m, eur)| PaymentOp::Refund(m, eur)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A payment is captured at most once, refunds never add up past the captured amount,
    /// a terminal payment never changes, and replay rebuilds the live state.
    #[test]
    fn payment_never_double_captures_or_over_refunds(
        ops in proptest::collection::vec(payment_op(), 0..30),
    ) {
        let payment_id = PaymentId::new();
        let order_id = OrderId::new();
        let eur = |minor| Money::new(minor, Currency::EUR).unwrap();
        let commands = ops.iter().map(|op| match *op {
            PaymentOp::Authorize(minor) => PaymentCommand::Authorize {
                payment_id, order_id, amount: eur(minor), provider_ref: "psp".to_owned(),
            },
            PaymentOp::Decline(minor) => PaymentCommand::Decline {
                payment_id, order_id, amount: eur(minor), reason: "no".to_owned(),
            },
            PaymentOp::Capture => PaymentCommand::Capture,
            PaymentOp::Void => PaymentCommand::Void,
            PaymentOp::VoidUnauthorized => PaymentCommand::VoidUnauthorized {
                payment_id, order_id, currency: Currency::EUR,
            },
            PaymentOp::Refund(minor, true) => PaymentCommand::Refund { amount: eur(minor) },
            PaymentOp::Refund(minor, false) => PaymentCommand::Refund {
                amount: Money::new(minor, Currency::USD).unwrap(),
            },
        });
        let mut terminal: Option<PaymentState> = None;
        let log = run_checked::<PaymentState>(commands, |_, _, _, after| {
            if let Some(first) = &terminal {
                prop_assert_eq!(after, first);
            } else if after.is_terminal() {
                terminal = Some(after.clone());
            }
            if let PaymentState::Captured { amount, refunded, .. } = after {
                prop_assert!(refunded.minor() < amount.minor());
            }
            Ok(())
        })?;
        let captured: Vec<i64> = log.iter().filter_map(|event| match event {
            PaymentEvent::Captured { amount, .. } => Some(amount.minor()),
            _ => None,
        }).collect();
        prop_assert!(captured.len() <= 1, "captured {} times", captured.len());
        let refunded: i64 = log.iter().filter_map(|event| match event {
            PaymentEvent::Refunded { amount, .. } => Some(amount.minor()),
            _ => None,
        }).sum();
        prop_assert!(refunded <= captured.first().copied().unwrap_or(0));
    }
}

// ----------------------------------------------------------------------------- delivery

fn delivery_command(
    delivery_id: DeliveryId,
    order_id: OrderId,
) -> impl Strategy<Value = DeliveryCommand> {
    prop_oneof![
        Just(DeliveryCommand::Schedule {
            delivery_id,
            order_id
        }),
        Just(DeliveryCommand::Dispatch),
        Just(DeliveryCommand::Deliver),
        proptest::sample::select(vec!["lost", "", "damaged"]).prop_map(|reason| {
            DeliveryCommand::Fail {
                reason: reason.to_owned(),
            }
        }),
        Just(DeliveryCommand::Cancel),
        Just(DeliveryCommand::CancelUnscheduled {
            delivery_id,
            order_id
        }),
    ]
}

fn delivery_case() -> impl Strategy<Value = Vec<DeliveryCommand>> {
    let delivery_id = DeliveryId::new();
    let order_id = OrderId::new();
    proptest::collection::vec(delivery_command(delivery_id, order_id), 0..20)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A terminal delivery never changes, it is never cancelled after dispatch (before scheduling
    /// is fine), and replay rebuilds the live state.
    #[test]
    fn delivery_terminal_states_are_final(commands in delivery_case()) {
        let mut terminal: Option<DeliveryState> = None;
        run_checked::<DeliveryState>(commands, |before, _, _, after| {
            if let Some(first) = &terminal {
                prop_assert_eq!(after, first);
            } else if after.is_terminal() {
                terminal = Some(after.clone());
            }
            if matches!(after, DeliveryState::Cancelled { .. }) {
                prop_assert!(
                    matches!(
                        before,
                        DeliveryState::NotScheduled
                            | DeliveryState::Scheduled { .. }
                            | DeliveryState::Cancelled { .. }
                    ),
                    "cancelled from {}", before.name()
                );
            }
            Ok(())
        })?;
    }
}
