//! Read-only views of the saga store, for the demo's summary, status pages and tests.

use chrono::{DateTime, Utc};
use domain::OrderId;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::SagaError;
use crate::step::Step;
use crate::store::load_saga;

/// How many sagas are where.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SagaCounts {
    /// Every saga that started.
    pub total: i64,
    /// Not ended yet.
    pub running: i64,
    /// Ended `completed`.
    pub completed: i64,
    /// Ended `compensated`.
    pub compensated: i64,
    /// Ended `needs_attention` (escalated).
    pub needs_attention: i64,
    /// Running with no timer: nothing would ever move them. Always 0 unless something is broken.
    pub stuck: i64,
    /// Sagas that started compensating (whatever their end).
    pub compensations: i64,
}

impl SagaCounts {
    /// Whether every saga has ended.
    #[must_use]
    pub const fn all_ended(&self) -> bool {
        self.running == 0
    }
}

/// Counts sagas by outcome, the stuck ones and those that compensated.
///
/// # Errors
/// Database errors.
pub async fn counts(pool: &PgPool) -> Result<SagaCounts, SagaError> {
    let (total, running, completed, compensated, needs_attention, stuck): (
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
    ) = sqlx::query_as(
        "SELECT count(*),
                count(*) FILTER (WHERE s.outcome IS NULL),
                count(*) FILTER (WHERE s.outcome = 'completed'),
                count(*) FILTER (WHERE s.outcome = 'compensated'),
                count(*) FILTER (WHERE s.outcome = 'needs_attention'),
                count(*) FILTER (WHERE s.outcome IS NULL
                                   AND NOT EXISTS (SELECT 1 FROM saga_timers t WHERE t.order_id = s.order_id))
         FROM sagas s",
    )
    .fetch_one(pool)
    .await?;
    let compensations: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT order_id) FROM saga_events WHERE event_type = 'CompensationStarted'",
    )
    .fetch_one(pool)
    .await?;
    Ok(SagaCounts {
        total,
        running,
        completed,
        compensated,
        needs_attention,
        stuck,
        compensations,
    })
}

/// Counts of the sagas that compensate or compensated, by the reason their order is cancelled with
/// (`OutOfStock`, `PaymentDeclined`, `DeliveryFailed`, `Timeout`), most frequent first.
///
/// # Errors
/// Database errors.
pub async fn cancel_reasons(pool: &PgPool) -> Result<Vec<(String, i64)>, SagaError> {
    Ok(sqlx::query_as(
        "SELECT cancel_reason, count(*) FROM sagas WHERE cancel_reason IS NOT NULL
         GROUP BY cancel_reason ORDER BY count(*) DESC, cancel_reason",
    )
    .fetch_all(pool)
    .await?)
}

/// When one saga started and ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SagaTimes {
    /// The saga's order.
    pub order_id: Uuid,
    /// Its outcome (`completed`, `compensated`, `needs_attention`).
    pub outcome: String,
    /// When its first transition committed.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub ended_at: DateTime<Utc>,
}

impl SagaTimes {
    /// How long it ran.
    #[must_use]
    pub fn duration(&self) -> chrono::TimeDelta {
        self.ended_at - self.started_at
    }
}

/// Start and end of every ended saga, for latency percentiles.
///
/// # Errors
/// Database errors.
pub async fn ended_times(pool: &PgPool) -> Result<Vec<SagaTimes>, SagaError> {
    let rows: Vec<(Uuid, String, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT order_id, outcome, started_at, ended_at FROM sagas
         WHERE ended_at IS NOT NULL ORDER BY started_at",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(order_id, outcome, started_at, ended_at)| SagaTimes {
            order_id,
            outcome,
            started_at,
            ended_at,
        })
        .collect())
}

/// One saga's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SagaRow {
    /// Its stream version.
    pub version: i64,
    /// Its state name.
    pub state: String,
    /// `completed`, `compensated` or `needs_attention` once ended.
    pub outcome: Option<String>,
    /// The reason its order is cancelled with, once it compensates.
    pub cancel_reason: Option<String>,
    /// Its timer, as `(step, attempt, kind)`, if it has one.
    pub timer: Option<(String, i32, String)>,
}

/// The row of the saga of `order_id`, if it started.
///
/// # Errors
/// Database errors.
pub async fn saga(pool: &PgPool, order_id: OrderId) -> Result<Option<SagaRow>, SagaError> {
    type Row = (
        i64,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<i32>,
        Option<String>,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT s.version, s.state, s.outcome, s.cancel_reason, t.step, t.attempt, t.kind
         FROM sagas s LEFT JOIN saga_timers t USING (order_id)
         WHERE s.order_id = $1",
    )
    .bind(Uuid::from(order_id))
    .fetch_optional(pool)
    .await?;
    Ok(row.map(
        |(version, state, outcome, cancel_reason, step, attempt, kind)| SagaRow {
            version,
            state,
            outcome,
            cancel_reason,
            timer: match (step, attempt, kind) {
                (Some(step), Some(attempt), Some(kind)) => Some((step, attempt, kind)),
                _ => None,
            },
        },
    ))
}

/// The orders whose sagas need attention (escalated), oldest first, with the state row's update time.
///
/// # Errors
/// Database errors.
pub async fn needing_attention(pool: &PgPool) -> Result<Vec<(Uuid, DateTime<Utc>)>, SagaError> {
    Ok(sqlx::query_as(
        "SELECT order_id, updated_at FROM sagas WHERE outcome = 'needs_attention' ORDER BY updated_at",
    )
    .fetch_all(pool)
    .await?)
}

/// One saga as a status page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SagaView {
    /// Its state's name, e.g. `AuthorizingPayment` or `Completed`.
    pub state: String,
    /// The step it is on and the attempt; `None` once ended.
    pub step: Option<(Step, u32)>,
    /// `completed`, `compensated` or `needs_attention` once ended.
    pub outcome: Option<String>,
    /// When its first transition committed.
    pub started_at: DateTime<Utc>,
    /// When its last transition committed.
    pub updated_at: DateTime<Utc>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
}

/// A `sagas` row.
#[derive(sqlx::FromRow)]
struct SagaTimesRow {
    state: String,
    outcome: Option<String>,
    started_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
}

/// The saga of `order_id`, or `None` before the orchestrator took the order up.
///
/// # Errors
/// Database errors; [`SagaError::Corrupt`] for a stored event that does not read back.
pub async fn saga_of(pool: &PgPool, order_id: OrderId) -> Result<Option<SagaView>, SagaError> {
    let mut conn = pool.acquire().await?;
    let row: Option<SagaTimesRow> = sqlx::query_as(
        "SELECT state, outcome, started_at, updated_at, ended_at FROM sagas WHERE order_id = $1",
    )
    .bind(order_id.as_uuid())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(SagaTimesRow {
        state,
        outcome,
        started_at,
        updated_at,
        ended_at,
    }) = row
    else {
        return Ok(None);
    };
    let step = load_saga(&mut conn, order_id).await?.state.current_step();
    Ok(Some(SagaView {
        state,
        step,
        outcome,
        started_at,
        updated_at,
        ended_at,
    }))
}
