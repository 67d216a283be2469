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
        // A repeat moves nothing; its answer can time out all the same.
        let decided = match find(&self.pool, operation, key).await? {
            Some(result) => Decided::Repeat(result),
            None => self.book(operation, order_id, amount, key, faults).await?,
        };
        if let Decided::Repeat(_) = decided {
            metrics::counter!("provider_repeats_total").increment(1);
        }
        if faults.timeout {
            return timed_out();
        }
        Ok(decided)
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

    /// Decides a new request and writes it, its money movement and its notification in one transaction.
    async fn book(
        &self,
        operation: Operation,
        order_id: Uuid,
        amount: &Amount,
        key: &str,
        faults: Faults,
    ) -> Result<Decided, ProviderError> {
        let mut tx = self.pool.begin().await?;
        // One decision at a time per order: a capture is checked against the authorization, a refund against
        // the captures.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))")
            .bind(order_id)
            .execute(&mut *tx)
            .await?;
        if let Some(result) = find(&mut *tx, operation, key).await? {
            return Ok(Decided::Repeat(result));
        }
        let refusal = match operation {
            Operation::Authorize => (draw(self.config.seed, DECLINE, order_id)
                < self.config.decline_rate)
                .then(|| "insufficient funds".to_owned()),
            _ => refusal(&mut tx, operation, order_id, amount).await?,
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
        sqlx::query(
            "INSERT INTO provider_requests (operation, idempotency_key, order_id, amount_minor, currency,
                                            reference, outcome, reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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
        if result.outcome == Outcome::Approved {
            sqlx::query(
                "INSERT INTO provider_ledger (order_id, operation, amount_minor, currency, provider_ref)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(order_id)
            .bind(operation.name())
            .bind(result.amount_minor)
            .bind(&result.currency)
            .bind(&result.reference)
            .execute(&mut *tx)
            .await?;
        }
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

/// Why the provider refuses `operation` on the order's payment as its books stand, if it does.
async fn refusal(
    tx: &mut PgConnection,
    operation: Operation,
    order_id: Uuid,
    amount: &Amount,
) -> Result<Option<String>, sqlx::Error> {
    let (authorized, captured, refunded, voided): (i64, i64, i64, bool) = sqlx::query_as(
        "SELECT COALESCE(sum(amount_minor) FILTER (WHERE operation = 'authorize'), 0)::bigint,
                COALESCE(sum(amount_minor) FILTER (WHERE operation = 'capture'), 0)::bigint,
                COALESCE(sum(amount_minor) FILTER (WHERE operation = 'refund'), 0)::bigint,
                bool_or(operation = 'void') IS TRUE
         FROM provider_ledger WHERE order_id = $1",
    )
    .bind(order_id)
    .fetch_one(&mut *tx)
    .await?;
    Ok(match operation {
        Operation::Authorize => None,
        Operation::Capture if voided => Some("the authorization was voided".into()),
        Operation::Capture if authorized == 0 => Some("no authorization to capture".into()),
        Operation::Capture if captured > 0 => Some("captured already".into()),
        Operation::Capture if amount.amount_minor > authorized => Some(format!(
            "capture of {} exceeds the authorized {authorized}",
            amount.amount_minor
        )),
        Operation::Void if captured > 0 => Some("captured already: refund instead".into()),
        Operation::Refund if refunded + amount.amount_minor > captured => Some(format!(
            "refund of {} exceeds what is left of the captured {captured} (refunded {refunded})",
            amount.amount_minor
        )),
        Operation::Capture | Operation::Void | Operation::Refund => None,
    })
}

/// The result decided for (`operation`, `key`), if any.
async fn find(
    executor: impl sqlx::PgExecutor<'_>,
    operation: Operation,
    key: &str,
) -> Result<Option<OperationResult>, sqlx::Error> {
    let row: Option<(Uuid, i64, String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT order_id, amount_minor, currency, reference, outcome, reason FROM provider_requests
         WHERE operation = $1 AND idempotency_key = $2",
    )
    .bind(operation.name())
    .bind(key)
    .fetch_optional(executor)
    .await?;
    Ok(row.map(
        |(order_id, amount_minor, currency, reference, outcome, reason)| OperationResult {
            order_id,
            operation,
            amount_minor,
            currency,
            reference,
            outcome: outcome_named(&outcome),
            reason,
        },
    ))
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
