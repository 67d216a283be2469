//! [`SagaError`]: every failure of the crate, with what to do about it.

use domain::OrderId;

/// What went wrong, by how to handle it.
///
/// - **Refused inputs** ([`NotStarted`](Self::NotStarted), [`OrderMismatch`](Self::OrderMismatch)), from
///   the pure machine ([`OrderSaga::decide`](crate::OrderSaga::decide)). Deterministic: retrying the same
///   input against the same saga fails the same way. They point at a routing bug or a lost start, not at
///   the input's content; log them and dead-letter the message. (Replies that merely come late, twice, or
///   out of turn are **not** errors: they are [`Ignored`](crate::Ignored).)
/// - **A lost race** ([`Conflict`](Self::Conflict)): another writer appended to the saga first. Roll the
///   transaction back and retry the whole handling (reload, decide again).
/// - **Infrastructure** ([`Database`](Self::Database), [`Outbox`](Self::Outbox),
///   [`Consumer`](Self::Consumer)): retry later when the cause may pass. An outbox error is transient
///   exactly as for the services ([`schemas::outbox_is_transient`]): a registry that does not answer is,
///   a registry that refuses a command's schema (409 incompatible) is not.
/// - **Bad data** ([`Corrupt`](Self::Corrupt), [`Decode`](Self::Decode)): a stored event or an incoming
///   record this build cannot read.
///
/// [`is_transient`](Self::is_transient) sorts them for the consumer runtime.
#[derive(Debug, thiserror::Error)]
pub enum SagaError {
    /// A reply or timer for a saga that has no events: misrouted, or its start was lost.
    #[error("{input} for a saga that was never started")]
    NotStarted {
        /// The input's name, e.g. `"StockReserved"`.
        input: &'static str,
    },
    /// A start for another order on this saga's stream.
    #[error("the start of order {input} was sent to the saga of order {saga}")]
    OrderMismatch {
        /// The saga's order.
        saga: OrderId,
        /// The order the start was for.
        input: OrderId,
    },
    /// Another writer appended to the saga's stream after it was loaded at `expected`.
    #[error("saga of order {order_id} changed after it was loaded at version {expected}")]
    Conflict {
        /// The saga's order.
        order_id: OrderId,
        /// The version the writer loaded.
        expected: i64,
    },
    /// The saga store's database failed.
    #[error("saga store database error")]
    Database(#[from] sqlx::Error),
    /// The outbox refused a command (its codec, or the database under it).
    #[error("cannot write a saga command to the outbox")]
    Outbox(#[from] outbox::OutboxError),
    /// A stored saga event or timer does not read back.
    #[error("saga store data of order {order_id} is unreadable: {what}")]
    Corrupt {
        /// The saga's order.
        order_id: OrderId,
        /// What could not be read.
        what: String,
    },
    /// An incoming record could not be decoded or is no message the orchestrator knows.
    #[error("cannot read the incoming record: {0}")]
    Decode(String),
    /// The consumer runtime stopped with an error.
    #[error("orchestrator consumer failed")]
    Consumer(#[from] consumers::ConsumerError),
}

impl SagaError {
    /// Whether handling the same input again may succeed: a lost race, a database that failed, or an outbox
    /// error that [`schemas::outbox_is_transient`] takes for transient. Everything else fails the same way
    /// again and is dead-lettered by the orchestrator.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Conflict { .. } | Self::Database(_) => true,
            Self::Outbox(e) => schemas::outbox_is_transient(e),
            Self::NotStarted { .. }
            | Self::OrderMismatch { .. }
            | Self::Corrupt { .. }
            | Self::Decode(_)
            | Self::Consumer(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn races_and_databases_are_transient_refusals_and_bad_data_are_not() {
        let order_id = OrderId::new();
        assert!(
            SagaError::Conflict {
                order_id,
                expected: 3
            }
            .is_transient()
        );
        assert!(SagaError::Database(sqlx::Error::PoolTimedOut).is_transient());
        assert!(
            SagaError::Outbox(outbox::OutboxError::Database(sqlx::Error::PoolTimedOut))
                .is_transient()
        );
        assert!(
            !SagaError::NotStarted {
                input: "StockReserved"
            }
            .is_transient()
        );
        assert!(!SagaError::Decode("junk".into()).is_transient());
        // A command the codec refuses for good (here an event type without a schema) is not retried.
        let refused = outbox::OutboxError::Codec {
            what: "ReserveStock".into(),
            source: Box::new(schemas::SchemaError::UnknownEventType(
                "ReserveStock".into(),
            )),
        };
        assert!(!SagaError::Outbox(refused).is_transient());
    }
}
