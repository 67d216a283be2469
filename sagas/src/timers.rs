//! Durable timers: the poller that fires due `saga_timers` rows as [`SagaInput::Timeout`].

use std::sync::Arc;
use std::time::Duration;

use domain::OrderId;
use outbox::{Codec, Metadata};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::decide::{Handled, Transition};
use crate::error::SagaError;
use crate::input::SagaInput;
use crate::step::TimerChange;
use crate::store::{SagaStore, set_timer, timer_key};

/// How the timer poller works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// How often to look for due timers when the last round found fewer than a batch. Default 250 ms.
    pub poll_interval: Duration,
    /// Timers fired per round at most, each in its own transaction. Default 100.
    pub batch_size: usize,
    /// Wait after a round that failed (database down). Default 2 s.
    pub error_backoff: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(250),
            batch_size: 100,
            error_backoff: Duration::from_secs(2),
        }
    }
}

/// How long a timer that failed to fire waits before it is tried again.
pub const FAILED_TIMER_DELAY: Duration = Duration::from_secs(30);

/// What one claim did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    /// No timer is due (or every due one is locked by another poller or writer).
    NoneDue,
    /// A timer fired and its transaction committed.
    Fired,
    /// A reply changed the saga meanwhile: rolled back; the timer is still there and is claimed again.
    Conflict,
}

impl<C: Codec> SagaStore<C> {
    /// Fires up to `limit` due timers, earliest first, each in a transaction of its own that claims the
    /// row (`FOR UPDATE SKIP LOCKED`, so pollers and writers never fire or change one timer twice at once),
    /// deletes it, and handles [`SagaInput::Timeout`] through the same path as replies
    /// ([`persist`](SagaStore::persist)), which may set the saga's next timer. A stale timer (its step
    /// already answered) is deleted and otherwise ignored. A timer that fails to fire (its saga does not
    /// read back, its command does not encode) is put back [`FAILED_TIMER_DELAY`] later, logged and
    /// counted, and the round goes on with the others. Returns how many timers were claimed.
    ///
    /// # Errors
    /// When the database fails before a timer is claimed, or while one is put back; the round stops
    /// there and the timers stay due.
    pub async fn fire_due_timers(&self, limit: usize) -> Result<usize, SagaError> {
        let mut claimed = 0;
        while claimed < limit {
            let mut timer = None;
            match self.fire_one(&mut timer).await {
                Ok(Claim::NoneDue) => break,
                Ok(Claim::Fired | Claim::Conflict) => claimed += 1,
                Err(e) => {
                    // Not claimed: the database itself failed, and every other timer would fail too.
                    let Some(order_id) = timer else {
                        return Err(e);
                    };
                    self.push_back(order_id, &e).await?;
                    claimed += 1;
                }
            }
        }
        Ok(claimed)
    }

    /// Moves the timer of `order_id`, whose firing failed with `error` and was rolled back, to
    /// [`FAILED_TIMER_DELAY`] from now, so the next rounds take the others first.
    async fn push_back(&self, order_id: Uuid, error: &SagaError) -> Result<(), SagaError> {
        tracing::error!(%order_id, error = %error, retry_in = ?FAILED_TIMER_DELAY,
            "saga timer cannot fire; put back");
        metrics::counter!("saga_timer_failures_total").increment(1);
        sqlx::query("UPDATE saga_timers SET due_at = clock_timestamp() + $2 WHERE order_id = $1")
            .bind(order_id)
            .bind(FAILED_TIMER_DELAY)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Fires the earliest due timer; `claimed` names its saga once the row is claimed, so that a failure
    /// after that point is told apart from a database that fails for every timer.
    async fn fire_one(&self, claimed: &mut Option<Uuid>) -> Result<Claim, SagaError> {
        let mut tx = self.pool().begin().await?;
        let row: Option<(Uuid, String, i32, String)> = sqlx::query_as(
            "SELECT order_id, step, attempt, kind FROM saga_timers
             WHERE due_at <= clock_timestamp()
             ORDER BY due_at
             LIMIT 1
             FOR UPDATE SKIP LOCKED",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some((id, step, attempt, kind)) = row else {
            return Ok(Claim::NoneDue);
        };
        *claimed = Some(id);
        sqlx::query("DELETE FROM saga_timers WHERE order_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let Some((order_id, key)) = OrderId::from_uuid(id)
            .ok()
            .zip(timer_key(&step, attempt, &kind))
        else {
            tracing::error!(order_id = %id, step, attempt, kind, "unreadable saga timer deleted");
            tx.commit().await?;
            return Ok(Claim::Fired);
        };
        let loaded = self.load(&mut tx, order_id).await?;
        let pending = loaded.state.pending_timer();
        match loaded.state.handle(SagaInput::Timeout(key), self.config()) {
            Ok(Handled::Applied(mut transition)) => {
                // The fired row is gone; a transition that keeps "the" timer keeps a timer that is not there
                // any more, so put the pending one back rather than leave the saga without a timer.
                if let (TimerChange::Keep, Some(next)) =
                    (transition.timer, transition.state.pending_timer())
                {
                    transition.timer = TimerChange::Set(self.config().timer(next));
                }
                let metadata = Metadata::new(id);
                match self
                    .persist(&mut tx, order_id, loaded.version, &transition, &metadata)
                    .await
                {
                    Ok(_) => {}
                    Err(SagaError::Conflict { .. }) => {
                        tx.rollback().await?;
                        return Ok(Claim::Conflict);
                    }
                    Err(e) => return Err(e),
                }
                log_fired(order_id, &transition, key);
            }
            Ok(Handled::Ignored(ignored)) => {
                tracing::debug!(%order_id, timer = %key, state = ignored.state, reason = ?ignored.reason,
                    "stale saga timer deleted");
                // Every transition replaces the row, so a stale row should not exist; if one did, the saga's
                // own timer must not be lost with it.
                if let Some(next) = pending.filter(|next| *next != key) {
                    set_timer(&mut tx, id, self.config().timer(next)).await?;
                }
            }
            Err(e) => {
                tracing::error!(%order_id, timer = %key, error = %e, "saga timer cannot fire; deleted");
            }
        }
        tx.commit().await?;
        metrics::counter!("saga_timers_fired_total").increment(1);
        Ok(Claim::Fired)
    }
}

fn log_fired(order_id: OrderId, transition: &Transition, key: crate::step::TimerKey) {
    tracing::info!(%order_id, timer = %key, state = transition.state.name(), "saga timer fired");
}

/// Fires due timers of `store` until `shutdown` is cancelled: a round of at most
/// [`TimerConfig::batch_size`] timers, then another at once if the round was full, else after
/// [`TimerConfig::poll_interval`]. A failed round is logged and retried after
/// [`TimerConfig::error_backoff`]; the timers stay due meanwhile.
pub async fn run_timers<C: Codec>(
    store: Arc<SagaStore<C>>,
    settings: TimerConfig,
    shutdown: CancellationToken,
) {
    let batch = settings.batch_size.max(1);
    loop {
        let wait = match store.fire_due_timers(batch).await {
            Ok(fired) if fired >= batch => Duration::ZERO,
            Ok(_) => settings.poll_interval,
            Err(e) => {
                tracing::warn!(error = %e, "saga timer round failed; retrying");
                settings.error_backoff
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.cancelled() => break,
        }
    }
    tracing::info!("saga timer poller stopped");
}
