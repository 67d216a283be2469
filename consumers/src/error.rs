//! Errors of the consumer runtime and of handlers.

/// Why a handler could not apply a record. The variant decides what the runtime does.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The database or the broker is unavailable: retried in place with backoff, holding the partition.
    #[error("transient failure: {0}")]
    Transient(Box<dyn std::error::Error + Send + Sync>),
    /// A business step failed in a way that may pass later (the payment provider timed out). Goes to the
    /// delayed retry topic, then to the dead-letter topic with class `retryable`.
    #[error("retryable failure: {0}")]
    Retryable(Box<dyn std::error::Error + Send + Sync>),
    /// The record can never be applied (cannot decode, unknown type, schema mismatch, fails validation):
    /// straight to the dead-letter topic.
    #[error("poison record: {0}")]
    Poison(Box<dyn std::error::Error + Send + Sync>),
}

/// What can stop the runtime itself.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// A Kafka client could not be created or subscribed.
    #[error("kafka error")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// A dead-letter or retry topic could not be created.
    #[error("cannot create a topic")]
    Admin(#[from] producers::KafkaAdminError),
    /// A topic could not be read back (missing, or the broker stopped answering).
    #[error("{0}")]
    Read(String),
    /// The database failed outside a record's handling.
    #[error("database error")]
    Database(#[from] sqlx::Error),
}
