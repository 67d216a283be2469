//! The payments service: pays for orders through the payment provider, a separate party.
//!
//! Each order's payment is event-sourced (`domain::PaymentState`, aggregate `payment`, stream id = the order
//! id, so its events are keyed by the order id) with a projection `payments`.
//!
//! # The provider is asynchronous
//! A request of the saga is forwarded to the provider's HTTP API ([`ProviderClient`]) with an idempotency key
//! that stays the same when the saga asks again (the order id; for a refund, which may be partial and
//! several, the order and how much it had refunded before). The provider accepts it (202) and sends its
//! result later, through the notifier, to this service's callback endpoint ([`callback`]), which checks the
//! signature and records the result ([`Recorder`]) in one transaction with its inbox; the events it appends
//! are the reply the saga waits for. A repeat of a key the provider decided before is answered with the
//! result at once (200) and recorded the same way. A call that gets no answer (timeout, 5xx) is retried in
//! place: the key makes the retry move no money twice.
//!
//! Every approved operation is kept with the provider's reference in `payment_operations`, which
//! reconciliation matches to the provider's statement; a result the payment cannot take (it came after the
//! payment moved on) is kept there too, with the reason, for reconciliation to weigh.

use std::net::SocketAddr;
use std::time::Duration;

use domain::{
    Aggregate as _, Currency, Money, OrderId, PaymentEvent, PaymentId, PaymentRequest,
    PaymentState, Service,
};
use outbox::{Loaded, Metadata};
use provider::{OperationResult, Outcome};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::shell::{Decision, Responder, Shell};
use crate::{Context, ServiceError};

pub mod callback;
mod client;
mod respond;

pub use client::{Answer, ProviderClient};
pub use respond::{Forward, Recording, Response, recording, respond};

/// Where the provider's results come in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackEndpoint {
    /// The address the callback endpoint listens on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// The secret the provider signs results with.
    pub secret: String,
}

/// The payments service's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct PaymentsConfig {
    /// The provider's API, e.g. `http://127.0.0.1:7070`.
    pub provider_url: String,
    /// How long a call to the provider may take before it counts as unanswered.
    pub request_timeout: Duration,
    /// Where the provider's results come in.
    pub callback: CallbackEndpoint,
    /// The currency of the zero amount in `PaymentVoided` / `PaymentRefunded` replies for an order that has
    /// no payment at all (an undo of nothing).
    pub void_currency: Currency,
}

/// [`PaymentsConfig::provider_url`] unless set.
pub const DEFAULT_PROVIDER_URL: &str = "http://127.0.0.1:7070";

/// The path of the callback endpoint.
pub const CALLBACK_PATH: &str = "/provider/results";

impl Default for PaymentsConfig {
    fn default() -> Self {
        Self {
            provider_url: DEFAULT_PROVIDER_URL.into(),
            request_timeout: Duration::from_secs(5),
            callback: CallbackEndpoint {
                listen: SocketAddr::from(([127, 0, 0, 1], 7071)),
                secret: provider::CallbackConfig::default().secret,
            },
            void_currency: crate::default_currency(),
        }
    }
}

/// A row of the `payments` projection.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct PaymentRow {
    pub order_id: Uuid,
    pub payment_id: Uuid,
    pub amount_minor: i64,
    pub currency: String,
    /// `authorized`, `declined`, `captured`, `voided` or `refunded`.
    pub status: String,
    pub provider_ref: Option<String>,
    pub captured_minor: i64,
    pub refunded_minor: i64,
}

/// The payment of `order_id`, if any.
pub async fn get_payment(
    pool: &PgPool,
    order_id: OrderId,
) -> Result<Option<PaymentRow>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT order_id, payment_id, amount_minor, currency, status, provider_ref, captured_minor,
                refunded_minor
         FROM payments WHERE order_id = $1",
    )
    .bind(order_id.as_uuid())
    .fetch_optional(pool)
    .await?)
}

/// Answers the four payment requests, replying on `payments.events` (see the crate's reply contract).
#[derive(Debug)]
pub struct Payments {
    recorder: Recorder,
    provider: ProviderClient,
    config: PaymentsConfig,
}

/// The payments service's handler on the consumer runtime.
pub type PaymentsHandler = Shell<Payments>;

/// What a payment decision asks to carry out.
#[derive(Debug, Clone, PartialEq)]
pub enum Act {
    /// Call the provider; record its result when it comes.
    Call(Forward),
    /// Repeat `PaymentAuthorized` for a payment that has moved on since, with the authorization's provider
    /// reference, which the state no longer holds (read from the `payments` projection).
    RepeatAuthorized {
        payment_id: PaymentId,
        amount: Money,
    },
}

impl Payments {
    /// A service writing with `ctx` and paying through `provider`.
    pub fn new(ctx: Context, provider: ProviderClient, config: PaymentsConfig) -> Self {
        Self {
            recorder: Recorder::new(ctx),
            provider,
            config,
        }
    }

    /// What records the provider's results; the callback endpoint records with one too.
    pub const fn recorder(&self) -> &Recorder {
        &self.recorder
    }
}

impl Responder for Payments {
    const SERVICE: Service = Service::Payments;
    type Request = PaymentRequest;
    type State = Loaded<PaymentState>;
    type Act = Act;
    type Reply = PaymentEvent;

    fn context(&self) -> &Context {
        &self.recorder.ctx
    }

    async fn load(
        &self,
        tx: &mut PgConnection,
        order_id: OrderId,
    ) -> Result<Loaded<PaymentState>, ServiceError> {
        Ok(self
            .recorder
            .ctx
            .store
            .load_with(tx, &order_id.to_string())
            .await?)
    }

    /// # Errors
    /// Invalid amounts (a zero authorization, a refund in another currency).
    fn decide(
        &self,
        loaded: &Loaded<PaymentState>,
        request: PaymentRequest,
    ) -> Result<Decision<Act, PaymentEvent>, ServiceError> {
        Ok(
            match respond(&loaded.state, request, self.config.void_currency)? {
                Response::Forward(forward) => Decision::Act(Act::Call(forward)),
                Response::RepeatAuthorized { payment_id, amount } => {
                    Decision::Act(Act::RepeatAuthorized { payment_id, amount })
                }
                Response::Repeat(reply) => Decision::Repeat(reply),
                Response::NotApplicable(reason) => Decision::NotApplicable(reason),
                Response::Invalid { field, reason } => {
                    return Err(ServiceError::invalid(field, reason));
                }
            },
        )
    }

    /// # Errors
    /// [`ServiceError::ProviderTimeout`] (transient); [`ServiceError::ProviderRefused`];
    /// [`ServiceError::Unrecorded`] when the provider answered with a result and recording it failed.
    async fn carry_out(
        &self,
        tx: &mut PgConnection,
        order_id: OrderId,
        _loaded: Loaded<PaymentState>,
        act: Act,
        metadata: &Metadata,
    ) -> Result<(), ServiceError> {
        match act {
            Act::Call(Forward {
                operation,
                amount,
                key,
            }) => match self
                .provider
                .call(operation, order_id, amount, &key)
                .await?
            {
                Answer::Pending { reference } => {
                    metrics::counter!("payments_results_awaited_total").increment(1);
                    tracing::debug!(%order_id, %operation, %reference, "provider accepted; result to come");
                    Ok(())
                }
                Answer::Decided(result) => {
                    let recorded = self.recorder.record(tx, &result, metadata).await;
                    recorded
                        .map(drop)
                        .map_err(|source| ServiceError::Unrecorded {
                            operation: operation.name(),
                            order_id: order_id.to_string(),
                            source: Box::new(source),
                        })
                }
            },
            Act::RepeatAuthorized { payment_id, amount } => {
                let reply = PaymentEvent::Authorized {
                    payment_id,
                    order_id,
                    amount,
                    provider_ref: provider_ref(tx, order_id).await?,
                };
                self.recorder
                    .ctx
                    .reply(tx, Service::Payments, reply, metadata)
                    .await
            }
        }
    }
}

/// What recording a result did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// Recorded: the payment's events (the saga's reply) are appended.
    Applied,
    /// Recorded before (its reference is kept, or the payment shows it): nothing done.
    Already,
    /// The payment could not take it; kept beside the payment with the reason.
    Conflict(String),
}

/// Records the provider's results on the payment: the consumer's repeats and the callback endpoint's
/// notifications both go through here, so one result is recorded once whichever way it comes.
#[derive(Clone, Debug)]
pub struct Recorder {
    ctx: Context,
}

impl Recorder {
    /// A recorder writing with `ctx`.
    pub const fn new(ctx: Context) -> Self {
        Self { ctx }
    }

    /// Records `result` in the caller's transaction: executes its command on the payment, appends the
    /// events (which reply to the saga on `payments.events`), updates the projection and keeps the
    /// operation with its reference. An approved result kept before is not recorded again.
    ///
    /// # Errors
    /// A result whose order id, amount or currency is not valid; database and event store errors.
    pub async fn record(
        &self,
        tx: &mut PgConnection,
        result: &OperationResult,
        metadata: &Metadata,
    ) -> Result<Recorded, ServiceError> {
        // One recording at a time per order: a result that comes by the answer to a repeat and by
        // notification at once is recorded by the first, and found kept by the second.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 1))")
            .bind(result.order_id)
            .execute(&mut *tx)
            .await?;
        if result.outcome == Outcome::Approved && is_kept(tx, &result.reference).await? {
            metrics::counter!("payments_duplicate_results_total").increment(1);
            return Ok(Recorded::Already);
        }
        let order_id = OrderId::from_uuid(result.order_id)
            .map_err(|e| ServiceError::invalid("order_id", e))?;
        let id = order_id.to_string();
        let loaded: Loaded<PaymentState> = self.ctx.store.load_with(tx, &id).await?;
        match recording(&loaded.state, result)? {
            Recording::Record(command) => {
                let (after, events) = loaded.state.execute(command)?;
                self.ctx
                    .store
                    .append::<PaymentState>(tx, &id, loaded.version, &events, metadata)
                    .await?;
                project(tx, &after).await?;
                keep_operation(tx, result, None).await?;
                Ok(Recorded::Applied)
            }
            Recording::Already => {
                metrics::counter!("payments_duplicate_results_total").increment(1);
                Ok(Recorded::Already)
            }
            Recording::Conflict(reason) => {
                metrics::counter!("payments_conflicting_results_total").increment(1);
                tracing::warn!(%order_id, operation = %result.operation, reference = %result.reference,
                    %reason, "a provider result the payment cannot take; kept for reconciliation");
                keep_operation(tx, result, Some(&reason)).await?;
                Ok(Recorded::Conflict(reason))
            }
        }
    }
}

/// Whether the operation with `reference` is kept already.
async fn is_kept(tx: &mut PgConnection, reference: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM payment_operations WHERE provider_ref = $1)")
        .bind(reference)
        .fetch_one(&mut *tx)
        .await
}

/// Keeps an approved operation with its provider reference (reconciliation matches the two books on it),
/// with the reason when the payment could not take it. A declined one moved no money and is not kept.
async fn keep_operation(
    tx: &mut PgConnection,
    result: &OperationResult,
    conflict: Option<&str>,
) -> Result<(), ServiceError> {
    if result.outcome != Outcome::Approved {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO payment_operations
             (provider_ref, order_id, operation, amount_minor, currency, callback_conflict)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (provider_ref) DO NOTHING",
    )
    .bind(&result.reference)
    .bind(result.order_id)
    .bind(result.operation.name())
    .bind(result.amount_minor)
    .bind(&result.currency)
    .bind(conflict)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Updates the `payments` projection to `after`.
async fn project(tx: &mut PgConnection, after: &PaymentState) -> Result<(), ServiceError> {
    let Some(row) = projection(after) else {
        return Ok(());
    };
    sqlx::query(
        "INSERT INTO payments (order_id, payment_id, amount_minor, currency, status, provider_ref,
                               captured_minor, refunded_minor)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (order_id) DO UPDATE SET
             status = EXCLUDED.status,
             provider_ref = COALESCE(EXCLUDED.provider_ref, payments.provider_ref),
             captured_minor = EXCLUDED.captured_minor,
             refunded_minor = EXCLUDED.refunded_minor,
             updated_at = now()",
    )
    .bind(row.order_id)
    .bind(row.payment_id)
    .bind(row.amount_minor)
    .bind(row.currency)
    .bind(row.status)
    .bind(row.provider_ref)
    .bind(row.captured_minor)
    .bind(row.refunded_minor)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The authorization's provider reference, from the projection.
async fn provider_ref(tx: &mut PgConnection, order_id: OrderId) -> Result<String, ServiceError> {
    let found: Option<Option<String>> =
        sqlx::query_scalar("SELECT provider_ref FROM payments WHERE order_id = $1")
            .bind(order_id.as_uuid())
            .fetch_optional(&mut *tx)
            .await?;
    Ok(found
        .flatten()
        .unwrap_or_else(|| format!("psp-authorize-{order_id}")))
}

fn projection(state: &PaymentState) -> Option<PaymentRow> {
    let row = |payment_id: &PaymentId,
               order_id: &OrderId,
               amount: &Money,
               status: &str,
               provider_ref: Option<&String>,
               captured: i64,
               refunded: i64| PaymentRow {
        order_id: order_id.as_uuid(),
        payment_id: payment_id.as_uuid(),
        amount_minor: amount.minor(),
        currency: amount.currency().code().to_owned(),
        status: status.to_owned(),
        provider_ref: provider_ref.cloned(),
        captured_minor: captured,
        refunded_minor: refunded,
    };
    Some(match state {
        PaymentState::NotStarted => return None,
        PaymentState::Authorized {
            payment_id,
            order_id,
            amount,
            provider_ref,
        } => row(
            payment_id,
            order_id,
            amount,
            "authorized",
            Some(provider_ref),
            0,
            0,
        ),
        PaymentState::Declined {
            payment_id,
            order_id,
            amount,
            ..
        } => row(payment_id, order_id, amount, "declined", None, 0, 0),
        PaymentState::Captured {
            payment_id,
            order_id,
            amount,
            refunded,
        } => row(
            payment_id,
            order_id,
            amount,
            "captured",
            None,
            amount.minor(),
            refunded.minor(),
        ),
        PaymentState::Voided {
            payment_id,
            order_id,
            amount,
        } => row(payment_id, order_id, amount, "voided", None, 0, 0),
        PaymentState::Refunded {
            payment_id,
            order_id,
            amount,
        } => row(
            payment_id,
            order_id,
            amount,
            "refunded",
            None,
            amount.minor(),
            amount.minor(),
        ),
    })
}
