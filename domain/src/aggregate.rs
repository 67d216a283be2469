//! The [`Aggregate`], [`Message`] and [`DomainEvent`] traits, and [`replay`].

use core::borrow::Borrow;
use core::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::DomainError;

/// A message on a topic: an enum whose variants are its types. Every [`DomainEvent`] is one; so are the
/// saga's requests to the services and their replies, which belong to no stream. Where a message goes and
/// under which key is its publisher's choice, not the message's.
///
/// # Versions and upcasting
/// Every message type has a name ([`event_type`](Self::event_type), e.g. `"OrderPlaced"`)
/// and a schema version ([`version`](Self::version)). All types are at version 1,
/// [`CURRENT_VERSION`](Self::CURRENT_VERSION); the serde form of a message is its v1 form.
///
/// When a type's shape has to change incompatibly, the enum keeps describing the
/// *current* version only, and `version()` returns the new number for that variant. Old
/// versions are never deserialized into the enum directly: whoever reads stored or
/// published messages (the event store, consumers) looks at the `(event_type, version)`
/// pair recorded next to the payload and, for an old version, runs an upcaster, a pure
/// function from the old payload to the current one (e.g. filling a new field with its
/// documented default), before deserializing. Upcasters live with the readers so that
/// this crate stays free of any serialization format; decide/evolve only ever see the
/// current version. Adding an optional field with a serde default needs no new version.
pub trait Message: Clone + PartialEq + fmt::Debug + Serialize + DeserializeOwned {
    /// The schema version this crate produces and understands.
    const CURRENT_VERSION: u16 = 1;

    /// Every type name this enum can produce, e.g. `["OrderPlaced", ...]`. Useful to refuse
    /// unknown types early and to register schemas.
    const EVENT_TYPES: &'static [&'static str];

    /// The type name, e.g. `"OrderPlaced"`; also the `"type"` tag of the serde form.
    fn event_type(&self) -> &'static str;

    /// The schema version of this message; [`CURRENT_VERSION`](Self::CURRENT_VERSION).
    fn version(&self) -> u16 {
        Self::CURRENT_VERSION
    }
}

/// An event of one aggregate type: a [`Message`] that belongs to one aggregate instance's stream.
pub trait DomainEvent: Message {
    /// The id of the aggregate instance the event belongs to, as a string: the stream id
    /// and the Kafka record key (an order id, a payment id, a delivery id, a SKU).
    fn aggregate_id(&self) -> String;
}

/// A message about one order: the saga's requests and the services' replies, which travel keyed by
/// the order id so that they reach the order's partition.
pub trait AboutOrder {
    /// The order the message is about.
    fn order_id(&self) -> crate::OrderId;
}

/// An event-sourced aggregate: the state is a value, commands are decided against it,
/// and the state is rebuilt by folding events.
///
/// - [`decide`](Self::decide) is pure: the same state and command always give the same
///   answer. It either returns the events that record what happened (possibly none, for
///   a harmless repeat of a command that already took effect), or a [`DomainError`].
/// - [`evolve`](Self::evolve) is pure and total: it never fails and never panics. It
///   trusts events as facts; an event that cannot follow the current state (which
///   `decide` never produces) leaves the state unchanged.
/// - `Default` is the state before the first event.
pub trait Aggregate: Sized + Clone + PartialEq + Default + fmt::Debug {
    /// What can be asked of the aggregate.
    type Command: fmt::Debug;
    /// What can happen to it.
    type Event: DomainEvent;

    /// The service that owns the aggregate type (its events go to that service's events topic).
    const SERVICE: crate::Service;

    /// The aggregate type's name in the event store: `"order"`, `"payment"`, `"inventory"` or
    /// `"delivery"` ([`Service::aggregate`](crate::Service::aggregate)).
    const NAME: &'static str = Self::SERVICE.aggregate();

    /// Decides what `command` does to the current state.
    ///
    /// # Errors
    /// See [`DomainError`]: a business rejection, an illegal transition, or invalid input.
    fn decide(&self, command: Self::Command) -> Result<Vec<Self::Event>, DomainError>;

    /// The state after `event`.
    #[must_use]
    fn evolve(self, event: &Self::Event) -> Self;

    /// Whether no command can change the state any more.
    fn is_terminal(&self) -> bool;

    /// The name of the current state, e.g. `"Placed"`.
    fn state_name(&self) -> &'static str;

    /// Decides `command` and evolves a copy of the state with the resulting events.
    ///
    /// # Errors
    /// As [`decide`](Self::decide).
    fn execute(&self, command: Self::Command) -> Result<(Self, Vec<Self::Event>), DomainError> {
        let events = self.decide(command)?;
        let state = events.iter().fold(self.clone(), Self::evolve);
        Ok((state, events))
    }
}

/// Rebuilds an aggregate by folding `events` over its default state.
#[must_use]
pub fn replay<A: Aggregate>(events: impl IntoIterator<Item = impl Borrow<A::Event>>) -> A {
    events
        .into_iter()
        .fold(A::default(), |state, event| state.evolve(event.borrow()))
}

/// The [`DomainError::IllegalTransition`] for `command` on `state`.
pub(crate) fn illegal<A: Aggregate>(state: &A, command: &'static str) -> DomainError {
    DomainError::IllegalTransition {
        aggregate: A::NAME,
        state: state.state_name(),
        command,
    }
}
