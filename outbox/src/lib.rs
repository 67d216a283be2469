//! Event store, transactional outbox and relay.
//!
//! - [`EventStore`] keeps each aggregate's events in Postgres. [`EventStore::append`] takes the version the
//!   caller loaded; a concurrent writer gets [`OutboxError::Conflict`], never a raw database error. In the same
//!   transaction it writes one outbox record per event (topic of the aggregate type, key = aggregate id, value
//!   from the [`Codec`], headers: event id, type and version, schema id when known, correlation and causation
//!   ids, W3C traceparent, origin region). [`EventStore::load`] rebuilds an aggregate with `domain`'s `evolve`.
//! - [`records::enqueue`] writes other records (saga commands, for example) in the caller's transaction.
//! - [`Relay`] publishes the outbox with an idempotent producer (`acks=all`). See [`relay`] for its
//!   guarantees: nothing committed is ever skipped, per-key order is commit order, several relays at once are
//!   safe, poison records are quarantined without breaking per-key order.
//! - [`quarantine`] is what operators use: the backlog, and retry or discard of quarantined records.
//!
//! Delivery is at least once: a record can reach the topic twice (a relay killed between the broker's
//! acknowledgement and the delete), never zero times. Consumers deduplicate on the `event_id` header.
//! Nothing rests on Kafka transactions.
//!
//! Below, an aggregate's command through the event store; `examples/publish.rs` is a whole service that
//! writes its own table and its events in one transaction ([`EventStore::publish`]) and runs a relay
//! (`cargo run -p outbox --example publish`).
//!
//! ```no_run
//! # async fn run(pool: sqlx::PgPool, lines: domain::OrderLines) -> Result<(), outbox::OutboxError> {
//! use domain::{CustomerId, OrderCommand, OrderId, OrderState};
//! use outbox::{EventStore, Metadata};
//! use producers::topics::Topics;
//!
//! let store = EventStore::json(pool, Topics::default(), "eu-west");
//! let order_id = OrderId::new();
//! let place = OrderCommand::Place { order_id, customer_id: CustomerId::new(), lines, idempotency_key: None };
//! let placed = store
//!     .execute::<OrderState>(&order_id.to_string(), place, &Metadata::new(order_id.into()))
//!     .await?;
//! assert!(placed.is_ok(), "the business accepted the order");
//! # Ok(()) }
//! ```

pub mod codec;
mod error;
pub mod quarantine;
pub mod records;
pub mod relay;
mod store;

pub use codec::{Codec, Encoded, JsonCodec};
pub use error::OutboxError;
pub use records::OutboxRecord;
pub use relay::{Relay, RelayConfig, RelayStats};
pub use store::{EventStore, Executed, Loaded, Metadata};
