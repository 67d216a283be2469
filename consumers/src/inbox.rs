//! The inbox: which events a consumer group has already applied.

use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Records that `group` applies `event_id`, on the caller's transaction. Returns false when the group has
/// applied it before: the caller must then skip the effect (and let its transaction go).
pub async fn claim(
    conn: &mut PgConnection,
    group: &str,
    event_id: Uuid,
    topic: &str,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO inbox (consumer_group, event_id, topic) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(group)
    .bind(event_id)
    .bind(topic)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Deletes inbox rows of `group` older than `horizon` and returns how many.
///
/// The horizon must exceed the longest window over which an event can be delivered again: the topic's
/// retention if operators may replay from the beginning, else the longest replay operators run. An event
/// redelivered after its row was pruned is applied a second time.
pub async fn prune(pool: &PgPool, group: &str, horizon: Duration) -> Result<u64, sqlx::Error> {
    let deleted = sqlx::query(
        "DELETE FROM inbox WHERE consumer_group = $1 AND processed_at < now() - $2::float8 * interval '1 second'",
    )
    .bind(group)
    .bind(horizon.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(deleted.rows_affected())
}
