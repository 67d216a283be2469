//! Fixtures and given/when/then helpers for saga tests.

use core::time::Duration;

use domain::{
    CancelReason, Currency, CustomerId, DeliveryId, Money, OrderId, OrderLine, OrderLines,
    PaymentId, Quantity, Sku,
};

use crate::{
    Handled, IgnoreReason, OrderSaga, OutgoingCommand, RetryPolicy, SagaCommand, SagaConfig,
    SagaError, SagaEvent, SagaInput, Step, StepTimeouts, TimerChange, TimerKey, Trigger, replay,
};

/// A config with small, distinct durations so that tests can tell them apart.
pub fn config() -> SagaConfig {
    SagaConfig {
        timeouts: StepTimeouts {
            reserve_stock: Duration::from_secs(10),
            authorize_payment: Duration::from_secs(20),
            schedule_delivery: Duration::from_secs(30),
            dispatch: Duration::from_secs(40),
            capture_payment: Duration::from_secs(50),
            commit_stock: Duration::from_secs(60),
            delivery: Duration::from_secs(70),
            compensation: Duration::from_secs(80),
        },
        retry: RetryPolicy {
            max_attempts: 3,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(3),
        },
    }
}

pub struct Fixture {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub lines: OrderLines,
    pub payment_id: PaymentId,
    pub delivery_id: DeliveryId,
}

impl Fixture {
    pub fn new() -> Self {
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
            payment_id: PaymentId::new(),
            delivery_id: DeliveryId::new(),
        }
    }

    pub fn total(&self) -> Money {
        Money::new(2999, Currency::EUR).unwrap()
    }

    pub fn start(&self) -> SagaInput {
        SagaInput::Start {
            order_id: self.order_id,
            customer_id: self.customer_id,
            lines: self.lines.clone(),
        }
    }

    pub fn started(&self) -> SagaEvent {
        SagaEvent::Started {
            order_id: self.order_id,
            customer_id: self.customer_id,
            lines: self.lines.clone(),
            total: self.total(),
        }
    }

    pub fn out_of_stock(&self) -> SagaInput {
        SagaInput::StockRejected {
            sku: Sku::new("MUG-RED").unwrap(),
            requested: Quantity::new(2).unwrap(),
            available: 1,
        }
    }

    pub fn authorized(&self) -> SagaInput {
        SagaInput::PaymentAuthorized {
            payment_id: self.payment_id,
        }
    }

    pub fn scheduled(&self) -> SagaInput {
        SagaInput::DeliveryScheduled {
            delivery_id: self.delivery_id,
        }
    }

    /// The events that lead to a representative saga in state `name`.
    pub fn history(&self, name: &str) -> Vec<SagaEvent> {
        let forward = [
            self.started(),
            SagaEvent::StockReserved,
            SagaEvent::PaymentAuthorized {
                payment_id: self.payment_id,
            },
            SagaEvent::DeliveryScheduled {
                delivery_id: self.delivery_id,
            },
            SagaEvent::DeliveryDispatched,
            SagaEvent::PaymentCaptured,
            SagaEvent::StockCommitted,
        ];
        let until = |n: usize| forward[..n].to_vec();
        let timed_out_waiting_for_dispatch = SagaEvent::CompensationStarted {
            trigger: Trigger::TimedOut {
                step: Step::AwaitDispatch,
                attempt: 1,
            },
        };
        match name {
            "NotStarted" => vec![],
            "ReservingStock" => until(1),
            "AuthorizingPayment" => until(2),
            "SchedulingDelivery" => until(3),
            "AwaitingDispatch" => until(4),
            "CapturingPayment" => until(5),
            "CommittingStock" => until(6),
            "AwaitingDelivery" => until(7),
            // Cancelling the delivery, then void, then release.
            "Compensating" => [until(4), vec![timed_out_waiting_for_dispatch]].concat(),
            "Completed" => [until(7), vec![SagaEvent::DeliveryCompleted]].concat(),
            "Compensated" => [
                until(1),
                vec![SagaEvent::CompensationStarted {
                    trigger: Trigger::StockRejected {
                        sku: Sku::new("MUG-RED").unwrap(),
                        requested: Quantity::new(2).unwrap(),
                        available: 1,
                    },
                }],
            ]
            .concat(),
            "NeedsAttention" => [
                until(5),
                vec![SagaEvent::Escalated {
                    step: Step::CapturePayment,
                    attempts: 3,
                    last_error: "provider down".into(),
                    retryable: true,
                }],
            ]
            .concat(),
            other => panic!("no fixture for state {other}"),
        }
    }

    /// A representative input named `name` for `state`: a timeout is the state's pending
    /// timer (a stale one if it has none), a failure report names the current step.
    pub fn input(&self, name: &str, state: &OrderSaga) -> SagaInput {
        let current = state
            .current_step()
            .map_or(Step::ReserveStock, |(step, _)| step);
        match name {
            "Start" => self.start(),
            "StockReserved" => SagaInput::StockReserved,
            "StockRejected" => self.out_of_stock(),
            "StockReleased" => SagaInput::StockReleased,
            "StockCommitted" => SagaInput::StockCommitted,
            "PaymentAuthorized" => self.authorized(),
            "PaymentDeclined" => SagaInput::PaymentDeclined {
                reason: "insufficient funds".into(),
            },
            "PaymentCaptured" => SagaInput::PaymentCaptured,
            "PaymentVoided" => SagaInput::PaymentVoided,
            "PaymentRefunded" => SagaInput::PaymentRefunded,
            "DeliveryScheduled" => self.scheduled(),
            "DeliveryDispatched" => SagaInput::DeliveryDispatched,
            "DeliveryCompleted" => SagaInput::DeliveryCompleted,
            "DeliveryFailed" => SagaInput::DeliveryFailed {
                reason: "address unknown".into(),
            },
            "DeliveryCancelled" => SagaInput::DeliveryCancelled,
            "Timeout" => SagaInput::Timeout(
                state
                    .pending_timer()
                    .unwrap_or(TimerKey::deadline(Step::ReserveStock, 1)),
            ),
            "StepFailed" => SagaInput::StepFailed {
                step: current,
                error: "service unavailable".into(),
            },
            "Resume" => SagaInput::Resume,
            other => panic!("no fixture for input {other}"),
        }
    }

    pub fn send(&self, attempt: u32, command: SagaCommand) -> OutgoingCommand {
        OutgoingCommand {
            order_id: self.order_id,
            attempt,
            command,
        }
    }

    /// Attempt `attempt` at cancelling the fixture's delivery.
    pub fn cancel_delivery(&self, attempt: u32) -> OutgoingCommand {
        self.send(
            attempt,
            SagaCommand::CancelDelivery {
                delivery_id: Some(self.delivery_id),
            },
        )
    }

    pub fn cancel_order(&self, reason: CancelReason) -> OutgoingCommand {
        self.send(1, SagaCommand::CancelOrder { reason })
    }
}

pub const INPUTS: [&str; 18] = [
    "Start",
    "StockReserved",
    "StockRejected",
    "StockReleased",
    "StockCommitted",
    "PaymentAuthorized",
    "PaymentDeclined",
    "PaymentCaptured",
    "PaymentVoided",
    "PaymentRefunded",
    "DeliveryScheduled",
    "DeliveryDispatched",
    "DeliveryCompleted",
    "DeliveryFailed",
    "DeliveryCancelled",
    "Timeout",
    "StepFailed",
    "Resume",
];

/// Adding an input variant breaks this match: add it to `INPUTS` and the fixtures.
pub const fn input_index(input: &SagaInput) -> usize {
    match input {
        SagaInput::Start { .. } => 0,
        SagaInput::StockReserved => 1,
        SagaInput::StockRejected { .. } => 2,
        SagaInput::StockReleased => 3,
        SagaInput::StockCommitted => 4,
        SagaInput::PaymentAuthorized { .. } => 5,
        SagaInput::PaymentDeclined { .. } => 6,
        SagaInput::PaymentCaptured => 7,
        SagaInput::PaymentVoided => 8,
        SagaInput::PaymentRefunded => 9,
        SagaInput::DeliveryScheduled { .. } => 10,
        SagaInput::DeliveryDispatched => 11,
        SagaInput::DeliveryCompleted => 12,
        SagaInput::DeliveryFailed { .. } => 13,
        SagaInput::DeliveryCancelled => 14,
        SagaInput::Timeout(_) => 15,
        SagaInput::StepFailed { .. } => 16,
        SagaInput::Resume => 17,
    }
}

/// Adding a state variant breaks this match: add it to `STATE_NAMES` and the fixtures.
pub const fn state_index(state: &OrderSaga) -> usize {
    match state {
        OrderSaga::NotStarted => 0,
        OrderSaga::ReservingStock { .. } => 1,
        OrderSaga::AuthorizingPayment { .. } => 2,
        OrderSaga::SchedulingDelivery { .. } => 3,
        OrderSaga::AwaitingDispatch { .. } => 4,
        OrderSaga::CapturingPayment { .. } => 5,
        OrderSaga::CommittingStock { .. } => 6,
        OrderSaga::AwaitingDelivery { .. } => 7,
        OrderSaga::Compensating { .. } => 8,
        OrderSaga::Completed { .. } => 9,
        OrderSaga::Compensated { .. } => 10,
        OrderSaga::NeedsAttention { .. } => 11,
    }
}

/// Starts a test from the saga that `history` builds.
///
/// # Panics
/// If an event of `history` does not change the state (an impossible history).
#[track_caller]
pub fn given(history: impl IntoIterator<Item = SagaEvent>) -> Given {
    let history: Vec<SagaEvent> = history.into_iter().collect();
    let state = evolve_checked(OrderSaga::NotStarted, &history, "given");
    Given {
        history,
        state,
        config: config(),
    }
}

#[derive(Debug)]
#[must_use = "call .when(input)"]
pub struct Given {
    pub history: Vec<SagaEvent>,
    pub state: OrderSaga,
    pub config: SagaConfig,
}

impl Given {
    pub fn when(self, input: SagaInput) -> When {
        let input_debug = format!("{input:?}");
        let result = self.state.handle(input, &self.config);
        When {
            context: format!(
                "saga in state {} given {} event(s), input {input_debug}",
                self.state.name(),
                self.history.len()
            ),
            given: self,
            result,
        }
    }
}

#[derive(Debug)]
#[must_use = "assert the outcome with .then(..), .then_ignored(..) or .then_error(..)"]
pub struct When {
    given: Given,
    context: String,
    result: Result<Handled, SagaError>,
}

/// An applied transition under test; assert its effects, then take [`Then::saga`].
#[derive(Debug)]
pub struct Then {
    pub history: Vec<SagaEvent>,
    pub state: OrderSaga,
    pub commands: Vec<OutgoingCommand>,
    pub timer: TimerChange,
    pub config: SagaConfig,
    context: String,
}

impl When {
    /// The history the input was decided against.
    pub fn history(&self) -> &[SagaEvent] {
        &self.given.history
    }

    /// Asserts that the input produced exactly `expected` events, that they evolve
    /// sensibly, and that replaying the whole history gives the new state.
    #[track_caller]
    pub fn then(self, expected: impl IntoIterator<Item = SagaEvent>) -> Then {
        let expected: Vec<SagaEvent> = expected.into_iter().collect();
        let context = self.context;
        match self.result {
            Ok(Handled::Applied(transition)) => {
                assert_eq!(transition.events, expected, "unexpected events: {context}");
                let Given {
                    mut history,
                    state,
                    config,
                } = self.given;
                let next = evolve_checked(state, &transition.events, &context);
                assert_eq!(
                    next, transition.state,
                    "handle and evolve disagree: {context}"
                );
                history.extend(transition.events);
                assert_eq!(replay(&history), next, "replay differs: {context}");
                Then {
                    history,
                    state: next,
                    commands: transition.commands,
                    timer: transition.timer,
                    config,
                    context,
                }
            }
            other => panic!("expected events {expected:?}, got {other:?}: {context}"),
        }
    }

    /// Asserts an applied transition, whatever its events (still checked for consistency).
    #[track_caller]
    pub fn then_any(self) -> Then {
        let events = match &self.result {
            Ok(Handled::Applied(transition)) => transition.events.clone(),
            other => panic!("expected a transition, got {other:?}: {}", self.context),
        };
        self.then(events)
    }

    /// As [`When::then_any`], continuing from the new state.
    #[track_caller]
    pub fn then_any_saga(self) -> Given {
        self.then_any().saga()
    }

    /// Asserts that the input was ignored for `reason`.
    #[track_caller]
    pub fn then_ignored(self, reason: IgnoreReason) {
        let context = self.context;
        match self.result {
            Ok(Handled::Ignored(ignored)) => {
                assert_eq!(ignored.reason, reason, "wrong reason: {context}");
                assert_eq!(ignored.state, self.given.state.name(), "{context}");
            }
            other => panic!("expected ignored ({reason:?}), got {other:?}: {context}"),
        }
    }

    /// Asserts that the input was refused with `expected`.
    #[track_caller]
    pub fn then_error(self, expected: SagaError) {
        let context = self.context;
        match self.result {
            Err(error) => assert_eq!(
                format!("{error:?}"),
                format!("{expected:?}"),
                "wrong error: {context}"
            ),
            other => panic!("expected error {expected:?}, got {other:?}: {context}"),
        }
    }
}

impl Then {
    /// Asserts the saga's state name.
    #[track_caller]
    pub fn in_state(self, state: &str) -> Self {
        assert_eq!(self.state.name(), state, "{}", self.context);
        self
    }

    /// Asserts the commands sent, in order.
    #[track_caller]
    pub fn sends(self, expected: impl IntoIterator<Item = OutgoingCommand>) -> Self {
        let expected: Vec<_> = expected.into_iter().collect();
        assert_eq!(
            self.commands, expected,
            "unexpected commands: {}",
            self.context
        );
        self
    }

    /// Asserts that no command is sent.
    #[track_caller]
    pub fn sends_nothing(self) -> Self {
        self.sends([])
    }

    /// Asserts that the timer is set to `key` with the config's duration for it.
    #[track_caller]
    pub fn sets_timer(self, key: TimerKey, due_after: Duration) -> Self {
        assert_eq!(
            self.timer,
            TimerChange::Set(crate::Timer { key, due_after }),
            "unexpected timer: {}",
            self.context
        );
        self
    }

    /// Asserts the timer change.
    #[track_caller]
    pub fn timer(self, expected: TimerChange) -> Self {
        assert_eq!(self.timer, expected, "unexpected timer: {}", self.context);
        self
    }

    /// Continues from the new state.
    pub fn saga(self) -> Given {
        Given {
            history: self.history,
            state: self.state,
            config: self.config,
        }
    }
}

/// Evolves `state` with `events`, checking that each event is listed, versioned, and
/// changes the state.
#[track_caller]
pub fn evolve_checked(mut state: OrderSaga, events: &[SagaEvent], context: &str) -> OrderSaga {
    for (index, event) in events.iter().enumerate() {
        assert!(
            SagaEvent::EVENT_TYPES.contains(&event.event_type()),
            "event #{index} type {} is missing from EVENT_TYPES: {context}",
            event.event_type()
        );
        assert_eq!(event.version(), SagaEvent::VERSION, "{context}");
        let next = state.clone().evolve(event);
        assert_ne!(
            next, state,
            "event #{index} {event:?} did not change the state: {context}"
        );
        state = next;
    }
    state
}
