//! The crate's errors: [`DomainError`] for `decide`, [`ValidationError`] for value types,
//! [`Rejection`] for "the business said no".

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::lines::{OrderLines, Quantity, Sku};
use crate::money::{Currency, Money};
use crate::text::MAX_TEXT_LEN;

/// Why `decide` refused a command.
///
/// Every variant is deterministic: the same command against the same state fails the same
/// way, so **none of them is worth retrying as is**. What a caller does instead depends on
/// the variant, and none of them means "the infrastructure failed" (that belongs to the
/// crates that do I/O).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The business said no: out of stock, a refund larger than what is left, ...
    ///
    /// This is an expected outcome, not a failure. Answer the requester with a rejection
    /// (a reply or rejection event carrying [`Rejection::code`]); a saga compensates.
    #[error("rejected: {0}")]
    Rejected(Rejection),

    /// The command does not apply to the aggregate's current state, e.g. capturing a
    /// payment that was declined, or placing an order twice.
    ///
    /// Either a bug in the caller or a stale/out-of-order command. Do not retry; log it
    /// and dead-letter the message. (Harmless repeats of a command that already took
    /// effect are *not* reported this way: they succeed with no events, see each
    /// aggregate's docs.)
    #[error("command {command} does not apply to {aggregate} in state {state}")]
    IllegalTransition {
        /// [`Aggregate::NAME`](crate::Aggregate::NAME), e.g. `"order"`.
        aggregate: &'static str,
        /// The name of the state the aggregate was in, e.g. `"Completed"`.
        state: &'static str,
        /// The name of the command, e.g. `"Cancel"`.
        command: &'static str,
    },

    /// The command carried bad input (blank reason, refund in another currency, ...).
    ///
    /// Answer the sender with the message; do not retry with the same input.
    #[error("invalid input: {0}")]
    Invalid(ValidationError),
}

impl From<Rejection> for DomainError {
    fn from(rejection: Rejection) -> Self {
        Self::Rejected(rejection)
    }
}

impl From<ValidationError> for DomainError {
    fn from(error: ValidationError) -> Self {
        Self::Invalid(error)
    }
}

/// A business refusal, with the facts a requester needs to understand it.
///
/// Serializable so that a service can put it into a rejection event or reply as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Rejection {
    /// A reservation asked for more than the stock available (on hand minus reserved).
    #[error("out of stock: {requested} of {sku} requested, {available} available")]
    OutOfStock {
        /// The stock-keeping unit.
        sku: Sku,
        /// What the reservation asked for.
        requested: Quantity,
        /// What could have been reserved at that moment.
        available: u32,
    },
    /// A refund would take the refunded total past the captured amount.
    #[error("refund of {requested} exceeds the {refundable} still refundable")]
    RefundExceedsCaptured {
        /// The refund asked for.
        requested: Money,
        /// Captured amount minus everything refunded so far.
        refundable: Money,
    },
}

impl Rejection {
    /// A stable machine-readable code, e.g. `"out_of_stock"` (the serde tag too).
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::OutOfStock { .. } => "out_of_stock",
            Self::RefundExceedsCaptured { .. } => "refund_exceeds_captured",
        }
    }
}

/// Bad input to a value type or a command. Each message names the field and the problem.
///
/// Echoed inputs are cut to a few dozen characters so that an error never carries a
/// huge payload along.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// Not parseable as a UUID at all.
    #[error("{field} is not a valid UUID: {input:?}")]
    MalformedId {
        /// e.g. `"order_id"`.
        field: &'static str,
        /// The (shortened) input.
        input: String,
    },
    /// A UUID, but not an RFC 9562 version 7 one.
    #[error("{field} must be a UUID v7, got {value} (version {version})")]
    NotUuidV7 {
        /// e.g. `"order_id"`.
        field: &'static str,
        /// The refused UUID.
        value: Uuid,
        /// Its version number (0 for the nil UUID).
        version: usize,
    },
    /// Not three ASCII uppercase letters.
    #[error("currency must be exactly three ASCII uppercase letters, got {input:?}")]
    MalformedCurrency {
        /// The (shortened) input.
        input: String,
    },
    /// Well-formed, but not in [`Currency::all`].
    #[error("currency {code} is not a supported ISO 4217 code")]
    UnknownCurrency {
        /// The refused code.
        code: String,
    },
    /// Money below zero (also the result of a subtraction that would go below zero).
    #[error("amount must not be negative, got {minor} minor units")]
    NegativeAmount {
        /// The refused amount in minor units.
        minor: i128,
    },
    /// Money above [`Money::MAX_MINOR`] (also the result of an addition or multiplication).
    #[error("amount must be at most {max} minor units, got {minor}", max = Money::MAX_MINOR)]
    AmountTooLarge {
        /// The refused amount in minor units.
        minor: i128,
    },
    /// Two amounts that must share a currency do not.
    #[error("{field} must be in {expected}, got {found}")]
    CurrencyMismatch {
        /// e.g. `"refund amount"`.
        field: &'static str,
        /// The currency required.
        expected: Currency,
        /// The currency given.
        found: Currency,
    },
    /// An amount or quantity that must be above zero is zero.
    #[error("{field} must be greater than zero")]
    NotPositive {
        /// e.g. `"refund amount"`.
        field: &'static str,
    },
    /// A SKU that is empty or longer than [`Sku::MAX_LEN`].
    #[error("sku must be 1 to {max} characters long, got {len}", max = Sku::MAX_LEN)]
    SkuLength {
        /// The length in characters.
        len: usize,
    },
    /// A SKU with a character outside `A-Z 0-9 - _`.
    #[error("sku may contain only A-Z, 0-9, '-' and '_', got {found:?} in {input:?}")]
    SkuCharacter {
        /// The first offending character.
        found: char,
        /// The (shortened) input.
        input: String,
    },
    /// A SKU starting or ending with `-`.
    #[error("sku must not start or end with '-', got {input:?}")]
    SkuDash {
        /// The (shortened) input.
        input: String,
    },
    /// A quantity outside `Quantity::MIN..=Quantity::MAX`.
    #[error("quantity must be between {min} and {max}, got {got}", min = Quantity::MIN, max = Quantity::MAX)]
    QuantityOutOfRange {
        /// The refused quantity.
        got: u32,
    },
    /// An order without lines.
    #[error("order lines must contain at least one line")]
    NoOrderLines,
    /// An order with more than [`OrderLines::MAX_LINES`] lines.
    #[error("order lines must contain at most {max} lines, got {count}", max = OrderLines::MAX_LINES)]
    TooManyOrderLines {
        /// How many lines were given.
        count: usize,
    },
    /// Two lines for the same SKU (merge them into one line instead).
    #[error("order lines must not repeat a sku, got {sku} twice")]
    DuplicateSku {
        /// The repeated SKU.
        sku: Sku,
    },
    /// Lines priced in different currencies.
    #[error(
        "order lines must share one currency: line {line} unit_price is in {found}, line 0 is in {expected}"
    )]
    MixedCurrencies {
        /// Zero-based index of the first line in another currency.
        line: usize,
        /// The currency of line 0.
        expected: Currency,
        /// The currency of the offending line.
        found: Currency,
    },
    /// A free-text field (reason, provider reference) that is empty or only whitespace.
    #[error("{field} must not be blank")]
    BlankText {
        /// e.g. `"decline reason"`.
        field: &'static str,
    },
    /// A free-text field longer than [`MAX_TEXT_LEN`] characters.
    #[error("{field} must be at most {max} characters long, got {len}", max = MAX_TEXT_LEN)]
    TextTooLong {
        /// e.g. `"decline reason"`.
        field: &'static str,
        /// The length in characters.
        len: usize,
    },
    /// A restock that would take stock on hand past `InventoryState::MAX_ON_HAND`.
    #[error("stock on hand must stay at most {max}, got {on_hand} on hand plus {received} received", max = crate::inventory::InventoryState::MAX_ON_HAND)]
    StockLimit {
        /// Stock on hand before the restock.
        on_hand: u32,
        /// The restock quantity.
        received: u32,
    },
    /// A command for another SKU than the stock it was sent to (a routing bug).
    #[error("sku must be {expected} for this stock, got {found}")]
    SkuMismatch {
        /// The stock's SKU.
        expected: Sku,
        /// The command's SKU.
        found: Sku,
    },
}

/// Shortens user input echoed in an error message.
pub(crate) fn excerpt(input: &str) -> String {
    const KEEP: usize = 64;
    match input.char_indices().nth(KEEP) {
        None => input.to_owned(),
        Some((cut, _)) => format!("{}...", &input[..cut]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_keeps_short_input_and_cuts_long_input() {
        assert_eq!(excerpt("abc"), "abc");
        let long = "é".repeat(100);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), 64 + 3);
        assert!(cut.ends_with("..."));
    }

    #[test]
    fn messages_name_the_field_and_the_problem() {
        assert_eq!(
            ValidationError::QuantityOutOfRange { got: 0 }.to_string(),
            "quantity must be between 1 and 10000, got 0"
        );
        assert_eq!(
            ValidationError::NotPositive {
                field: "refund amount"
            }
            .to_string(),
            "refund amount must be greater than zero"
        );
        assert_eq!(
            ValidationError::AmountTooLarge { minor: 1 << 60 }.to_string(),
            format!(
                "amount must be at most 10000000000000 minor units, got {}",
                1_i128 << 60
            )
        );
        let illegal = DomainError::IllegalTransition {
            aggregate: "order",
            state: "Completed",
            command: "Cancel",
        };
        assert_eq!(
            illegal.to_string(),
            "command Cancel does not apply to order in state Completed"
        );
    }

    #[test]
    fn rejection_code_matches_its_serde_tag() {
        let rejection = Rejection::OutOfStock {
            sku: Sku::new("MUG").unwrap(),
            requested: Quantity::new(3).unwrap(),
            available: 1,
        };
        let json = serde_json::to_value(&rejection).unwrap();
        assert_eq!(json["code"], rejection.code());
        let back: Rejection = serde_json::from_value(json).unwrap();
        assert_eq!(back, rejection);
        assert_eq!(
            DomainError::from(rejection).to_string(),
            "rejected: out of stock: 3 of MUG requested, 1 available"
        );
    }
}
