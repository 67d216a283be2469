//! The orders service: place an order (a library call, idempotent on the client's key), complete or cancel
//! it (requests on `orders.commands`), and the read model `orders_view`.
//!
//! The order is event-sourced (`domain::OrderState`, stream id = order id); `orders_view` is updated in the
//! transaction that appends the events, so it is never behind the stream.

use chrono::{DateTime, Utc};
use domain::{
    Aggregate as _, CustomerId, Money, OrderCommand, OrderEvent, OrderId, OrderLine, OrderLines,
    OrderRequest, OrderState, Quantity, Service, Sku,
};
use outbox::{Codec, EventStore, Loaded, Metadata};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::shell::{Decision, Responder, Shell};
use crate::{Context, ServiceError};

mod respond;

pub use respond::{Response, respond};

/// Longest accepted idempotency key, in characters.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 200;

/// A client's order, as submitted; [`place_order`] validates it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlaceOrder {
    /// The client's key for this submission: submitting again with the same key returns the same order.
    /// A key is bound to the first order made with it; a later submission with the same key and other
    /// content gets that first order (the content is not compared).
    pub idempotency_key: Option<String>,
    /// Who orders.
    pub customer_id: CustomerId,
    /// What is ordered.
    pub lines: Vec<LineInput>,
}

/// One line as submitted: raw values, validated by [`place_order`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineInput {
    pub sku: String,
    pub quantity: u32,
    /// Unit price in minor units of `currency` (cents for EUR).
    pub unit_price_minor: i64,
    /// ISO 4217 code, e.g. `"EUR"`.
    pub currency: String,
}

impl LineInput {
    /// A line of `quantity` × `sku` at `unit_price_minor` minor units of `currency`.
    pub fn new(
        sku: impl Into<String>,
        quantity: u32,
        unit_price_minor: i64,
        currency: impl Into<String>,
    ) -> Self {
        Self {
            sku: sku.into(),
            quantity,
            unit_price_minor,
            currency: currency.into(),
        }
    }
}

/// The answer to [`place_order`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placed {
    /// The order's id; for a repeated submission, the id of the order the first one made.
    pub order_id: OrderId,
    /// Whether this submission repeated an earlier one (nothing was written).
    pub duplicate: bool,
}

/// Validates `order`, and places it unless its idempotency key was used before.
///
/// In one transaction: claims the key in `order_submissions` (`ON CONFLICT DO NOTHING`; a concurrent
/// submission with the same key waits for this one and then finds its order), appends `OrderPlaced` (with
/// the key) to the order's stream with its outbox record, and inserts the `orders_view` row.
///
/// # Errors
/// [`ServiceError::Invalid`] naming the line and field for bad input; database and outbox errors.
#[tracing::instrument(skip_all, fields(customer_id = %order.customer_id), err)]
pub async fn place_order<C: Codec>(
    store: &EventStore<C>,
    order: PlaceOrder,
) -> Result<Placed, ServiceError> {
    let lines = validate_lines(&order.lines)?;
    let key = match order.idempotency_key {
        Some(key) => Some(validate_key(key)?),
        None => None,
    };
    let order_id = OrderId::new();
    let mut tx = store.pool().begin().await?;
    if let Some(key) = &key {
        let claimed = sqlx::query(
            "INSERT INTO order_submissions (idempotency_key, order_id) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
        )
        .bind(key)
        .bind(order_id.as_uuid())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !claimed {
            let existing: Uuid = sqlx::query_scalar(
                "SELECT order_id FROM order_submissions WHERE idempotency_key = $1",
            )
            .bind(key)
            .fetch_one(&mut *tx)
            .await?;
            metrics::counter!("orders_duplicate_submissions_total").increment(1);
            let order_id = OrderId::from_uuid(existing)
                .map_err(|e| ServiceError::invalid("stored order id", e))?;
            tracing::info!(%order_id, "duplicate submission; returning the first order");
            return Ok(Placed {
                order_id,
                duplicate: true,
            });
        }
    }
    let events = OrderState::default().decide(OrderCommand::Place {
        order_id,
        customer_id: order.customer_id,
        lines,
        idempotency_key: key,
    })?;
    let id = order_id.to_string();
    store
        .append::<OrderState>(&mut tx, &id, 0, &events, &Metadata::new(order_id.as_uuid()))
        .await?;
    let total = match events.first() {
        Some(OrderEvent::Placed { total, .. }) => *total,
        _ => {
            return Err(ServiceError::NotApplicable(
                "Place made no OrderPlaced".into(),
            ));
        }
    };
    sqlx::query(
        "INSERT INTO orders_view (order_id, customer_id, status, total_minor, currency)
         VALUES ($1, $2, 'placed', $3, $4)",
    )
    .bind(order_id.as_uuid())
    .bind(order.customer_id.as_uuid())
    .bind(total.minor())
    .bind(total.currency().code())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    metrics::counter!("orders_placed_total").increment(1);
    Ok(Placed {
        order_id,
        duplicate: false,
    })
}

fn validate_key(key: String) -> Result<String, ServiceError> {
    if key.trim().is_empty() {
        return Err(ServiceError::invalid(
            "idempotency_key",
            "must not be empty or blank",
        ));
    }
    let len = key.chars().count();
    if len > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(ServiceError::invalid(
            "idempotency_key",
            format!("{len} characters; at most {MAX_IDEMPOTENCY_KEY_LEN}"),
        ));
    }
    if key.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "idempotency_key",
            "must not contain control characters",
        ));
    }
    Ok(key)
}

fn validate_lines(lines: &[LineInput]) -> Result<OrderLines, ServiceError> {
    let mut valid = Vec::with_capacity(lines.len());
    for (n, line) in lines.iter().enumerate() {
        let field = |name: &str| format!("lines[{n}].{name}");
        let sku = Sku::new(line.sku.clone()).map_err(|e| ServiceError::invalid(field("sku"), e))?;
        let quantity = Quantity::new(line.quantity)
            .map_err(|e| ServiceError::invalid(field("quantity"), e))?;
        let currency = domain::Currency::new(&line.currency)
            .map_err(|e| ServiceError::invalid(field("currency"), e))?;
        let unit_price = Money::new(line.unit_price_minor, currency)
            .map_err(|e| ServiceError::invalid(field("unit_price_minor"), e))?;
        if unit_price.is_zero() {
            return Err(ServiceError::invalid(
                field("unit_price_minor"),
                "must be above zero",
            ));
        }
        valid.push(OrderLine {
            sku,
            quantity,
            unit_price,
        });
    }
    OrderLines::new(valid).map_err(|e| ServiceError::invalid("lines", e))
}

/// A row of the read model.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct OrderView {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    /// `placed`, `completed` or `cancelled`.
    pub status: String,
    /// The `CancelReason` name of a cancelled order.
    pub cancel_reason: Option<String>,
    pub total_minor: i64,
    pub currency: String,
    pub placed_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// The read model's row of `order_id`, if the order exists.
pub async fn get_order(
    pool: &PgPool,
    order_id: OrderId,
) -> Result<Option<OrderView>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT order_id, customer_id, status, cancel_reason, total_minor, currency, placed_at, ended_at
         FROM orders_view WHERE order_id = $1",
    )
    .bind(order_id.as_uuid())
    .fetch_optional(pool)
    .await?)
}

/// How many orders are in each status, e.g. `[("cancelled", 3), ("completed", 10)]`, ordered by status.
pub async fn count_by_status(pool: &PgPool) -> Result<Vec<(String, i64)>, ServiceError> {
    Ok(
        sqlx::query_as("SELECT status, count(*) FROM orders_view GROUP BY status ORDER BY status")
            .fetch_all(pool)
            .await?,
    )
}

/// Answers `CompleteOrder` and `CancelOrder`: replies `OrderCompleted` / `OrderCancelled` on
/// `orders.events` (see the crate's reply contract).
#[derive(Clone, Debug)]
pub struct Orders {
    ctx: Context,
}

/// The orders service's handler on the consumer runtime.
pub type OrdersHandler = Shell<Orders>;

impl Orders {
    /// A service writing with `ctx`.
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }
}

impl Responder for Orders {
    const SERVICE: Service = Service::Orders;
    type Request = OrderRequest;
    type State = Loaded<OrderState>;
    type Act = OrderCommand;
    type Reply = OrderEvent;

    fn context(&self) -> &Context {
        &self.ctx
    }

    async fn load(
        &self,
        tx: &mut PgConnection,
        order_id: OrderId,
    ) -> Result<Loaded<OrderState>, ServiceError> {
        Ok(self.ctx.store.load_with(tx, &order_id.to_string()).await?)
    }

    fn decide(
        &self,
        state: &Loaded<OrderState>,
        request: OrderRequest,
    ) -> Result<Decision<OrderCommand, OrderEvent>, ServiceError> {
        Ok(match respond(&state.state, &request) {
            Response::Record(command) => Decision::Act(command),
            Response::Repeat(reply) => Decision::Repeat(reply),
            Response::NotApplicable(reason) => Decision::NotApplicable(reason),
        })
    }

    /// Records `command` on the order's stream (its events are the reply) and brings `orders_view` along.
    async fn carry_out(
        &self,
        tx: &mut PgConnection,
        order_id: OrderId,
        loaded: Loaded<OrderState>,
        command: OrderCommand,
        metadata: &Metadata,
    ) -> Result<(), ServiceError> {
        let (state, events) = loaded.state.execute(command)?;
        self.ctx
            .store
            .append::<OrderState>(tx, &order_id.to_string(), loaded.version, &events, metadata)
            .await?;
        let (status, reason) = match &state {
            OrderState::Cancelled { reason, .. } => ("cancelled", Some(reason.name())),
            OrderState::Completed(_) => ("completed", None),
            OrderState::NotPlaced | OrderState::Placed(_) => ("placed", None),
        };
        sqlx::query(
            "UPDATE orders_view SET status = $2, cancel_reason = $3, ended_at = now()
             WHERE order_id = $1",
        )
        .bind(order_id.as_uuid())
        .bind(status)
        .bind(reason)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}
