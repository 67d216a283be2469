//! The relay's statements, all on the leader's session.

use std::time::Duration;

use producers::headers::RecordHeaders;
use sqlx::PgConnection;

use super::flight::Key;
use crate::OutboxError;

/// One row of the outbox, as the relay reads it.
#[derive(sqlx::FromRow)]
pub(super) struct Row {
    pub id: i64,
    pub topic: String,
    pub key: String,
    pub payload: Vec<u8>,
    pub headers: sqlx::types::Json<RecordHeaders>,
    pub attempts: i32,
}

impl Row {
    pub fn key(&self) -> Key {
        (self.topic.clone(), self.key.clone())
    }
}

const FETCH: &str = "SELECT o.id, o.topic, o.key, o.payload, o.headers, o.attempts
    FROM outbox o
    WHERE o.id NOT IN (SELECT unnest($1::bigint[]))
      AND (o.topic, o.key) NOT IN (SELECT topic, key FROM outbox_quarantine)
      AND (o.topic, o.key) NOT IN (SELECT * FROM unnest($2::text[], $3::text[]))
    ORDER BY o.id
    LIMIT $4";

/// The oldest records, leaving out the `held` ids, records of the `held_back` keys and records waiting behind
/// a quarantined one of their key.
///
/// The filters are `NOT IN`, hashed sub-plans on a walk of the primary key that stops at the limit: the
/// planner does not turn them into a join, which could read and sort the whole backlog for each batch.
pub(super) async fn fetch(
    conn: &mut PgConnection,
    held: &[i64],
    held_back: &[Key],
    limit: usize,
) -> Result<Vec<Row>, OutboxError> {
    let (topics, keys): (Vec<&str>, Vec<&str>) = held_back
        .iter()
        .map(|(topic, key)| (topic.as_str(), key.as_str()))
        .unzip();
    let rows = sqlx::query_as::<_, Row>(FETCH)
        .bind(held)
        .bind(topics)
        .bind(keys)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(conn)
        .await?;
    Ok(rows)
}

/// Deletes the records the broker acknowledged.
pub(super) async fn delete(conn: &mut PgConnection, ids: &[i64]) -> Result<(), OutboxError> {
    sqlx::query("DELETE FROM outbox WHERE id = ANY($1)")
        .bind(ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// Has the server end the leader's session if the relay's host stops answering (TCP keepalives; the
/// defaults wait two hours), and bounds its statements.
pub(super) async fn configure_session(
    conn: &mut PgConnection,
    within: Duration,
) -> Result<(), OutboxError> {
    let seconds = within.as_secs().max(3);
    let probe_every = seconds / 3;
    let probe_every = probe_every.to_string();
    let (names, values): (Vec<&str>, Vec<String>) = [
        ("tcp_keepalives_idle", probe_every.clone()),
        ("tcp_keepalives_interval", probe_every),
        ("tcp_keepalives_count", "3".to_owned()),
        ("statement_timeout", within.as_millis().to_string()),
    ]
    .into_iter()
    .unzip();
    sqlx::query("SELECT set_config(name, value, false) FROM unnest($1::text[], $2::text[]) AS s(name, value)")
        .bind(names)
        .bind(values)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(super) async fn try_lock(conn: &mut PgConnection, key: i64) -> Result<bool, OutboxError> {
    Ok(sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(key)
        .fetch_one(conn)
        .await?)
}

/// Notes why a record could not be published this time, without using up one of its attempts.
pub(super) async fn note_transient_failure(
    conn: &mut PgConnection,
    id: i64,
    reason: &str,
) -> Result<(), OutboxError> {
    sqlx::query("UPDATE outbox SET last_error = $2 WHERE id = $1")
        .bind(id)
        .bind(reason)
        .execute(conn)
        .await?;
    Ok(())
}

/// Counts a refusal of a record.
pub(super) async fn record_failure(
    conn: &mut PgConnection,
    id: i64,
    reason: &str,
) -> Result<(), OutboxError> {
    sqlx::query("UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1")
        .bind(id)
        .bind(reason)
        .execute(conn)
        .await?;
    Ok(())
}

/// Moves a record out of tries to the quarantine.
pub(super) async fn quarantine(
    conn: &mut PgConnection,
    id: i64,
    attempts: i32,
    reason: &str,
) -> Result<(), OutboxError> {
    sqlx::query(
        "WITH moved AS (DELETE FROM outbox WHERE id = $1 RETURNING *)
         INSERT INTO outbox_quarantine (id, topic, key, payload, headers, created_at, attempts, reason)
         SELECT id, topic, key, payload, headers, created_at, $2, $3 FROM moved",
    )
    .bind(id)
    .bind(attempts)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use sqlx::AssertSqlSafe;

    use super::*;

    /// The read must walk the primary key and stop at the limit: a plan that joins and sorts reads the whole
    /// backlog for each batch (a quarter of a second with 200,000 records waiting).
    #[tokio::test]
    async fn reads_walk_the_primary_key_instead_of_sorting_the_backlog() {
        let db = testkit::TestDb::new().await;
        let mut conn = db.pool().acquire().await.unwrap();
        sqlx::query(
            "INSERT INTO outbox (topic, key, payload)
             SELECT 't', 'k' || n % 100, '\\x00' FROM generate_series(1, 20000) AS n",
        )
        .execute(&mut *conn)
        .await
        .unwrap();
        sqlx::query("ANALYZE outbox")
            .execute(&mut *conn)
            .await
            .unwrap();
        configure_session(&mut conn, Duration::from_secs(30))
            .await
            .unwrap();
        let held: Vec<i64> = (1..=5000).collect();
        let plan: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!("EXPLAIN {FETCH}")))
            .bind(&held)
            .bind(vec!["t"])
            .bind(vec!["k1"])
            .bind(2000_i64)
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        let plan = plan.join("\n");
        assert!(
            plan.contains("Index Scan using outbox_pkey") && !plan.contains("Sort"),
            "{plan}"
        );
    }
}
