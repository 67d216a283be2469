//! The orders HTTP API: how shops and other services place orders from outside the process.
//!
//! | route | answers |
//! |---|---|
//! | `POST /orders` | 202 with the order id and a `Location` for a new order; 200 with the same for a repeat of its `Idempotency-Key`; 400, 413, 415 or 422 as `application/problem+json` (RFC 9457), naming each field at fault (`lines[1].quantity`); 429 with `Retry-After` while too many orders are in flight |
//! | `GET /orders/{id}` | 200 with the order's status, its saga's state and step, the reason when cancelled and timestamps; 404 |
//! | `GET /openapi.json` | this API described in OpenAPI 3.1 (the file `api/openapi.json`) |
//!
//! # What it promises
//! - **A 202 is a promise**: the order, its `OrderPlaced` event and the outbox record committed in one
//!   transaction before the answer; the relay publishes it and the saga drives it to a final state.
//! - **One key, one order**, also when two requests with one key race: the key is claimed in the order's
//!   transaction (`services::orders::place_order`). A repeat of the same order answers 200 with the
//!   order; the key with another order (customer, lines or address) is refused, 422.
//! - **A refused request writes nothing**: a body over [`ApiConfig::max_body_bytes`] is refused before it is
//!   read (by its `Content-Length`) or while it is (chunked); the body is validated whole before anything is
//!   written.
//! - **Admission control** ([`admission`]): while [`ApiConfig::max_backlog`] orders are in flight a new order
//!   is answered 429 at once, with `Retry-After`, instead of joining a queue whose wait grows without end. A
//!   repeat of an accepted key still gets its order.
//! - **Graceful shutdown** ([`serve`]): the listener closes first, requests in flight finish.
//!
//! ```no_run
//! # async fn run(store: outbox::EventStore<std::sync::Arc<schemas::AvroCodec>>) -> std::io::Result<()> {
//! let cancel = tokio_util::sync::CancellationToken::new();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! api::serve(listener, api::Api::new(store, api::ApiConfig::default()), cancel).await
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod admission;
mod body;
pub mod problem;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use chrono::{DateTime, SecondsFormat, Utc};
use domain::OrderId;
use outbox::EventStore;
use schemas::AvroCodec;
use serde::Serialize;
use serde_json::{Value, json};
use services::ServiceError;
use services::orders::{self, OrderView, Placed};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::admission::{Admission, Verdict};
use crate::problem::Problem;

/// The OpenAPI description of this API, served at `GET /openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// The routes, as the OpenAPI file lists them: (method, path).
pub const ROUTES: [(&str, &str); 3] = [
    ("post", "/orders"),
    ("get", "/orders/{id}"),
    ("get", "/openapi.json"),
];

/// The header a client names its submission with.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// [`ApiConfig::max_body_bytes`] unless set: 64 KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// [`ApiConfig::max_backlog`] unless set.
pub const DEFAULT_MAX_BACKLOG: i64 = 5_000;

/// Settings of the API.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Largest accepted body, in bytes (default 64 KiB).
    pub max_body_bytes: usize,
    /// Orders in flight (placed, not yet completed or cancelled) past which `POST /orders` answers 429.
    pub max_backlog: i64,
    /// How often the backlog is counted.
    pub backlog_refresh: Duration,
    /// What `Retry-After` says on a 429.
    pub retry_after: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_backlog: DEFAULT_MAX_BACKLOG,
            backlog_refresh: Duration::from_millis(200),
            retry_after: Duration::from_secs(1),
        }
    }
}

/// The API's state: the event store it places orders with, its settings and its gate.
#[derive(Clone, Debug)]
pub struct Api {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: EventStore<Arc<AvroCodec>>,
    config: ApiConfig,
    admission: Admission,
}

impl Api {
    /// An API placing orders with `store` (and reading them from its pool).
    pub fn new(store: EventStore<Arc<AvroCodec>>, config: ApiConfig) -> Self {
        let admission = Admission::new(config.max_backlog);
        Self {
            inner: Arc::new(Inner {
                store,
                config,
                admission,
            }),
        }
    }

    /// The admission gate.
    pub fn admission(&self) -> &Admission {
        &self.inner.admission
    }

    /// The routes of [`ROUTES`] (and only those) on this state.
    pub fn router(&self) -> Router {
        ROUTES
            .into_iter()
            .fold(Router::new(), |router, (method, path)| {
                router.route(path, handler(method, path))
            })
            .with_state(self.clone())
    }
}

/// The handler of one of [`ROUTES`].
fn handler(method: &str, path: &str) -> MethodRouter<Api> {
    match (method, path) {
        ("post", "/orders") => post(place),
        ("get", "/orders/{id}") => get(order),
        ("get", "/openapi.json") => {
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) })
        }
        _ => unreachable!("every route of ROUTES has its handler: {method} {path}"),
    }
}

/// Serves `api` on `listener` until `cancel` fires, counting the backlog meanwhile; then closes the listener
/// and lets the requests in flight finish.
///
/// # Errors
/// When the listener fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    api: Api,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let pool = api.inner.store.pool().clone();
    // A first count before the first request, so that a restart into a full backlog does not admit a burst.
    if let Err(e) = api.admission().count(&pool).await {
        tracing::warn!(error = %e, "cannot count the orders in flight");
    }
    let counter = {
        let api = api.clone();
        let cancel = cancel.clone();
        let every = api.inner.config.backlog_refresh;
        tokio::spawn(async move { api.admission().run(pool, every, cancel).await })
    };
    let served = web::serve(listener, api.router(), cancel.clone().cancelled_owned()).await;
    cancel.cancel();
    counter.await.ok();
    served
}

/// What `POST /orders` answers: the order's id and where to read it.
#[derive(Debug, Serialize)]
struct Accepted {
    order_id: Uuid,
    status: &'static str,
    location: String,
}

async fn place(State(api): State<Api>, request: Request) -> Response {
    match place_order(&api, request).await {
        Ok(response) => response,
        Err(problem) => {
            metrics::counter!("api_refused_total", "status" => problem.status.to_string())
                .increment(1);
            problem.into_response()
        }
    }
}

async fn place_order(api: &Api, request: Request) -> Result<Response, Problem> {
    let config = &api.inner.config;
    let (parts, body) = request.into_parts();
    let key = idempotency_key(&parts.headers)?;
    json_content_type(&parts.headers)?;
    let body = read_body(body, &parts.headers, config.max_body_bytes).await?;
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| Problem::bad_request(format!("the body is not JSON: {e}")))?;
    let order = body::order_of(&body, key.clone()).map_err(Problem::invalid_order)?;
    let ticket = match api.admission().admit() {
        Verdict::Admitted(ticket) => ticket,
        // A repeat of an accepted key still finds its order.
        Verdict::Full { backlog } => {
            return match orders::earlier_submission(api.inner.store.pool(), &key, &order).await {
                Ok(Some(order_id)) => Ok(accepted(order_id, StatusCode::OK)),
                Ok(None) => Err(Problem::busy(
                    backlog,
                    api.admission().bound(),
                    config.retry_after.as_secs().max(1),
                )),
                Err(e) => Err(problem_of(&e)),
            };
        }
    };
    match orders::place_order(&api.inner.store, order).await {
        Ok(Placed {
            order_id,
            duplicate: false,
        }) => {
            ticket.placed();
            metrics::counter!("api_orders_accepted_total").increment(1);
            Ok(accepted(order_id, StatusCode::ACCEPTED))
        }
        Ok(Placed {
            order_id,
            duplicate: true,
        }) => Ok(accepted(order_id, StatusCode::OK)),
        Err(e) => Err(problem_of(&e)),
    }
}

fn accepted(order_id: OrderId, status: StatusCode) -> Response {
    let location = format!("/orders/{order_id}");
    let mut response = (
        status,
        axum::Json(Accepted {
            order_id: order_id.as_uuid(),
            status: "placed",
            location: location.clone(),
        }),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The problem a failure of the orders service is answered with.
fn problem_of(error: &ServiceError) -> Problem {
    match error {
        ServiceError::Invalid { field, reason } => {
            Problem::invalid_order(vec![problem::FieldProblem::new(field, reason)])
        }
        ServiceError::KeyReused { .. } => Problem::key_reused(error.to_string()),
        e if e.is_transient() => {
            tracing::warn!(error = %producers::error_chain(e), "cannot place an order");
            Problem::unavailable("the order store did not answer; nothing was written")
        }
        e => {
            tracing::error!(error = %producers::error_chain(e), "cannot place an order");
            Problem::internal("the order could not be placed; nothing was written")
        }
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, Problem> {
    let value = headers.get(IDEMPOTENCY_KEY).ok_or_else(|| {
        Problem::bad_request(
            "the Idempotency-Key header is required: a key of your choosing that names this submission, \
             so that a retry never places a second order",
        )
    })?;
    let key = value
        .to_str()
        .map_err(|_| Problem::bad_request("the Idempotency-Key header must be visible ASCII"))?;
    orders::validate_key(key.to_owned())
        .map_err(|e| Problem::bad_request(format!("the Idempotency-Key header: {}", e.reason)))
}

fn json_content_type(headers: &HeaderMap) -> Result<(), Problem> {
    let got = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("?"));
    let essence = got.map(|v| {
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    match essence.as_deref() {
        Some("application/json") => Ok(()),
        Some(other) if other.starts_with("application/") && other.ends_with("+json") => Ok(()),
        _ => Err(Problem::unsupported_media_type(got)),
    }
}

/// Reads the body, refusing it as soon as it is known to be over `limit` bytes.
async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Vec<u8>, Problem> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(Problem::too_large(limit));
    }
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(e) => {
            let e = e.into_inner();
            if e.is::<http_body_util::LengthLimitError>() {
                Err(Problem::too_large(limit))
            } else {
                Err(Problem::bad_request(format!(
                    "the body could not be read: {e}"
                )))
            }
        }
    }
}

/// What `GET /orders/{id}` answers.
#[derive(Debug, Serialize)]
struct OrderAnswer {
    order_id: Uuid,
    customer_id: Uuid,
    status: String,
    cancel_reason: Option<String>,
    total: Value,
    delivery_address: Option<Value>,
    placed_at: String,
    ended_at: Option<String>,
    saga: Option<Value>,
}

async fn order(State(api): State<Api>, Path(id): Path<String>) -> Response {
    let found = async {
        let uuid = Uuid::parse_str(&id)
            .map_err(|_| Problem::not_found(format!("{id:?} is not an order id (a UUID)")))?;
        let order_id = OrderId::from_uuid(uuid)
            .map_err(|_| Problem::not_found(format!("{id} is not an order id")))?;
        let pool = api.inner.store.pool();
        let view = orders::get_order(pool, order_id)
            .await
            .map_err(|e| problem_of(&e))?
            .ok_or_else(|| Problem::not_found(format!("no order {order_id}")))?;
        let saga = sagas::queries::saga_of(pool, order_id).await.map_err(|e| {
            tracing::warn!(error = %producers::error_chain(&e), "cannot read a saga");
            Problem::unavailable("the saga store did not answer")
        })?;
        Ok::<_, Problem>(answer(view, saga))
    };
    match found.await {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(problem) => problem.into_response(),
    }
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn answer(view: OrderView, saga: Option<sagas::queries::SagaView>) -> OrderAnswer {
    OrderAnswer {
        order_id: view.order_id,
        customer_id: view.customer_id,
        status: view.status,
        cancel_reason: view.cancel_reason,
        total: json!({"minor": view.total_minor, "currency": view.currency}),
        delivery_address: view.delivery_address,
        placed_at: timestamp(view.placed_at),
        ended_at: view.ended_at.map(timestamp),
        saga: saga.map(|saga| {
            json!({
                "state": saga.state,
                "step": saga.step.map(|(step, _)| step.name()),
                "attempt": saga.step.map(|(_, attempt)| attempt),
                "outcome": saga.outcome,
                "started_at": timestamp(saga.started_at),
                "updated_at": timestamp(saga.updated_at),
                "ended_at": saga.ended_at.map(timestamp),
            })
        }),
    }
}
