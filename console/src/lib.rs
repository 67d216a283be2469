//! The operator console (`orderflow console`, default 127.0.0.1:8090): server-rendered pages for on-call and
//! finance, and the JSON API behind them, over what the pipeline's tables and topics already hold.
//!
//! - `GET /` and `GET /api/overview`: orders by state over the last hour, sagas in flight and needing
//!   attention, the outbox backlog, consumer lag per group, dead letters per topic, replication lag per flow,
//!   given-up notifications ([`overview`]).
//! - `GET /orders?ref=ID-OR-KEY`, `GET /orders/{ref}` and `GET /api/orders/{ref}`: an order by id or
//!   idempotency key, its saga's timeline, each service's events for it, its payment ([`order`]).
//! - `GET /dead-letters[/{topic}[/{partition}/{offset}]]` and the same under `/api`: dead letters per topic,
//!   one decoded with its envelope; `POST .../redrive` redrives a selection ([`dead_letters`]).
//!
//! - `GET /sagas/attention` and `/api/sagas/attention`: the escalated sagas, each with the step that failed,
//!   whether it was compensating, its attempts and last failure; `POST /api/sagas/{order_id}/retry` (and the
//!   page's button) retries that step ([`attention`]).
//! - `GET /outbox` and `/api/outbox`: the backlog and the quarantined records; `POST
//!   .../quarantine/{id}/retry|discard` ([`outbox`]).
//!
//! - `GET /replays[/{id}]`, `GET /reconciliations[/{id}]` and the same under `/api`: the history of replays
//!   and reconciliation runs, and one run's details ([`history`]); `POST .../dry-run` starts a replay's
//!   ([`history`]) or a reconciliation's ([`reconcile`]) dry run, and shows the command that applies it.
//!
//! Actions need the console's access token and are refused from other sites (`actions`); each is a row of
//! `operator_actions`, the CLI's audit trail. On an address other than loopback, reading needs the token
//! too ([`ConsoleConfig::reads_need_token`]).
//!
//! Bad input is answered with `application/problem+json` (RFC 9457) and a 4xx status, and changes nothing.
//! The console reads; it shows no secret (no connection string, no subscriber secret). It refuses to listen
//! on an address other than loopback without an access token ([`check_listen`]), because it shows every
//! order to whoever reaches it.

mod actions;
pub mod attention;
pub mod dead_letters;
pub mod history;
pub mod order;
pub mod outbox;
pub mod overview;
mod pages;
mod problem;
pub mod reconcile;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use producers::KafkaConfig;
use producers::topics::Topics;
use sqlx::PgPool;
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;

pub use problem::Problem;

/// The console's settings.
#[derive(Clone, Debug)]
pub struct ConsoleConfig {
    /// The pipeline's topics (their prefix).
    pub topics: Topics,
    /// The pipeline's consumer groups are `<group_prefix><part>`.
    pub group_prefix: String,
    /// The regions whose replication the overview shows; none for one region.
    pub regions: Vec<ops::region::Region>,
    /// How often the replication's state is read again (it takes seconds on a busy cluster).
    pub replication_every: Duration,
    /// The access token actions need; without one the console acts on nothing.
    pub token: Option<String>,
    /// Whether reading needs the token too (every page and `/api` but `/login`): set when the console
    /// serves an address other than loopback, where whoever reaches it would otherwise see every order.
    pub reads_need_token: bool,
    /// Decodes dead letters' values to JSON and encodes the commands of retried sagas; without one dead
    /// letters are shown undecoded and sagas cannot be retried.
    pub codec: Option<Arc<schemas::AvroCodec>>,
    /// The region the console acts in: the commands of the sagas it retries are marked as written there.
    pub region: String,
}

/// What every handler shares.
#[derive(Clone)]
pub struct Console {
    pool: PgPool,
    kafka: KafkaConfig,
    config: Arc<ConsoleConfig>,
    /// Where retried sagas are written (with the pipeline's topics and saga settings); `None` without a
    /// codec.
    sagas: Option<Arc<sagas::SagaStore<Arc<schemas::AvroCodec>>>>,
    /// The newest replication state, read in the background.
    replication: Arc<RwLock<Option<ops::region::Status>>>,
    /// The lag sampled in the background, for the overview's chart.
    lag_history: Arc<tokio::sync::Mutex<std::collections::VecDeque<overview::LagSample>>>,
}

impl Console {
    #[must_use]
    pub fn new(pool: PgPool, kafka: KafkaConfig, config: ConsoleConfig) -> Self {
        let sagas = config.codec.as_ref().map(|codec| {
            Arc::new(sagas::SagaStore::new(
                pool.clone(),
                Arc::clone(codec),
                config.topics.clone(),
                config.region.clone(),
                sagas::SagaConfig::default(),
            ))
        });
        Self {
            pool,
            kafka,
            sagas,
            config: Arc::new(config),
            replication: Arc::default(),
            lag_history: Arc::default(),
        }
    }

    /// The pages and the JSON API.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", get(pages::overview::get))
            .route("/orders", get(pages::orders::search))
            .route("/orders/{reference}", get(pages::orders::get))
            .route("/dead-letters", get(pages::dead_letters::topics))
            .route("/dead-letters/{topic}", get(pages::dead_letters::list))
            .route(
                "/dead-letters/{topic}/redrive",
                post(pages::dead_letters::redrive),
            )
            .route(
                "/dead-letters/{topic}/{partition}/{offset}",
                get(pages::dead_letters::one),
            )
            .route("/sagas/attention", get(pages::attention::get))
            .route("/sagas/{order_id}/retry", post(pages::attention::retry))
            .route("/outbox", get(pages::outbox::get))
            .route(
                "/outbox/quarantine/{id}/{decision}",
                post(pages::outbox::decide),
            )
            .route("/replays", get(pages::replays::list))
            .route("/replays/dry-run", post(pages::replays::dry_run))
            .route("/replays/{id}", get(pages::replays::one))
            .route("/reconciliations", get(pages::reconciliations::list))
            .route(
                "/reconciliations/dry-run",
                post(pages::reconciliations::dry_run),
            )
            .route("/reconciliations/{id}", get(pages::reconciliations::one))
            .route("/login", get(pages::login::form).post(pages::login::submit))
            .route("/api/overview", get(overview::get))
            .route("/api/orders/{reference}", get(order::get))
            .route("/api/replays", get(history::get_replays))
            .route("/api/replays/dry-run", post(history::post_dry_run))
            .route("/api/replays/{id}", get(history::get_replay))
            .route("/api/reconciliations", get(history::get_reconciliations))
            .route(
                "/api/reconciliations/dry-run",
                post(reconcile::post_dry_run),
            )
            .route(
                "/api/reconciliations/{id}",
                get(history::get_reconciliation),
            )
            .route("/api/sagas/attention", get(attention::get))
            .route("/api/sagas/{order_id}/retry", post(attention::post_retry))
            .route("/api/outbox", get(outbox::get))
            .route("/api/outbox/quarantine/{id}/{decision}", post(outbox::post))
            .route("/api/dead-letters/{topic}", get(dead_letters::get_list))
            .route(
                "/api/dead-letters/{topic}/redrive",
                post(dead_letters::post_redrive),
            )
            .route(
                "/api/dead-letters/{topic}/{partition}/{offset}",
                get(dead_letters::get_one),
            )
            .fallback(problem::not_found)
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                guard_reads,
            ))
            .with_state(self.clone())
    }

    /// Serves the console on `listener` until `shutdown` fires, reading the replication's state in the
    /// background when regions are set.
    ///
    /// # Errors
    /// When serving fails.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        if !self.config.regions.is_empty() {
            tokio::spawn(overview::watch_replication(
                self.config.regions.clone(),
                Arc::clone(&self.replication),
                self.config.replication_every,
                shutdown.clone(),
            ));
        }
        tokio::spawn(overview::sample_lag(self.clone(), shutdown.clone()));
        let router = self.router();
        web::serve(listener, router, async move { shutdown.cancelled().await }).await
    }
}

/// With [`ConsoleConfig::reads_need_token`], lets through only the requests that carry the token (and the
/// login page): a page without it is sent to `/login`, a page's form gets the 401 page with a link there, an
/// API call gets a 401 problem. Actions check the token again, with the origin ([`actions::authorize`]).
async fn guard_reads(
    axum::extract::State(console): axum::extract::State<Console>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let path = request.uri().path();
    let token = console.config.token.as_deref().unwrap_or_default();
    if !console.config.reads_need_token || path == "/login" {
        return next.run(request).await;
    }
    match actions::authenticate(request.headers(), token, "reading the console") {
        Ok(()) => next.run(request).await,
        Err(problem) if path.starts_with("/api/") => problem.into_response(),
        // A page's form gets the refusal and a link to log in, not a redirect that hides why.
        Err(problem) if request.method() == axum::http::Method::POST => {
            pages::problem_page(&problem)
        }
        Err(_) => axum::response::Redirect::to("/login").into_response(),
    }
}

/// Refuses an address other than loopback without an access token: the console shows every order and saga
/// to whoever reaches it.
///
/// # Errors
/// A message naming the address and the setting that allows it.
pub fn check_listen(addr: SocketAddr, token: Option<&str>) -> Result<(), String> {
    if addr.ip().is_loopback() || token.is_some_and(|t| !t.is_empty()) {
        Ok(())
    } else {
        Err(format!(
            "refusing to serve the console on {addr}, which is not a loopback address, without an access token: \
             set CONSOLE_TOKEN (--token), or listen on 127.0.0.1"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_is_served_without_a_token() {
        let any: SocketAddr = "0.0.0.0:8090".parse().unwrap();
        let refused = check_listen(any, None).unwrap_err();
        assert!(
            refused.contains("0.0.0.0:8090") && refused.contains("CONSOLE_TOKEN"),
            "{refused}"
        );
        assert!(
            check_listen(any, Some("")).is_err(),
            "an empty token is none"
        );
        assert!(check_listen(any, Some("s3cret")).is_ok());
        for local in ["127.0.0.1:8090", "[::1]:8090"] {
            assert!(
                check_listen(local.parse().unwrap(), None).is_ok(),
                "{local}"
            );
        }
    }
}
