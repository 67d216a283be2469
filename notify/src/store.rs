//! The notifications' tables: what senders write, what workers claim and settle, what operators read.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{AssertSqlSafe, PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use crate::NotifyError;

/// Where notifications go: a URL and the secret their requests are signed with.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow, Serialize)]
pub struct Subscriber {
    pub name: String,
    pub url: String,
    #[serde(skip)]
    pub secret: String,
    /// The kinds it receives from [`notify_kind`].
    pub kinds: Vec<String>,
}

/// A notification as operators see it.
#[derive(Clone, Debug, sqlx::FromRow, Serialize)]
pub struct Notification {
    pub id: Uuid,
    pub subscriber: String,
    pub kind: String,
    pub body: serde_json::Value,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// Adds `subscriber`, or changes its URL, secret and kinds.
///
/// # Errors
/// A database error.
pub async fn subscribe(pool: &PgPool, subscriber: &Subscriber) -> Result<(), NotifyError> {
    sqlx::query(
        "INSERT INTO notify_subscribers (name, url, secret, kinds) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO UPDATE SET url = $2, secret = $3, kinds = $4",
    )
    .bind(&subscriber.name)
    .bind(&subscriber.url)
    .bind(&subscriber.secret)
    .bind(&subscriber.kinds)
    .execute(pool)
    .await?;
    Ok(())
}

/// Writes a notification of `kind` to `subscriber` in the caller's transaction: it is sent once that
/// commits, and never if it rolls back. Returns its id, which the receiver sees in every attempt.
///
/// # Errors
/// [`NotifyError::UnknownSubscriber`], or a database error.
pub async fn notify(
    conn: &mut PgConnection,
    subscriber: &str,
    kind: &str,
    body: &serde_json::Value,
) -> Result<Uuid, NotifyError> {
    let id = Uuid::now_v7();
    sqlx::query("INSERT INTO notifications (id, subscriber, kind, body) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(subscriber)
        .bind(kind)
        .bind(body)
        .execute(conn)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                NotifyError::UnknownSubscriber(subscriber.to_owned())
            }
            _ => NotifyError::Database(e),
        })?;
    Ok(id)
}

/// Writes a notification of `kind` to every subscriber of that kind, in the caller's transaction (order
/// status webhooks). Returns how many were written.
///
/// # Errors
/// A database error.
pub async fn notify_kind(
    conn: &mut PgConnection,
    kind: &str,
    body: &serde_json::Value,
) -> Result<u64, NotifyError> {
    let written = sqlx::query(
        "INSERT INTO notifications (id, subscriber, kind, body)
         SELECT gen_random_uuid(), name, $1, $2 FROM notify_subscribers WHERE $1 = ANY (kinds)",
    )
    .bind(kind)
    .bind(body)
    .execute(conn)
    .await?;
    Ok(written.rows_affected())
}

/// A [`Notification`]'s columns.
const NOTIFICATION: &str = "SELECT id, subscriber, kind, body, status, attempts, next_attempt_at,
    last_error, created_at, delivered_at FROM notifications";

/// Notifications by status (all when `None`), newest first.
///
/// # Errors
/// A database error.
pub async fn list(
    executor: impl PgExecutor<'_>,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<Notification>, NotifyError> {
    let query = format!(
        "{NOTIFICATION} WHERE $1::text IS NULL OR status = $1 ORDER BY created_at DESC LIMIT $2"
    );
    Ok(sqlx::query_as(AssertSqlSafe(query))
        .bind(status)
        .bind(limit)
        .fetch_all(executor)
        .await?)
}

/// One notification.
///
/// # Errors
/// [`NotifyError::NotFound`], or a database error.
pub async fn show(executor: impl PgExecutor<'_>, id: Uuid) -> Result<Notification, NotifyError> {
    sqlx::query_as(AssertSqlSafe(format!("{NOTIFICATION} WHERE id = $1")))
        .bind(id)
        .fetch_optional(executor)
        .await?
        .ok_or(NotifyError::NotFound(id))
}

/// Sends a notification that was given up (or is waiting) again at once, with a fresh schedule.
///
/// # Errors
/// [`NotifyError::NotFound`], [`NotifyError::AlreadyDelivered`], or a database error.
pub async fn retry(pool: &PgPool, id: Uuid) -> Result<(), NotifyError> {
    if start_over(pool, id, "status <> 'delivered'").await? {
        return Ok(());
    }
    show(pool, id).await?;
    Err(NotifyError::AlreadyDelivered(id))
}

/// Sends a given-up notification again from a fresh schedule, in the caller's transaction (reconciliation's
/// repair). Returns whether it was given up.
///
/// # Errors
/// A database error.
pub async fn resend_given_up(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    start_over(conn, id, "status = 'given_up'").await
}

/// Puts notification `id` back to pending with no attempts, due now, when it is in a status `when` allows.
async fn start_over(
    executor: impl PgExecutor<'_>,
    id: Uuid,
    when: &'static str,
) -> Result<bool, sqlx::Error> {
    let query = format!(
        "UPDATE notifications SET status = 'pending', attempts = 0, next_attempt_at = now()
         WHERE id = $1 AND {when}"
    );
    let started = sqlx::query(AssertSqlSafe(query))
        .bind(id)
        .execute(executor)
        .await?;
    Ok(started.rows_affected() == 1)
}

/// How many notifications are in each status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub pending: i64,
    pub delivered: i64,
    pub given_up: i64,
}

/// How many notifications are in each status.
///
/// # Errors
/// A database error.
pub async fn counts(executor: impl PgExecutor<'_>) -> Result<Counts, NotifyError> {
    let (pending, delivered, given_up) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'pending'),
                count(*) FILTER (WHERE status = 'delivered'),
                count(*) FILTER (WHERE status = 'given_up')
         FROM notifications",
    )
    .fetch_one(executor)
    .await?;
    Ok(Counts {
        pending,
        delivered,
        given_up,
    })
}
