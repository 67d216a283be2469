//! orderflow's domain model: the four aggregates (order, payment, inventory, delivery),
//! their commands and events, and the value types they are made of.
//!
//! # What this crate promises
//! - **Pure.** No I/O, no async, no clock reads in decisions, no global state. Only fresh
//!   ids ([`OrderId::new`] and friends) read the clock and a random source.
//! - **Decide/evolve.** Each aggregate implements [`Aggregate`]:
//!   [`decide`](Aggregate::decide)`(&state, command) -> Result<Vec<event>, DomainError>`
//!   says what a command does, [`evolve`](Aggregate::evolve)`(state, &event) -> state`
//!   applies what happened, and [`replay`] rebuilds a state from its events. Every
//!   (state, command) pair is listed explicitly; each aggregate module documents its
//!   transition table, including which repeats are harmless no-ops (they succeed with
//!   no events, so duplicate deliveries are safe).
//! - **A rejection is not a failure.** [`DomainError`] separates "the business said no"
//!   ([`DomainError::Rejected`], e.g. out of stock) from a command that does not apply
//!   ([`DomainError::IllegalTransition`]) and bad input ([`DomainError::Invalid`]).
//! - **Value types refuse bad input at construction**, and so does deserialization:
//!   a [`Money`], [`Sku`], [`Quantity`], [`OrderLines`] or id that exists is valid.
//!   [`Money`] is integer minor units with checked arithmetic; it never panics or wraps.
//! - **Invariants:** stock reserved never exceeds stock on hand (the inventory service
//!   enforces it on bucketed rows, from [`inventory::reservation`]'s plan: see [`inventory`]);
//!   a payment is never captured twice nor refunded past its captured amount; a terminal
//!   order stays so.
//! - **Versioned events.** Every event has a type name and a version
//!   ([`Message`]); all are at version 1, and the trait documents how later versions
//!   are to be upcast.
//!
//! # What it does not do
//! No persistence, no messaging, no serialization format beyond serde derives (JSON,
//! Avro and the wire format belong to other crates), no concurrency control (optimistic
//! versioning of streams is the event store's job), no deduplication of redelivered
//! commands beyond the idempotent repeats above (that is the consumers' inbox).
//!
//! # Example: placing an order
//! ```
//! use domain::{
//!     Aggregate, Currency, CustomerId, DomainError, Message, Money, OrderCommand,
//!     OrderId, OrderLine, OrderLines, OrderState, Quantity, Sku, replay,
//! };
//!
//! let lines = OrderLines::new(vec![OrderLine {
//!     sku: Sku::new("MUG-RED")?,
//!     quantity: Quantity::new(2)?,
//!     unit_price: Money::new(1250, Currency::EUR)?,
//! }])?;
//! let order_id = OrderId::new();
//! let place = OrderCommand::Place { order_id, customer_id: CustomerId::new(), lines, idempotency_key: None };
//!
//! let state = OrderState::default();
//! let events = state.decide(place.clone())?;
//! assert_eq!(events[0].event_type(), "OrderPlaced");
//! let state = events.iter().fold(state, OrderState::evolve);
//! assert_eq!(state.name(), "Placed");
//! assert_eq!(state.details().map(|order| order.total.to_string()), Some("25.00 EUR".into()));
//!
//! // The events are the source of truth: replaying them gives the same state.
//! assert_eq!(replay::<OrderState>(&events), state);
//!
//! // Placing the same order again does not apply.
//! assert!(matches!(state.decide(place), Err(DomainError::IllegalTransition { .. })));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
// A field named for what it holds (`order_id: OrderId`) gets no doc that would only repeat its name: its
// variant or the field itself says `allow(missing_docs)`, and the fields that need words keep them.
#![warn(missing_docs)]

mod aggregate;
pub mod delivery;
mod error;
mod ids;
pub mod inventory;
mod lines;
pub mod messages;
mod money;
pub mod order;
pub mod payment;
mod service;
pub mod simulation;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod text;

pub use aggregate::{AboutOrder, Aggregate, DomainEvent, Message, replay};
pub use delivery::{DeliveryCommand, DeliveryEvent, DeliveryState};
pub use error::{DomainError, Rejection, ValidationError};
pub use ids::{CustomerId, DeliveryId, EventId, OrderId, PaymentId};
pub use inventory::reservation::StockRequest;
pub use inventory::{InventoryCommand, InventoryEvent, InventoryState, Stock};
pub use lines::{OrderLine, OrderLines, Quantity, Sku};
pub use messages::{
    DeliveryRequest, InventoryRequest, OrderRequest, OrderStockEvent, PaymentRequest, StockLine,
};
pub use money::{Currency, Money};
pub use order::{CancelReason, OrderCommand, OrderDetails, OrderEvent, OrderState};
pub use payment::{PaymentCommand, PaymentEvent, PaymentState};
pub use service::{Service, UnknownService};
pub use text::MAX_TEXT_LEN;
