//! The sagas that need attention: escalated after a step ran out of attempts, or could not be done at all
//! (a parcel dispatched before its cancellation). Each with the step that failed, whether it was a
//! compensation, the attempts and the last failure; the step is retried through [`ops::sagas::retry`], the
//! path of `orderflow saga retry`.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use ops::audit::Via;
use serde::Serialize;
use uuid::Uuid;

use crate::actions::Operator;
use crate::{Console, Problem};

/// An escalated saga.
#[derive(Clone, Debug, PartialEq, Serialize, sqlx::FromRow)]
pub struct Escalated {
    pub order_id: Uuid,
    pub escalated_at: DateTime<Utc>,
    /// The step that could not be done, e.g. `RefundPayment`.
    pub step: String,
    /// Whether it was a step of the compensation (the saga had started undoing the order).
    pub compensating: bool,
    pub attempts: i32,
    pub last_error: String,
    /// Whether retrying the step can help (it ran out of attempts, rather than could not be done at all).
    pub retryable: bool,
}

/// Every saga that needs attention, oldest first.
pub(crate) async fn list(console: &Console) -> Result<Vec<Escalated>, Problem> {
    sqlx::query_as(
        "SELECT s.order_id, e.recorded_at AS escalated_at, e.event->>'step' AS step,
                EXISTS (SELECT 1 FROM saga_events c
                        WHERE c.order_id = s.order_id AND c.event_type = 'CompensationStarted') AS compensating,
                coalesce((e.event->>'attempts')::int, 0) AS attempts,
                coalesce(e.event->>'last_error', '') AS last_error,
                coalesce((e.event->>'retryable')::boolean, true) AS retryable
         FROM sagas s
         JOIN LATERAL (SELECT event, recorded_at FROM saga_events
                       WHERE order_id = s.order_id AND event_type = 'SagaEscalated'
                       ORDER BY version DESC LIMIT 1) e ON true
         WHERE s.outcome = 'needs_attention'
         ORDER BY e.recorded_at",
    )
    .fetch_all(&console.pool)
    .await
    .map_err(Problem::unavailable)
}

/// `GET /api/sagas/attention`.
pub(crate) async fn get(State(console): State<Console>) -> Result<Json<Vec<Escalated>>, Problem> {
    Ok(Json(list(&console).await?))
}

/// What a retry did.
#[derive(Debug, Serialize)]
pub(crate) struct Retried {
    pub order_id: Uuid,
    /// The step whose command was sent again, e.g. `RefundPayment`.
    pub step: &'static str,
}

/// Retries the step the saga of order `reference` gave up on, as `operator`'s action.
///
/// # Errors
/// 400 for a reference that is not an order id; 404 for an order without a saga; 409 when its saga does
/// not need attention or retrying cannot help; nothing changed then. 503 without a schema registry (the
/// step's command could not be encoded) or when the database does not answer.
pub(crate) async fn retry(
    console: &Console,
    operator: &Operator,
    reference: &str,
) -> Result<Retried, Problem> {
    let order_id: Uuid = reference
        .parse()
        .map_err(|_| Problem::bad_request(format!("{reference:?} is not an order id (a UUID)")))?;
    let store = console.sagas.as_ref().ok_or_else(|| {
        Problem::unavailable("the console has no schema registry to encode the saga's command with")
    })?;
    let order = domain::OrderId::from_uuid(order_id)
        .map_err(|e| Problem::bad_request(format!("{reference:?} is not an order id: {e}")))?;
    let step = ops::sagas::retry(store, order, Via::Console, operator.actor())
        .await
        .map_err(|e| match e {
            ops::OperatorError::NotFound(why) => Problem::not_found(why),
            ops::OperatorError::BadInput(why) => Problem::conflict(why),
            other => Problem::unavailable(other),
        })?;
    Ok(Retried {
        order_id,
        step: step.name(),
    })
}

/// `POST /api/sagas/{order_id}/retry`.
pub(crate) async fn post_retry(
    State(console): State<Console>,
    Path(reference): Path<String>,
    operator: Operator,
) -> Result<Json<Retried>, Problem> {
    Ok(Json(retry(&console, &operator, &reference).await?))
}
