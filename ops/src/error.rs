//! Why an operator's command (replay, group reset, failover) did not do what it was asked.

/// Why an operator's command did not happen, or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// Input the command cannot carry out (an unknown topic or group, an empty range, filters that match
    /// nothing, a group with active members); nothing was written. The CLI exits 2.
    #[error("{0}")]
    BadInput(String),
    /// What the command names does not exist (an order without a saga, an unknown replay, no dead letter
    /// or quarantined record there); nothing was written. The CLI exits 2, as for bad input.
    #[error("{0}")]
    NotFound(String),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Failed(String),
}

impl OperatorError {
    /// Whether the command was refused, with nothing changed ([`BadInput`](Self::BadInput) or
    /// [`NotFound`](Self::NotFound)), rather than failing on the way.
    #[must_use]
    pub const fn is_refusal(&self) -> bool {
        matches!(self, Self::BadInput(_) | Self::NotFound(_))
    }
}

/// How an operator's command ended, for its audit row: `done`, `refused` (bad input or nothing there,
/// nothing changed) or `failed`, with the error's text.
#[must_use]
pub fn outcome_of<T>(outcome: &Result<T, OperatorError>) -> (&'static str, Option<String>) {
    match outcome {
        Ok(_) => ("done", None),
        Err(e) if e.is_refusal() => ("refused", Some(e.to_string())),
        Err(e) => ("failed", Some(e.to_string())),
    }
}
