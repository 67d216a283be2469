//! The sagas that need attention: escalated after a step ran out of attempts, or could not be done at all
//! (a parcel dispatched before its cancellation). Each with the step that failed, whether it was a
//! compensation, the attempts and the last failure.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

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
}

/// Every saga that needs attention, oldest first.
pub(crate) async fn list(console: &Console) -> Result<Vec<Escalated>, Problem> {
    sqlx::query_as(
        "SELECT s.order_id, e.recorded_at AS escalated_at, e.event->>'step' AS step,
                EXISTS (SELECT 1 FROM saga_events c
                        WHERE c.order_id = s.order_id AND c.event_type = 'CompensationStarted') AS compensating,
                coalesce((e.event->>'attempts')::int, 0) AS attempts,
                coalesce(e.event->>'last_error', '') AS last_error
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
