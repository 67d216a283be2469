//! [`SagaError`]: inputs that cannot be applied at all.

use domain::OrderId;

/// Why [`OrderSaga::decide`](crate::OrderSaga::decide) refused an input.
///
/// Both variants are deterministic: retrying the same input against the same saga fails
/// the same way. They point at a routing bug or a lost start, not at the input's content;
/// log them and dead-letter the message. (Replies that merely come late, twice, or out of
/// turn are **not** errors: they are [`Ignored`](crate::Ignored).)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
}
