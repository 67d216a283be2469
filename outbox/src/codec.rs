//! How an event becomes the bytes of a Kafka record.
//!
//! The event store hands the codec each event's serde form; the codec returns the record's value and, when
//! it used a registered schema, the schema id for the `schema_id` header. Encoding happens inside the writing
//! transaction, so an event the codec refuses is never committed. [`JsonCodec`] writes plain JSON (tests and
//! `examples/publish.rs` use it); the services use `schemas::AvroCodec`, Avro in the Confluent wire format
//! with a registered schema.

use std::future::Future;

use serde_json::Value;

/// The value of a record and the schema it was written with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub schema_id: Option<u32>,
}

/// Why a codec refused an event.
pub type CodecError = Box<dyn std::error::Error + Send + Sync>;

/// Turns events into record values for a topic.
pub trait Codec: Send + Sync {
    /// Encodes `event` (its serde form) of type `event_type` for `topic`.
    fn encode(
        &self,
        topic: &str,
        event_type: &str,
        event: &Value,
    ) -> impl Future<Output = Result<Encoded, CodecError>> + Send;
}

/// Plain JSON: the event's serde form, with no schema id.
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonCodec;

impl Codec for JsonCodec {
    async fn encode(
        &self,
        _topic: &str,
        _event_type: &str,
        event: &Value,
    ) -> Result<Encoded, CodecError> {
        Ok(Encoded {
            bytes: serde_json::to_vec(event)?,
            schema_id: None,
        })
    }
}

/// A shared codec, so that one registry client and its schema-id cache serve every store of a process.
impl<C: Codec> Codec for std::sync::Arc<C> {
    fn encode(
        &self,
        topic: &str,
        event_type: &str,
        event: &Value,
    ) -> impl Future<Output = Result<Encoded, CodecError>> + Send {
        C::encode(self, topic, event_type, event)
    }
}
