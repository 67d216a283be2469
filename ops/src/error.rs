//! Why an operator's command (replay, group reset, failover) did not do what it was asked.

/// Why an operator's command did not happen, or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// Input the command cannot carry out (an unknown topic or group, an empty range, filters that match
    /// nothing, a group with active members); nothing was written. The CLI exits 2.
    #[error("{0}")]
    BadInput(String),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Failed(String),
}

/// How an operator's command ended, for its audit row: `done`, `refused` (bad input, nothing changed) or
/// `failed`, with the error's text.
#[must_use]
pub fn outcome_of<T>(outcome: &Result<T, OperatorError>) -> (&'static str, Option<String>) {
    match outcome {
        Ok(_) => ("done", None),
        Err(OperatorError::BadInput(why)) => ("refused", Some(why.clone())),
        Err(e) => ("failed", Some(e.to_string())),
    }
}
