//! Given/when/then tests of whole paths: happy, failures, compensations, retries.

use core::time::Duration;

use domain::{CancelReason, MAX_TEXT_LEN};

use super::support::{Fixture, config, given};
use crate::{
    AttemptPhase, Compensation, IgnoreReason, OrderSaga, RetryPolicy, SagaCommand, SagaError,
    SagaEvent, SagaInput, Step, TimerChange, TimerKey, Trigger,
};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn happy_path_sends_one_command_at_a_time_each_with_its_timer() {
    let f = Fixture::new();
    let saga = given([])
        .when(f.start())
        .then([f.started()])
        .in_state("ReservingStock")
        .sends([f.send(
            1,
            SagaCommand::ReserveStock {
                lines: f.lines.clone(),
            },
        )])
        .sets_timer(TimerKey::deadline(Step::ReserveStock, 1), secs(10))
        .saga()
        .when(SagaInput::StockReserved)
        .then([SagaEvent::StockReserved])
        .sends([f.send(
            1,
            SagaCommand::AuthorizePayment {
                customer_id: f.customer_id,
                amount: f.total(),
            },
        )])
        .sets_timer(TimerKey::deadline(Step::AuthorizePayment, 1), secs(20))
        .saga()
        .when(f.authorized())
        .then([SagaEvent::PaymentAuthorized {
            payment_id: f.payment_id,
        }])
        .sends([f.send(
            1,
            SagaCommand::ScheduleDelivery {
                customer_id: f.customer_id,
                lines: f.lines.clone(),
            },
        )])
        .sets_timer(TimerKey::deadline(Step::ScheduleDelivery, 1), secs(30))
        .saga()
        .when(f.scheduled())
        .then([SagaEvent::DeliveryScheduled {
            delivery_id: f.delivery_id,
        }])
        .in_state("AwaitingDispatch")
        .sends_nothing()
        .sets_timer(TimerKey::deadline(Step::AwaitDispatch, 1), secs(40))
        .saga()
        .when(SagaInput::DeliveryDispatched)
        .then([SagaEvent::DeliveryDispatched])
        .sends([f.send(
            1,
            SagaCommand::CapturePayment {
                payment_id: f.payment_id,
            },
        )])
        .sets_timer(TimerKey::deadline(Step::CapturePayment, 1), secs(50))
        .saga()
        .when(SagaInput::PaymentCaptured)
        .then([SagaEvent::PaymentCaptured])
        .sends([f.send(1, SagaCommand::CommitStock)])
        .sets_timer(TimerKey::deadline(Step::CommitStock, 1), secs(60))
        .saga()
        .when(SagaInput::StockCommitted)
        .then([SagaEvent::StockCommitted])
        .in_state("AwaitingDelivery")
        .sends_nothing()
        .sets_timer(TimerKey::deadline(Step::AwaitDelivery, 1), secs(70))
        .saga()
        .when(SagaInput::DeliveryCompleted)
        .then([SagaEvent::DeliveryCompleted])
        .in_state("Completed")
        .sends([f.send(1, SagaCommand::CompleteOrder)])
        .timer(TimerChange::Clear)
        .saga();
    assert_eq!(
        saga.state,
        OrderSaga::Completed {
            order: saga.state.order().unwrap().clone(),
            payment_id: f.payment_id,
            delivery_id: f.delivery_id,
        }
    );
    assert_eq!(saga.history.len(), 8);
}

#[test]
fn out_of_stock_cancels_the_order_with_nothing_to_undo() {
    let f = Fixture::new();
    given(f.history("ReservingStock"))
        .when(f.out_of_stock())
        .then([SagaEvent::CompensationStarted {
            trigger: Trigger::StockRejected {
                sku: "MUG-RED".parse().unwrap(),
                requested: domain::Quantity::new(2).unwrap(),
                available: 1,
            },
        }])
        .in_state("Compensated")
        .sends([f.cancel_order(CancelReason::OutOfStock)])
        .timer(TimerChange::Clear);
}

#[test]
fn declined_payment_releases_the_stock_then_cancels() {
    let f = Fixture::new();
    given(f.history("AuthorizingPayment"))
        .when(SagaInput::PaymentDeclined {
            reason: "card expired".into(),
        })
        .then([SagaEvent::CompensationStarted {
            trigger: Trigger::PaymentDeclined {
                reason: "card expired".into(),
            },
        }])
        .sends([f.send(1, SagaCommand::ReleaseStock)])
        .sets_timer(TimerKey::deadline(Step::ReleaseStock, 1), secs(80))
        .saga()
        .when(SagaInput::StockReleased)
        .then([SagaEvent::StockReleased])
        .in_state("Compensated")
        .sends([f.cancel_order(CancelReason::PaymentDeclined)])
        .timer(TimerChange::Clear);
}

/// Drives a compensating saga through `replies`, checking that each sends the next
/// compensation, and returns the commands sent in all (the last is `CancelOrder`).
fn compensate_to_the_end(
    f: &Fixture,
    mut saga: super::support::Given,
    first: SagaCommand,
) -> Vec<SagaCommand> {
    let mut sent = vec![first];
    while let OrderSaga::Compensating { current, .. } = &saga.state {
        let (reply, event) = match current {
            Compensation::CancelDelivery { .. } => {
                (SagaInput::DeliveryCancelled, SagaEvent::DeliveryCancelled)
            }
            Compensation::VoidPayment { .. } => {
                (SagaInput::PaymentVoided, SagaEvent::PaymentVoided)
            }
            Compensation::RefundPayment { .. } => {
                (SagaInput::PaymentRefunded, SagaEvent::PaymentRefunded)
            }
            Compensation::ReleaseStock => (SagaInput::StockReleased, SagaEvent::StockReleased),
        };
        let then = saga.when(reply).then([event]);
        assert_eq!(then.commands.len(), 1);
        assert_eq!(then.commands[0].order_id, f.order_id);
        sent.push(then.commands[0].command.clone());
        saga = then.saga();
    }
    assert_eq!(saga.state.name(), "Compensated");
    sent
}

#[test]
fn a_timeout_in_each_forward_step_undoes_what_may_have_happened_and_cancels_for_timeout() {
    let f = Fixture::new();
    let void = |payment_id| SagaCommand::VoidPayment { payment_id };
    let cancel = |delivery_id| SagaCommand::CancelDelivery { delivery_id };
    let refund = SagaCommand::RefundPayment {
        payment_id: f.payment_id,
        amount: f.total(),
    };
    let timeout = SagaCommand::CancelOrder {
        reason: CancelReason::Timeout,
    };
    let cases: Vec<(&str, Step, Vec<SagaCommand>)> = vec![
        (
            "ReservingStock",
            Step::ReserveStock,
            vec![SagaCommand::ReleaseStock, timeout.clone()],
        ),
        (
            "AuthorizingPayment",
            Step::AuthorizePayment,
            vec![void(None), SagaCommand::ReleaseStock, timeout.clone()],
        ),
        (
            "SchedulingDelivery",
            Step::ScheduleDelivery,
            vec![
                cancel(None),
                void(Some(f.payment_id)),
                SagaCommand::ReleaseStock,
                timeout.clone(),
            ],
        ),
        (
            "AwaitingDispatch",
            Step::AwaitDispatch,
            vec![
                cancel(Some(f.delivery_id)),
                void(Some(f.payment_id)),
                SagaCommand::ReleaseStock,
                timeout.clone(),
            ],
        ),
        // Presumed lost: refunded; the committed stock stays committed.
        (
            "AwaitingDelivery",
            Step::AwaitDelivery,
            vec![refund, timeout],
        ),
    ];
    for (state, step, expected) in cases {
        let then = given(f.history(state))
            .when(SagaInput::Timeout(TimerKey::deadline(step, 1)))
            .then([SagaEvent::CompensationStarted {
                trigger: Trigger::TimedOut { step, attempt: 1 },
            }])
            .in_state("Compensating");
        let first = then.commands[0].command.clone();
        let sent = compensate_to_the_end(&f, then.saga(), first);
        assert_eq!(sent, expected, "timeout in {state}");
    }
}

#[test]
fn a_delivery_that_fails_before_dispatch_is_not_cancelled() {
    let f = Fixture::new();
    for state in ["SchedulingDelivery", "AwaitingDispatch"] {
        let then = given(f.history(state))
            .when(SagaInput::DeliveryFailed {
                reason: "no carrier".into(),
            })
            .then([SagaEvent::CompensationStarted {
                trigger: Trigger::DeliveryFailed {
                    reason: "no carrier".into(),
                },
            }]);
        let first = then.commands[0].command.clone();
        let sent = compensate_to_the_end(&f, then.saga(), first);
        assert_eq!(
            sent,
            [
                SagaCommand::VoidPayment {
                    payment_id: Some(f.payment_id)
                },
                SagaCommand::ReleaseStock,
                SagaCommand::CancelOrder {
                    reason: CancelReason::DeliveryFailed
                },
            ],
            "{state}"
        );
    }
}

#[test]
fn a_delivery_that_fails_after_dispatch_is_refunded_and_its_stock_stays_committed() {
    let f = Fixture::new();
    given(f.history("AwaitingDelivery"))
        .when(SagaInput::DeliveryFailed {
            reason: "parcel lost".into(),
        })
        .then([SagaEvent::CompensationStarted {
            trigger: Trigger::DeliveryFailed {
                reason: "parcel lost".into(),
            },
        }])
        .sends([f.send(
            1,
            SagaCommand::RefundPayment {
                payment_id: f.payment_id,
                amount: f.total(),
            },
        )])
        .sets_timer(TimerKey::deadline(Step::RefundPayment, 1), secs(80))
        .saga()
        .when(SagaInput::PaymentRefunded)
        .then([SagaEvent::PaymentRefunded])
        .in_state("Compensated")
        .sends([f.cancel_order(CancelReason::DeliveryFailed)]);
}

#[test]
fn a_delivery_that_fails_while_settling_is_refunded_once_settled() {
    let f = Fixture::new();
    given(f.history("CapturingPayment"))
        .when(SagaInput::DeliveryFailed {
            reason: "damaged".into(),
        })
        .then([SagaEvent::DeliveryFailed {
            reason: "damaged".into(),
        }])
        .in_state("CapturingPayment")
        .sends_nothing()
        .timer(TimerChange::Keep)
        .saga()
        // Recorded once; a repeat is a duplicate.
        .when(SagaInput::DeliveryCompleted)
        .then_ignored(IgnoreReason::NotExpected);

    let saga = given(
        [
            f.history("CapturingPayment"),
            vec![SagaEvent::DeliveryFailed {
                reason: "damaged".into(),
            }],
        ]
        .concat(),
    );
    saga.when(SagaInput::PaymentCaptured)
        .then([SagaEvent::PaymentCaptured])
        .sends([f.send(1, SagaCommand::CommitStock)])
        .saga()
        .when(SagaInput::StockCommitted)
        .then([SagaEvent::StockCommitted])
        .in_state("Compensating")
        .sends([f.send(
            1,
            SagaCommand::RefundPayment {
                payment_id: f.payment_id,
                amount: f.total(),
            },
        )])
        .sets_timer(TimerKey::deadline(Step::RefundPayment, 1), secs(80))
        .saga()
        .when(SagaInput::PaymentRefunded)
        .then([SagaEvent::PaymentRefunded])
        .sends([f.cancel_order(CancelReason::DeliveryFailed)]);
}

#[test]
fn a_parcel_delivered_while_settling_completes_the_order_once_settled() {
    let f = Fixture::new();
    given(f.history("CommittingStock"))
        .when(SagaInput::DeliveryCompleted)
        .then([SagaEvent::DeliveryCompleted])
        .in_state("CommittingStock")
        .sends_nothing()
        .timer(TimerChange::Keep)
        .saga()
        .when(SagaInput::StockCommitted)
        .then([SagaEvent::StockCommitted])
        .in_state("Completed")
        .sends([f.send(1, SagaCommand::CompleteOrder)])
        .timer(TimerChange::Clear);
}

#[test]
fn a_failed_compensation_is_retried_with_backoff_then_escalated() {
    let f = Fixture::new();
    let cancel = |attempt| f.cancel_delivery(attempt);
    let failed = |error: &str| SagaInput::StepFailed {
        step: Step::CancelDelivery,
        error: error.into(),
    };
    let then = given(f.history("Compensating"))
        .when(failed("carrier api down"))
        .then([SagaEvent::StepAttemptFailed {
            step: Step::CancelDelivery,
            attempt: 1,
            error: "carrier api down".into(),
        }])
        .sends_nothing()
        .sets_timer(TimerKey::retry(Step::CancelDelivery, 2), secs(1));
    let OrderSaga::Compensating { attempt, .. } = &then.state else {
        panic!("{:?}", then.state)
    };
    assert_eq!(
        attempt.phase,
        AttemptPhase::BackingOff {
            last_error: "carrier api down".into()
        }
    );
    then.saga()
        // A failure report while backing off is a duplicate.
        .when(failed("carrier api down"))
        .then_ignored(IgnoreReason::NotExpected);

    let saga = given(
        [
            f.history("Compensating"),
            vec![SagaEvent::StepAttemptFailed {
                step: Step::CancelDelivery,
                attempt: 1,
                error: "carrier api down".into(),
            }],
        ]
        .concat(),
    );
    saga.when(SagaInput::Timeout(TimerKey::retry(Step::CancelDelivery, 2)))
        .then([SagaEvent::StepRetried {
            step: Step::CancelDelivery,
            attempt: 2,
        }])
        .sends([cancel(2)])
        .sets_timer(TimerKey::deadline(Step::CancelDelivery, 2), secs(80))
        .saga()
        // The second attempt times out: backoff doubles.
        .when(SagaInput::Timeout(TimerKey::deadline(
            Step::CancelDelivery,
            2,
        )))
        .then([SagaEvent::StepAttemptFailed {
            step: Step::CancelDelivery,
            attempt: 2,
            error: "no reply within 80s".into(),
        }])
        .sends_nothing()
        .sets_timer(TimerKey::retry(Step::CancelDelivery, 3), secs(2))
        .saga()
        .when(SagaInput::Timeout(TimerKey::retry(Step::CancelDelivery, 3)))
        .then([SagaEvent::StepRetried {
            step: Step::CancelDelivery,
            attempt: 3,
        }])
        .sends([cancel(3)])
        .saga()
        // The third of three attempts fails: escalated, nothing more is sent.
        .when(failed("still down"))
        .then([SagaEvent::Escalated {
            step: Step::CancelDelivery,
            attempts: 3,
            last_error: "still down".into(),
            retryable: true,
        }])
        .in_state("NeedsAttention")
        .sends_nothing()
        .timer(TimerChange::Clear)
        .saga()
        .when(SagaInput::DeliveryCancelled)
        .then_ignored(IgnoreReason::Finished);
}

#[test]
fn an_operator_resumes_an_escalated_compensation_with_a_fresh_budget() {
    let f = Fixture::new();
    let cancel = |attempt| f.cancel_delivery(attempt);
    let escalated = [
        f.history("Compensating"),
        vec![SagaEvent::Escalated {
            step: Step::CancelDelivery,
            attempts: 3,
            last_error: "carrier api down".into(),
            retryable: true,
        }],
    ]
    .concat();
    let resumed = given(escalated)
        .when(SagaInput::Resume)
        .then([SagaEvent::Resumed {
            step: Step::CancelDelivery,
        }])
        .in_state("Compensating")
        .sends([cancel(1)])
        .sets_timer(TimerKey::deadline(Step::CancelDelivery, 1), secs(80))
        .saga();
    // A second resume finds the saga running: nothing happens twice.
    resumed
        .when(SagaInput::Resume)
        .then_ignored(IgnoreReason::NotExpected);
    // The whole budget again: attempt 1 fails, attempt 2 follows the backoff.
    let resumed = given(resumed_history(&f))
        .when(SagaInput::StepFailed {
            step: Step::CancelDelivery,
            error: "carrier api down".into(),
        })
        .then([SagaEvent::StepAttemptFailed {
            step: Step::CancelDelivery,
            attempt: 1,
            error: "carrier api down".into(),
        }])
        .sets_timer(TimerKey::retry(Step::CancelDelivery, 2), secs(1))
        .saga();
    resumed
        .when(SagaInput::Timeout(TimerKey::retry(Step::CancelDelivery, 2)))
        .then([SagaEvent::StepRetried {
            step: Step::CancelDelivery,
            attempt: 2,
        }])
        .sends([cancel(2)]);
    // The rest of the plan goes on from where it escalated: void, release, cancel the order.
    let done = given(resumed_history(&f))
        .when(SagaInput::DeliveryCancelled)
        .then([SagaEvent::DeliveryCancelled])
        .sends([f.send(
            1,
            SagaCommand::VoidPayment {
                payment_id: Some(f.payment_id),
            },
        )])
        .saga()
        .when(SagaInput::PaymentVoided)
        .then([SagaEvent::PaymentVoided])
        .saga()
        .when(SagaInput::StockReleased)
        .then([SagaEvent::StockReleased])
        .in_state("Compensated")
        .sends([f.cancel_order(CancelReason::Timeout)])
        .timer(TimerChange::Clear);
    assert!(done.state.is_terminal());
}

/// A compensating saga that escalated on cancelling its delivery, then was resumed.
fn resumed_history(f: &Fixture) -> Vec<SagaEvent> {
    [
        f.history("Compensating"),
        vec![
            SagaEvent::Escalated {
                step: Step::CancelDelivery,
                attempts: 3,
                last_error: "carrier api down".into(),
                retryable: true,
            },
            SagaEvent::Resumed {
                step: Step::CancelDelivery,
            },
        ],
    ]
    .concat()
}

#[test]
fn every_compensation_step_is_retried_and_escalated_alike() {
    let f = Fixture::new();
    // Reach each compensation step, then let every attempt time out.
    let reach: [(&str, Vec<SagaInput>, Step); 4] = [
        ("AwaitingDispatch", vec![], Step::CancelDelivery),
        (
            "AwaitingDispatch",
            vec![SagaInput::DeliveryCancelled],
            Step::VoidPayment,
        ),
        (
            "AwaitingDispatch",
            vec![SagaInput::DeliveryCancelled, SagaInput::PaymentVoided],
            Step::ReleaseStock,
        ),
        ("AwaitingDelivery", vec![], Step::RefundPayment),
    ];
    for (state, replies, step) in reach {
        let mut saga = given(f.history(state));
        let pending = saga.state.pending_timer().unwrap();
        saga = saga.when(SagaInput::Timeout(pending)).then_any_saga();
        for reply in replies {
            saga = saga.when(reply).then_any_saga();
        }
        assert_eq!(saga.state.current_step(), Some((step, 1)), "{step}");
        let mut sent = 0;
        while !saga.state.is_terminal() {
            let key = saga.state.pending_timer().unwrap();
            assert_eq!(key.step, step);
            let then = saga.when(SagaInput::Timeout(key)).then_any();
            sent += then.commands.len();
            saga = then.saga();
        }
        // Attempts 2 and 3 were re-sent; then escalated after the third timed out.
        assert_eq!(sent, 2, "{step}");
        let OrderSaga::NeedsAttention {
            step: stuck,
            attempts,
            ..
        } = &saga.state
        else {
            panic!("{:?}", saga.state)
        };
        assert_eq!((*stuck, *attempts), (step, 3));
    }
}

#[test]
fn a_late_success_while_backing_off_counts() {
    let f = Fixture::new();
    let history = [
        f.history("CapturingPayment"),
        vec![SagaEvent::StepAttemptFailed {
            step: Step::CapturePayment,
            attempt: 1,
            error: "timeout".into(),
        }],
    ]
    .concat();
    given(history)
        .when(SagaInput::PaymentCaptured)
        .then([SagaEvent::PaymentCaptured])
        .in_state("CommittingStock")
        .sends([f.send(1, SagaCommand::CommitStock)])
        .sets_timer(TimerKey::deadline(Step::CommitStock, 1), secs(60));
}

#[test]
fn capture_out_of_retries_escalates_without_cancelling_the_order() {
    let f = Fixture::new();
    let one_attempt = RetryPolicy {
        max_attempts: 1,
        ..config().retry
    };
    let mut saga = given(f.history("CapturingPayment"));
    saga.config.retry = one_attempt;
    saga.when(SagaInput::StepFailed {
        step: Step::CapturePayment,
        error: "provider down".into(),
    })
    .then([SagaEvent::Escalated {
        step: Step::CapturePayment,
        attempts: 1,
        last_error: "provider down".into(),
        retryable: true,
    }])
    .in_state("NeedsAttention")
    .sends_nothing()
    .timer(TimerChange::Clear)
    .saga()
    // Resumed: the capture is sent again, past the pivot as before.
    .when(SagaInput::Resume)
    .then([SagaEvent::Resumed {
        step: Step::CapturePayment,
    }])
    .in_state("CapturingPayment")
    .sends([f.send(
        1,
        SagaCommand::CapturePayment {
            payment_id: f.payment_id,
        },
    )])
    .sets_timer(TimerKey::deadline(Step::CapturePayment, 1), secs(50));
}

#[test]
fn the_parcel_dispatched_while_its_delivery_is_cancelled_escalates() {
    let f = Fixture::new();
    given(f.history("Compensating"))
        .when(SagaInput::DeliveryDispatched)
        .then([SagaEvent::Escalated {
            step: Step::CancelDelivery,
            attempts: 1,
            last_error: "the parcel was dispatched before the delivery could be cancelled".into(),
            retryable: false,
        }])
        .in_state("NeedsAttention")
        .sends_nothing()
        .timer(TimerChange::Clear)
        .saga()
        // No retry cancels a dispatched parcel: an operator's resume changes nothing.
        .when(SagaInput::Resume)
        .then_ignored(IgnoreReason::Finished);
}

#[test]
fn duplicate_replies_are_ignored() {
    let f = Fixture::new();
    let cases = [
        ("AuthorizingPayment", SagaInput::StockReserved),
        ("SchedulingDelivery", f.authorized()),
        ("AwaitingDispatch", f.scheduled()),
        ("CapturingPayment", SagaInput::DeliveryDispatched),
        ("CommittingStock", SagaInput::PaymentCaptured),
        ("AwaitingDelivery", SagaInput::StockCommitted),
        ("Completed", SagaInput::DeliveryCompleted),
    ];
    for (state, repeat) in cases {
        let reason = if state == "Completed" {
            IgnoreReason::Finished
        } else {
            IgnoreReason::NotExpected
        };
        given(f.history(state)).when(repeat).then_ignored(reason);
    }
    // A compensation reply twice: the second one does not skip the next step.
    let saga = given(f.history("Compensating"))
        .when(SagaInput::DeliveryCancelled)
        .then([SagaEvent::DeliveryCancelled])
        .saga();
    saga.when(SagaInput::DeliveryCancelled)
        .then_ignored(IgnoreReason::NotExpected);
    given(f.history("ReservingStock"))
        .when(f.start())
        .then_ignored(IgnoreReason::AlreadyStarted);
}

#[test]
fn late_replies_during_and_after_compensation_are_ignored() {
    let f = Fixture::new();
    // Authorization timed out; the authorization comes in while voiding.
    let saga = given(f.history("AuthorizingPayment"))
        .when(SagaInput::Timeout(TimerKey::deadline(
            Step::AuthorizePayment,
            1,
        )))
        .then([SagaEvent::CompensationStarted {
            trigger: Trigger::TimedOut {
                step: Step::AuthorizePayment,
                attempt: 1,
            },
        }])
        .sends([f.send(1, SagaCommand::VoidPayment { payment_id: None })])
        .saga();
    let compensated = saga
        .when(f.authorized())
        .then_ignored_and_keep()
        .when(SagaInput::PaymentVoided)
        .then([SagaEvent::PaymentVoided])
        .saga()
        .when(SagaInput::StockReleased)
        .then([SagaEvent::StockReleased])
        .in_state("Compensated")
        .saga();
    for late in [
        SagaInput::StockReserved,
        f.authorized(),
        SagaInput::PaymentVoided,
        SagaInput::StockReleased,
        f.scheduled(),
        SagaInput::Timeout(TimerKey::deadline(Step::ReleaseStock, 1)),
    ] {
        let state = compensated.state.clone();
        given(compensated.history.clone())
            .when(late)
            .then_ignored(IgnoreReason::Finished);
        assert_eq!(compensated.state, state);
    }
}

#[test]
fn stale_timers_are_ignored() {
    let f = Fixture::new();
    let saga = || given(f.history("CommittingStock"));
    for stale in [
        TimerKey::deadline(Step::ReserveStock, 1),
        TimerKey::deadline(Step::CapturePayment, 1),
        TimerKey::deadline(Step::CommitStock, 2),
        TimerKey::retry(Step::CommitStock, 2),
        TimerKey::deadline(Step::AwaitDelivery, 1),
    ] {
        saga()
            .when(SagaInput::Timeout(stale))
            .then_ignored(IgnoreReason::StaleTimer);
    }
    // A failure report for another step than the current one.
    saga()
        .when(SagaInput::StepFailed {
            step: Step::CapturePayment,
            error: "late".into(),
        })
        .then_ignored(IgnoreReason::NotExpected);
}

#[test]
fn inputs_before_the_start_and_starts_of_other_orders_are_errors() {
    let f = Fixture::new();
    given([])
        .when(SagaInput::StockReserved)
        .then_error(SagaError::NotStarted {
            input: "StockReserved",
        });
    let other = Fixture::new();
    given(f.history("AwaitingDispatch"))
        .when(other.start())
        .then_error(SagaError::OrderMismatch {
            saga: f.order_id,
            input: other.order_id,
        });
    assert_eq!(
        SagaError::NotStarted { input: "Timeout" }.to_string(),
        "Timeout for a saga that was never started"
    );
}

#[test]
fn reasons_from_services_are_bounded() {
    let f = Fixture::new();
    let long = "x".repeat(MAX_TEXT_LEN + 10);
    given(f.history("AuthorizingPayment"))
        .when(SagaInput::PaymentDeclined { reason: long })
        .then([SagaEvent::CompensationStarted {
            trigger: Trigger::PaymentDeclined {
                reason: "x".repeat(MAX_TEXT_LEN),
            },
        }]);
    given(f.history("CapturingPayment"))
        .when(SagaInput::StepFailed {
            step: Step::CapturePayment,
            error: "  ".into(),
        })
        .then([SagaEvent::StepAttemptFailed {
            step: Step::CapturePayment,
            attempt: 1,
            error: "(no reason given)".into(),
        }]);
}

#[test]
fn a_technical_failure_of_a_forward_step_compensates_like_its_timeout() {
    let f = Fixture::new();
    given(f.history("ReservingStock"))
        .when(SagaInput::StepFailed {
            step: Step::ReserveStock,
            error: "inventory db down".into(),
        })
        .then([SagaEvent::CompensationStarted {
            trigger: Trigger::StepFailed {
                step: Step::ReserveStock,
                error: "inventory db down".into(),
            },
        }])
        .sends([f.send(1, SagaCommand::ReleaseStock)])
        .saga()
        .when(SagaInput::StockReleased)
        .then([SagaEvent::StockReleased])
        .sends([f.cancel_order(CancelReason::Timeout)]);
}

impl super::support::When {
    /// Asserts "ignored as not expected" and continues from the unchanged saga.
    #[track_caller]
    fn then_ignored_and_keep(self) -> super::support::Given {
        let history = self.history().to_vec();
        self.then_ignored(IgnoreReason::NotExpected);
        given(history)
    }
}
