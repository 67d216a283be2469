//! One order: by its id or the idempotency key it was submitted with; its saga's timeline, each service's
//! events for it, and its payment.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{Console, Problem};

/// The longest reference the console looks up (an idempotency key is the client's; keys are short).
const MAX_REFERENCE: usize = 200;

/// Everything the order page shows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OrderDetails {
    pub order: Order,
    /// `None` before the orchestrator took the order up.
    pub saga: Option<Saga>,
    /// The saga's events, oldest first.
    pub timeline: Vec<SagaStep>,
    /// The services' events for the order (its `order`, `payment` and `delivery` streams), oldest first.
    pub events: Vec<ServiceEvent>,
    /// `None` when no payment was authorized or declined.
    pub payment: Option<Payment>,
}

/// The order as its service's view holds it.
#[derive(Clone, Debug, PartialEq, Serialize, sqlx::FromRow)]
pub struct Order {
    pub order_id: Uuid,
    pub idempotency_key: Option<String>,
    pub status: String,
    pub cancel_reason: Option<String>,
    pub total_minor: i64,
    pub currency: String,
    pub placed_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// The order's saga now.
#[derive(Clone, Debug, PartialEq, Serialize, sqlx::FromRow)]
pub struct Saga {
    pub state: String,
    /// `completed`, `compensated` or `needs_attention` once ended.
    pub outcome: Option<String>,
    pub cancel_reason: Option<String>,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// One event of the saga.
#[derive(Clone, Debug, PartialEq, Serialize, sqlx::FromRow)]
pub struct SagaStep {
    pub version: i64,
    pub event_type: String,
    pub recorded_at: DateTime<Utc>,
    pub event: serde_json::Value,
}

/// One event of a service's stream for the order.
#[derive(Clone, Debug, PartialEq, Serialize, sqlx::FromRow)]
pub struct ServiceEvent {
    /// `order`, `payment` or `delivery`.
    pub stream: String,
    pub version: i64,
    pub event_type: String,
    pub recorded_at: DateTime<Utc>,
    pub payload: serde_json::Value,
}

/// The order's payment as the payments service holds it.
#[derive(Clone, Debug, PartialEq, Serialize, sqlx::FromRow)]
pub struct Payment {
    pub status: String,
    pub amount_minor: i64,
    pub captured_minor: i64,
    pub refunded_minor: i64,
    pub currency: String,
    /// The payment at the provider.
    pub provider_ref: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// `GET /api/orders/{reference}`.
pub(crate) async fn get(
    State(console): State<Console>,
    Path(reference): Path<String>,
) -> Result<Json<OrderDetails>, Problem> {
    Ok(Json(find(&console.pool, &reference).await?))
}

/// The order `reference` names: its id, else the idempotency key it was submitted with.
///
/// # Errors
/// 400 for an empty or overlong reference; 404 when no order has that id or key.
pub async fn find(pool: &PgPool, reference: &str) -> Result<OrderDetails, Problem> {
    let reference = reference.trim();
    if reference.is_empty() {
        return Err(Problem::bad_request(
            "give an order id (a UUID) or the idempotency key it was submitted with",
        ));
    }
    if reference.len() > MAX_REFERENCE {
        return Err(Problem::bad_request(format!(
            "a reference of {} characters is neither an order id nor an idempotency key (at most {MAX_REFERENCE})",
            reference.len()
        )));
    }
    let by_id = Uuid::parse_str(reference).ok();
    let order: Option<Order> = sqlx::query_as(
        "SELECT v.order_id, s.idempotency_key, v.status, v.cancel_reason, v.total_minor, v.currency,
                v.placed_at, v.ended_at
         FROM orders_view v LEFT JOIN order_submissions s USING (order_id)
         WHERE v.order_id = $1 OR v.order_id = (SELECT order_id FROM order_submissions WHERE idempotency_key = $2)
         LIMIT 1",
    )
    .bind(by_id)
    .bind(reference)
    .fetch_optional(pool)
    .await
    .map_err(Problem::unavailable)?;
    let order = order.ok_or_else(|| {
        Problem::not_found(format!(
            "no order has the id or the idempotency key {reference:?}"
        ))
    })?;
    let id = order.order_id;
    let saga = sqlx::query_as(
        "SELECT state, outcome, cancel_reason, started_at, updated_at, ended_at FROM sagas WHERE order_id = $1",
    )
    .bind(id)
    .fetch_optional(pool);
    let timeline = sqlx::query_as(
        "SELECT version, event_type, recorded_at, event FROM saga_events WHERE order_id = $1 ORDER BY version",
    )
    .bind(id)
    .fetch_all(pool);
    let events = sqlx::query_as(
        "SELECT aggregate_type AS stream, version, event_type, recorded_at, payload FROM events
         WHERE aggregate_id = $1 ORDER BY recorded_at, aggregate_type, version",
    )
    .bind(id.to_string())
    .fetch_all(pool);
    let payment = sqlx::query_as(
        "SELECT status, amount_minor, captured_minor, refunded_minor, currency, provider_ref, updated_at
         FROM payments WHERE order_id = $1",
    )
    .bind(id)
    .fetch_optional(pool);
    let (saga, timeline, events, payment) =
        tokio::try_join!(saga, timeline, events, payment).map_err(Problem::unavailable)?;
    Ok(OrderDetails {
        order,
        saga,
        timeline,
        events,
        payment,
    })
}
