//! Payments against the provider as a separate party over HTTP: requests are accepted, results come back as
//! signed notifications to the callback endpoint; nothing is charged twice under timeouts, retries, duplicate
//! requests, duplicate or repeated notifications; the reply contract; a Kafka round trip.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use consumers::HandlerError;
use domain::{Currency, Money, OrderId, PaymentRequest, Service};
use notify::{Notifier, NotifierConfig, Schedule, Scope, Subscriber};
use provider::{Books, ProviderConfig};
use services::payments::{
    self, CALLBACK_PATH, Payments, PaymentsConfig, PaymentsHandler, ProviderClient,
};
use tokio_util::sync::CancellationToken;

const SECRET: &str = "test-provider-secret";
const SUBSCRIBER: &str = "payments";

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR).unwrap()
}

/// A provider that declines `decline_rate` of authorizations, times out on `timeout_rate` of calls after
/// acting, and notifies `duplicate_rate` of results twice.
fn provider(decline_rate: f64, timeout_rate: f64, duplicate_rate: f64) -> ProviderConfig {
    let mut config = ProviderConfig {
        decline_rate,
        latency: Duration::ZERO,
        timeout_rate,
        charge_before_timeout: 1.0,
        duplicate_notification_rate: duplicate_rate,
        seed: 1,
        ..ProviderConfig::default()
    };
    config.callback.subscriber = SUBSCRIBER.into();
    config.callback.secret = SECRET.into();
    config
}

fn free_port() -> SocketAddr {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap()
}

/// Serves `app` on 127.0.0.1:0 until `stop`; returns where.
async fn serve(app: axum::Router, stop: &CancellationToken) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
            .unwrap();
    });
    addr
}

/// The provider's results go to this test's callback endpoint, sent on demand ([`Rig::deliver`]).
struct Rig {
    /// Where the callback endpoint listens (the subscriber's URL).
    callback: SocketAddr,
    stop: CancellationToken,
}

impl Rig {
    /// Registers the callback endpoint as the provider's subscriber; `serve_callback` also serves it here
    /// (a test of `services::run` leaves that to the service).
    async fn new(env: &common::Env, serve_callback: bool) -> Self {
        let stop = CancellationToken::new();
        let callback = if serve_callback {
            let recorder = payments::Recorder::new(env.context());
            let app = payments::callback::router(env.db.pool().clone(), recorder, SECRET.into());
            serve(app, &stop).await
        } else {
            free_port()
        };
        let subscriber = Subscriber {
            name: SUBSCRIBER.into(),
            url: format!("http://{callback}{CALLBACK_PATH}"),
            secret: SECRET.into(),
            kinds: Vec::new(),
        };
        notify::subscribe(env.db.pool(), &subscriber).await.unwrap();
        Self { callback, stop }
    }

    /// A payments handler calling a provider that behaves as `config` says.
    async fn handler(&self, env: &common::Env, config: ProviderConfig) -> PaymentsHandler {
        let url = self.provider(env, config).await;
        PaymentsHandler::from(Payments::new(
            env.context(),
            ProviderClient::new(&url, Duration::from_secs(5)).unwrap(),
            PaymentsConfig::default(),
        ))
    }

    /// Serves a provider over the test's database; returns its URL.
    async fn provider(&self, env: &common::Env, config: ProviderConfig) -> String {
        let app = provider::router(Books::new(env.db.pool().clone(), config));
        format!("http://{}", serve(app, &self.stop).await)
    }

    /// Sends the provider's results until none is pending, each attempt's acknowledgement lost at
    /// `lost_ack_rate`, at most `attempts` attempts each.
    async fn deliver_with(env: &common::Env, lost_ack_rate: f64, attempts: usize) {
        let schedule = vec!["10ms"; attempts.saturating_sub(1)].join(",");
        let config = NotifierConfig {
            schedule: schedule.parse::<Schedule>().unwrap().with_jitter(0.0),
            scope: Scope::Only(vec![SUBSCRIBER.into()]),
            lost_ack_rate,
            request_timeout: Duration::from_secs(5),
            ..NotifierConfig::default()
        };
        let notifier = Notifier::new(env.db.pool().clone(), config).unwrap();
        let started = Instant::now();
        loop {
            let tried = notifier.send_due().await.unwrap();
            if tried == 0 {
                let pending: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM notifications WHERE status = 'pending'",
                )
                .fetch_one(env.db.pool())
                .await
                .unwrap();
                if pending == 0 || started.elapsed() > Duration::from_secs(20) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    /// Sends the provider's results until each is acknowledged (three attempts at most).
    async fn deliver(env: &common::Env) {
        Self::deliver_with(env, 0.0, 3).await;
    }

    /// Applies each of `requests`, in order, as records of the payments commands topic, and delivers the
    /// provider's results after each; each must succeed.
    async fn apply_all(
        env: &common::Env,
        handler: &PaymentsHandler,
        requests: impl IntoIterator<Item = PaymentRequest>,
    ) {
        let commands = env.config.topics.commands(Service::Payments);
        for request in requests {
            let record = env.incoming(&commands, &request).await;
            env.apply(handler, &record).await.unwrap();
            Self::deliver(env).await;
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The provider's money movements for `order_id`, in the order it booked them.
async fn ledger_ops(env: &common::Env, order_id: OrderId) -> Vec<(String, i64)> {
    sqlx::query_as(
        "SELECT operation, amount_minor FROM provider_ledger WHERE order_id = $1 ORDER BY id",
    )
    .bind(order_id.as_uuid())
    .fetch_all(env.db.pool())
    .await
    .unwrap()
}

/// The event types of the replies written to `payments.events`, in order.
async fn reply_types(env: &common::Env) -> Vec<String> {
    let events = env.config.topics.events(Service::Payments);
    env.outbox(&events)
        .await
        .into_iter()
        .map(|(_, d)| d.event_type)
        .collect()
}

#[tokio::test]
async fn timeouts_retries_duplicate_requests_and_notifications_never_charge_twice() {
    let env = common::Env::new().await;
    let rig = Rig::new(&env, true).await;
    let commands = env.config.topics.commands(Service::Payments);
    let events = env.config.topics.events(Service::Payments);
    let order_id = OrderId::new();
    let authorize = PaymentRequest::AuthorizePayment {
        order_id,
        amount: eur(4399),
    };
    let record = env.incoming(&commands, &authorize).await;

    // The provider charges, then the answer is lost: transient, retried in place, three times.
    let timing_out = rig.handler(&env, provider(0.0, 1.0, 0.0)).await;
    for _ in 0..3 {
        let result = env.apply(&timing_out, &record).await;
        assert!(
            matches!(result, Err(HandlerError::Transient(_))),
            "{result:?}"
        );
    }
    assert_eq!(
        ledger_ops(&env, order_id).await,
        [("authorize".to_owned(), 4399)]
    );
    assert!(
        env.outbox(&events).await.is_empty(),
        "no reply before a result"
    );

    // The retry gets the result as the answer to its repeated key, and records it; the notification of
    // the same result comes after, twice over, and records nothing more.
    let answering = rig.handler(&env, provider(0.0, 0.0, 1.0)).await;
    env.apply(&answering, &record).await.unwrap();
    Rig::deliver(&env).await;
    // The saga asks again (a new request, a new event id).
    let again = env.incoming(&commands, &authorize).await;
    env.apply(&answering, &again).await.unwrap();
    assert_eq!(
        ledger_ops(&env, order_id).await,
        [("authorize".to_owned(), 4399)]
    );
    let replies = env.outbox(&events).await;
    assert_eq!(replies.len(), 2, "one reply per request: {replies:?}");
    assert!(
        replies
            .iter()
            .all(|(key, d)| key == &order_id.to_string() && d.event_type == "PaymentAuthorized")
    );
    assert_eq!(
        replies[0].1.event, replies[1].1.event,
        "the repeat gets the same reply"
    );

    // Capture twice, refund part, then a void after capture tells the truth. Every result is notified
    // twice.
    let capture = PaymentRequest::CapturePayment { order_id };
    Rig::apply_all(
        &env,
        &answering,
        [
            capture.clone(),
            capture,
            PaymentRequest::RefundPayment {
                order_id,
                amount: eur(1000),
            },
            PaymentRequest::VoidPayment { order_id },
        ],
    )
    .await;
    assert_eq!(
        ledger_ops(&env, order_id).await,
        [
            ("authorize".to_owned(), 4399),
            ("capture".to_owned(), 4399),
            ("refund".to_owned(), 1000)
        ]
    );
    assert_eq!(
        reply_types(&env).await,
        [
            "PaymentAuthorized",
            "PaymentAuthorized",
            "PaymentCaptured",
            "PaymentCaptured",
            "PaymentRefunded",
            "PaymentCaptured"
        ]
    );
    let row = payments::get_payment(env.db.pool(), order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.status.as_str(), row.captured_minor, row.refunded_minor),
        ("captured", 4399, 1000)
    );
    // A refund past the captured amount is refused with a reason, and charges nothing.
    let too_much = env
        .incoming(
            &commands,
            &PaymentRequest::RefundPayment {
                order_id,
                amount: eur(4000),
            },
        )
        .await;
    assert!(matches!(
        env.apply(&answering, &too_much).await,
        Err(HandlerError::Poison(_))
    ));
    assert_eq!(ledger_ops(&env, order_id).await.len(), 3);
}

#[tokio::test]
async fn declines_and_undo_of_nothing_get_their_replies() {
    let env = common::Env::new().await;
    let rig = Rig::new(&env, true).await;
    let commands = env.config.topics.commands(Service::Payments);
    let events = env.config.topics.events(Service::Payments);
    let declining = rig.handler(&env, provider(1.0, 0.0, 0.0)).await;
    let declined = OrderId::new();
    let nothing = OrderId::new();
    Rig::apply_all(
        &env,
        &declining,
        [
            PaymentRequest::AuthorizePayment {
                order_id: declined,
                amount: eur(500),
            },
            PaymentRequest::AuthorizePayment {
                order_id: declined,
                amount: eur(500),
            },
            PaymentRequest::VoidPayment { order_id: declined },
            PaymentRequest::VoidPayment { order_id: nothing },
        ],
    )
    .await;
    let replies = env.outbox(&events).await;
    let seen: Vec<(String, &str)> = replies
        .iter()
        .map(|(key, d)| (key.clone(), d.event_type.as_str()))
        .collect();
    let (d, n) = (declined.to_string(), nothing.to_string());
    assert_eq!(
        seen,
        [
            (d.clone(), "PaymentDeclined"),
            (d.clone(), "PaymentDeclined"),
            (d, "PaymentVoided"),
            (n.clone(), "PaymentVoided"),
        ]
    );
    assert_eq!(replies[0].1.event, replies[1].1.event);
    assert_eq!(replies[2].1.event["amount"]["minor"], 0);
    assert_eq!(replies[3].1.event["payment_id"], n);
    assert_eq!(replies[3].1.event["amount"]["minor"], 0);
    assert!(
        ledger_ops(&env, declined).await.is_empty(),
        "a decline charges nothing"
    );
    // The void of nothing was recorded, and sent to the provider in case an authorization got there.
    assert_eq!(ledger_ops(&env, nothing).await, [("void".to_owned(), 0)]);
    // A capture with no payment at all is poison: dead-lettered, no reply, no charge.
    let unknown = OrderId::new();
    let capture = env
        .incoming(
            &commands,
            &PaymentRequest::CapturePayment { order_id: unknown },
        )
        .await;
    assert!(matches!(
        env.apply(&declining, &capture).await,
        Err(HandlerError::Poison(_))
    ));
    assert!(ledger_ops(&env, unknown).await.is_empty());
}

/// The service as it runs: its consumer, and the callback endpoint it listens on, with a provider whose
/// notifier sends the results.
#[tokio::test]
async fn kafka_round_trip_authorize() {
    let mut env = common::Env::new().await;
    let rig = Rig::new(&env, false).await;
    let provider_url = rig.provider(&env, provider(0.0, 0.0, 0.0)).await;
    env.config.payments.provider_url = provider_url;
    env.config.payments.callback.listen = rig.callback;
    env.config.payments.callback.secret = SECRET.into();
    let pipeline = env
        .start_pipeline(|pool, kafka, codec, config, stop| async move {
            services::run(Service::Payments, pool, &kafka, codec, &config, stop).await
        })
        .await;
    let notifier = {
        let config = NotifierConfig {
            poll_interval: Duration::from_millis(20),
            ..NotifierConfig::default()
        };
        let notifier = Notifier::new(env.db.pool().clone(), config).unwrap();
        tokio::spawn(notifier.run(rig.stop.clone()))
    };
    let order_id = OrderId::new();
    let request = PaymentRequest::AuthorizePayment {
        order_id,
        amount: eur(4399),
    };
    let commands = env.config.topics.commands(Service::Payments);
    pipeline.send(&env.codec, &commands, &request).await;
    let replies = pipeline
        .replies(&env.codec, &env.config.topics.events(Service::Payments), 1)
        .await;
    assert_eq!(replies.len(), 1);
    let (key, _, decoded) = &replies[0];
    assert_eq!(key, &order_id.to_string());
    let event: domain::PaymentEvent = serde_json::from_value(decoded.event.clone()).unwrap();
    assert!(
        matches!(event, domain::PaymentEvent::Authorized { amount, .. } if amount == eur(4399)),
        "{event:?}"
    );
    pipeline.stop().await;
    drop(rig);
    notifier.await.unwrap();
    assert_eq!(
        ledger_ops(&env, order_id).await,
        [("authorize".to_owned(), 4399)]
    );
}

#[tokio::test]
async fn a_refund_the_saga_asks_again_after_a_lost_answer_refunds_once() {
    let env = common::Env::new().await;
    let rig = Rig::new(&env, true).await;
    let commands = env.config.topics.commands(Service::Payments);
    let answering = rig.handler(&env, provider(0.0, 0.0, 0.0)).await;
    let order_id = OrderId::new();
    Rig::apply_all(
        &env,
        &answering,
        [
            PaymentRequest::AuthorizePayment {
                order_id,
                amount: eur(2500),
            },
            PaymentRequest::CapturePayment { order_id },
        ],
    )
    .await;
    let refund = PaymentRequest::RefundPayment {
        order_id,
        amount: eur(2500),
    };
    // The provider refunds, then its answer is lost.
    let first = env.incoming(&commands, &refund).await;
    let timing_out = rig.handler(&env, provider(0.0, 1.0, 0.0)).await;
    let lost = env.apply(&timing_out, &first).await;
    assert!(matches!(lost, Err(HandlerError::Transient(_))), "{lost:?}");
    // The saga's step times out and it asks again: the same refund, in a record with a new event id.
    let again = env.incoming(&commands, &refund).await;
    env.apply(&answering, &again).await.unwrap();
    Rig::deliver(&env).await;

    assert_eq!(
        ledger_ops(&env, order_id).await,
        [
            ("authorize".to_owned(), 2500),
            ("capture".to_owned(), 2500),
            ("refund".to_owned(), 2500)
        ],
        "the customer is refunded once"
    );
    assert_eq!(
        reply_types(&env).await,
        ["PaymentAuthorized", "PaymentCaptured", "PaymentRefunded"]
    );
}

/// Each partition worker holds a transaction across the provider call, and the callback endpoint records
/// on the same pool: with one connection, results still get recorded.
#[tokio::test]
async fn payments_on_a_one_connection_pool_still_authorize() {
    let mut env = common::Env::new().await;
    let rig = Rig::new(&env, false).await;
    env.config.payments.provider_url = rig.provider(&env, provider(0.0, 0.0, 0.0)).await;
    env.config.payments.callback.listen = rig.callback;
    env.config.payments.callback.secret = SECRET.into();
    let pipeline = env
        .start_pipeline(|pool, kafka, codec, config, stop| async move {
            let single = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(2))
                .connect_with((*pool.connect_options()).clone())
                .await
                .unwrap();
            services::run(Service::Payments, single, &kafka, codec, &config, stop).await
        })
        .await;
    let notifier = {
        let config = NotifierConfig {
            poll_interval: Duration::from_millis(20),
            ..NotifierConfig::default()
        };
        let notifier = Notifier::new(env.db.pool().clone(), config).unwrap();
        tokio::spawn(notifier.run(rig.stop.clone()))
    };
    let order_id = OrderId::new();
    let request = PaymentRequest::AuthorizePayment {
        order_id,
        amount: eur(1200),
    };
    pipeline
        .send(
            &env.codec,
            &env.config.topics.commands(Service::Payments),
            &request,
        )
        .await;
    let replies = pipeline
        .replies(&env.codec, &env.config.topics.events(Service::Payments), 1)
        .await;
    pipeline.stop().await;
    drop(rig);
    notifier.await.unwrap();
    assert_eq!(replies[0].2.event_type, "PaymentAuthorized");
    assert_eq!(
        ledger_ops(&env, order_id).await,
        [("authorize".to_owned(), 1200)]
    );
}

/// Issue 11, finding 1, with a lost notification: an authorization approved at the provider whose result
/// never reached the service, then the saga's `VoidPayment`, then an operator's redrive of the
/// authorization.
#[tokio::test]
async fn a_void_before_the_authorization_is_voided_at_the_provider_and_remembered() {
    let env = common::Env::new().await;
    let rig = Rig::new(&env, true).await;
    let commands = env.config.topics.commands(Service::Payments);
    let order_id = OrderId::new();
    let authorize = PaymentRequest::AuthorizePayment {
        order_id,
        amount: eur(3000),
    };
    // The provider approves; its result is never notified.
    let losing = rig
        .handler(
            &env,
            ProviderConfig {
                lost_notification_rate: 1.0,
                ..provider(0.0, 0.0, 0.0)
            },
        )
        .await;
    let record = env.incoming(&commands, &authorize).await;
    env.apply(&losing, &record).await.unwrap();
    Rig::deliver(&env).await;
    assert!(reply_types(&env).await.is_empty(), "no result, no reply");

    let answering = rig.handler(&env, provider(0.0, 0.0, 0.0)).await;
    Rig::apply_all(
        &env,
        &answering,
        [PaymentRequest::VoidPayment { order_id }, authorize],
    )
    .await;
    assert_eq!(
        ledger_ops(&env, order_id).await,
        [("authorize".to_owned(), 3000), ("void".to_owned(), 0)],
        "the hold is released at the provider, and the redrive authorizes nothing"
    );
    assert_eq!(
        reply_types(&env).await,
        ["PaymentVoided", "PaymentDeclined"]
    );
    let row = payments::get_payment(env.db.pool(), order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, "voided");
}

#[tokio::test]
async fn two_partial_refunds_both_reach_the_provider() {
    let env = common::Env::new().await;
    let rig = Rig::new(&env, true).await;
    let answering = rig.handler(&env, provider(0.0, 0.0, 0.0)).await;
    let order_id = OrderId::new();
    let refund = PaymentRequest::RefundPayment {
        order_id,
        amount: eur(1000),
    };
    Rig::apply_all(
        &env,
        &answering,
        [
            PaymentRequest::AuthorizePayment {
                order_id,
                amount: eur(3000),
            },
            PaymentRequest::CapturePayment { order_id },
            refund.clone(),
            refund,
        ],
    )
    .await;
    assert_eq!(
        ledger_ops(&env, order_id).await,
        [
            ("authorize".to_owned(), 3000),
            ("capture".to_owned(), 3000),
            ("refund".to_owned(), 1000),
            ("refund".to_owned(), 1000)
        ]
    );
    let row = payments::get_payment(env.db.pool(), order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.refunded_minor, 2000);
}

/// The provider references the service kept, sorted.
async fn kept_operations(env: &common::Env, order_id: OrderId) -> Vec<(String, String, i64)> {
    sqlx::query_as(
        "SELECT operation, provider_ref, amount_minor FROM payment_operations
         WHERE order_id = $1 ORDER BY operation, provider_ref",
    )
    .bind(order_id.as_uuid())
    .fetch_all(env.db.pool())
    .await
    .unwrap()
}

/// Reconciliation matches the service's books to the provider's by reference: every operation the provider
/// did is kept with its reference, partial refunds one each.
#[tokio::test]
async fn every_provider_operation_is_kept_with_its_reference() {
    let env = common::Env::new().await;
    let rig = Rig::new(&env, true).await;
    let answering = rig.handler(&env, provider(0.0, 0.0, 0.0)).await;
    let order_id = OrderId::new();
    Rig::apply_all(
        &env,
        &answering,
        [
            PaymentRequest::AuthorizePayment {
                order_id,
                amount: eur(4399),
            },
            PaymentRequest::CapturePayment { order_id },
            PaymentRequest::RefundPayment {
                order_id,
                amount: eur(1000),
            },
            PaymentRequest::RefundPayment {
                order_id,
                amount: eur(500),
            },
        ],
    )
    .await;
    let ledger: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT operation, provider_ref, amount_minor FROM provider_ledger
         WHERE order_id = $1 ORDER BY operation, provider_ref",
    )
    .bind(order_id.as_uuid())
    .fetch_all(env.db.pool())
    .await
    .unwrap();
    let kept = kept_operations(&env, order_id).await;
    assert_eq!(kept.len(), 4, "{kept:?}");
    assert_eq!(kept, ledger);
}

/// The callback endpoint's own contract: a result with a bad signature is refused, 401, and nothing is
/// applied; a result the payment cannot take (a capture after the void) is kept with the reason, no reply.
#[tokio::test]
async fn the_callback_refuses_bad_signatures_and_keeps_results_the_payment_cannot_take() {
    let env = common::Env::new().await;
    let rig = Rig::new(&env, true).await;
    let answering = rig.handler(&env, provider(0.0, 0.0, 0.0)).await;
    let order_id = OrderId::new();
    Rig::apply_all(
        &env,
        &answering,
        [
            PaymentRequest::AuthorizePayment {
                order_id,
                amount: eur(700),
            },
            PaymentRequest::VoidPayment { order_id },
        ],
    )
    .await;
    let late_capture = provider::OperationResult {
        order_id: order_id.as_uuid(),
        operation: provider::Operation::Capture,
        amount_minor: 700,
        currency: "EUR".into(),
        reference: format!("psp-capture-late-{order_id}"),
        outcome: provider::Outcome::Approved,
        reason: None,
    };
    let body = serde_json::to_vec(&late_capture).unwrap();
    let url = format!("http://{}{CALLBACK_PATH}", rig.callback);
    let post = |secret: &'static str, id: uuid::Uuid| {
        let now = chrono::Utc::now().timestamp();
        reqwest::Client::new()
            .post(&url)
            .header(notify::signature::ID_HEADER, id.to_string())
            .header(
                notify::signature::SIGNATURE_HEADER,
                notify::signature::sign(secret.as_bytes(), now, &body),
            )
            .body(body.clone())
            .send()
    };
    let forged = post("not-the-secret", uuid::Uuid::now_v7()).await.unwrap();
    assert_eq!(forged.status(), reqwest::StatusCode::UNAUTHORIZED);
    let conflict = || async {
        sqlx::query_scalar::<_, Option<String>>(
            "SELECT callback_conflict FROM payment_operations WHERE provider_ref = $1",
        )
        .bind(&late_capture.reference)
        .fetch_optional(env.db.pool())
        .await
        .unwrap()
    };
    assert_eq!(conflict().await, None, "a forged result applies nothing");

    let signed = post(SECRET, uuid::Uuid::now_v7()).await.unwrap();
    assert_eq!(signed.status(), reqwest::StatusCode::OK);
    let noted = conflict()
        .await
        .flatten()
        .expect("the late capture is kept");
    assert!(noted.contains("Voided"), "{noted}");
    assert_eq!(
        reply_types(&env).await,
        ["PaymentAuthorized", "PaymentVoided"],
        "no reply for a result the payment cannot take"
    );
}

/// The receiver's acknowledgements are lost: the provider sends each result again, and again; the payment
/// records it once.
#[tokio::test]
async fn results_whose_acknowledgements_are_lost_are_recorded_once() {
    let env = common::Env::new().await;
    let rig = Rig::new(&env, true).await;
    let answering = rig.handler(&env, provider(0.0, 0.0, 0.0)).await;
    let commands = env.config.topics.commands(Service::Payments);
    let order_id = OrderId::new();
    let authorize = PaymentRequest::AuthorizePayment {
        order_id,
        amount: eur(900),
    };
    env.apply(&answering, &env.incoming(&commands, &authorize).await)
        .await
        .unwrap();
    Rig::deliver_with(&env, 1.0, 4).await;
    let (attempts, status): (i32, String) =
        sqlx::query_as("SELECT attempts, status FROM notifications WHERE subscriber = $1")
            .bind(SUBSCRIBER)
            .fetch_one(env.db.pool())
            .await
            .unwrap();
    assert_eq!(
        (attempts, status.as_str()),
        (4, "given_up"),
        "sent four times, never heard"
    );
    assert_eq!(reply_types(&env).await, ["PaymentAuthorized"]);
    assert_eq!(kept_operations(&env, order_id).await.len(), 1);
}

/// The provider authorized, then the reply cannot be written (its schema is refused by the registry, a
/// failure that retrying alone does not cure): the result is not acknowledged and the provider sends it
/// again; once an operator fixes the subject the authorization is recorded, charged once.
#[tokio::test]
async fn a_result_that_cannot_be_recorded_is_sent_again_until_it_is() {
    let env = common::Env::new().await;
    let rig = Rig::new(&env, true).await;
    let commands = env.config.topics.commands(Service::Payments);
    let events = env.config.topics.events(Service::Payments);
    let subject = format!("{events}-orderflow.payments.PaymentAuthorized");
    let client = reqwest::Client::new();
    let incompatible = serde_json::json!({
        "type": "record", "name": "PaymentAuthorized", "namespace": "orderflow.payments",
        "fields": [{"name": "something_else", "type": "int"}]
    });
    let registered = client
        .post(format!("{}/subjects/{subject}/versions", env.registry.url))
        .json(&serde_json::json!({ "schema": incompatible.to_string() }))
        .send()
        .await
        .unwrap();
    assert!(registered.status().is_success(), "{registered:?}");

    let order_id = OrderId::new();
    let authorize = PaymentRequest::AuthorizePayment {
        order_id,
        amount: eur(2500),
    };
    let answering = rig.handler(&env, provider(0.0, 0.0, 0.0)).await;
    env.apply(&answering, &env.incoming(&commands, &authorize).await)
        .await
        .unwrap();
    // One attempt: refused, left pending for the schedule's next.
    let notifier = Notifier::new(
        env.db.pool().clone(),
        NotifierConfig {
            scope: Scope::Only(vec![SUBSCRIBER.into()]),
            ..NotifierConfig::default()
        },
    )
    .unwrap();
    assert_eq!(notifier.send_due().await.unwrap(), 1);
    let (status, error): (String, Option<String>) =
        sqlx::query_as("SELECT status, last_error FROM notifications WHERE subscriber = $1")
            .bind(SUBSCRIBER)
            .fetch_one(env.db.pool())
            .await
            .unwrap();
    assert_eq!(status, "pending", "{error:?}");
    assert!(
        payments::get_payment(env.db.pool(), order_id)
            .await
            .unwrap()
            .is_none()
    );

    for permanent in ["false", "true"] {
        let deleted = client
            .delete(format!(
                "{}/subjects/{subject}?permanent={permanent}",
                env.registry.url
            ))
            .send()
            .await
            .unwrap();
        assert!(deleted.status().is_success(), "{deleted:?}");
    }
    sqlx::query("UPDATE notifications SET next_attempt_at = now()")
        .execute(env.db.pool())
        .await
        .unwrap();
    Rig::deliver(&env).await;
    let row = payments::get_payment(env.db.pool(), order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, "authorized");
    assert_eq!(
        ledger_ops(&env, order_id).await,
        [("authorize".to_owned(), 2500)]
    );
}
