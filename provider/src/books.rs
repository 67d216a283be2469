//! The provider's books and how it decides a request.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use domain::simulation::draw;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    Amount, Operation, OperationResult, Outcome, ProviderConfig, ProviderError, RESULT_KIND,
};

/// Salt of the per-order decline decision.
const DECLINE: u64 = 0x00DE_C11E;

/// What became of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decided {
    /// A new request, decided and booked; its result goes out as a notification.
    New(OperationResult),
    /// A repeat of an idempotency key: the result decided the first time.
    Repeat(OperationResult),
    /// The call timed out: the caller cannot know whether the operation went through.
    TimedOut,
    /// The key names another request (another order or amount): refused, nothing booked; says why.
    KeyReused(String),
}

/// The faults drawn for one new request.
#[derive(Clone, Copy, Debug)]
struct Faults {
    timeout: bool,
    went_through: bool,
    duplicate: bool,
    lost: bool,
}

/// The provider: its books on `pool`, and the knobs of its behaviour.
#[derive(Debug)]
pub struct Books {
    pool: PgPool,
    config: ProviderConfig,
    rng: Mutex<StdRng>,
}

impl Books {
    /// A provider keeping its books in `pool`.
    #[must_use]
    pub fn new(pool: PgPool, config: ProviderConfig) -> Self {
        let rng = Mutex::new(StdRng::seed_from_u64(config.seed));
        Self { pool, config, rng }
    }

    /// Where its books are.
    #[must_use]
    pub const fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Decides `operation` of `amount` for `order_id`, idempotently on `key`.
    ///
    /// # Errors
    /// A database error; the request is then not decided.
    pub async fn request(
        &self,
        operation: Operation,
        order_id: Uuid,
        amount: &Amount,
        key: &str,
    ) -> Result<Decided, ProviderError> {
        tokio::time::sleep(self.config.latency).await;
        let faults = self.faults();
        let timed_out = || {
            metrics::counter!("provider_timeouts_total").increment(1);
            Ok(Decided::TimedOut)
        };
        if faults.timeout && !faults.went_through {
            return timed_out();
        }
        let decided = self
            .decide(operation, order_id, amount, key, faults)
            .await?;
        match decided {
            // A refused request was never taken; a repeat moves nothing, and its answer can be lost too.
            Decided::KeyReused(_) => Ok(decided),
            _ if faults.timeout => timed_out(),
            _ => Ok(decided),
        }
    }

    fn faults(&self) -> Faults {
        let config = &self.config;
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        Faults {
            timeout: rng.random::<f64>() < config.timeout_rate,
            went_through: rng.random::<f64>() < config.charge_before_timeout,
            duplicate: rng.random::<f64>() < config.duplicate_notification_rate,
            lost: rng.random::<f64>() < config.lost_notification_rate,
        }
    }

    /// Decides a request in one transaction: the key's earlier result if it has one, else a new decision,
    /// booked with its money movement and its notification.
    async fn decide(
        &self,
        operation: Operation,
        order_id: Uuid,
        amount: &Amount,
        key: &str,
        faults: Faults,
    ) -> Result<Decided, ProviderError> {
        let mut tx = self.pool.begin().await?;
        // One decision at a time per order: a capture is checked against the authorization, a refund against
        // the captures. Its own statement, so that the reads after it see what the last holder committed.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))")
            .bind(order_id)
            .execute(&mut *tx)
            .await?;
        let standing: Standing = sqlx::query_as(
            "SELECT r.order_id AS earlier_order, r.amount_minor AS earlier_amount,
                    r.currency AS earlier_currency, r.reference, r.outcome, r.reason,
                    l.authorized, l.captured, l.refunded, l.voided
             FROM (SELECT COALESCE(sum(amount_minor) FILTER (WHERE operation = 'authorize'), 0)::bigint
                              AS authorized,
                          COALESCE(sum(amount_minor) FILTER (WHERE operation = 'capture'), 0)::bigint
                              AS captured,
                          COALESCE(sum(amount_minor) FILTER (WHERE operation = 'refund'), 0)::bigint
                              AS refunded,
                          bool_or(operation = 'void') IS TRUE AS voided
                   FROM provider_ledger WHERE order_id = $1) l
             LEFT JOIN provider_requests r ON r.operation = $2 AND r.idempotency_key = $3",
        )
        .bind(order_id)
        .bind(operation.name())
        .bind(key)
        .fetch_one(&mut *tx)
        .await?;
        if let Some(earlier) = standing.earlier(operation) {
            let same = (earlier.order_id, earlier.amount_minor, &earlier.currency)
                == (order_id, amount.amount_minor, &amount.currency);
            if !same {
                return Ok(Decided::KeyReused(format!(
                    "the Idempotency-Key {key:?} was used for the {operation} of {} {} for order {}; \
                     a new request needs a new key",
                    earlier.amount_minor, earlier.currency, earlier.order_id
                )));
            }
            metrics::counter!("provider_repeats_total").increment(1);
            return Ok(Decided::Repeat(earlier));
        }
        let refusal = match operation {
            Operation::Authorize => (draw(self.config.seed, DECLINE, order_id)
                < self.config.decline_rate)
                .then(|| "insufficient funds".to_owned()),
            _ => refusal(operation, amount.amount_minor, &standing),
        };
        let result = OperationResult {
            order_id,
            operation,
            amount_minor: amount.amount_minor,
            currency: amount.currency.clone(),
            reference: format!("psp-{operation}-{key}"),
            outcome: if refusal.is_some() {
                Outcome::Declined
            } else {
                Outcome::Approved
            },
            reason: refusal,
        };
        // The request, and when approved its money movement, in one statement.
        sqlx::query(
            "WITH request AS (
                 INSERT INTO provider_requests (operation, idempotency_key, order_id, amount_minor,
                                                currency, reference, outcome, reason)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 RETURNING reference)
             INSERT INTO provider_ledger (order_id, operation, amount_minor, currency, provider_ref)
             SELECT $3, $1, $4, $5, reference FROM request WHERE $7 = 'approved'",
        )
        .bind(operation.name())
        .bind(key)
        .bind(order_id)
        .bind(result.amount_minor)
        .bind(&result.currency)
        .bind(&result.reference)
        .bind(result.outcome.name())
        .bind(&result.reason)
        .execute(&mut *tx)
        .await?;
        self.send(&mut tx, &result, faults).await?;
        tx.commit().await?;
        metrics::counter!("provider_operations_total", "operation" => operation.name(),
            "outcome" => result.outcome.name())
        .increment(1);
        Ok(Decided::New(result))
    }

    /// Writes the result's notification (twice, or not at all, as the faults say).
    async fn send(
        &self,
        tx: &mut PgConnection,
        result: &OperationResult,
        faults: Faults,
    ) -> Result<(), ProviderError> {
        if faults.lost {
            metrics::counter!("provider_notifications_lost_total").increment(1);
            tracing::info!(reference = %result.reference, "result not notified (simulated loss)");
            return Ok(());
        }
        let body = serde_json::to_value(result)
            .map_err(|e| ProviderError::Database(sqlx::Error::Encode(Box::new(e))))?;
        let subscriber = &self.config.callback.subscriber;
        let copies = if faults.duplicate { 2 } else { 1 };
        for _ in 0..copies {
            notify::notify(tx, subscriber, RESULT_KIND, &body).await?;
        }
        Ok(())
    }
}

/// An order's standing in the books, and the earlier result of a request's key, read in one statement.
#[derive(sqlx::FromRow)]
struct Standing {
    earlier_order: Option<Uuid>,
    earlier_amount: Option<i64>,
    earlier_currency: Option<String>,
    reference: Option<String>,
    outcome: Option<String>,
    reason: Option<String>,
    authorized: i64,
    captured: i64,
    refunded: i64,
    voided: bool,
}

impl Standing {
    /// The result decided earlier for the key, if any.
    fn earlier(&self, operation: Operation) -> Option<OperationResult> {
        Some(OperationResult {
            order_id: self.earlier_order?,
            operation,
            amount_minor: self.earlier_amount?,
            currency: self.earlier_currency.clone()?,
            reference: self.reference.clone()?,
            outcome: outcome_named(self.outcome.as_deref()?),
            reason: self.reason.clone(),
        })
    }
}

/// Why the provider refuses a capture, void or refund of `amount` on a payment standing as `standing`, if it
/// does.
fn refusal(operation: Operation, amount: i64, standing: &Standing) -> Option<String> {
    let Standing {
        authorized,
        captured,
        refunded,
        voided,
        ..
    } = *standing;
    match operation {
        Operation::Authorize => None,
        Operation::Capture if voided => Some("the authorization was voided".into()),
        Operation::Capture if authorized == 0 => Some("no authorization to capture".into()),
        Operation::Capture if captured > 0 => Some("captured already".into()),
        Operation::Capture if amount > authorized => Some(format!(
            "capture of {amount} exceeds the authorized {authorized}"
        )),
        Operation::Void if captured > 0 => Some("captured already: refund instead".into()),
        Operation::Refund if refunded + amount > captured => Some(format!(
            "refund of {amount} exceeds what is left of the captured {captured} (refunded {refunded})"
        )),
        Operation::Capture | Operation::Void | Operation::Refund => None,
    }
}

/// One payment as the provider sees it (`GET /v1/payments/{order_id}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentView {
    pub order_id: Uuid,
    pub authorized_minor: i64,
    pub captured_minor: i64,
    pub refunded_minor: i64,
    pub voided: bool,
    /// Every request decided for it, oldest first.
    pub operations: Vec<OperationView>,
}

/// A decided request, as [`PaymentView`] lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationView {
    #[serde(flatten)]
    pub result: OperationResult,
    pub at: DateTime<Utc>,
}

impl PaymentView {
    /// The result of the operation with `reference`, if the payment has it.
    #[must_use]
    pub fn result(&self, reference: &str) -> Option<&OperationResult> {
        self.operations
            .iter()
            .map(|op| &op.result)
            .find(|result| result.reference == reference)
    }
}

impl Books {
    /// The payment of `order_id`, if the provider was ever asked about it.
    ///
    /// # Errors
    /// A database error.
    pub async fn payment(&self, order_id: Uuid) -> Result<Option<PaymentView>, sqlx::Error> {
        let rows: Vec<RequestRow> = sqlx::query_as(
            "SELECT operation, amount_minor, currency, reference, outcome, reason, created_at
             FROM provider_requests WHERE order_id = $1 ORDER BY created_at, reference",
        )
        .bind(order_id)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let operations: Vec<OperationView> = rows
            .into_iter()
            .filter_map(|row| {
                Some(OperationView {
                    result: OperationResult {
                        order_id,
                        operation: row.operation.parse().ok()?,
                        amount_minor: row.amount_minor,
                        currency: row.currency,
                        reference: row.reference,
                        outcome: outcome_named(&row.outcome),
                        reason: row.reason,
                    },
                    at: row.created_at,
                })
            })
            .collect();
        let sum = |operation: Operation| {
            operations
                .iter()
                .map(|op| &op.result)
                .filter(|r| r.operation == operation && r.outcome == Outcome::Approved)
                .map(|r| r.amount_minor)
                .sum()
        };
        Ok(Some(PaymentView {
            order_id,
            authorized_minor: sum(Operation::Authorize),
            captured_minor: sum(Operation::Capture),
            refunded_minor: sum(Operation::Refund),
            voided: operations.iter().any(|op| {
                op.result.operation == Operation::Void && op.result.outcome == Outcome::Approved
            }),
            operations,
        }))
    }
}

/// A row of `provider_requests`.
#[derive(sqlx::FromRow)]
struct RequestRow {
    operation: String,
    amount_minor: i64,
    currency: String,
    reference: String,
    outcome: String,
    reason: Option<String>,
    created_at: DateTime<Utc>,
}

/// The outcome the books name `name`.
fn outcome_named(name: &str) -> Outcome {
    if name == Outcome::Approved.name() {
        Outcome::Approved
    } else {
        Outcome::Declined
    }
}

/// The settlement statement of [`from`, `to`): a CSV header, then one line per money movement (approved
/// operation) in the order it was booked: reference, order id, operation, amount in minor units, currency,
/// booked at (RFC 3339).
///
/// # Errors
/// A database error.
pub async fn statement(
    pool: &PgPool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<String, sqlx::Error> {
    let rows: Vec<(String, Uuid, String, i64, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT provider_ref, order_id, operation, amount_minor, currency, created_at
         FROM provider_ledger WHERE created_at >= $1 AND created_at < $2 ORDER BY id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    let mut csv = String::from("reference,order_id,operation,amount_minor,currency,booked_at\n");
    for (reference, order_id, operation, amount, currency, at) in rows {
        csv.push_str(&format!(
            "{reference},{order_id},{operation},{amount},{currency},{}\n",
            at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        ));
    }
    Ok(csv)
}
