use schema_registry_converter::error::SRCError;

use crate::convert::Mismatch;

/// What can go wrong with schemas, encoding and decoding.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// An embedded schema file is broken; a build that passed its tests never has one.
    #[error("schema catalog: {0}")]
    Catalog(String),
    /// No schema for this event type in this build: refuse the event (writer) or dead-letter it (reader).
    #[error("no schema for event type {0:?} in this build")]
    UnknownEventType(String),
    /// The event does not match its schema: refuse it.
    #[error("{event_type} does not match its schema {full_name}: {mismatch}")]
    Mismatch {
        event_type: String,
        full_name: String,
        mismatch: Mismatch,
    },
    /// The record is not in the Confluent wire format or its body does not decode: dead-letter it.
    #[error("cannot decode the record: {0}")]
    Decode(String),
    /// The registry did not answer or refused: retry when `retriable`.
    #[error("schema registry: {source}")]
    Registry {
        retriable: bool,
        #[source]
        source: SRCError,
    },
}

impl From<SRCError> for SchemaError {
    fn from(source: SRCError) -> Self {
        Self::Registry {
            retriable: source.retriable,
            source,
        }
    }
}
