//! The one error type of this crate. Each variant says how a caller handles it.

use rdkafka::error::KafkaError;

/// What can go wrong in the event store, the outbox or the relay.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// Another writer appended to the stream since it was loaded. Reload and decide again.
    #[error(
        "concurrent write to {aggregate_type} {aggregate_id}: version {expected} is no longer the latest"
    )]
    Conflict {
        aggregate_type: &'static str,
        aggregate_id: String,
        expected: i64,
    },
    /// A stored event has a version this build cannot read (no upcaster for it). Do not retry: deploy a
    /// build that knows the version.
    #[error("stored event {event_type} v{version} of {aggregate_id} has no upcaster in this build")]
    UnsupportedEventVersion {
        aggregate_id: String,
        event_type: String,
        version: i16,
    },
    /// The event could not be encoded for its topic, or a stored one could not be decoded. Do not retry.
    #[error("cannot encode or decode {what}")]
    Codec {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A command was handed an empty list of events or records. A bug in the caller.
    #[error("nothing to append to {0}")]
    Empty(String),
    /// The database failed or is unavailable. Transient: retry with backoff.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// The relay leader's database session did not answer in time; the relay gives up leadership and
    /// elects again on a new session.
    #[error("the relay's database session did not answer within {0:?}")]
    SessionUnresponsive(std::time::Duration),
    /// A Kafka client could not be created or failed for good.
    #[error("kafka error")]
    Kafka(#[from] KafkaError),
}

impl OutboxError {
    /// Whether a retry of the same operation may succeed (after a reload, for a conflict).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Conflict { .. } | Self::Database(_) | Self::SessionUnresponsive(_)
        )
    }
}
