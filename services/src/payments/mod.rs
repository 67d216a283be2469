//! The payments service and its simulated payment provider.
//!
//! Each order's payment is event-sourced (`domain::PaymentState`, aggregate `payment`, stream id = the order
//! id, so its events are keyed by the order id) with a projection `payments`. The service asks the
//! [`Provider`] first, then records the outcome as a command, in the consumer runtime's transaction.
//!
//! The provider is external in spirit: its ledger (`provider_ledger`) is written on its own connection and
//! committed whether or not the service's transaction commits, as a real provider's books would be.
//! Reconciliation compares the two. Every call carries an idempotency key that stays the same when the saga
//! asks again (the order id; for a refund, which may be partial and several, the order and how much it had
//! refunded before); the ledger is unique per (order, operation, provider_ref) with the reference derived
//! from that key, so a retried call never charges twice. The service keeps each operation it recorded with
//! the provider's reference in `payment_operations`, which reconciliation matches to the ledger. Once the
//! provider has acted, a failure to record it is retried, never dead-lettered
//! ([`ServiceError::Unrecorded`]).

use std::sync::Mutex;
use std::time::Duration;

use domain::{
    Aggregate as _, Currency, Money, OrderId, PaymentCommand, PaymentEvent, PaymentId,
    PaymentRequest, PaymentState, Service,
};
use outbox::{Loaded, Metadata};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::shell::{Decision, Responder, Shell};
use crate::{Context, ServiceError, draw};

mod respond;

pub use respond::{Forward, Response, Then, respond};

/// How the simulated provider behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct ProviderConfig {
    /// Share of authorizations declined, in [0, 1]. Decided per order from the seed, so a retry of the same
    /// order gets the same answer.
    pub decline_rate: f64,
    /// How long every call takes.
    pub latency: Duration,
    /// Share of calls that time out, in [0, 1] (random per call from the seed's generator).
    pub timeout_rate: f64,
    /// Share of timeouts whose operation went through at the provider before the answer was lost, in [0, 1].
    pub charge_before_timeout: f64,
    /// Share of answers the provider delivers twice (a duplicate callback), in [0, 1].
    pub duplicate_callback_rate: f64,
    /// Share of duplicate callbacks that contradict the answer (say "declined" after "approved": a bug or a
    /// race at the provider), in [0, 1].
    pub contradicting_callback_rate: f64,
    /// Seed of every simulated decision.
    pub seed: u64,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        Self {
            decline_rate: 0.05,
            latency: Duration::from_millis(2),
            timeout_rate: 0.01,
            charge_before_timeout: 0.5,
            duplicate_callback_rate: 0.01,
            contradicting_callback_rate: 0.0,
            seed: 42,
        }
    }
}

/// The payments service's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct PaymentsConfig {
    /// The simulated provider.
    pub provider: ProviderConfig,
    /// The currency of the zero amount in `PaymentVoided` / `PaymentRefunded` replies for an order that has
    /// no payment at all (an undo of nothing).
    pub void_currency: Currency,
    /// Connections of the provider's own pool. Each partition worker holds a transaction (and so a
    /// connection of the service's pool) across its provider call; a provider drawing from that same pool
    /// would wait for one of them, and with every connection held by a worker nothing would move.
    pub provider_connections: u32,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        Self {
            provider: ProviderConfig::default(),
            void_currency: crate::default_currency(),
            provider_connections: 4,
        }
    }
}

/// What the provider is asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Authorize,
    Capture,
    Void,
    Refund,
}

impl Operation {
    /// The ledger's name of the operation.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Authorize => "authorize",
            Self::Capture => "capture",
            Self::Void => "void",
            Self::Refund => "refund",
        }
    }
}

/// The provider's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProviderAnswer {
    /// Done; the provider's reference of the operation.
    Approved { provider_ref: String },
    /// Refused (authorizations only).
    Declined { reason: String },
}

/// The provider's answer, and the callbacks that arrived after it (a duplicate of the answer, or rarely one
/// that contradicts it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderResponse {
    pub answer: ProviderAnswer,
    pub later_callbacks: Vec<ProviderAnswer>,
}

/// A row of the provider's ledger.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct LedgerEntry {
    pub order_id: Uuid,
    pub operation: String,
    pub amount_minor: i64,
    pub currency: String,
    pub provider_ref: String,
}

/// Salt of the per-order decline decision.
const DECLINE: u64 = 0x00DE_C11E;

/// The simulated payment provider.
#[derive(Debug)]
pub struct Provider {
    pool: PgPool,
    config: ProviderConfig,
    rng: Mutex<StdRng>,
}

impl Provider {
    /// A provider keeping its ledger in `pool`.
    pub fn new(pool: PgPool, config: ProviderConfig) -> Self {
        let rng = Mutex::new(StdRng::seed_from_u64(config.seed));
        Self { pool, config, rng }
    }

    /// Asks the provider to do `operation` of `amount` for `order_id`, idempotently on `idempotency_key`.
    ///
    /// # Errors
    /// [`ServiceError::ProviderTimeout`] when the call timed out (the operation may or may not have gone
    /// through; calling again with the same key is safe); database errors of the ledger.
    pub async fn call(
        &self,
        operation: Operation,
        order_id: OrderId,
        amount: Money,
        idempotency_key: &str,
    ) -> Result<ProviderResponse, ServiceError> {
        tokio::time::sleep(self.config.latency).await;
        if operation == Operation::Authorize
            && draw(self.config.seed, DECLINE, order_id.as_uuid()) < self.config.decline_rate
        {
            return Ok(ProviderResponse {
                answer: ProviderAnswer::Declined {
                    reason: "insufficient funds".into(),
                },
                later_callbacks: Vec::new(),
            });
        }
        let (timeout, charged_anyway, duplicate, contradicting) = {
            let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
            (
                rng.random::<f64>() < self.config.timeout_rate,
                rng.random::<f64>() < self.config.charge_before_timeout,
                rng.random::<f64>() < self.config.duplicate_callback_rate,
                rng.random::<f64>() < self.config.contradicting_callback_rate,
            )
        };
        let timed_out = || ServiceError::ProviderTimeout {
            operation: operation.name(),
            order_id: order_id.to_string(),
        };
        if timeout && !charged_anyway {
            metrics::counter!("provider_timeouts_total").increment(1);
            return Err(timed_out());
        }
        let provider_ref = format!("psp-{}-{idempotency_key}", operation.name());
        let recorded = sqlx::query(
            "INSERT INTO provider_ledger (order_id, operation, amount_minor, currency, provider_ref)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (order_id, operation, provider_ref) DO NOTHING",
        )
        .bind(order_id.as_uuid())
        .bind(operation.name())
        .bind(amount.minor())
        .bind(amount.currency().code())
        .bind(&provider_ref)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if recorded == 0 {
            metrics::counter!("provider_idempotent_repeats_total").increment(1);
        }
        if timeout {
            metrics::counter!("provider_timeouts_total").increment(1);
            return Err(timed_out());
        }
        let answer = ProviderAnswer::Approved { provider_ref };
        let later_callbacks = match (duplicate, contradicting) {
            (false, _) => Vec::new(),
            (true, false) => vec![answer.clone()],
            (true, true) => vec![ProviderAnswer::Declined {
                reason: "callback: declined".into(),
            }],
        };
        Ok(ProviderResponse {
            answer,
            later_callbacks,
        })
    }
}

/// The provider's ledger of `order_id`, in the order it was written.
pub async fn ledger(pool: &PgPool, order_id: OrderId) -> Result<Vec<LedgerEntry>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT order_id, operation, amount_minor, currency, provider_ref FROM provider_ledger
         WHERE order_id = $1 ORDER BY id",
    )
    .bind(order_id.as_uuid())
    .fetch_all(pool)
    .await?)
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
    ctx: Context,
    provider: Provider,
    config: PaymentsConfig,
}

/// The payments service's handler on the consumer runtime.
pub type PaymentsHandler = Shell<Payments>;

/// What a payment decision asks to carry out.
#[derive(Debug, Clone, PartialEq)]
pub enum Act {
    /// Call the provider, then record what it did.
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
    pub fn new(ctx: Context, provider: Provider, config: PaymentsConfig) -> Self {
        Self {
            ctx,
            provider,
            config,
        }
    }
}

impl Responder for Payments {
    const SERVICE: Service = Service::Payments;
    type Request = PaymentRequest;
    type State = Loaded<PaymentState>;
    type Act = Act;
    type Reply = PaymentEvent;

    fn context(&self) -> &Context {
        &self.ctx
    }

    async fn load(
        &self,
        tx: &mut PgConnection,
        order_id: OrderId,
    ) -> Result<Loaded<PaymentState>, ServiceError> {
        Ok(self.ctx.store.load_with(tx, &order_id.to_string()).await?)
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
    /// [`ServiceError::ProviderTimeout`] (transient); [`ServiceError::NotApplicable`] for a refund past the
    /// captured amount; [`ServiceError::Unrecorded`] when the provider acted and recording it failed.
    async fn carry_out(
        &self,
        tx: &mut PgConnection,
        order_id: OrderId,
        loaded: Loaded<PaymentState>,
        act: Act,
        metadata: &Metadata,
    ) -> Result<(), ServiceError> {
        match act {
            Act::Call(forward) => self.forward(tx, &loaded, order_id, forward, metadata).await,
            Act::RepeatAuthorized { payment_id, amount } => {
                let reply = PaymentEvent::Authorized {
                    payment_id,
                    order_id,
                    amount,
                    provider_ref: self.provider_ref(tx, order_id).await?,
                };
                self.ctx.reply(tx, Service::Payments, reply, metadata).await
            }
        }
    }
}

impl Payments {
    /// Calls the provider as `forward` says and records what it did.
    async fn forward(
        &self,
        tx: &mut PgConnection,
        loaded: &Loaded<PaymentState>,
        order_id: OrderId,
        forward: Forward,
        metadata: &Metadata,
    ) -> Result<(), ServiceError> {
        let Forward {
            operation,
            amount,
            key,
            then,
        } = forward;
        let response = self
            .provider
            .call(operation, order_id, amount, &key)
            .await?;
        let command = match then {
            Then::Record(command) => command,
            Then::AuthorizeOrDecline => {
                let payment_id = PaymentId::new();
                match response.answer.clone() {
                    ProviderAnswer::Approved { provider_ref } => PaymentCommand::Authorize {
                        payment_id,
                        order_id,
                        amount,
                        provider_ref,
                    },
                    ProviderAnswer::Declined { reason } => PaymentCommand::Decline {
                        payment_id,
                        order_id,
                        amount,
                        reason,
                    },
                }
            }
        };
        let effect = Effect::new(operation, order_id, amount, &response);
        self.record_effect(tx, loaded, command, effect, metadata)
            .await
    }

    /// Records what the provider did: executes `command` on the payment, appends its events, updates the
    /// projection and keeps the operation with the provider's reference (reconciliation matches the two
    /// books on it), noting a callback that contradicted the answer. The provider has acted already, so any
    /// failure here is [`ServiceError::Unrecorded`], retried and never dead-lettered.
    async fn record_effect(
        &self,
        tx: &mut PgConnection,
        loaded: &Loaded<PaymentState>,
        command: PaymentCommand,
        effect: Effect<'_>,
        metadata: &Metadata,
    ) -> Result<(), ServiceError> {
        let order_id = effect.order_id;
        let recorded = async {
            let (after, events) = loaded.state.execute(command)?;
            let id = order_id.to_string();
            self.record(tx, &id, loaded.version, &after, &events, metadata)
                .await?;
            self.keep_operation(tx, &effect).await
        };
        recorded.await.map_err(|source| ServiceError::Unrecorded {
            operation: effect.operation.name(),
            order_id: order_id.to_string(),
            source: Box::new(source),
        })
    }

    /// Keeps an approved operation with its provider reference; a later callback that agrees is a
    /// duplicate, one that contradicts is noted beside it for reconciliation.
    async fn keep_operation(
        &self,
        tx: &mut PgConnection,
        effect: &Effect<'_>,
    ) -> Result<(), ServiceError> {
        let order_id = effect.order_id;
        let ProviderAnswer::Approved { provider_ref } = &effect.response.answer else {
            return Ok(());
        };
        let mut conflict = None;
        for callback in &effect.response.later_callbacks {
            if *callback == effect.response.answer {
                metrics::counter!("payments_duplicate_callbacks_total").increment(1);
                tracing::info!(%order_id, "duplicate provider callback ignored");
            } else {
                metrics::counter!("payments_contradicting_callbacks_total").increment(1);
                tracing::error!(%order_id, operation = effect.operation.name(), ?callback,
                    "a provider callback contradicts its answer; kept for reconciliation");
                conflict = Some(match callback {
                    ProviderAnswer::Approved { provider_ref } => {
                        format!("approved as {provider_ref}")
                    }
                    ProviderAnswer::Declined { reason } => format!("declined: {reason}"),
                });
            }
        }
        sqlx::query(
            "INSERT INTO payment_operations
                 (provider_ref, order_id, operation, amount_minor, currency, callback_conflict)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (provider_ref) DO NOTHING",
        )
        .bind(provider_ref)
        .bind(order_id.as_uuid())
        .bind(effect.operation.name())
        .bind(effect.amount.minor())
        .bind(effect.amount.currency().code())
        .bind(conflict)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    /// Appends `events` to the order's payment stream (which replies on `payments.events`) and updates the
    /// projection to `after`.
    async fn record(
        &self,
        tx: &mut PgConnection,
        id: &str,
        version: i64,
        after: &PaymentState,
        events: &[PaymentEvent],
        metadata: &Metadata,
    ) -> Result<(), ServiceError> {
        self.ctx
            .store
            .append::<PaymentState>(tx, id, version, events, metadata)
            .await?;
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

    async fn provider_ref(
        &self,
        tx: &mut PgConnection,
        order_id: OrderId,
    ) -> Result<String, ServiceError> {
        let found: Option<Option<String>> =
            sqlx::query_scalar("SELECT provider_ref FROM payments WHERE order_id = $1")
                .bind(order_id.as_uuid())
                .fetch_optional(&mut *tx)
                .await?;
        Ok(found
            .flatten()
            .unwrap_or_else(|| format!("psp-authorize-{order_id}")))
    }
}

/// What the provider did, to be recorded.
struct Effect<'a> {
    operation: Operation,
    order_id: OrderId,
    amount: Money,
    response: &'a ProviderResponse,
}

impl<'a> Effect<'a> {
    const fn new(
        operation: Operation,
        order_id: OrderId,
        amount: Money,
        response: &'a ProviderResponse,
    ) -> Self {
        Self {
            operation,
            order_id,
            amount,
            response,
        }
    }
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
