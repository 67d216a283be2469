//! The provider's HTTP API (the table in the crate's documentation).

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::{Accepted, Amount, Books, Decided, IDEMPOTENCY_KEY, Operation};

/// The longest idempotency key accepted.
const MAX_KEY_LEN: usize = 200;

/// The provider's routes over `books`.
pub fn router(books: Books) -> Router {
    Router::new()
        .route("/v1/payments/{order_id}/{operation}", post(operate))
        .route("/v1/payments/{order_id}", get(payment))
        .route("/v1/settlements", get(settlements))
        .with_state(Arc::new(books))
}

/// A 4xx or 5xx, answered with a JSON body naming the problem.
#[derive(Debug)]
struct Problem {
    status: StatusCode,
    detail: String,
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        (self.status, axum::Json(json!({ "error": self.detail }))).into_response()
    }
}

fn problem(status: StatusCode, detail: impl Into<String>) -> Problem {
    Problem {
        status,
        detail: detail.into(),
    }
}

fn order_id(raw: &str) -> Result<Uuid, Problem> {
    raw.parse().map_err(|_| {
        problem(
            StatusCode::BAD_REQUEST,
            format!("order id {raw:?} is not a UUID"),
        )
    })
}

/// The idempotency key: letters, digits and `-._:`, at most [`MAX_KEY_LEN`] characters.
fn idempotency_key(headers: &HeaderMap) -> Result<&str, Problem> {
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .ok_or_else(|| {
            problem(
                StatusCode::BAD_REQUEST,
                "the Idempotency-Key header is missing",
            )
        })?
        .to_str()
        .unwrap_or_default();
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._:".contains(c);
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.chars().all(allowed) {
        return Err(problem(
            StatusCode::BAD_REQUEST,
            format!(
                "the Idempotency-Key must be 1 to {MAX_KEY_LEN} letters, digits or -._: characters"
            ),
        ));
    }
    Ok(key)
}

async fn operate(
    State(books): State<Arc<Books>>,
    Path((order, operation)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<axum::Json<Amount>, JsonRejection>,
) -> Result<Response, Problem> {
    let order_id = order_id(&order)?;
    let operation: Operation = operation
        .parse()
        .map_err(|e: String| problem(StatusCode::NOT_FOUND, e))?;
    let key = idempotency_key(&headers)?;
    let axum::Json(amount) = body.map_err(|e| {
        problem(
            StatusCode::BAD_REQUEST,
            format!("the body is not {{\"amount_minor\", \"currency\"}}: {e}"),
        )
    })?;
    if amount.amount_minor < 0 {
        return Err(problem(
            StatusCode::BAD_REQUEST,
            "amount_minor must not be negative",
        ));
    }
    if amount.currency.len() != 3 || !amount.currency.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(problem(
            StatusCode::BAD_REQUEST,
            format!("currency {:?} is not an ISO 4217 code", amount.currency),
        ));
    }
    let decided = books
        .request(operation, order_id, &amount, key)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, %order_id, %operation, "provider request failed");
            problem(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        })?;
    Ok(match decided {
        Decided::New(result) => (
            StatusCode::ACCEPTED,
            axum::Json(Accepted {
                reference: result.reference,
                status: "pending".into(),
            }),
        )
            .into_response(),
        Decided::Repeat(result) => (StatusCode::OK, axum::Json(result)).into_response(),
        Decided::TimedOut => {
            problem(StatusCode::GATEWAY_TIMEOUT, "the request timed out").into_response()
        }
        Decided::KeyReused(why) => problem(StatusCode::UNPROCESSABLE_ENTITY, why).into_response(),
    })
}

async fn payment(
    State(books): State<Arc<Books>>,
    Path(order): Path<String>,
) -> Result<axum::Json<crate::PaymentView>, Problem> {
    let order_id = order_id(&order)?;
    books
        .payment(order_id)
        .await
        .map_err(|e| {
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("database error: {e}"),
            )
        })?
        .map(axum::Json)
        .ok_or_else(|| {
            problem(
                StatusCode::NOT_FOUND,
                format!("no payment for order {order_id}"),
            )
        })
}

#[derive(Deserialize)]
struct Window {
    from: Option<String>,
    to: Option<String>,
}

fn instant(name: &str, raw: Option<&str>) -> Result<DateTime<Utc>, Problem> {
    let raw = raw.ok_or_else(|| {
        problem(
            StatusCode::BAD_REQUEST,
            format!("the query parameter {name} is missing"),
        )
    })?;
    DateTime::parse_from_rfc3339(raw)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|e| {
            problem(
                StatusCode::BAD_REQUEST,
                format!("{name}={raw:?} is not an RFC 3339 instant: {e}"),
            )
        })
}

async fn settlements(
    State(books): State<Arc<Books>>,
    Query(window): Query<Window>,
) -> Result<Response, Problem> {
    let from = instant("from", window.from.as_deref())?;
    let to = instant("to", window.to.as_deref())?;
    if from >= to {
        return Err(problem(
            StatusCode::BAD_REQUEST,
            format!("the window is empty: from {from} is not before to {to}"),
        ));
    }
    let csv = crate::statement(books.pool(), from, to)
        .await
        .map_err(|e| {
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("database error: {e}"),
            )
        })?;
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response())
}
