//! What a payment request comes to, decided from the payment's state alone: [`respond`]; and what a result of
//! the provider comes to: [`recording`]. Pure, so every (state, request) and (state, result) pair is tested
//! below without Postgres or the provider; [`Payments`] (run by the one [`Shell`]) loads the payment, calls
//! the provider when the response says so, and records its results as they come.
//!
//! [`Payments`]: super::Payments
//! [`Shell`]: crate::Shell

use domain::{
    Aggregate as _, Currency, DomainError, Money, OrderId, PaymentCommand, PaymentEvent, PaymentId,
    PaymentRequest, PaymentState, Rejection,
};
use provider::{Operation, OperationResult, Outcome};

/// What the service does about a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// Ask the provider; its result is recorded when it comes ([`recording`]).
    Forward(Forward),
    /// Answer with this reply and change nothing: a repeat, or an undo of nothing.
    Repeat(PaymentEvent),
    /// A repeated authorization of a payment that has moved on since: answer `PaymentAuthorized` with the
    /// authorization's provider reference, which the state no longer holds (the shell reads it).
    RepeatAuthorized {
        payment_id: PaymentId,
        amount: Money,
    },
    /// The request cannot apply to the payment; the reason says why.
    NotApplicable(String),
    /// The request itself is invalid.
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
}

/// A call to the provider.
#[derive(Debug, Clone, PartialEq)]
pub struct Forward {
    pub operation: Operation,
    pub amount: Money,
    /// The provider's idempotency key: the same whenever the saga asks again (in a record with a new event
    /// id) after an answer was lost, so a retried call never moves money twice.
    pub key: String,
}

/// What `request` comes to for a payment in `state`. `void_currency` is the currency of the zero amount in
/// replies about an order that has no payment at all.
///
/// # Errors
/// A domain error the request's amount causes (a refund in another currency, say).
pub fn respond(
    state: &PaymentState,
    request: PaymentRequest,
    void_currency: Currency,
) -> Result<Response, DomainError> {
    use PaymentRequest as R;
    use PaymentState as S;
    let order_id = request.order_id();
    let key = order_id.to_string();
    let forward = |operation, amount, key| {
        Ok(Response::Forward(Forward {
            operation,
            amount,
            key,
        }))
    };
    let nothing = || nothing(order_id, state, void_currency);
    match (request, state) {
        (R::AuthorizePayment { amount, .. }, S::NotStarted) if amount.is_zero() => {
            Ok(Response::Invalid {
                field: "amount",
                reason: "must be above zero",
            })
        }
        (R::AuthorizePayment { amount, .. }, S::NotStarted) => {
            forward(Operation::Authorize, amount, key)
        }
        (R::CapturePayment { .. }, S::Authorized { amount, .. }) => {
            forward(Operation::Capture, *amount, key)
        }
        // An authorization may have gone through at the provider without being recorded here (its result
        // lost, its request dead-lettered): voiding by the order's key releases it if so. The void is
        // recorded, so an authorization asked for later finds the payment voided.
        (R::VoidPayment { .. }, S::NotStarted) => {
            let (_, currency) = nothing()?;
            forward(Operation::Void, Money::zero(currency), key)
        }
        (R::VoidPayment { .. }, S::Authorized { amount, .. }) => {
            forward(Operation::Void, *amount, key)
        }
        (R::RefundPayment { amount, .. }, S::Captured { refunded, .. }) => {
            // Refused before the provider is asked when it is more than what is left to refund.
            match state.execute(PaymentCommand::Refund { amount }) {
                Ok(_) => {}
                Err(DomainError::Rejected(rejection @ Rejection::RefundExceedsCaptured { .. })) => {
                    return Ok(Response::NotApplicable(format!(
                        "refund for order {order_id}: {rejection}"
                    )));
                }
                Err(e) => return Err(e),
            }
            // The next partial refund is another call: the key is the order and how much it had refunded.
            let key = format!("{key}-after-{}", refunded.minor());
            forward(Operation::Refund, amount, key)
        }
        // Repeats: the reply the request got the first time.
        (
            R::AuthorizePayment { .. },
            S::Authorized {
                payment_id,
                amount,
                provider_ref,
                ..
            },
        ) => Ok(Response::Repeat(PaymentEvent::Authorized {
            payment_id: *payment_id,
            order_id,
            amount: *amount,
            provider_ref: provider_ref.clone(),
        })),
        // Voided before it was authorized (an authorized amount is above zero): the order was cancelled.
        (
            R::AuthorizePayment {
                amount: requested, ..
            },
            S::Voided {
                payment_id, amount, ..
            },
        ) if amount.is_zero() => Ok(Response::Repeat(PaymentEvent::Declined {
            payment_id: *payment_id,
            order_id,
            amount: requested,
            reason: "the payment was voided before it was authorized".into(),
        })),
        (
            R::AuthorizePayment { .. },
            S::Captured {
                payment_id, amount, ..
            }
            | S::Voided {
                payment_id, amount, ..
            }
            | S::Refunded {
                payment_id, amount, ..
            },
        ) => Ok(Response::RepeatAuthorized {
            payment_id: *payment_id,
            amount: *amount,
        }),
        (
            R::AuthorizePayment { .. },
            S::Declined {
                payment_id,
                amount,
                reason,
                ..
            },
        ) => Ok(Response::Repeat(PaymentEvent::Declined {
            payment_id: *payment_id,
            order_id,
            amount: *amount,
            reason: reason.clone(),
        })),
        (
            R::CapturePayment { .. } | R::VoidPayment { .. },
            S::Captured {
                payment_id, amount, ..
            }
            | S::Refunded {
                payment_id, amount, ..
            },
        ) => Ok(Response::Repeat(PaymentEvent::Captured {
            payment_id: *payment_id,
            order_id,
            amount: *amount,
        })),
        (
            R::CapturePayment { .. } | R::VoidPayment { .. },
            S::Voided {
                payment_id, amount, ..
            },
        ) => Ok(Response::Repeat(PaymentEvent::Voided {
            payment_id: *payment_id,
            order_id,
            amount: *amount,
        })),
        // Undo of nothing.
        (R::VoidPayment { .. }, S::Declined { .. }) => {
            let (payment_id, currency) = nothing()?;
            Ok(Response::Repeat(PaymentEvent::Voided {
                payment_id,
                order_id,
                amount: Money::zero(currency),
            }))
        }
        (
            R::RefundPayment { .. },
            S::NotStarted | S::Declined { .. } | S::Voided { .. } | S::Authorized { .. },
        ) => {
            let (payment_id, currency) = nothing()?;
            let zero = Money::zero(currency);
            Ok(Response::Repeat(PaymentEvent::Refunded {
                payment_id,
                order_id,
                amount: zero,
                total_refunded: zero,
                captured: zero,
            }))
        }
        (
            R::RefundPayment { .. },
            S::Refunded {
                payment_id, amount, ..
            },
        ) => Ok(Response::Repeat(PaymentEvent::Refunded {
            payment_id: *payment_id,
            order_id,
            amount: *amount,
            total_refunded: *amount,
            captured: *amount,
        })),
        (R::CapturePayment { .. }, S::NotStarted | S::Declined { .. }) => {
            Ok(Response::NotApplicable(format!(
                "order {order_id} has no authorized payment to capture ({})",
                state.name()
            )))
        }
    }
}

/// What a result of the provider comes to for a payment in `state`.
#[derive(Debug, Clone, PartialEq)]
pub enum Recording {
    /// Record it with this command (its events are the reply the saga waits for).
    Record(PaymentCommand),
    /// The payment shows it already: a repeat of a declined authorization, or of the authorization it holds.
    Already,
    /// The payment cannot take it (a result that came after the payment moved on, or a refusal of a
    /// capture, void or refund): kept beside the payment for reconciliation, with the reason.
    Conflict(String),
}

/// What `result` comes to for a payment in `state`. An approved result the service recorded before (by its
/// reference) never reaches here.
///
/// # Errors
/// The result's order id, amount or currency is not valid.
pub fn recording(state: &PaymentState, result: &OperationResult) -> Result<Recording, DomainError> {
    use PaymentState as S;
    let order_id = OrderId::from_uuid(result.order_id).map_err(DomainError::Invalid)?;
    let currency = Currency::new(&result.currency).map_err(DomainError::Invalid)?;
    let amount = Money::new(result.amount_minor, currency).map_err(DomainError::Invalid)?;
    let record = |command| Ok(Recording::Record(command));
    let declined = || result.reason.clone().unwrap_or_else(|| "declined".into());
    match (result.operation, result.outcome, state) {
        (Operation::Authorize, Outcome::Approved, S::NotStarted) => {
            record(PaymentCommand::Authorize {
                payment_id: PaymentId::new(),
                order_id,
                amount,
                provider_ref: result.reference.clone(),
            })
        }
        (Operation::Authorize, Outcome::Declined, S::NotStarted) => {
            record(PaymentCommand::Decline {
                payment_id: PaymentId::new(),
                order_id,
                amount,
                reason: declined(),
            })
        }
        (Operation::Authorize, Outcome::Declined, S::Declined { .. }) => Ok(Recording::Already),
        (Operation::Authorize, Outcome::Approved, S::Authorized { provider_ref, .. })
            if *provider_ref == result.reference =>
        {
            Ok(Recording::Already)
        }
        (Operation::Capture, Outcome::Approved, S::Authorized { .. }) => {
            record(PaymentCommand::Capture)
        }
        (Operation::Void, Outcome::Approved, S::NotStarted) => {
            record(PaymentCommand::VoidUnauthorized {
                payment_id: PaymentId::from_uuid(order_id.as_uuid())
                    .map_err(DomainError::Invalid)?,
                order_id,
                currency,
            })
        }
        (Operation::Void, Outcome::Approved, S::Authorized { .. }) => record(PaymentCommand::Void),
        (Operation::Refund, Outcome::Approved, S::Captured { .. }) => {
            record(PaymentCommand::Refund { amount })
        }
        (operation, Outcome::Declined, _) => Ok(Recording::Conflict(format!(
            "the provider declined the {operation}: {}",
            declined()
        ))),
        (operation, Outcome::Approved, state) => Ok(Recording::Conflict(format!(
            "the provider approved a {operation} the payment, {}, cannot take",
            state.name()
        ))),
    }
}

/// The payment id and currency of a reply about a payment that holds no money: the payment's own, or for an
/// order that has none, an id derived from the order's and `void_currency`.
fn nothing(
    order_id: OrderId,
    state: &PaymentState,
    void_currency: Currency,
) -> Result<(PaymentId, Currency), DomainError> {
    Ok(match state {
        PaymentState::NotStarted => (
            PaymentId::from_uuid(order_id.as_uuid()).map_err(DomainError::Invalid)?,
            void_currency,
        ),
        PaymentState::Authorized {
            payment_id, amount, ..
        }
        | PaymentState::Declined {
            payment_id, amount, ..
        }
        | PaymentState::Captured {
            payment_id, amount, ..
        }
        | PaymentState::Voided {
            payment_id, amount, ..
        }
        | PaymentState::Refunded {
            payment_id, amount, ..
        } => (*payment_id, amount.currency()),
    })
}

#[cfg(test)]
mod tests {
    use domain::Message as _;

    use super::*;

    fn eur(minor: i64) -> Money {
        Money::new(minor, Currency::EUR).unwrap()
    }

    /// One payment of every state, built through the domain's own commands.
    fn states(order_id: OrderId) -> Vec<(&'static str, PaymentState)> {
        let run = |commands: Vec<PaymentCommand>| {
            commands
                .into_iter()
                .fold(PaymentState::NotStarted, |state, command| {
                    state.execute(command).unwrap().0
                })
        };
        let authorize = || PaymentCommand::Authorize {
            payment_id: PaymentId::new(),
            order_id,
            amount: eur(1000),
            provider_ref: "psp-authorize-1".into(),
        };
        let refund = |minor| PaymentCommand::Refund { amount: eur(minor) };
        vec![
            ("not started", PaymentState::NotStarted),
            ("authorized", run(vec![authorize()])),
            (
                "declined",
                run(vec![PaymentCommand::Decline {
                    payment_id: PaymentId::new(),
                    order_id,
                    amount: eur(1000),
                    reason: "insufficient funds".into(),
                }]),
            ),
            ("captured", run(vec![authorize(), PaymentCommand::Capture])),
            (
                "partly refunded",
                run(vec![authorize(), PaymentCommand::Capture, refund(300)]),
            ),
            ("voided", run(vec![authorize(), PaymentCommand::Void])),
            (
                "voided before authorized",
                run(vec![PaymentCommand::VoidUnauthorized {
                    payment_id: PaymentId::new(),
                    order_id,
                    currency: Currency::EUR,
                }]),
            ),
            (
                "refunded",
                run(vec![authorize(), PaymentCommand::Capture, refund(1000)]),
            ),
        ]
    }

    fn requests(order_id: OrderId) -> Vec<(&'static str, PaymentRequest)> {
        vec![
            (
                "authorize",
                PaymentRequest::AuthorizePayment {
                    order_id,
                    amount: eur(1000),
                },
            ),
            ("capture", PaymentRequest::CapturePayment { order_id }),
            ("void", PaymentRequest::VoidPayment { order_id }),
            (
                "refund 500",
                PaymentRequest::RefundPayment {
                    order_id,
                    amount: eur(500),
                },
            ),
        ]
    }

    /// A response in a word or three: `call capture`, `reply PaymentVoided`, `not applicable`.
    fn summary(response: &Response) -> String {
        match response {
            Response::Forward(forward) => format!("call {}", forward.operation.name()),
            Response::Repeat(reply) => format!("reply {}", reply.event_type()),
            Response::RepeatAuthorized { .. } => "reply PaymentAuthorized (stored ref)".into(),
            Response::NotApplicable(_) => "not applicable".into(),
            Response::Invalid { field, .. } => format!("invalid {field}"),
        }
    }

    /// The whole reply contract of the payments service: every state x request.
    #[test]
    fn every_state_and_request_has_its_response() {
        let expected = [
            (
                "not started",
                [
                    "call authorize",
                    "not applicable",
                    "call void",
                    "reply PaymentRefunded",
                ],
            ),
            (
                "authorized",
                [
                    "reply PaymentAuthorized",
                    "call capture",
                    "call void",
                    "reply PaymentRefunded",
                ],
            ),
            (
                "declined",
                [
                    "reply PaymentDeclined",
                    "not applicable",
                    "reply PaymentVoided",
                    "reply PaymentRefunded",
                ],
            ),
            (
                "captured",
                [
                    "reply PaymentAuthorized (stored ref)",
                    "reply PaymentCaptured",
                    "reply PaymentCaptured",
                    "call refund",
                ],
            ),
            (
                "partly refunded",
                [
                    "reply PaymentAuthorized (stored ref)",
                    "reply PaymentCaptured",
                    "reply PaymentCaptured",
                    "call refund",
                ],
            ),
            (
                "voided",
                [
                    "reply PaymentAuthorized (stored ref)",
                    "reply PaymentVoided",
                    "reply PaymentVoided",
                    "reply PaymentRefunded",
                ],
            ),
            (
                "voided before authorized",
                [
                    "reply PaymentDeclined",
                    "reply PaymentVoided",
                    "reply PaymentVoided",
                    "reply PaymentRefunded",
                ],
            ),
            (
                "refunded",
                [
                    "reply PaymentAuthorized (stored ref)",
                    "reply PaymentCaptured",
                    "reply PaymentCaptured",
                    "reply PaymentRefunded",
                ],
            ),
        ];
        let order_id = OrderId::new();
        let states = states(order_id);
        assert_eq!(states.len(), expected.len());
        for ((state_name, state), (expected_state, row)) in states.iter().zip(expected) {
            assert_eq!(*state_name, expected_state);
            for ((request_name, request), want) in requests(order_id).into_iter().zip(row) {
                let got = summary(&respond(state, request, Currency::EUR).unwrap());
                assert_eq!(got, want, "{request_name} on a payment {state_name}");
            }
        }
    }

    #[test]
    fn refund_keys_stay_across_retries_and_differ_per_partial_refund() {
        let order_id = OrderId::new();
        let states = states(order_id);
        let key_of = |name: &str| {
            let state = &states.iter().find(|(n, _)| *n == name).unwrap().1;
            let request = PaymentRequest::RefundPayment {
                order_id,
                amount: eur(100),
            };
            match respond(state, request, Currency::EUR).unwrap() {
                Response::Forward(forward) => forward.key,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(key_of("captured"), key_of("captured"));
        assert_eq!(key_of("captured"), format!("{order_id}-after-0"));
        assert_eq!(key_of("partly refunded"), format!("{order_id}-after-300"));
    }

    #[test]
    fn a_zero_authorization_is_invalid_and_a_refund_past_the_capture_not_applicable() {
        let order_id = OrderId::new();
        let zero = PaymentRequest::AuthorizePayment {
            order_id,
            amount: eur(0),
        };
        assert_eq!(
            summary(&respond(&PaymentState::NotStarted, zero, Currency::EUR).unwrap()),
            "invalid amount"
        );
        let states = states(order_id);
        let partly = &states
            .iter()
            .find(|(n, _)| *n == "partly refunded")
            .unwrap()
            .1;
        let too_much = PaymentRequest::RefundPayment {
            order_id,
            amount: eur(800),
        };
        assert_eq!(
            summary(&respond(partly, too_much, Currency::EUR).unwrap()),
            "not applicable"
        );
    }

    fn approved(order_id: OrderId, operation: Operation, reference: &str) -> OperationResult {
        OperationResult {
            order_id: order_id.as_uuid(),
            operation,
            amount_minor: 1000,
            currency: "EUR".into(),
            reference: reference.into(),
            outcome: Outcome::Approved,
            reason: None,
        }
    }

    /// A result that comes twice, by the answer to a repeat and by notification, at once: the second finds
    /// the payment showing it. The authorization it recorded is the same one, not a conflict; another
    /// authorization of the same payment is one.
    #[test]
    fn an_authorization_the_payment_shows_is_already_recorded() {
        let order_id = OrderId::new();
        let states = states(order_id);
        let authorized = &states.iter().find(|(n, _)| *n == "authorized").unwrap().1;
        let same = approved(order_id, Operation::Authorize, "psp-authorize-1");
        assert_eq!(recording(authorized, &same).unwrap(), Recording::Already);
        let other = approved(order_id, Operation::Authorize, "psp-authorize-2");
        assert!(matches!(
            recording(authorized, &other).unwrap(),
            Recording::Conflict(_)
        ));
    }
}
