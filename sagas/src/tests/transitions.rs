//! Every (state, input) pair: the transitions listed, everything else ignored.

use super::support::{Fixture, INPUTS, given, input_index, state_index};
use crate::{IgnoreReason, OrderSaga, SagaError};

/// `(state, input, next state, command names)`. Every pair not listed is ignored (or an
/// error before the start).
const TRANSITIONS: &[(&str, &str, &str, &[&str])] = &[
    ("NotStarted", "Start", "ReservingStock", &["ReserveStock"]),
    (
        "ReservingStock",
        "StockReserved",
        "AuthorizingPayment",
        &["AuthorizePayment"],
    ),
    (
        "ReservingStock",
        "StockRejected",
        "Compensated",
        &["CancelOrder"],
    ),
    (
        "ReservingStock",
        "Timeout",
        "Compensating",
        &["ReleaseStock"],
    ),
    (
        "ReservingStock",
        "StepFailed",
        "Compensating",
        &["ReleaseStock"],
    ),
    (
        "AuthorizingPayment",
        "PaymentAuthorized",
        "SchedulingDelivery",
        &["ScheduleDelivery"],
    ),
    (
        "AuthorizingPayment",
        "PaymentDeclined",
        "Compensating",
        &["ReleaseStock"],
    ),
    (
        "AuthorizingPayment",
        "Timeout",
        "Compensating",
        &["VoidPayment"],
    ),
    (
        "AuthorizingPayment",
        "StepFailed",
        "Compensating",
        &["VoidPayment"],
    ),
    (
        "SchedulingDelivery",
        "DeliveryScheduled",
        "AwaitingDispatch",
        &[],
    ),
    (
        "SchedulingDelivery",
        "DeliveryFailed",
        "Compensating",
        &["VoidPayment"],
    ),
    (
        "SchedulingDelivery",
        "Timeout",
        "Compensating",
        &["CancelDelivery"],
    ),
    (
        "SchedulingDelivery",
        "StepFailed",
        "Compensating",
        &["CancelDelivery"],
    ),
    (
        "AwaitingDispatch",
        "DeliveryDispatched",
        "CapturingPayment",
        &["CapturePayment"],
    ),
    (
        "AwaitingDispatch",
        "DeliveryFailed",
        "Compensating",
        &["VoidPayment"],
    ),
    (
        "AwaitingDispatch",
        "Timeout",
        "Compensating",
        &["CancelDelivery"],
    ),
    (
        "AwaitingDispatch",
        "StepFailed",
        "Compensating",
        &["CancelDelivery"],
    ),
    (
        "CapturingPayment",
        "PaymentCaptured",
        "CommittingStock",
        &["CommitStock"],
    ),
    (
        "CapturingPayment",
        "DeliveryCompleted",
        "CapturingPayment",
        &[],
    ),
    (
        "CapturingPayment",
        "DeliveryFailed",
        "CapturingPayment",
        &[],
    ),
    ("CapturingPayment", "Timeout", "CapturingPayment", &[]),
    ("CapturingPayment", "StepFailed", "CapturingPayment", &[]),
    ("CommittingStock", "StockCommitted", "AwaitingDelivery", &[]),
    (
        "CommittingStock",
        "DeliveryCompleted",
        "CommittingStock",
        &[],
    ),
    ("CommittingStock", "DeliveryFailed", "CommittingStock", &[]),
    ("CommittingStock", "Timeout", "CommittingStock", &[]),
    ("CommittingStock", "StepFailed", "CommittingStock", &[]),
    (
        "AwaitingDelivery",
        "DeliveryCompleted",
        "Completed",
        &["CompleteOrder"],
    ),
    (
        "AwaitingDelivery",
        "DeliveryFailed",
        "Compensating",
        &["RefundPayment"],
    ),
    (
        "AwaitingDelivery",
        "Timeout",
        "Compensating",
        &["RefundPayment"],
    ),
    (
        "AwaitingDelivery",
        "StepFailed",
        "Compensating",
        &["RefundPayment"],
    ),
    // Representative: cancelling the delivery, void and release to follow.
    (
        "Compensating",
        "DeliveryCancelled",
        "Compensating",
        &["VoidPayment"],
    ),
    ("Compensating", "DeliveryDispatched", "NeedsAttention", &[]),
    (
        "NeedsAttention",
        "Resume",
        "CapturingPayment",
        &["CapturePayment"],
    ),
    ("Compensating", "Timeout", "Compensating", &[]),
    ("Compensating", "StepFailed", "Compensating", &[]),
];

#[test]
fn fixtures_cover_every_state_and_input() {
    let f = Fixture::new();
    for (index, name) in OrderSaga::STATE_NAMES.iter().enumerate() {
        let state = given(f.history(name)).state;
        assert_eq!(state.name(), *name);
        assert_eq!(state_index(&state), index);
        for (index, input) in INPUTS.iter().enumerate() {
            let input_value = f.input(input, &state);
            assert_eq!(input_value.name(), *input);
            assert_eq!(input_index(&input_value), index);
        }
    }
    for (state, input, to, _) in TRANSITIONS {
        for name in [state, to] {
            assert!(
                OrderSaga::STATE_NAMES.contains(name),
                "unknown state {name}"
            );
        }
        assert!(INPUTS.contains(input), "unknown input {input}");
        let rows = TRANSITIONS
            .iter()
            .filter(|(s, i, _, _)| s == state && i == input)
            .count();
        assert_eq!(rows, 1, "({state}, {input}) is listed {rows} times");
    }
}

#[test]
fn every_state_and_input_pair() {
    let f = Fixture::new();
    for state_name in OrderSaga::STATE_NAMES {
        for input_name in INPUTS {
            let saga = given(f.history(state_name));
            let input = f.input(input_name, &saga.state);
            let listed = TRANSITIONS
                .iter()
                .find(|(s, i, _, _)| *s == state_name && *i == input_name);
            let when = saga.when(input);
            match listed {
                Some((_, _, to, commands)) => {
                    let then = when.then_any();
                    assert_eq!(then.state.name(), *to, "({state_name}, {input_name})");
                    let sent: Vec<&str> = then.commands.iter().map(|c| c.command.name()).collect();
                    assert_eq!(sent, *commands, "({state_name}, {input_name})");
                }
                None if state_name == "NotStarted" => {
                    when.then_error(SagaError::NotStarted { input: input_name });
                }
                None => {
                    let reason = match (state_name, input_name) {
                        (_, "Start") => IgnoreReason::AlreadyStarted,
                        ("Completed" | "Compensated" | "NeedsAttention", _) => {
                            IgnoreReason::Finished
                        }
                        _ => IgnoreReason::NotExpected,
                    };
                    when.then_ignored(reason);
                }
            }
        }
    }
}
