//! Properties over random input sequences.

use proptest::prelude::*;

use super::support::{Fixture, config};
use crate::{
    Handled, OrderSaga, SagaInput, Step, TimerChange, TimerKey, TimerKey as Key, TimerKind, replay,
};

/// What happens to a saga next: a reply, a random (usually stale) timer, or the live
/// timer firing.
#[derive(Debug, Clone)]
enum Action {
    Reply(u8),
    Timer(Key),
    FireLiveTimer,
}

fn action() -> impl Strategy<Value = Action> {
    let step = proptest::sample::select(Step::ALL.to_vec());
    let kind = prop_oneof![Just(TimerKind::Deadline), Just(TimerKind::Retry)];
    prop_oneof![
        4 => (0_u8..18).prop_map(Action::Reply),
        1 => (step, 1_u32..5, kind).prop_map(|(step, attempt, kind)| {
            Action::Timer(TimerKey { step, attempt, kind })
        }),
        3 => Just(Action::FireLiveTimer),
    ]
}

/// A reply by index (17 kinds, an operator's resume among them; `Start` is sent first).
fn reply(f: &Fixture, other: &Fixture, n: u8) -> SagaInput {
    match n {
        0 => SagaInput::StockReserved,
        1 => f.out_of_stock(),
        2 => SagaInput::StockReleased,
        3 => SagaInput::StockCommitted,
        4 => f.authorized(),
        5 => SagaInput::PaymentDeclined {
            reason: "no".into(),
        },
        6 => SagaInput::PaymentCaptured,
        7 => SagaInput::PaymentVoided,
        8 => SagaInput::PaymentRefunded,
        9 => f.scheduled(),
        10 => SagaInput::DeliveryDispatched,
        11 => SagaInput::DeliveryCompleted,
        12 => SagaInput::DeliveryFailed {
            reason: "lost".into(),
        },
        13 => SagaInput::DeliveryCancelled,
        14 => f.start(),
        15 => other.authorized(),
        16 => SagaInput::Resume,
        _ => SagaInput::StepFailed {
            step: Step::ALL[usize::from(n) % Step::ALL.len()],
            error: "down".into(),
        },
    }
}

/// The caller's side in miniature: the event stream, the one timer row, the outbox.
struct Harness {
    saga: OrderSaga,
    events: Vec<crate::SagaEvent>,
    timer: Option<Key>,
    config: crate::SagaConfig,
}

impl Harness {
    fn started(f: &Fixture) -> Self {
        let mut harness = Self {
            saga: OrderSaga::NotStarted,
            events: vec![],
            timer: None,
            config: config(),
        };
        harness.feed(f.start());
        harness
    }

    /// Feeds `input`, applies the outcome like the caller would, and checks the
    /// invariants. Returns whether the saga moved.
    fn feed(&mut self, input: SagaInput) -> bool {
        let was_terminal = self.saga.is_terminal();
        let escalated = matches!(self.saga, OrderSaga::NeedsAttention { .. });
        let outcome = self.saga.handle(input.clone(), &self.config);
        let moved = match outcome {
            Ok(Handled::Applied(transition)) => {
                assert!(
                    !was_terminal || (escalated && input == SagaInput::Resume),
                    "a terminal saga moved on {input:?}"
                );
                assert!(!transition.events.is_empty());
                assert!(
                    transition.commands.len() <= 1,
                    "more than one command at a time: {:?}",
                    transition.commands
                );
                self.events.extend(transition.events);
                self.saga = transition.state;
                match transition.timer {
                    TimerChange::Keep => {}
                    TimerChange::Set(timer) => self.timer = Some(timer.key),
                    TimerChange::Clear => self.timer = None,
                }
                true
            }
            Ok(Handled::Ignored(_)) => false,
            Err(error) => panic!("{input:?} refused: {error}"),
        };
        self.check();
        moved
    }

    fn fire_live_timer(&mut self) -> bool {
        match self.timer.take() {
            Some(key) => {
                let moved = self.feed(SagaInput::Timeout(key));
                assert!(moved, "the live timer {key} was ignored by {:?}", self.saga);
                true
            }
            None => false,
        }
    }

    fn check(&self) {
        if self.saga.is_terminal() {
            assert_eq!(self.timer, None, "terminal saga with a live timer");
        } else {
            let live = self
                .timer
                .expect("a non-terminal saga without a live timer");
            assert_eq!(Some(live), self.saga.pending_timer(), "{:?}", self.saga);
            let (step, attempt) = self.saga.current_step().unwrap();
            assert_eq!(
                (
                    live.step,
                    live.attempt - u32::from(live.kind == TimerKind::Retry)
                ),
                (step, attempt)
            );
        }
        assert_eq!(replay(&self.events), self.saga, "replay differs");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// After any sequence of inputs, the saga is terminal with no timer, or has exactly
    /// the one live timer it waits on; a terminal saga never moves nor sends; replaying
    /// the persisted events rebuilds the same state.
    #[test]
    fn every_saga_has_its_one_timer_or_is_over(actions in proptest::collection::vec(action(), 0..60)) {
        let f = Fixture::new();
        let other = Fixture::new();
        let mut harness = Harness::started(&f);
        for action in actions {
            match action {
                Action::Reply(n) => { harness.feed(reply(&f, &other, n)); }
                Action::Timer(key) => {
                    // A random key fires as well; if it happens to be the live one, the
                    // store deletes it first, as when it fires for real.
                    if harness.timer == Some(key) {
                        harness.fire_live_timer();
                    } else {
                        harness.feed(SagaInput::Timeout(key));
                    }
                }
                Action::FireLiveTimer => { harness.fire_live_timer(); }
            }
        }
    }

    /// No saga is stuck: from wherever random inputs left it, its timers alone drive it
    /// to a terminal state (within a bound on the number of firings).
    #[test]
    fn timers_alone_end_every_saga(actions in proptest::collection::vec(action(), 0..40)) {
        let f = Fixture::new();
        let other = Fixture::new();
        let mut harness = Harness::started(&f);
        for action in actions {
            match action {
                Action::Reply(n) => { harness.feed(reply(&f, &other, n)); }
                Action::Timer(_) | Action::FireLiveTimer => { harness.fire_live_timer(); }
            }
        }
        // Worst case: four compensations, three attempts each, two timers per attempt.
        for _ in 0..40 {
            if !harness.fire_live_timer() {
                break;
            }
        }
        prop_assert!(harness.saga.is_terminal(), "still {:?}", harness.saga);
    }

    /// Deciding never depends on anything but the state and the input.
    #[test]
    fn decisions_are_deterministic(actions in proptest::collection::vec(0_u8..18, 0..30)) {
        let f = Fixture::new();
        let other = Fixture::new();
        let mut harness = Harness::started(&f);
        for n in actions {
            let input = reply(&f, &other, n);
            let first = harness.saga.handle(input.clone(), &harness.config);
            let second = harness.saga.clone().handle(input.clone(), &harness.config);
            // `SagaError` carries I/O errors too, so it has no `PartialEq`: compare the printed forms.
            prop_assert_eq!(format!("{first:?}"), format!("{second:?}"));
            harness.feed(input);
        }
    }
}
