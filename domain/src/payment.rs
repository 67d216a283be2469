//! The payment aggregate: the record of one payment of one order.
//!
//! The payments service talks to the payment provider first, then records the outcome
//! here as a command (`Authorize` or `Decline` with what the provider said), so this
//! aggregate never does I/O and never guesses.
//!
//! ```text
//! NotStarted --Authorize--> Authorized --Capture--> Captured --Refund (all)--> Refunded
//!     |  |                      |                    |    ^
//!     |  +--Decline--> Declined +--Void--> Voided    +----+ Refund (part)
//!     +--VoidUnauthorized--> Voided (amount zero)
//! ```
//!
//! | state \ command | `Authorize` | `Decline` | `Capture` | `Void` | `VoidUnauthorized` | `Refund` |
//! |-----------------|-------------|-----------|-----------|---------|---------|----------|
//! | `NotStarted`    | authorized  | declined  | illegal   | illegal | voided (zero) | illegal |
//! | `Authorized`    | illegal     | illegal   | captured  | voided  | illegal | illegal  |
//! | `Declined`      | illegal     | illegal   | illegal   | illegal | illegal | illegal  |
//! | `Captured`      | illegal     | illegal   | no-op     | illegal | illegal | refunded, or rejected past the captured amount |
//! | `Voided`        | illegal     | illegal   | illegal   | no-op   | no-op   | illegal  |
//! | `Refunded`      | illegal     | illegal   | illegal   | illegal | illegal | rejected (nothing left) |
//!
//! Rules:
//! - A capture takes the full authorized amount; repeating `Capture` on a captured
//!   payment succeeds with no events, so a payment is never captured twice.
//! - Refunds are cumulative and may be partial. A refund must be in the payment's
//!   currency and above zero (else [`DomainError::Invalid`]); one that would take the
//!   refunded total past the captured amount is [`Rejection::RefundExceedsCaptured`], so
//!   a payment is never refunded twice. The refund that reaches the captured amount
//!   moves the payment to `Refunded`.
//! - `Refund` is never treated as a repeat: two refunds of 5 EUR are two refunds.
//!   Deduplicating redelivered refund commands is the consumer's job (event-id inbox).
//! - `Void` on a voided payment succeeds with no events.
//! - `VoidUnauthorized` voids a payment whose authorization was never recorded (the saga
//!   compensates an order whose `AuthorizePayment` got no answer): a `PaymentVoided` of
//!   amount zero, so that an authorization asked for later finds the payment voided instead
//!   of starting one for a cancelled order. Only from `NotStarted`; a no-op on `Voided`,
//!   illegal elsewhere. An authorized amount is above zero, so a voided amount of zero
//!   always means "voided before it was authorized".
//! - Terminal states: `Declined`, `Voided`, `Refunded`. `Captured` is not terminal, as
//!   refunds may follow.

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, DomainEvent, Message, illegal};
use crate::error::{DomainError, Rejection, ValidationError};
use crate::ids::{OrderId, PaymentId};
use crate::money::Money;
use crate::text::check_text;

/// The state of one payment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PaymentState {
    /// Nothing recorded yet (the state before the first event).
    #[default]
    NotStarted,
    /// The provider reserved the amount on the customer's means of payment.
    #[allow(missing_docs)]
    Authorized {
        payment_id: PaymentId,
        /// The order it pays for.
        order_id: OrderId,
        /// The authorized amount.
        amount: Money,
        /// The provider's reference for the authorization.
        provider_ref: String,
    },
    /// The provider refused. Terminal.
    #[allow(missing_docs)]
    Declined {
        payment_id: PaymentId,
        /// The order it was for.
        order_id: OrderId,
        /// The amount asked for.
        amount: Money,
        /// What the provider said.
        reason: String,
    },
    /// The money was taken; refunds may follow.
    #[allow(missing_docs)]
    Captured {
        payment_id: PaymentId,
        /// The order it pays for.
        order_id: OrderId,
        /// The captured amount.
        amount: Money,
        /// Refunded so far (less than `amount`).
        refunded: Money,
    },
    /// The authorization was released without capture. Terminal.
    #[allow(missing_docs)]
    Voided {
        payment_id: PaymentId,
        /// The order it was for.
        order_id: OrderId,
        /// The amount that had been authorized.
        amount: Money,
    },
    /// The whole captured amount was refunded. Terminal.
    #[allow(missing_docs)]
    Refunded {
        payment_id: PaymentId,
        /// The order it was for.
        order_id: OrderId,
        /// The captured (and refunded) amount.
        amount: Money,
    },
}

impl PaymentState {
    /// The state's name, e.g. `"Captured"`.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::NotStarted => "NotStarted",
            Self::Authorized { .. } => "Authorized",
            Self::Declined { .. } => "Declined",
            Self::Captured { .. } => "Captured",
            Self::Voided { .. } => "Voided",
            Self::Refunded { .. } => "Refunded",
        }
    }

    /// The payment id and order id, once started.
    #[must_use]
    pub const fn ids(&self) -> Option<(PaymentId, OrderId)> {
        match self {
            Self::NotStarted => None,
            Self::Authorized {
                payment_id,
                order_id,
                ..
            }
            | Self::Declined {
                payment_id,
                order_id,
                ..
            }
            | Self::Captured {
                payment_id,
                order_id,
                ..
            }
            | Self::Voided {
                payment_id,
                order_id,
                ..
            }
            | Self::Refunded {
                payment_id,
                order_id,
                ..
            } => Some((*payment_id, *order_id)),
        }
    }
}

/// What can be recorded about a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentCommand {
    /// The provider authorized `amount`.
    Authorize {
        /// A fresh payment id.
        payment_id: PaymentId,
        /// The order paid for.
        order_id: OrderId,
        /// The authorized amount (above zero).
        amount: Money,
        /// The provider's reference (not blank, at most [`crate::MAX_TEXT_LEN`] characters).
        provider_ref: String,
    },
    /// The provider declined.
    Decline {
        /// A fresh payment id.
        payment_id: PaymentId,
        /// The order it was for.
        order_id: OrderId,
        /// The amount asked for (above zero).
        amount: Money,
        /// What the provider said (not blank, at most [`crate::MAX_TEXT_LEN`] characters).
        reason: String,
    },
    /// Capture the full authorized amount.
    Capture,
    /// Release the authorization.
    Void,
    /// Void a payment whose authorization was never recorded.
    VoidUnauthorized {
        /// The payment id the void is recorded under.
        payment_id: PaymentId,
        /// The order whose payment it is.
        order_id: OrderId,
        /// The currency of the zero amount.
        currency: crate::money::Currency,
    },
    /// Refund part or the rest of the captured amount.
    Refund {
        /// Above zero, in the payment's currency.
        amount: Money,
    },
}

impl PaymentCommand {
    /// The command's name, e.g. `"Refund"`.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Authorize { .. } => "Authorize",
            Self::Decline { .. } => "Decline",
            Self::Capture => "Capture",
            Self::Void => "Void",
            Self::VoidUnauthorized { .. } => "VoidUnauthorized",
            Self::Refund { .. } => "Refund",
        }
    }
}

/// What happened to a payment. Serialized with a `"type"` tag equal to
/// [`Message::event_type`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum PaymentEvent {
    /// `PaymentAuthorized` v1.
    #[serde(rename = "PaymentAuthorized")]
    #[allow(missing_docs)]
    Authorized {
        payment_id: PaymentId,
        /// The order paid for.
        order_id: OrderId,
        /// The authorized amount.
        amount: Money,
        /// The provider's reference.
        provider_ref: String,
    },
    /// `PaymentDeclined` v1.
    #[serde(rename = "PaymentDeclined")]
    #[allow(missing_docs)]
    Declined {
        payment_id: PaymentId,
        /// The order it was for.
        order_id: OrderId,
        /// The amount asked for.
        amount: Money,
        /// What the provider said.
        reason: String,
    },
    /// `PaymentCaptured` v1.
    #[serde(rename = "PaymentCaptured")]
    #[allow(missing_docs)]
    Captured {
        payment_id: PaymentId,
        /// The order paid for.
        order_id: OrderId,
        /// The captured amount (the full authorized amount).
        amount: Money,
    },
    /// `PaymentVoided` v1.
    #[serde(rename = "PaymentVoided")]
    #[allow(missing_docs)]
    Voided {
        payment_id: PaymentId,
        /// The order it was for.
        order_id: OrderId,
        /// The amount that had been authorized.
        amount: Money,
    },
    /// `PaymentRefunded` v1: one refund, partial or final.
    #[serde(rename = "PaymentRefunded")]
    #[allow(missing_docs)]
    Refunded {
        payment_id: PaymentId,
        /// The order it was for.
        order_id: OrderId,
        /// This refund.
        amount: Money,
        /// All refunds so far, this one included.
        total_refunded: Money,
        /// The captured amount; the payment is fully refunded when `total_refunded`
        /// reaches it.
        captured: Money,
    },
}

impl PaymentEvent {
    /// The payment the event belongs to.
    #[must_use]
    pub const fn payment_id(&self) -> PaymentId {
        match self {
            Self::Authorized { payment_id, .. }
            | Self::Declined { payment_id, .. }
            | Self::Captured { payment_id, .. }
            | Self::Voided { payment_id, .. }
            | Self::Refunded { payment_id, .. } => *payment_id,
        }
    }

    /// The order the payment is for.
    #[must_use]
    pub const fn order_id(&self) -> OrderId {
        match self {
            Self::Authorized { order_id, .. }
            | Self::Declined { order_id, .. }
            | Self::Captured { order_id, .. }
            | Self::Voided { order_id, .. }
            | Self::Refunded { order_id, .. } => *order_id,
        }
    }
}

impl Message for PaymentEvent {
    const EVENT_TYPES: &'static [&'static str] = &[
        "PaymentAuthorized",
        "PaymentDeclined",
        "PaymentCaptured",
        "PaymentVoided",
        "PaymentRefunded",
    ];

    fn event_type(&self) -> &'static str {
        match self {
            Self::Authorized { .. } => "PaymentAuthorized",
            Self::Declined { .. } => "PaymentDeclined",
            Self::Captured { .. } => "PaymentCaptured",
            Self::Voided { .. } => "PaymentVoided",
            Self::Refunded { .. } => "PaymentRefunded",
        }
    }
}

impl crate::AboutOrder for PaymentEvent {
    fn order_id(&self) -> OrderId {
        self.order_id()
    }
}

impl DomainEvent for PaymentEvent {
    fn aggregate_id(&self) -> String {
        self.payment_id().to_string()
    }
}

fn check_positive(field: &'static str, amount: Money) -> Result<(), ValidationError> {
    if amount.is_zero() {
        Err(ValidationError::NotPositive { field })
    } else {
        Ok(())
    }
}

/// Decides a refund of `requested` against `captured`, of which `refunded` is refunded.
fn refund(
    payment_id: PaymentId,
    order_id: OrderId,
    captured: Money,
    refunded: Money,
    requested: Money,
) -> Result<Vec<PaymentEvent>, DomainError> {
    const FIELD: &str = "refund amount";
    check_positive(FIELD, requested)?;
    if requested.currency() != captured.currency() {
        return Err(ValidationError::CurrencyMismatch {
            field: FIELD,
            expected: captured.currency(),
            found: requested.currency(),
        }
        .into());
    }
    let refundable = captured.checked_sub(refunded)?;
    if requested.minor() > refundable.minor() {
        return Err(Rejection::RefundExceedsCaptured {
            requested,
            refundable,
        }
        .into());
    }
    Ok(vec![PaymentEvent::Refunded {
        payment_id,
        order_id,
        amount: requested,
        total_refunded: refunded.checked_add(requested)?,
        captured,
    }])
}

impl Aggregate for PaymentState {
    type Command = PaymentCommand;
    type Event = PaymentEvent;

    const SERVICE: crate::Service = crate::Service::Payments;

    fn decide(&self, command: PaymentCommand) -> Result<Vec<PaymentEvent>, DomainError> {
        use PaymentCommand as C;
        use PaymentState as S;
        match (self, command) {
            (
                S::NotStarted,
                C::Authorize {
                    payment_id,
                    order_id,
                    amount,
                    provider_ref,
                },
            ) => {
                check_positive("authorized amount", amount)?;
                check_text("provider_ref", &provider_ref)?;
                Ok(vec![PaymentEvent::Authorized {
                    payment_id,
                    order_id,
                    amount,
                    provider_ref,
                }])
            }
            (
                S::NotStarted,
                C::Decline {
                    payment_id,
                    order_id,
                    amount,
                    reason,
                },
            ) => {
                check_positive("declined amount", amount)?;
                check_text("decline reason", &reason)?;
                Ok(vec![PaymentEvent::Declined {
                    payment_id,
                    order_id,
                    amount,
                    reason,
                }])
            }
            (
                S::Authorized {
                    payment_id,
                    order_id,
                    amount,
                    ..
                },
                C::Capture,
            ) => Ok(vec![PaymentEvent::Captured {
                payment_id: *payment_id,
                order_id: *order_id,
                amount: *amount,
            }]),
            (
                S::Authorized {
                    payment_id,
                    order_id,
                    amount,
                    ..
                },
                C::Void,
            ) => Ok(vec![PaymentEvent::Voided {
                payment_id: *payment_id,
                order_id: *order_id,
                amount: *amount,
            }]),
            (
                S::Captured {
                    payment_id,
                    order_id,
                    amount,
                    refunded,
                },
                C::Refund { amount: requested },
            ) => refund(*payment_id, *order_id, *amount, *refunded, requested),
            // Nothing is left to refund; still validate the input first.
            (
                S::Refunded {
                    payment_id,
                    order_id,
                    amount,
                },
                C::Refund { amount: requested },
            ) => refund(*payment_id, *order_id, *amount, *amount, requested),
            (
                S::NotStarted,
                C::VoidUnauthorized {
                    payment_id,
                    order_id,
                    currency,
                },
            ) => Ok(vec![PaymentEvent::Voided {
                payment_id,
                order_id,
                amount: Money::zero(currency),
            }]),
            // Harmless repeats.
            (S::Captured { .. }, C::Capture)
            | (S::Voided { .. }, C::Void | C::VoidUnauthorized { .. }) => Ok(vec![]),
            (S::NotStarted, command @ (C::Capture | C::Void | C::Refund { .. }))
            | (
                S::Authorized { .. },
                command @ (C::Authorize { .. }
                | C::Decline { .. }
                | C::VoidUnauthorized { .. }
                | C::Refund { .. }),
            )
            | (
                S::Declined { .. },
                command @ (C::Authorize { .. }
                | C::Decline { .. }
                | C::Capture
                | C::Void
                | C::VoidUnauthorized { .. }
                | C::Refund { .. }),
            )
            | (
                S::Captured { .. },
                command @ (C::Authorize { .. }
                | C::Decline { .. }
                | C::Void
                | C::VoidUnauthorized { .. }),
            )
            | (
                S::Voided { .. },
                command @ (C::Authorize { .. } | C::Decline { .. } | C::Capture | C::Refund { .. }),
            )
            | (
                S::Refunded { .. },
                command @ (C::Authorize { .. }
                | C::Decline { .. }
                | C::Capture
                | C::Void
                | C::VoidUnauthorized { .. }),
            ) => Err(illegal(self, command.name())),
        }
    }

    fn evolve(self, event: &PaymentEvent) -> Self {
        use PaymentEvent as E;
        use PaymentState as S;
        match (self, event) {
            (
                S::NotStarted,
                E::Authorized {
                    payment_id,
                    order_id,
                    amount,
                    provider_ref,
                },
            ) => S::Authorized {
                payment_id: *payment_id,
                order_id: *order_id,
                amount: *amount,
                provider_ref: provider_ref.clone(),
            },
            (
                S::NotStarted,
                E::Declined {
                    payment_id,
                    order_id,
                    amount,
                    reason,
                },
            ) => S::Declined {
                payment_id: *payment_id,
                order_id: *order_id,
                amount: *amount,
                reason: reason.clone(),
            },
            (
                S::NotStarted,
                E::Voided {
                    payment_id,
                    order_id,
                    amount,
                },
            ) => S::Voided {
                payment_id: *payment_id,
                order_id: *order_id,
                amount: *amount,
            },
            (
                S::Authorized {
                    payment_id,
                    order_id,
                    ..
                },
                E::Captured { amount, .. },
            ) => S::Captured {
                payment_id,
                order_id,
                amount: *amount,
                refunded: Money::zero(amount.currency()),
            },
            (
                S::Authorized {
                    payment_id,
                    order_id,
                    amount,
                    ..
                },
                E::Voided { .. },
            ) => S::Voided {
                payment_id,
                order_id,
                amount,
            },
            (
                S::Captured {
                    payment_id,
                    order_id,
                    amount,
                    ..
                },
                E::Refunded { total_refunded, .. },
            ) => {
                if total_refunded.minor() >= amount.minor() {
                    S::Refunded {
                        payment_id,
                        order_id,
                        amount,
                    }
                } else {
                    S::Captured {
                        payment_id,
                        order_id,
                        amount,
                        refunded: *total_refunded,
                    }
                }
            }
            // Events that cannot follow the state: ignored (see `Aggregate::evolve`).
            (state @ S::NotStarted, E::Captured { .. } | E::Refunded { .. })
            | (
                state @ S::Authorized { .. },
                E::Authorized { .. } | E::Declined { .. } | E::Refunded { .. },
            )
            | (
                state @ S::Captured { .. },
                E::Authorized { .. } | E::Declined { .. } | E::Captured { .. } | E::Voided { .. },
            )
            | (state @ (S::Declined { .. } | S::Voided { .. } | S::Refunded { .. }), _) => state,
        }
    }

    fn is_terminal(&self) -> bool {
        match self {
            Self::NotStarted | Self::Authorized { .. } | Self::Captured { .. } => false,
            Self::Declined { .. } | Self::Voided { .. } | Self::Refunded { .. } => true,
        }
    }

    fn state_name(&self) -> &'static str {
        self.name()
    }
}

#[cfg(test)]
mod tests;
