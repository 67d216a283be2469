//! The one error type of this crate, and how each variant maps to the consumer runtime's handling.

use consumers::HandlerError;
use outbox::OutboxError;
use schemas::SchemaError;

/// What can go wrong in a service. Each variant says how a caller handles it.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The caller's input is not valid (a bad SKU, a zero quantity, an empty order): fix the input.
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
    /// The request cannot apply to the current state (capture without an authorization, commit without a
    /// reservation, complete an order that was never placed). Never retried: dead-lettered by the handler.
    #[error("{0}")]
    NotApplicable(String),
    /// An idempotency key used again for another order than the one it placed.
    #[error("the Idempotency-Key {key} placed another order; use a new key for a new order")]
    KeyReused { key: String },
    /// `set_stock` on a SKU that has units reserved.
    #[error("SKU {sku} has {reserved} units reserved; its stock cannot be reset")]
    StockInUse { sku: String, reserved: i64 },
    /// The payment provider gave no answer: the call timed out, the provider could not be reached, or it
    /// failed (5xx). The operation may or may not have gone through. Transient: retried in place, and the
    /// provider's idempotency makes the retry charge nothing twice.
    #[error("payment provider gave no answer ({operation} of order {order_id}): {detail}")]
    ProviderTimeout {
        operation: &'static str,
        order_id: String,
        detail: String,
    },
    /// The payment provider refused the request itself (4xx): a bug in the request, never retried.
    #[error("payment provider refused the {operation} of order {order_id}: {detail}")]
    ProviderRefused {
        operation: &'static str,
        order_id: String,
        detail: String,
    },
    /// The provider did `operation` for the order, and recording it failed. Transient whatever the cause: a
    /// dead letter would forget money that moved. The retry calls the provider again with the same
    /// idempotency key (which does nothing twice) and records the effect once the cause is gone.
    #[error("the provider's {operation} of order {order_id} is not recorded yet")]
    Unrecorded {
        operation: &'static str,
        order_id: String,
        #[source]
        source: Box<ServiceError>,
    },
    /// The domain refused a command. A bug in the service when it reaches a handler.
    #[error("domain refused the command")]
    Domain(#[from] domain::DomainError),
    /// The event store or outbox failed (see [`schemas::outbox_is_transient`]).
    #[error("event store")]
    Outbox(#[from] OutboxError),
    /// A record could not be decoded, or the registry could not be reached (see
    /// [`SchemaError::is_transient`]).
    #[error("schema")]
    Schema(#[from] SchemaError),
    /// The database failed or is unavailable. Transient.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// A notification could not be written (order-status webhooks); transient when the database failed.
    #[error("notification")]
    Notify(#[from] notify::NotifyError),
    /// The consumer runtime could not start or stopped with an error.
    #[error("consumer")]
    Consumer(#[from] consumers::ConsumerError),
    /// A task of the service panicked or was aborted.
    #[error("task failed: {0}")]
    Task(String),
    /// A topic could not be created.
    #[error("kafka admin")]
    Admin(#[from] producers::KafkaAdminError),
}

impl ServiceError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl ToString) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.to_string(),
        }
    }

    /// Whether a retry of the same operation may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::ProviderTimeout { .. } | Self::Unrecorded { .. } | Self::Database(_) => true,
            Self::Outbox(e) => schemas::outbox_is_transient(e),
            Self::Schema(e) => e.is_transient(),
            Self::Notify(e) => matches!(e, notify::NotifyError::Database(_)),
            Self::Invalid { .. }
            | Self::NotApplicable(_)
            | Self::ProviderRefused { .. }
            | Self::KeyReused { .. }
            | Self::StockInUse { .. }
            | Self::Domain(_)
            | Self::Consumer(_)
            | Self::Task(_)
            | Self::Admin(_) => false,
        }
    }
}

impl From<ServiceError> for HandlerError {
    fn from(error: ServiceError) -> Self {
        // The message carries the cause chain, so a dead letter says why.
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        if error.is_transient() {
            HandlerError::Transient(message.into())
        } else {
            HandlerError::Poison(message.into())
        }
    }
}
