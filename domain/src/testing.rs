//! Given/when/then helpers for aggregate tests (feature `testing`, and this crate's tests).
//!
//! ```
//! # use domain::{Aggregate, OrderState, OrderCommand, OrderEvent, CancelReason, DomainEvent};
//! # use domain::{OrderId, CustomerId, OrderLines, OrderLine, Sku, Quantity, Money, Currency};
//! use domain::testing::given;
//!
//! # let lines = OrderLines::new(vec![OrderLine {
//! #     sku: Sku::new("MUG")?, quantity: Quantity::new(1)?, unit_price: Money::new(500, Currency::EUR)?,
//! # }])?;
//! let order_id = OrderId::new();
//! let placed = OrderEvent::Placed {
//!     order_id, customer_id: CustomerId::new(), total: lines.total(), lines, idempotency_key: None,
//! };
//! let cancelled = OrderEvent::Cancelled { order_id, reason: CancelReason::Timeout };
//!
//! given::<OrderState>([placed.clone()])
//!     .when(OrderCommand::Cancel { reason: CancelReason::Timeout })
//!     .then([cancelled.clone()]);
//! given::<OrderState>([placed.clone(), cancelled]).when(OrderCommand::Complete).then_illegal();
//! # Ok::<(), domain::ValidationError>(())
//! ```
//!
//! Besides comparing the outcome, every `then*` checks that the history and the produced
//! events evolve sensibly: each event changes the state (an event that `evolve` ignores
//! would be a decide/evolve mismatch), replaying the whole history from the default state
//! gives the same state as evolving step by step, every event's type is listed in
//! [`Message::EVENT_TYPES`] and carries [`Message::CURRENT_VERSION`], and a
//! refused command leaves nothing to evolve.

use crate::aggregate::{Aggregate, Message, replay};
use crate::error::{DomainError, Rejection, ValidationError};

/// Starts a test from the state that `history` builds from the default state.
///
/// # Panics
/// If an event of `history` does not change the state (an impossible history).
#[track_caller]
pub fn given<A: Aggregate>(history: impl IntoIterator<Item = A::Event>) -> Given<A> {
    let history: Vec<A::Event> = history.into_iter().collect();
    let state = evolve_checked(A::default(), &history, "given");
    Given { history, state }
}

/// The arranged state of a given/when/then test; see [`given`].
#[derive(Debug)]
#[must_use = "call .when(command)"]
pub struct Given<A: Aggregate> {
    history: Vec<A::Event>,
    state: A,
}

impl<A: Aggregate> Given<A> {
    /// The state built from the history.
    pub const fn state(&self) -> &A {
        &self.state
    }

    /// Decides `command` against the state.
    pub fn when(self, command: A::Command) -> When<A> {
        let command_debug = format!("{command:?}");
        let result = self.state.decide(command);
        When {
            given: self,
            command: command_debug,
            result,
        }
    }
}

/// The outcome of a given/when/then test, to be asserted with a `then*` method.
#[derive(Debug)]
#[must_use = "assert the outcome with .then(..), .then_rejected(..), .then_illegal() or .then_invalid()"]
pub struct When<A: Aggregate> {
    given: Given<A>,
    command: String,
    result: Result<Vec<A::Event>, DomainError>,
}

/// An expected outcome, for table-driven tests: see [`When::then_expect`].
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<E> {
    /// These events, in this order (at least one).
    Emits(Vec<E>),
    /// Accepted with no events: a harmless repeat.
    NoOp,
    /// [`DomainError::Rejected`] with this rejection.
    Rejected(Rejection),
    /// [`DomainError::IllegalTransition`].
    Illegal,
    /// [`DomainError::Invalid`].
    Invalid,
}

impl<A: Aggregate> When<A> {
    fn context(&self) -> String {
        format!(
            "{} in state {} ({:?}) given {} event(s), command {}",
            A::NAME,
            self.given.state.state_name(),
            self.given.state,
            self.given.history.len(),
            self.command
        )
    }

    /// Asserts that the command produced exactly `expected` (none for a no-op), checks
    /// that they evolve sensibly, and returns the new state.
    ///
    /// # Panics
    /// If the outcome differs, or the events do not evolve sensibly.
    #[track_caller]
    pub fn then(self, expected: impl IntoIterator<Item = A::Event>) -> A {
        let expected: Vec<A::Event> = expected.into_iter().collect();
        let context = self.context();
        match self.result {
            Ok(events) => {
                assert_eq!(events, expected, "unexpected events: {context}");
                let Given { mut history, state } = self.given;
                let next = evolve_checked(state, &events, &context);
                history.extend(events);
                assert_eq!(
                    replay::<A>(&history),
                    next,
                    "replaying the history does not give the evolved state: {context}"
                );
                next
            }
            Err(error) => panic!("expected events {expected:?}, got error \"{error}\": {context}"),
        }
    }

    /// Asserts that the command was accepted with no events (a harmless repeat) and
    /// returns the unchanged state.
    ///
    /// # Panics
    /// If the outcome differs.
    #[track_caller]
    pub fn then_no_events(self) -> A {
        self.then([])
    }

    /// Asserts [`DomainError::Rejected`] with `expected`.
    ///
    /// # Panics
    /// If the outcome differs.
    #[track_caller]
    pub fn then_rejected(self, expected: Rejection) {
        let context = self.context();
        match self.result {
            Err(DomainError::Rejected(rejection)) => {
                assert_eq!(rejection, expected, "unexpected rejection: {context}");
            }
            other => panic!("expected rejection {expected:?}, got {other:?}: {context}"),
        }
    }

    /// Asserts [`DomainError::IllegalTransition`] naming this aggregate and state, and
    /// returns the command name it reported.
    ///
    /// # Panics
    /// If the outcome differs.
    #[track_caller]
    pub fn then_illegal(self) -> &'static str {
        let context = self.context();
        match self.result {
            Err(DomainError::IllegalTransition {
                aggregate,
                state,
                command,
            }) => {
                assert_eq!(aggregate, A::NAME, "wrong aggregate name: {context}");
                assert_eq!(
                    state,
                    self.given.state.state_name(),
                    "wrong state name: {context}"
                );
                assert!(
                    self.command.starts_with(command),
                    "illegal transition names command {command}: {context}"
                );
                command
            }
            other => panic!("expected an illegal transition, got {other:?}: {context}"),
        }
    }

    /// Asserts [`DomainError::Invalid`] and returns the validation error.
    ///
    /// # Panics
    /// If the outcome differs.
    #[track_caller]
    pub fn then_invalid(self) -> ValidationError {
        let context = self.context();
        match self.result {
            Err(DomainError::Invalid(error)) => error,
            other => panic!("expected invalid input, got {other:?}: {context}"),
        }
    }

    /// Asserts `expected`, whichever kind it is.
    ///
    /// # Panics
    /// If the outcome differs.
    #[track_caller]
    pub fn then_expect(self, expected: Outcome<A::Event>) {
        match expected {
            Outcome::Emits(events) => {
                assert!(!events.is_empty(), "use Outcome::NoOp for no events");
                let _ = self.then(events);
            }
            Outcome::NoOp => {
                let _ = self.then_no_events();
            }
            Outcome::Rejected(rejection) => self.then_rejected(rejection),
            Outcome::Illegal => {
                let _ = self.then_illegal();
            }
            Outcome::Invalid => {
                let _ = self.then_invalid();
            }
        }
    }
}

/// Asserts that a transition table lists every `(state, command)` pair of `states` ×
/// `commands` exactly once, and nothing else.
///
/// # Panics
/// On a missing, repeated or unknown pair.
#[track_caller]
pub fn assert_table_complete<T>(table: &[(&str, &str, T)], states: &[&str], commands: &[&str]) {
    for state in states {
        for command in commands {
            let rows = table
                .iter()
                .filter(|(s, c, _)| s == state && c == command)
                .count();
            assert_eq!(rows, 1, "({state}, {command}) is listed {rows} times");
        }
    }
    for (state, command, _) in table {
        assert!(
            states.contains(state) && commands.contains(command),
            "unknown pair ({state}, {command})"
        );
    }
}

/// Evolves `state` with `events`, checking each event against [`Message`]'s contract
/// and that it changes the state.
#[track_caller]
fn evolve_checked<A: Aggregate>(mut state: A, events: &[A::Event], context: &str) -> A {
    for (index, event) in events.iter().enumerate() {
        assert!(
            A::Event::EVENT_TYPES.contains(&event.event_type()),
            "event #{index} type {} is missing from EVENT_TYPES: {context}",
            event.event_type()
        );
        assert_eq!(
            event.version(),
            A::Event::CURRENT_VERSION,
            "event #{index} version: {context}"
        );
        let next = state.clone().evolve(event);
        assert_ne!(
            next, state,
            "event #{index} {event:?} did not change the state: {context}"
        );
        state = next;
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        DeliveryCommand, DeliveryEvent, DeliveryId, DeliveryState, InventoryCommand,
        InventoryState, OrderId,
    };

    fn scheduled(delivery_id: DeliveryId, order_id: OrderId) -> DeliveryEvent {
        DeliveryEvent::Scheduled {
            delivery_id,
            order_id,
        }
    }

    #[test]
    fn then_returns_the_evolved_state() {
        let (delivery_id, order_id) = (DeliveryId::new(), OrderId::new());
        let state = given::<DeliveryState>([])
            .when(DeliveryCommand::Schedule {
                delivery_id,
                order_id,
            })
            .then([scheduled(delivery_id, order_id)]);
        assert_eq!(
            state,
            DeliveryState::Scheduled {
                delivery_id,
                order_id
            }
        );
    }

    #[test]
    #[should_panic(expected = "unexpected events")]
    fn then_fails_on_other_events() {
        let (delivery_id, order_id) = (DeliveryId::new(), OrderId::new());
        let _ = given::<DeliveryState>([])
            .when(DeliveryCommand::Schedule {
                delivery_id,
                order_id,
            })
            .then([scheduled(delivery_id, OrderId::new())]);
    }

    #[test]
    #[should_panic(expected = "expected events")]
    fn then_fails_on_an_error() {
        let _ = given::<DeliveryState>([])
            .when(DeliveryCommand::Deliver)
            .then([]);
    }

    #[test]
    #[should_panic(expected = "expected an illegal transition")]
    fn then_illegal_fails_on_success() {
        let _ = given::<DeliveryState>([])
            .when(DeliveryCommand::Schedule {
                delivery_id: DeliveryId::new(),
                order_id: OrderId::new(),
            })
            .then_illegal();
    }

    #[test]
    #[should_panic(expected = "expected invalid input")]
    fn then_invalid_fails_on_an_illegal_transition() {
        let _ = given::<InventoryState>([])
            .when(InventoryCommand::Commit {
                order_id: OrderId::new(),
            })
            .then_invalid();
    }

    #[test]
    #[should_panic(expected = "unexpected events")]
    fn no_op_outcome_fails_when_events_are_emitted() {
        given::<DeliveryState>([])
            .when(DeliveryCommand::Schedule {
                delivery_id: DeliveryId::new(),
                order_id: OrderId::new(),
            })
            .then_expect(Outcome::NoOp);
    }

    #[test]
    #[should_panic(expected = "did not change the state")]
    fn given_refuses_an_impossible_history() {
        let (delivery_id, order_id) = (DeliveryId::new(), OrderId::new());
        let _ = given::<DeliveryState>([
            scheduled(delivery_id, order_id),
            scheduled(delivery_id, order_id),
        ]);
    }

    #[test]
    #[should_panic(expected = "(B, y) is listed 0 times")]
    fn table_completeness_catches_a_missing_pair() {
        assert_table_complete(
            &[("A", "x", ()), ("A", "y", ()), ("B", "x", ())],
            &["A", "B"],
            &["x", "y"],
        );
    }

    #[test]
    #[should_panic(expected = "unknown pair")]
    fn table_completeness_catches_an_unknown_pair() {
        assert_table_complete(&[("A", "x", ()), ("C", "x", ())], &["A"], &["x"]);
    }
}
