//! Avro schemas and the Confluent wire format.
//!
//! - [`catalog`]: the `.avsc` schema of every event and command of the four services, every published
//!   version kept (`schemas/avro/<service>/<RecordName>/v<N>.avsc`) and embedded in the build.
//! - [`codec`]: [`AvroCodec`] encodes an event's serde form in the Confluent wire format (magic byte, schema
//!   id, Avro body) through `schema_registry_converter` with `TopicRecordNameStrategy`, and decodes records
//!   written with any published version into the current one. It implements the outbox's `Codec`, so an
//!   event that does not match its schema is refused inside the writing transaction, with an error that
//!   names the field.
//! - [`registry`]: the Postgres-backed, Confluent-compatible registry served by `orderflow registry`.
//!
//! Guarantees: the Rust types and their schemas cannot drift apart unnoticed (a test round-trips every event
//! type through its schema), and each current schema is `BACKWARD_TRANSITIVE`-compatible with all its
//! earlier versions (a test checks it with apache-avro's checker). Nothing here depends on behaviour only
//! orderflow's registry has: any Confluent-compatible registry works.
//!
//! ```no_run
//! # async fn example() -> Result<(), schemas::SchemaError> {
//! let codec = schemas::AvroCodec::new(schemas::codec::DEFAULT_REGISTRY_URL)?;
//! let event = serde_json::json!({"type": "OrderCompleted", "order_id": "0192f5a4-8d3e-7c1a-9b2f-3c4d5e6f7a8b"});
//! let (bytes, schema_id) = codec.encode("orders.events", "OrderCompleted", &event).await?;
//! assert_eq!(codec.decode(&bytes).await?.event, event);
//! # let _ = schema_id;
//! # Ok(())
//! # }
//! ```

pub mod catalog;
pub mod codec;
pub mod convert;
mod error;
pub mod registry;

pub use catalog::Catalog;
pub use codec::{AvroCodec, Decoded};
pub use error::{SchemaError, outbox_is_transient};
