//! The worker that sends notifications: claims the due ones, POSTs them signed, and settles each by its
//! answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::NotifyError;
use crate::schedule::Schedule;
use crate::signature::{self, ID_HEADER, SIGNATURE_HEADER};

/// The header naming a notification's kind.
pub const KIND_HEADER: &str = "orderflow-notification-kind";

/// Worker settings.
#[derive(Clone, Debug, PartialEq)]
pub struct NotifierConfig {
    /// When failed notifications are tried again, and how often before they are given up.
    pub schedule: Schedule,
    /// Notifications claimed at once; their requests run concurrently.
    pub batch: i64,
    /// How long a receiver may take to answer; past it the attempt failed.
    pub request_timeout: Duration,
    /// How often to look for due notifications when the last look found none.
    pub poll_interval: Duration,
    /// Whose notifications this worker sends.
    pub scope: Scope,
    /// A simulation knob, in [0, 1]: the share of acknowledgements treated as lost on the way back (the
    /// receiver applied the notification and answered 2xx; the worker tries again as if it had not heard).
    /// The simulated payment provider sets it; it is 0 everywhere else.
    pub lost_ack_rate: f64,
}

/// Whose notifications a worker sends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// Every subscriber's.
    #[default]
    All,
    /// Only these subscribers' (a sender with a worker of its own, such as the payment provider).
    Only(Vec<String>),
    /// Every subscriber's but these (those that have a worker of their own).
    AllBut(Vec<String>),
}

impl Scope {
    /// The subscribers to keep (`None`: any) and to leave out, as the claim binds them.
    fn filters(&self) -> (Option<&[String]>, &[String]) {
        match self {
            Self::All => (None, &[]),
            Self::Only(names) => (Some(names), &[]),
            Self::AllBut(names) => (None, names),
        }
    }
}

impl Default for NotifierConfig {
    fn default() -> Self {
        Self {
            schedule: Schedule::default(),
            batch: 32,
            request_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_secs(1),
            scope: Scope::All,
            lost_ack_rate: 0.0,
        }
    }
}

/// Counters of one worker.
#[derive(Debug, Default)]
pub struct NotifierStats {
    pub attempts: AtomicU64,
    pub delivered: AtomicU64,
    pub given_up: AtomicU64,
    /// Acknowledgements dropped by [`NotifierConfig::lost_ack_rate`].
    pub acks_lost: AtomicU64,
}

/// Sends notifications until they are acknowledged (a 2xx answer) or given up. Several workers may run
/// on one database: each claims different notifications (`FOR UPDATE SKIP LOCKED`), and a claim holds a
/// notification for the request's timeout and a margin, so one whose worker died is tried again after that.
pub struct Notifier {
    pool: PgPool,
    client: reqwest::Client,
    config: NotifierConfig,
    stats: Arc<NotifierStats>,
}

/// A notification claimed for an attempt.
#[derive(sqlx::FromRow)]
struct Claimed {
    id: Uuid,
    kind: String,
    body: serde_json::Value,
    attempts: i32,
    url: String,
    secret: String,
}

impl Notifier {
    /// A worker over `pool`.
    ///
    /// # Errors
    /// [`NotifyError::Client`] if the HTTP client cannot be built.
    pub fn new(pool: PgPool, config: NotifierConfig) -> Result<Self, NotifyError> {
        let client = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .build()
            .map_err(NotifyError::Client)?;
        Ok(Self {
            pool,
            client,
            config,
            stats: Arc::default(),
        })
    }

    /// The worker's counters.
    #[must_use]
    pub fn stats(&self) -> Arc<NotifierStats> {
        Arc::clone(&self.stats)
    }

    /// Sends due notifications until `shutdown`; the requests in flight finish first. Database failures are
    /// logged and retried at the next poll.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut counted: Option<Instant> = None;
        while !shutdown.is_cancelled() {
            if counted.is_none_or(|at| at.elapsed() >= Duration::from_secs(5)) {
                self.report_counts().await;
                counted = Some(Instant::now());
            }
            let tried = match self.send_due().await {
                Ok(tried) => tried,
                Err(e) => {
                    tracing::warn!(error = %e, "notifier round failed; retrying");
                    0
                }
            };
            if tried == 0 {
                tokio::select! {
                    () = tokio::time::sleep(self.config.poll_interval) => {}
                    () = shutdown.cancelled() => {}
                }
            }
        }
    }

    /// Sets the gauges of notifications pending and given up.
    async fn report_counts(&self) {
        match crate::counts(&self.pool).await {
            Ok(counts) => {
                metrics::gauge!("notify_pending").set(counts.pending as f64);
                metrics::gauge!("notify_given_up").set(counts.given_up as f64);
            }
            Err(e) => tracing::debug!(error = %e, "cannot count notifications"),
        }
    }

    /// Claims the notifications that are due, sends them, and records each outcome. Returns how many
    /// were tried.
    ///
    /// # Errors
    /// A database error while claiming.
    pub async fn send_due(&self) -> Result<usize, NotifyError> {
        let lease = self.config.request_timeout + Duration::from_secs(5);
        let (only, but) = self.config.scope.filters();
        let claimed: Vec<Claimed> = sqlx::query_as(
            "WITH due AS (
                 SELECT id FROM notifications
                 WHERE status = 'pending' AND next_attempt_at <= now()
                   AND ($3::text[] IS NULL OR subscriber = ANY ($3))
                   AND NOT (subscriber = ANY ($4))
                 ORDER BY next_attempt_at
                 LIMIT $1
                 FOR UPDATE SKIP LOCKED
             )
             UPDATE notifications n
             SET attempts = n.attempts + 1, next_attempt_at = now() + make_interval(secs => $2)
             FROM due, notify_subscribers s
             WHERE n.id = due.id AND s.name = n.subscriber
             RETURNING n.id, n.kind, n.body, n.attempts, s.url, s.secret",
        )
        .bind(self.config.batch)
        .bind(lease.as_secs_f64())
        .bind(only)
        .bind(but)
        .fetch_all(&self.pool)
        .await?;
        let tried = claimed.len();
        let mut requests = JoinSet::new();
        for notification in claimed {
            let (client, pool) = (self.client.clone(), self.pool.clone());
            let (schedule, stats) = (self.config.schedule.clone(), Arc::clone(&self.stats));
            let lose_ack = self.config.lost_ack_rate > 0.0
                && rand::random::<f64>() < self.config.lost_ack_rate;
            requests.spawn(async move {
                let mut outcome = post(&client, &notification).await;
                if lose_ack && outcome.is_ok() {
                    stats.acks_lost.fetch_add(1, Ordering::Relaxed);
                    outcome =
                        Err("acknowledged, and the acknowledgement was lost (simulated)".into());
                }
                settle(&pool, &schedule, &stats, &notification, outcome).await
            });
        }
        while let Some(settled) = requests.join_next().await {
            match settled {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "could not record a notification's attempt")
                }
                Err(e) => tracing::error!(error = %e, "a notification's attempt panicked"),
            }
        }
        Ok(tried)
    }
}

/// POSTs `notification`, signed; `Err` names why it was not acknowledged.
async fn post(client: &reqwest::Client, notification: &Claimed) -> Result<(), String> {
    let body = serde_json::to_vec(&notification.body).map_err(|e| e.to_string())?;
    let signature = signature::sign(
        notification.secret.as_bytes(),
        chrono::Utc::now().timestamp(),
        &body,
    );
    let answer = client
        .post(&notification.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(ID_HEADER, notification.id.to_string())
        .header(KIND_HEADER, &notification.kind)
        .header(SIGNATURE_HEADER, signature)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = answer.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("answered {status}"))
    }
}

/// Records an attempt's outcome: delivered, tried again after the schedule's wait, or given up.
async fn settle(
    pool: &PgPool,
    schedule: &Schedule,
    stats: &NotifierStats,
    notification: &Claimed,
    outcome: Result<(), String>,
) -> Result<(), NotifyError> {
    stats.attempts.fetch_add(1, Ordering::Relaxed);
    let id = notification.id;
    let Err(error) = outcome else {
        stats.delivered.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("notify_attempts_total", "outcome" => "delivered").increment(1);
        sqlx::query(
            "UPDATE notifications SET status = 'delivered', delivered_at = now(), last_error = NULL
             WHERE id = $1",
        )
        .bind(id)
        .execute(pool)
        .await?;
        return Ok(());
    };
    metrics::counter!("notify_attempts_total", "outcome" => "failed").increment(1);
    let attempt = u32::try_from(notification.attempts).unwrap_or(u32::MAX);
    match schedule.after(attempt) {
        Some(wait) => {
            tracing::debug!(%id, attempt, %error, ?wait, "notification not acknowledged; trying again");
            sqlx::query(
                "UPDATE notifications SET next_attempt_at = now() + make_interval(secs => $2),
                                          last_error = $3
                 WHERE id = $1",
            )
            .bind(id)
            .bind(wait.as_secs_f64())
            .bind(&error)
            .execute(pool)
            .await?;
        }
        None => {
            stats.given_up.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("notify_given_up_total").increment(1);
            tracing::warn!(%id, attempt, %error, "notification given up; reconciliation will find it");
            sqlx::query(
                "UPDATE notifications SET status = 'given_up', last_error = $2 WHERE id = $1",
            )
            .bind(id)
            .bind(&error)
            .execute(pool)
            .await?;
        }
    }
    Ok(())
}
