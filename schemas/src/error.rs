use outbox::OutboxError;
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
    /// The registry did not answer or refused: retry when `retriable` (see [`SchemaError::is_transient`]).
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

impl SchemaError {
    /// Whether a retry of the same call may succeed. This is the one classification of schema errors: the
    /// services and the orchestrator both use it.
    ///
    /// Only a registry that did not answer or failed on its side (`retriable`: no connection, a timeout, a
    /// 5xx, a 401/403/408/429, see [`AvroCodec`](crate::AvroCodec)) is transient: hold the record and
    /// retry. A registry that refused the request itself (404 no such schema, 409 incompatible, 422 invalid
    /// schema), an unknown event type, a mismatch, bytes that do not decode and a broken catalog fail the
    /// same way again until someone acts: refuse the event or dead-letter the record.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Registry { retriable, .. } => *retriable,
            Self::Catalog(_)
            | Self::UnknownEventType(_)
            | Self::Mismatch { .. }
            | Self::Decode(_) => false,
        }
    }

    /// The schema error an outbox codec ([`AvroCodec`](crate::AvroCodec)) failed with, when `error` is one.
    #[must_use]
    pub fn in_outbox(error: &OutboxError) -> Option<&Self> {
        match error {
            OutboxError::Codec { source, .. } => source.downcast_ref(),
            _ => None,
        }
    }
}

/// Whether a retry of an outbox operation that encodes with [`AvroCodec`](crate::AvroCodec) may succeed: the
/// outbox's own [`OutboxError::is_retryable`], or a codec that failed with a transient schema error
/// ([`SchemaError::is_transient`]).
#[must_use]
pub fn outbox_is_transient(error: &OutboxError) -> bool {
    error.is_retryable() || SchemaError::in_outbox(error).is_some_and(SchemaError::is_transient)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(status: &str, retriable: bool) -> SchemaError {
        let error = format!("HTTP request to schema registry failed with status {status}");
        SchemaError::from(SRCError::new(&error, None, retriable))
    }

    fn in_codec(error: SchemaError) -> OutboxError {
        OutboxError::Codec {
            what: "ReserveStock for inventory.commands".to_owned(),
            source: Box::new(error),
        }
    }

    #[test]
    fn only_a_registry_that_may_answer_later_is_transient() {
        assert!(registry("503 Service Unavailable", true).is_transient());
        assert!(!registry("409 Conflict", false).is_transient());
        assert!(!registry("422 Unprocessable Entity", false).is_transient());
        assert!(!SchemaError::Decode("junk".into()).is_transient());
        assert!(!SchemaError::UnknownEventType("Nope".into()).is_transient());
        assert!(!SchemaError::Catalog("broken".into()).is_transient());
    }

    #[test]
    fn an_outbox_error_is_transient_when_the_outbox_or_its_codec_says_so() {
        assert!(outbox_is_transient(&in_codec(registry("503", true))));
        assert!(!outbox_is_transient(&in_codec(registry("409", false))));
        assert!(!outbox_is_transient(&in_codec(SchemaError::Decode(
            "junk".into()
        ))));
        assert!(matches!(
            SchemaError::in_outbox(&in_codec(registry("409", false))),
            Some(SchemaError::Registry {
                retriable: false,
                ..
            })
        ));
        // A codec error that is no schema error (the JSON codec's) is the outbox's: permanent.
        let json = OutboxError::Codec {
            what: "an event".to_owned(),
            source: "not JSON".into(),
        };
        assert!(SchemaError::in_outbox(&json).is_none());
        assert!(!outbox_is_transient(&json));
        assert!(outbox_is_transient(&OutboxError::SessionUnresponsive(
            std::time::Duration::from_secs(1)
        )));
    }
}
