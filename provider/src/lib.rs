//! A simulated payment provider (PSP): a separate party with its own HTTP API, its own books, and results
//! delivered asynchronously, as card processors deliver them (docs/adr/0008-payment-provider.md).
//!
//! | route | answers |
//! |---|---|
//! | `POST /v1/payments/{order_id}/{operation}` | `operation` is `authorize`, `capture`, `void` or `refund`; body `{"amount_minor", "currency"}`, header `Idempotency-Key`. 202 `{"reference", "status": "pending"}` for a new request, whose result comes later as a notification; 200 with the result for a repeat of the key; 504 when the call timed out (the operation may or may not have gone through); 400 naming what is wrong |
//! | `GET /v1/payments/{order_id}` | 200: every operation on the order's payment and the amounts authorized, captured and refunded; 404 |
//! | `GET /v1/settlements?from=..&to=..` | the settlement statement of a window (RFC 3339 instants, `to` excluded): CSV, one line per money movement with its reference |
//!
//! # Its books
//! `provider_requests` holds every request it decided, by (operation, idempotency key): a repeat gets the
//! same result and moves no money twice. `provider_ledger` holds every approved operation, the money
//! movements its statement lists. Both are written, with the result's notification, in one transaction.
//!
//! # Its results
//! Each decided request sends its [`OperationResult`] to the [`CallbackConfig`]'s subscriber through the
//! notifier (`notify`): signed, retried until acknowledged. The provider runs a notifier worker of its own
//! for that subscriber ([`run`]), so its knobs act on its deliveries only.
//!
//! # Its faults ([`ProviderConfig`])
//! Declines, latency, timeouts with or without the operation going through, duplicate notifications, lost
//! notifications (never sent: only reconciliation finds them), and lost acknowledgements (the receiver
//! applied and answered 2xx; the provider sends again).
#![forbid(unsafe_code)]

mod books;
mod http;

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use books::{Books, Decided, OperationView, PaymentView, statement};
pub use http::router;

/// The notification kind of a result.
pub const RESULT_KIND: &str = "payment.result";

/// The header naming a request's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// What the provider is asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    Authorize,
    Capture,
    Void,
    Refund,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Self; 4] = [Self::Authorize, Self::Capture, Self::Void, Self::Refund];

    /// The operation's name, in paths, books and results.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Authorize => "authorize",
            Self::Capture => "capture",
            Self::Void => "void",
            Self::Refund => "refund",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Operation {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|op| op.name() == name)
            .ok_or_else(|| {
                format!("unknown operation {name:?}: expected authorize, capture, void or refund")
            })
    }
}

/// The body of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amount {
    pub amount_minor: i64,
    pub currency: String,
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Approved,
    Declined,
}

impl Outcome {
    /// The outcome's name in the books.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::Declined => "declined",
        }
    }
}

/// The result of a request: the body of its notification, and of the answer to a repeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationResult {
    pub order_id: Uuid,
    pub operation: Operation,
    pub amount_minor: i64,
    pub currency: String,
    /// The provider's reference of the operation; the same for every repeat of its idempotency key.
    pub reference: String,
    pub outcome: Outcome,
    /// Why it was declined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The answer to a new request: accepted, its result to come by notification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    pub reference: String,
    /// Always `"pending"`.
    pub status: String,
}

/// Where results go: a subscriber of the notifier (the payments service's callback endpoint).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackConfig {
    /// The subscriber's name in `notify_subscribers`.
    pub subscriber: String,
    /// The URL results are POSTed to; `None`: the subscriber is registered elsewhere (`orderflow notify
    /// subscribe`), and the provider leaves it as it is.
    pub url: Option<String>,
    /// The secret results are signed with; the receiver checks it.
    pub secret: String,
}

impl Default for CallbackConfig {
    fn default() -> Self {
        Self {
            subscriber: "payments".into(),
            url: None,
            secret: "orderflow-provider-secret".into(),
        }
    }
}

/// How the simulated provider behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct ProviderConfig {
    /// Share of authorizations declined, in [0, 1]. Decided per order from the seed, so a retry of the same
    /// order gets the same answer.
    pub decline_rate: f64,
    /// How long every call takes.
    pub latency: Duration,
    /// Share of calls that time out (answered 504), in [0, 1].
    pub timeout_rate: f64,
    /// Share of timeouts whose operation went through before the answer was lost, in [0, 1].
    pub charge_before_timeout: f64,
    /// Share of results notified twice (two notifications, one result), in [0, 1].
    pub duplicate_notification_rate: f64,
    /// Share of results never notified, in [0, 1]: only a repeat of the request or reconciliation finds
    /// them.
    pub lost_notification_rate: f64,
    /// Share of the receiver's acknowledgements lost on the way back, in [0, 1]: the result is sent again.
    pub lost_ack_rate: f64,
    /// Seed of every simulated decision.
    pub seed: u64,
    /// Where results go.
    pub callback: CallbackConfig,
    /// How the provider's notifier worker sends them (its scope and lost acknowledgements are set by [`run`]).
    pub notifier: notify::NotifierConfig,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        Self {
            decline_rate: 0.05,
            latency: Duration::from_millis(2),
            timeout_rate: 0.01,
            charge_before_timeout: 0.5,
            duplicate_notification_rate: 0.01,
            lost_notification_rate: 0.0,
            lost_ack_rate: 0.0,
            seed: 42,
            callback: CallbackConfig::default(),
            notifier: notify::NotifierConfig {
                // Results are on the payment's critical path: look often.
                poll_interval: Duration::from_millis(20),
                batch: 64,
                ..notify::NotifierConfig::default()
            },
        }
    }
}

impl ProviderConfig {
    /// A provider without faults: it declines, times out, loses and repeats nothing, at once. Its results
    /// go to the default subscriber.
    #[must_use]
    pub fn without_faults() -> Self {
        Self {
            decline_rate: 0.0,
            latency: Duration::ZERO,
            timeout_rate: 0.0,
            duplicate_notification_rate: 0.0,
            lost_notification_rate: 0.0,
            lost_ack_rate: 0.0,
            ..Self::default()
        }
    }
}

/// What can go wrong in the provider.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("cannot notify the result")]
    Notify(#[from] notify::NotifyError),
    #[error("cannot serve on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Registers `callback`'s subscriber, when its URL is set.
async fn register(pool: &PgPool, callback: &CallbackConfig) -> Result<(), ProviderError> {
    if let Some(url) = &callback.url {
        let subscriber = notify::Subscriber {
            name: callback.subscriber.clone(),
            url: url.clone(),
            secret: callback.secret.clone(),
            kinds: Vec::new(),
        };
        notify::subscribe(pool, &subscriber).await?;
    }
    Ok(())
}

/// The provider's API served by this process on an ephemeral port of 127.0.0.1, without a notifier of its
/// own (its results wait in `notifications` for whoever sends them): for tools and tests. Stops on drop.
#[derive(Debug)]
pub struct LocalProvider {
    url: String,
    stop: CancellationToken,
}

impl LocalProvider {
    /// Serves a provider behaving as `config` over the books in `pool`, whose database is migrated; registers
    /// where its results go when [`CallbackConfig::url`] is set.
    ///
    /// # Errors
    /// When the subscriber cannot be registered, or no local port can be bound.
    pub async fn start(pool: PgPool, config: ProviderConfig) -> Result<Self, ProviderError> {
        register(&pool, &config.callback).await?;
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        let listen = |source| ProviderError::Listen { addr, source };
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(listen)?;
        let url = format!("http://{}", listener.local_addr().map_err(listen)?);
        let stop = CancellationToken::new();
        let app = router(Books::new(pool, config));
        let stopped = stop.clone().cancelled_owned();
        tokio::spawn(async move {
            if let Err(e) = web::serve(listener, app, stopped).await {
                tracing::error!(error = %e, "the local provider failed");
            }
        });
        Ok(Self { url, stop })
    }

    /// Where its API is.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for LocalProvider {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Serves the provider's API on `listener` and sends its results until `cancel`: registers the callback
/// subscriber (when [`CallbackConfig::url`] is set) and runs a notifier worker for it alone.
///
/// # Errors
/// When the subscriber cannot be registered, the notifier cannot start, or serving fails.
pub async fn run(
    pool: PgPool,
    config: ProviderConfig,
    listener: tokio::net::TcpListener,
    cancel: CancellationToken,
) -> Result<(), ProviderError> {
    // A token of our own: serving that fails stops the notifier, not the caller's other tasks.
    let cancel = cancel.child_token();
    let callback = &config.callback;
    register(&pool, callback).await?;
    let notifier_config = notify::NotifierConfig {
        scope: notify::Scope::Only(vec![callback.subscriber.clone()]),
        lost_ack_rate: config.lost_ack_rate,
        ..config.notifier.clone()
    };
    let notifier = notify::Notifier::new(pool.clone(), notifier_config)?;
    let sending = tokio::spawn(notifier.run(cancel.clone()));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    tracing::info!(%addr, subscriber = %callback.subscriber, "payment provider listening");
    let app = router(Books::new(pool, config));
    let served = web::serve(listener, app, cancel.clone().cancelled_owned())
        .await
        .map_err(|source| ProviderError::Listen { addr, source });
    cancel.cancel();
    if let Err(e) = sending.await {
        tracing::error!(error = %e, "the provider's notifier panicked");
    }
    served
}
