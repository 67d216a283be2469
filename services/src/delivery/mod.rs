//! The delivery service and its carrier simulation.
//!
//! Each order's delivery is event-sourced (`domain::DeliveryState`, aggregate `delivery`, stream id = the
//! order id, so its events are keyed by the order id). The table `deliveries` is both its projection and the
//! carrier's work queue: [`run_carrier`] claims due rows with `FOR UPDATE SKIP LOCKED` (several carriers at
//! once are safe) and dispatches each after [`CarrierConfig::dispatch_delay`], then delivers it after
//! [`CarrierConfig::delivery_delay`]. With [`CarrierConfig::failure_rate`] the carrier fails a delivery
//! before dispatch (`DeliveryFailed`, so the saga can still release stock and void the payment); with
//! [`CarrierConfig::post_dispatch_failure_rate`] (default 0) it loses a dispatched parcel. Both decisions
//! are a function of the seed and the order id. The request handler and the carrier lock the `deliveries`
//! row before touching the stream, so a cancellation and a dispatch never interleave.

use std::time::Duration;

use domain::simulation::draw;
use domain::{
    Aggregate as _, DeliveryCommand, DeliveryEvent, DeliveryId, DeliveryRequest, DeliveryState,
    OrderId, Service,
};
use outbox::{Loaded, Metadata};
use sqlx::PgConnection;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::shell::{Decision, Responder, Shell};
use crate::{Context, ServiceError, at_least};

mod respond;

pub use respond::{Response, Row, respond};

/// How the simulated carrier behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct CarrierConfig {
    /// From scheduling to dispatch (or to a failure before dispatch).
    pub dispatch_delay: Duration,
    /// From dispatch to delivery.
    pub delivery_delay: Duration,
    /// Share of deliveries that fail before dispatch, in [0, 1].
    pub failure_rate: f64,
    /// Share of dispatched parcels that are lost, in [0, 1]. Default 0.
    pub post_dispatch_failure_rate: f64,
    /// How often the carrier looks for due deliveries when it found none.
    pub poll_interval: Duration,
    /// Deliveries claimed per transaction.
    pub batch_size: i64,
    /// Seed of the failure decisions.
    pub seed: u64,
}

impl Default for CarrierConfig {
    fn default() -> Self {
        Self {
            dispatch_delay: Duration::from_millis(500),
            delivery_delay: Duration::from_millis(500),
            failure_rate: 0.05,
            post_dispatch_failure_rate: 0.0,
            poll_interval: Duration::from_millis(100),
            batch_size: 100,
            seed: 7,
        }
    }
}

const FAIL_BEFORE_DISPATCH: u64 = 0xFA11;
const LOST_IN_TRANSIT: u64 = 0x1057;

/// Answers `ScheduleDelivery` and `CancelDelivery`, replying on `delivery.events`.
#[derive(Clone, Debug)]
pub struct Delivery {
    ctx: Context,
    config: CarrierConfig,
}

/// The delivery service's handler on the consumer runtime.
pub type DeliveryHandler = Shell<Delivery>;

impl Delivery {
    /// A service writing with `ctx`; new deliveries are due for dispatch after `config.dispatch_delay`.
    pub fn new(ctx: Context, config: CarrierConfig) -> Self {
        Self { ctx, config }
    }
}

/// A delivery's stream, and whether the carrier dispatched its parcel.
#[derive(Debug)]
pub struct Current {
    loaded: Loaded<DeliveryState>,
    dispatched: bool,
}

impl Responder for Delivery {
    const SERVICE: Service = Service::Delivery;
    type Request = DeliveryRequest;
    type State = Current;
    type Act = (DeliveryCommand, Row);
    type Reply = DeliveryEvent;

    fn context(&self) -> &Context {
        &self.ctx
    }

    /// Locks the order's `deliveries` row (the carrier's work queue) and loads the delivery's stream.
    async fn load(
        &self,
        tx: &mut PgConnection,
        order_id: OrderId,
    ) -> Result<Current, ServiceError> {
        let row: Option<(Uuid, Option<chrono::DateTime<chrono::Utc>>)> = sqlx::query_as(
            "SELECT delivery_id, dispatched_at FROM deliveries WHERE order_id = $1 FOR UPDATE",
        )
        .bind(order_id.as_uuid())
        .fetch_optional(&mut *tx)
        .await?;
        let loaded = self.ctx.store.load_with(tx, &order_id.to_string()).await?;
        Ok(Current {
            loaded,
            dispatched: row.is_some_and(|(_, at)| at.is_some()),
        })
    }

    fn decide(
        &self,
        current: &Current,
        request: DeliveryRequest,
    ) -> Result<Decision<Self::Act, DeliveryEvent>, ServiceError> {
        let response = respond(
            &current.loaded.state,
            &request,
            DeliveryId::new(),
            current.dispatched,
        )?;
        Ok(match response {
            Response::Record { command, row } => Decision::Act((command, row)),
            Response::Repeat(reply) => Decision::Repeat(reply),
        })
    }

    /// Records `command` on the delivery's stream (its events are the reply, on `delivery.events`) and
    /// brings the `deliveries` row along.
    async fn carry_out(
        &self,
        tx: &mut PgConnection,
        order_id: OrderId,
        current: Current,
        (command, row): Self::Act,
        metadata: &Metadata,
    ) -> Result<(), ServiceError> {
        let Current { loaded, .. } = current;
        let (_, events) = loaded.state.execute(command)?;
        self.ctx
            .store
            .append::<DeliveryState>(tx, &order_id.to_string(), loaded.version, &events, metadata)
            .await?;
        match row {
            Row::Schedule(delivery_id) => {
                sqlx::query(
                    "INSERT INTO deliveries (order_id, delivery_id, status, due_at)
                     VALUES ($1, $2, 'scheduled', now() + make_interval(secs => $3))",
                )
                .bind(order_id.as_uuid())
                .bind(delivery_id.as_uuid())
                .bind(self.config.dispatch_delay.as_secs_f64())
                .execute(&mut *tx)
                .await?;
            }
            Row::Cancel => set_status(tx, order_id, "cancelled").await?,
            Row::Untouched => {}
        }
        Ok(())
    }
}

async fn set_status(
    tx: &mut PgConnection,
    order_id: OrderId,
    status: &str,
) -> Result<(), ServiceError> {
    sqlx::query(
        "UPDATE deliveries SET status = $2, due_at = NULL, updated_at = now() WHERE order_id = $1",
    )
    .bind(order_id.as_uuid())
    .bind(status)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Runs the carrier simulation until `cancel` fires: claims due deliveries, dispatches, delivers or fails
/// them. A failed round is logged and retried after the poll interval.
pub async fn run_carrier(
    ctx: Context,
    config: CarrierConfig,
    cancel: CancellationToken,
) -> Result<(), ServiceError> {
    let idle = at_least(config.poll_interval, Duration::from_millis(1));
    tracing::info!("carrier simulation starting");
    loop {
        let wait = match carrier_round(&ctx, &config).await {
            Ok(moved) if moved > 0 => Duration::ZERO,
            Ok(_) => idle,
            Err(e) => {
                tracing::warn!(error = %e, "carrier round failed; retrying");
                idle
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = cancel.cancelled() => break,
        }
    }
    tracing::info!("carrier simulation stopped");
    Ok(())
}

/// How long a delivery the carrier failed to move waits before it is tried again.
pub const FAILED_MOVE_DELAY: Duration = Duration::from_secs(30);

/// One round of the carrier: moves every due delivery (up to the batch size) one step, in one transaction,
/// each behind a savepoint: a delivery that fails to move (its stream does not read back) is rolled back,
/// put back [`FAILED_MOVE_DELAY`] later, logged and counted, and the others move. Returns how many moved.
///
/// # Errors
/// When the database fails for the round itself.
pub async fn carrier_round(ctx: &Context, config: &CarrierConfig) -> Result<usize, ServiceError> {
    let mut tx = ctx.store.pool().begin().await?;
    let due: Vec<Uuid> = sqlx::query_scalar(
        "SELECT order_id FROM deliveries
         WHERE status IN ('scheduled', 'dispatched') AND due_at <= now()
         ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(config.batch_size.max(1))
    .fetch_all(&mut *tx)
    .await?;
    let mut moved = 0;
    for order_uuid in due {
        let mut step = sqlx::Connection::begin(&mut *tx).await?;
        match move_delivery(ctx, config, &mut step, order_uuid).await {
            Ok(step_moved) => {
                step.commit().await?;
                moved += usize::from(step_moved);
            }
            Err(e) => {
                step.rollback().await?;
                tracing::error!(order_id = %order_uuid, error = %e, retry_in = ?FAILED_MOVE_DELAY,
                    "carrier cannot move a delivery; put back");
                metrics::counter!("carrier_failures_total").increment(1);
                sqlx::query(
                    "UPDATE deliveries SET due_at = now() + make_interval(secs => $2) WHERE order_id = $1",
                )
                .bind(order_uuid)
                .bind(FAILED_MOVE_DELAY.as_secs_f64())
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(moved)
}

/// Moves one due delivery a step on `tx`; false when its row lagged its stream and was only corrected.
async fn move_delivery(
    ctx: &Context,
    config: &CarrierConfig,
    tx: &mut PgConnection,
    order_uuid: Uuid,
) -> Result<bool, ServiceError> {
    let order_id =
        OrderId::from_uuid(order_uuid).map_err(|e| ServiceError::invalid("order_id", e))?;
    let id = order_id.to_string();
    let loaded = ctx.store.load_with::<DeliveryState>(tx, &id).await?;
    let command = match &loaded.state {
        DeliveryState::Scheduled { .. } => {
            if draw(config.seed, FAIL_BEFORE_DISPATCH, order_uuid) < config.failure_rate {
                DeliveryCommand::Fail {
                    reason: "carrier could not collect the parcel".into(),
                }
            } else {
                DeliveryCommand::Dispatch
            }
        }
        DeliveryState::Dispatched { .. } => {
            if draw(config.seed, LOST_IN_TRANSIT, order_uuid) < config.post_dispatch_failure_rate {
                DeliveryCommand::Fail {
                    reason: "parcel lost in transit".into(),
                }
            } else {
                DeliveryCommand::Deliver
            }
        }
        DeliveryState::NotScheduled
        | DeliveryState::Delivered { .. }
        | DeliveryState::Failed { .. }
        | DeliveryState::Cancelled { .. } => {
            // The row lags the stream (cannot happen while both are written together): stop carrying it.
            set_status(tx, order_id, status_of(&loaded.state)).await?;
            return Ok(false);
        }
    };
    let (after, events) = loaded.state.execute(command)?;
    ctx.store
        .append::<DeliveryState>(tx, &id, loaded.version, &events, &Metadata::new(order_uuid))
        .await?;
    if let DeliveryState::Dispatched { .. } = after {
        sqlx::query(
            "UPDATE deliveries SET status = 'dispatched', dispatched_at = now(),
                    due_at = now() + make_interval(secs => $2), updated_at = now()
             WHERE order_id = $1",
        )
        .bind(order_uuid)
        .bind(config.delivery_delay.as_secs_f64())
        .execute(&mut *tx)
        .await?;
    } else {
        set_status(tx, order_id, status_of(&after)).await?;
    }
    metrics::counter!("carrier_moves_total", "to" => status_of(&after)).increment(1);
    Ok(true)
}

fn status_of(state: &DeliveryState) -> &'static str {
    match state {
        DeliveryState::NotScheduled | DeliveryState::Cancelled { .. } => "cancelled",
        DeliveryState::Scheduled { .. } => "scheduled",
        DeliveryState::Dispatched { .. } => "dispatched",
        DeliveryState::Delivered { .. } => "delivered",
        DeliveryState::Failed { .. } => "failed",
    }
}

/// The `deliveries` row of `order_id`: (delivery id, status), if any.
pub async fn get_delivery(
    pool: &sqlx::PgPool,
    order_id: OrderId,
) -> Result<Option<(Uuid, String)>, ServiceError> {
    Ok(
        sqlx::query_as("SELECT delivery_id, status FROM deliveries WHERE order_id = $1")
            .bind(order_id.as_uuid())
            .fetch_optional(pool)
            .await?,
    )
}
