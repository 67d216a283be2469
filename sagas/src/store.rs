//! [`SagaStore`]: sagas in Postgres, with optimistic concurrency, their commands in the outbox and their
//! one durable timer, all written in the caller's transaction.

use std::time::Duration;

use domain::OrderId;
use outbox::{Codec, EventStore, JsonCodec, Metadata};
use producers::topics::Topics;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::config::SagaConfig;
use crate::decide::{Handled, Transition};
use crate::error::SagaError;
use crate::event::SagaEvent;
use crate::input::SagaInput;
use crate::state::OrderSaga;
use crate::step::{Step, Timer, TimerChange, TimerKey, TimerKind};
use crate::wire::WireCommand;

/// How a saga ended, as stored in `sagas.outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SagaOutcome {
    /// `completed`: the order was fulfilled.
    Completed,
    /// `compensated`: everything was undone and the order cancelled.
    Compensated,
    /// `needs_attention`: the saga gave up on a step and waits for a person.
    NeedsAttention,
}

impl SagaOutcome {
    /// Every outcome.
    pub const ALL: [Self; 3] = [Self::Completed, Self::Compensated, Self::NeedsAttention];

    /// The stored name: `completed`, `compensated` or `needs_attention`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Compensated => "compensated",
            Self::NeedsAttention => "needs_attention",
        }
    }

    /// The outcome of a terminal saga; `None` while it runs.
    #[must_use]
    pub const fn of(saga: &OrderSaga) -> Option<Self> {
        match saga {
            OrderSaga::NotStarted
            | OrderSaga::ReservingStock { .. }
            | OrderSaga::AuthorizingPayment { .. }
            | OrderSaga::SchedulingDelivery { .. }
            | OrderSaga::AwaitingDispatch { .. }
            | OrderSaga::CapturingPayment { .. }
            | OrderSaga::CommittingStock { .. }
            | OrderSaga::AwaitingDelivery { .. }
            | OrderSaga::Compensating { .. } => None,
            OrderSaga::Completed { .. } => Some(Self::Completed),
            OrderSaga::Compensated { .. } => Some(Self::Compensated),
            OrderSaga::NeedsAttention { .. } => Some(Self::NeedsAttention),
        }
    }
}

/// The reason the saga will cancel (or cancelled) its order, once it compensates.
const fn cancel_reason(saga: &OrderSaga) -> Option<&'static str> {
    match saga {
        OrderSaga::Compensating { reason, .. } | OrderSaga::Compensated { reason, .. } => {
            Some(reason.name())
        }
        OrderSaga::NotStarted
        | OrderSaga::ReservingStock { .. }
        | OrderSaga::AuthorizingPayment { .. }
        | OrderSaga::SchedulingDelivery { .. }
        | OrderSaga::AwaitingDispatch { .. }
        | OrderSaga::CapturingPayment { .. }
        | OrderSaga::CommittingStock { .. }
        | OrderSaga::AwaitingDelivery { .. }
        | OrderSaga::Completed { .. }
        | OrderSaga::NeedsAttention { .. } => None,
    }
}

/// A saga as of a version of its stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedSaga {
    /// The saga's state.
    pub state: OrderSaga,
    /// The number of its events; 0 for a saga that was never started.
    pub version: i64,
}

/// The saga store: the `sagas`, `saga_events` and `saga_timers` tables, and the outbox the saga's commands
/// go out through (encoded with `C`, in production [`schemas::AvroCodec`]).
///
/// Every write happens on the caller's connection, which must be inside a transaction: one transition's
/// events, its commands' outbox records, its timer change and the `sagas` row commit together or not at
/// all (plus the inbox row when the caller is the consumer runtime).
#[derive(Debug)]
pub struct SagaStore<C = JsonCodec> {
    outbox: EventStore<C>,
    topics: Topics,
    config: SagaConfig,
}

impl<C: Codec> SagaStore<C> {
    /// A store on `pool` whose commands go to the commands topics of `topics`, encoded with `codec` and
    /// marked as written in `region`; `config` gives the timeouts and the retry budget.
    pub fn new(
        pool: PgPool,
        codec: C,
        topics: Topics,
        region: impl Into<String>,
        config: SagaConfig,
    ) -> Self {
        Self {
            outbox: EventStore::new(pool, codec, topics.clone(), region),
            topics,
            config,
        }
    }

    /// The pool the store was built with.
    pub fn pool(&self) -> &PgPool {
        self.outbox.pool()
    }

    /// The configuration the saga is decided with.
    pub const fn config(&self) -> &SagaConfig {
        &self.config
    }

    /// Loads the saga of `order_id` and replays its events (`NotStarted` at version 0 when it has none).
    ///
    /// # Errors
    /// As [`load_saga`].
    pub async fn load(
        &self,
        conn: &mut PgConnection,
        order_id: OrderId,
    ) -> Result<LoadedSaga, SagaError> {
        load_saga(conn, order_id).await
    }

    /// Loads the saga of `order_id`, decides `input` and, when it moved, persists the transition
    /// ([`persist`](Self::persist)), all on `conn`. An ignored input (duplicate, late, stale timer) writes
    /// nothing.
    ///
    /// # Errors
    /// [`SagaError::Conflict`] when another writer got there first: roll back and call again. The refused
    /// inputs of [`OrderSaga::decide`], and those of [`load`](Self::load) and [`persist`](Self::persist).
    pub async fn handle(
        &self,
        conn: &mut PgConnection,
        order_id: OrderId,
        input: SagaInput,
        metadata: &Metadata,
    ) -> Result<Handled, SagaError> {
        let loaded = self.load(conn, order_id).await?;
        let handled = loaded.state.handle(input, &self.config)?;
        match &handled {
            Handled::Applied(transition) => {
                self.persist(conn, order_id, loaded.version, transition, metadata)
                    .await?;
            }
            Handled::Ignored(ignored) => {
                tracing::debug!(%order_id, state = ignored.state, input = ignored.input,
                    reason = ?ignored.reason, "saga input ignored");
                metrics::counter!("saga_inputs_ignored_total", "reason" => format!("{:?}", ignored.reason))
                    .increment(1);
            }
        }
        Ok(handled)
    }

    /// [`handle`](Self::handle) in a transaction of its own, committed; a [`SagaError::Conflict`] is
    /// retried (reload, decide again) up to `attempts` times in all.
    ///
    /// # Errors
    /// As [`handle`](Self::handle); the last conflict when every attempt lost its race.
    pub async fn execute(
        &self,
        order_id: OrderId,
        input: SagaInput,
        metadata: &Metadata,
        attempts: u32,
    ) -> Result<Handled, SagaError> {
        let mut attempt = 1;
        loop {
            let mut tx = self.pool().begin().await?;
            match self
                .handle(&mut tx, order_id, input.clone(), metadata)
                .await
            {
                Ok(handled) => {
                    tx.commit().await?;
                    return Ok(handled);
                }
                Err(SagaError::Conflict { .. }) if attempt < attempts => {
                    tx.rollback().await?;
                    attempt += 1;
                    tracing::debug!(%order_id, attempt, "saga write conflict; retrying");
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes `transition` of the saga of `order_id`, loaded at `expected_version`, on `conn`: its timer
    /// change, its events (at `expected_version + 1, ...`), the `sagas` row, and one outbox record per
    /// command on the participant's commands topic, with `metadata` (correlation id = order id, causation
    /// id = the event that caused it). Returns the new version.
    ///
    /// Locks are taken in one order by every writer (timer row, then the stream, then the `sagas` row), so
    /// concurrent writers of one saga wait for each other or conflict, never deadlock.
    ///
    /// Metrics: `saga_transitions_total{state}`, `saga_ended_total{outcome}`, `saga_escalations_total`,
    /// counted when the transition is written (a transaction that then fails to commit has counted too).
    ///
    /// # Errors
    /// [`SagaError::Conflict`] when the stream is no longer at `expected_version` (the caller's transaction
    /// must be rolled back); [`SagaError::Outbox`] when a command cannot be encoded; database errors.
    pub async fn persist(
        &self,
        conn: &mut PgConnection,
        order_id: OrderId,
        expected_version: i64,
        transition: &Transition,
        metadata: &Metadata,
    ) -> Result<i64, SagaError> {
        let id = Uuid::from(order_id);
        match transition.timer {
            TimerChange::Keep => {}
            TimerChange::Set(timer) => set_timer(conn, id, timer).await?,
            TimerChange::Clear => clear_timer(conn, id).await?,
        }
        let count = i64::try_from(transition.events.len()).unwrap_or(i64::MAX);
        let versions: Vec<i64> = (expected_version + 1..)
            .take(transition.events.len())
            .collect();
        let types: Vec<&str> = transition
            .events
            .iter()
            .map(SagaEvent::event_type)
            .collect();
        let events = transition
            .events
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SagaError::Corrupt {
                order_id,
                what: format!("event does not serialize: {e}"),
            })?;
        let inserted = sqlx::query(
            "INSERT INTO saga_events (order_id, version, event_type, event)
             SELECT $1, version, event_type, event
             FROM unnest($2::bigint[], $3::text[], $4::jsonb[]) AS e(version, event_type, event)",
        )
        .bind(id)
        .bind(&versions)
        .bind(&types)
        .bind(&events)
        .execute(&mut *conn)
        .await;
        match inserted {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.constraint() == Some("saga_events_pkey") => {
                return Err(SagaError::Conflict {
                    order_id,
                    expected: expected_version,
                });
            }
            Err(e) => return Err(e.into()),
        }
        let version = expected_version + count;
        let state = &transition.state;
        let outcome = SagaOutcome::of(state);
        sqlx::query(
            "INSERT INTO sagas (order_id, version, state, outcome, cancel_reason, ended_at)
             VALUES ($1, $2, $3, $4, $5, CASE WHEN $4::text IS NULL THEN NULL ELSE clock_timestamp() END)
             ON CONFLICT (order_id) DO UPDATE SET
                 version = excluded.version,
                 state = excluded.state,
                 updated_at = clock_timestamp(),
                 outcome = excluded.outcome,
                 ended_at = excluded.ended_at,
                 cancel_reason = COALESCE(excluded.cancel_reason, sagas.cancel_reason)",
        )
        .bind(id)
        .bind(version)
        .bind(state.name())
        .bind(outcome.map(SagaOutcome::as_str))
        .bind(cancel_reason(state))
        .execute(&mut *conn)
        .await?;
        for command in &transition.commands {
            let wire = WireCommand::of(command);
            let topic = self.topics.commands(wire.service());
            // Keyed by the order, so that every request about it reaches the same partition.
            let key = command.order_id.to_string();
            let outbox = &self.outbox;
            match wire {
                WireCommand::Inventory(m) => {
                    outbox.publish(conn, &topic, &key, &[m], metadata).await
                }
                WireCommand::Payments(m) => {
                    outbox.publish(conn, &topic, &key, &[m], metadata).await
                }
                WireCommand::Delivery(m) => {
                    outbox.publish(conn, &topic, &key, &[m], metadata).await
                }
                WireCommand::Orders(m) => outbox.publish(conn, &topic, &key, &[m], metadata).await,
            }?;
        }
        metrics::counter!("saga_transitions_total", "state" => state.name()).increment(1);
        if let Some(SagaEvent::Resumed { step }) = transition
            .events
            .iter()
            .find(|e| matches!(e, SagaEvent::Resumed { .. }))
        {
            metrics::counter!("saga_resumptions_total").increment(1);
            tracing::info!(%order_id, %step, "escalated saga resumed: its step is retried");
        }
        if let Some(outcome) = outcome {
            metrics::counter!("saga_ended_total", "outcome" => outcome.as_str()).increment(1);
        }
        if let OrderSaga::NeedsAttention {
            step,
            attempts,
            last_error,
            ..
        } = state
        {
            metrics::counter!("saga_escalations_total").increment(1);
            tracing::warn!(%order_id, %step, attempts, %last_error,
                "saga escalated: it needs attention (sagas.outcome = 'needs_attention')");
        }
        Ok(version)
    }
}

/// Replaces the saga's timer with `timer`, due `timer.due_after` from now.
pub(crate) async fn set_timer(
    conn: &mut PgConnection,
    order_id: Uuid,
    timer: Timer,
) -> Result<(), SagaError> {
    sqlx::query(
        "INSERT INTO saga_timers (order_id, step, attempt, kind, due_at)
         VALUES ($1, $2, $3, $4, clock_timestamp() + make_interval(secs => $5))
         ON CONFLICT (order_id) DO UPDATE SET
             step = excluded.step, attempt = excluded.attempt, kind = excluded.kind,
             due_at = excluded.due_at",
    )
    .bind(order_id)
    .bind(timer.key.step.name())
    .bind(i32::try_from(timer.key.attempt).unwrap_or(i32::MAX))
    .bind(timer.key.kind.as_str())
    .bind(seconds(timer.due_after))
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes the saga's timer.
async fn clear_timer(conn: &mut PgConnection, order_id: Uuid) -> Result<(), SagaError> {
    sqlx::query("DELETE FROM saga_timers WHERE order_id = $1")
        .bind(order_id)
        .execute(conn)
        .await?;
    Ok(())
}

fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

/// The timer key of a stored row, or `None` when a column does not read.
pub(crate) fn timer_key(step: &str, attempt: i32, kind: &str) -> Option<TimerKey> {
    let step = Step::ALL.into_iter().find(|s| s.name() == step)?;
    let attempt = u32::try_from(attempt).ok()?;
    let kind = kind.parse::<TimerKind>().ok()?;
    Some(TimerKey {
        step,
        attempt,
        kind,
    })
}

/// Loads the saga of `order_id` and replays its events (`NotStarted` at version 0 when it has none): what the
/// orchestrator decides on, and what status pages show.
///
/// # Errors
/// [`SagaError::Database`]; [`SagaError::Corrupt`] for a stored event that does not read back.
pub async fn load_saga(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<LoadedSaga, SagaError> {
    let rows: Vec<(i64, String, Value)> = sqlx::query_as(
        "SELECT version, event_type, event FROM saga_events WHERE order_id = $1 ORDER BY version",
    )
    .bind(Uuid::from(order_id))
    .fetch_all(conn)
    .await?;
    let mut state = OrderSaga::NotStarted;
    let mut version = 0;
    for (stored_version, event_type, event) in rows {
        if stored_version != version + 1 {
            return Err(SagaError::Corrupt {
                order_id,
                what: format!("version {stored_version} follows {version}"),
            });
        }
        let event: SagaEvent = serde_json::from_value(event).map_err(|e| SagaError::Corrupt {
            order_id,
            what: format!("event {stored_version} ({event_type}): {e}"),
        })?;
        state = state.evolve(&event);
        version = stored_version;
    }
    Ok(LoadedSaga { state, version })
}
