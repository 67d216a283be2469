//! The endpoint the provider's results come in at: `POST /provider/results`, from the notifier.
//!
//! A result is applied only when its signature checks (401 otherwise, nothing applied), once per
//! notification id (the inbox) and once per provider reference ([`Recorder`]), in one transaction; the
//! answer is 200 only after that transaction committed, so a result acknowledged is a result recorded. A
//! failure that may pass is answered 503: the notifier sends it again.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use notify::signature::{self, ID_HEADER, SIGNATURE_HEADER};
use outbox::Metadata;
use provider::OperationResult;
use sqlx::PgPool;
use uuid::Uuid;

use super::{CALLBACK_PATH, Recorded, Recorder};
use crate::ServiceError;

/// The inbox's consumer group of the callback endpoint.
pub const INBOX_GROUP: &str = "payments-provider-results";

struct Endpoint {
    pool: PgPool,
    recorder: Recorder,
    secret: String,
}

/// The callback endpoint's routes: results recorded with `recorder` on `pool`, signed with `secret`.
pub fn router(pool: PgPool, recorder: Recorder, secret: String) -> Router {
    let endpoint = Endpoint {
        pool,
        recorder,
        secret,
    };
    Router::new()
        .route(CALLBACK_PATH, post(receive))
        .with_state(Arc::new(endpoint))
}

async fn receive(
    State(endpoint): State<Arc<Endpoint>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let outcome = |outcome: &'static str| {
        metrics::counter!("payments_results_received_total", "outcome" => outcome).increment(1);
    };
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let now = chrono::Utc::now().timestamp();
    if let Err(refused) = signature::verify(
        endpoint.secret.as_bytes(),
        header(SIGNATURE_HEADER),
        &body,
        now,
        signature::DEFAULT_TOLERANCE,
    ) {
        outcome("refused");
        tracing::warn!(%refused, "a provider result with a bad signature refused");
        return (StatusCode::UNAUTHORIZED, refused.to_string());
    }
    let Some(id) = header(ID_HEADER).and_then(|v| v.parse::<Uuid>().ok()) else {
        outcome("malformed");
        return (
            StatusCode::BAD_REQUEST,
            format!("the {ID_HEADER} header is not a UUID"),
        );
    };
    let result: OperationResult = match serde_json::from_slice(&body) {
        Ok(result) => result,
        Err(e) => {
            outcome("malformed");
            return (
                StatusCode::BAD_REQUEST,
                format!("not a provider result: {e}"),
            );
        }
    };
    match apply(&endpoint, id, &result).await {
        Ok(recorded) => {
            outcome(match recorded {
                None => "repeat",
                Some(Recorded::Applied) => "applied",
                Some(Recorded::Already) => "already",
                Some(Recorded::Conflict(_)) => "conflict",
            });
            (StatusCode::OK, String::new())
        }
        Err(e) if e.is_transient() => {
            outcome("failed");
            tracing::warn!(error = %e, %id, "recording a provider result failed; the notifier will send it again");
            (StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
        Err(e) => {
            outcome("invalid");
            tracing::error!(error = %e, %id, ?result, "a provider result cannot be recorded");
            (StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
        }
    }
}

/// Claims notification `id` and records `result` in one transaction; `None` when the id was applied before.
async fn apply(
    endpoint: &Endpoint,
    id: Uuid,
    result: &OperationResult,
) -> Result<Option<Recorded>, ServiceError> {
    let mut tx = endpoint.pool.begin().await?;
    if !consumers::inbox::claim(&mut tx, INBOX_GROUP, id, "provider").await? {
        return Ok(None);
    }
    let metadata = Metadata::new(result.order_id).caused_by(id);
    let recorded = endpoint.recorder.record(&mut tx, result, &metadata).await?;
    tx.commit().await?;
    Ok(Some(recorded))
}
