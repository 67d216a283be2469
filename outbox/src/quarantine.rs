//! What operators see and do about the outbox: its backlog, and records the broker refused for good.
//!
//! A quarantined record holds back the later records of its topic and key (per-key order comes first).
//! [`retry`] puts it back in the outbox with its original id, so it is published before the records that
//! waited behind it; [`discard`] deletes it for good and lets them go.

use sqlx::PgPool;

use crate::OutboxError;

/// A record in quarantine.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct Quarantined {
    pub id: i64,
    pub topic: String,
    pub key: String,
    pub size: i32,
    pub attempts: i32,
    pub reason: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub quarantined_at: chrono::DateTime<chrono::Utc>,
    /// Records of the same topic and key waiting behind this one.
    pub waiting: i64,
}

/// The outbox's backlog.
#[derive(Clone, Debug, PartialEq)]
pub struct Backlog {
    /// Records not yet published (quarantined ones excluded).
    pub records: i64,
    /// Age of the oldest of them.
    pub oldest_age: Option<std::time::Duration>,
    /// Records in quarantine.
    pub quarantined: i64,
}

/// Counts the backlog and reports it as gauges `outbox_backlog_records`, `outbox_oldest_age_seconds` and
/// `outbox_quarantined_records`.
pub async fn backlog(pool: &PgPool) -> Result<Backlog, OutboxError> {
    let (records, oldest_seconds, quarantined): (i64, Option<f64>, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM outbox),
                (SELECT extract(epoch FROM clock_timestamp() - min(created_at))::float8 FROM outbox),
                (SELECT count(*) FROM outbox_quarantine)",
    )
    .fetch_one(pool)
    .await?;
    let oldest_age = oldest_seconds.map(|s| std::time::Duration::from_secs_f64(s.max(0.0)));
    metrics::gauge!("outbox_backlog_records").set(records as f64);
    metrics::gauge!("outbox_oldest_age_seconds").set(oldest_seconds.unwrap_or(0.0));
    metrics::gauge!("outbox_quarantined_records").set(quarantined as f64);
    Ok(Backlog {
        records,
        oldest_age,
        quarantined,
    })
}

/// Every quarantined record, oldest first.
pub async fn list(pool: &PgPool) -> Result<Vec<Quarantined>, OutboxError> {
    Ok(sqlx::query_as(
        "SELECT q.id, q.topic, q.key, length(q.payload) AS size, q.attempts, q.reason, q.created_at,
                q.quarantined_at,
                (SELECT count(*) FROM outbox o WHERE o.topic = q.topic AND o.key = q.key) AS waiting
         FROM outbox_quarantine q ORDER BY q.id",
    )
    .fetch_all(pool)
    .await?)
}

/// Puts quarantined record `id` back in the outbox with its original id and no attempts. Returns false when
/// there is no such record.
pub async fn retry(pool: &PgPool, id: i64) -> Result<bool, OutboxError> {
    let moved = sqlx::query(
        "WITH moved AS (DELETE FROM outbox_quarantine WHERE id = $1 RETURNING *)
         INSERT INTO outbox (id, topic, key, payload, headers, created_at, attempts, last_error)
         SELECT id, topic, key, payload, headers, created_at, 0, reason FROM moved",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(moved.rows_affected() == 1)
}

/// Deletes quarantined record `id` for good. Returns false when there is no such record.
pub async fn discard(pool: &PgPool, id: i64) -> Result<bool, OutboxError> {
    let deleted = sqlx::query("DELETE FROM outbox_quarantine WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(deleted.rows_affected() == 1)
}
