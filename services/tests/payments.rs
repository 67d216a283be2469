//! Payments: the provider charges once under timeouts, retries, duplicate requests and duplicate callbacks;
//! the reply contract; a Kafka round trip.

mod common;

use domain::Service;
use std::time::Duration;

use consumers::HandlerError;
use domain::{Currency, Money, OrderId, PaymentRequest};
use services::payments::{
    self, Payments, PaymentsConfig, PaymentsHandler, Provider, ProviderConfig,
};

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR).unwrap()
}

fn provider(decline_rate: f64, timeout_rate: f64, duplicate_callback_rate: f64) -> ProviderConfig {
    ProviderConfig {
        decline_rate,
        latency: Duration::ZERO,
        timeout_rate,
        charge_before_timeout: 1.0,
        duplicate_callback_rate,
        contradicting_callback_rate: 0.0,
        seed: 1,
    }
}

fn handler(env: &common::Env, config: ProviderConfig) -> PaymentsHandler {
    PaymentsHandler::from(Payments::new(
        env.context(),
        Provider::new(env.db.pool().clone(), config.clone()),
        PaymentsConfig {
            provider: config,
            ..PaymentsConfig::default()
        },
    ))
}

/// Applies each of `requests`, in order, as records of the payments commands topic; each must succeed.
async fn apply_all(
    env: &common::Env,
    handler: &PaymentsHandler,
    requests: impl IntoIterator<Item = PaymentRequest>,
) {
    let commands = env.config.topics.commands(Service::Payments);
    for request in requests {
        let record = env.incoming(&commands, &request).await;
        env.apply(handler, &record).await.unwrap();
    }
}

async fn ledger_ops(env: &common::Env, order_id: OrderId) -> Vec<(String, i64)> {
    payments::ledger(env.db.pool(), order_id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.operation, e.amount_minor))
        .collect()
}

#[tokio::test]
async fn timeouts_retries_duplicate_requests_and_callbacks_never_charge_twice() {
    let env = common::Env::new().await;
    let commands = env.config.topics.commands(Service::Payments);
    let events = env.config.topics.events(Service::Payments);
    let order_id = OrderId::new();
    let authorize = PaymentRequest::AuthorizePayment {
        order_id,
        amount: eur(4399),
    };
    let record = env.incoming(&commands, &authorize).await;

    // The provider charges, then the answer is lost: transient, retried in place, three times.
    let timing_out = handler(&env, provider(0.0, 1.0, 0.0));
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
        "no reply before an answer"
    );

    // The provider answers now, and its callback arrives twice.
    let answering = handler(&env, provider(0.0, 0.0, 1.0));
    env.apply(&answering, &record).await.unwrap();
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

    // Capture twice, refund part, then a void after capture tells the truth.
    let capture = PaymentRequest::CapturePayment { order_id };
    apply_all(
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
    let types: Vec<String> = env
        .outbox(&events)
        .await
        .into_iter()
        .map(|(_, d)| d.event_type)
        .collect();
    assert_eq!(
        types,
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
    let commands = env.config.topics.commands(Service::Payments);
    let events = env.config.topics.events(Service::Payments);
    let declining = handler(&env, provider(1.0, 0.0, 0.0));
    let declined = OrderId::new();
    let nothing = OrderId::new();
    apply_all(
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

#[tokio::test]
async fn kafka_round_trip_authorize() {
    let mut env = common::Env::new().await;
    env.config.payments.provider = provider(0.0, 0.0, 0.0);
    let pipeline = env
        .start_pipeline(|pool, kafka, codec, config, stop| async move {
            services::run(Service::Payments, pool, &kafka, codec, &config, stop).await
        })
        .await;
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
    assert_eq!(
        ledger_ops(&env, order_id).await,
        [("authorize".to_owned(), 4399)]
    );
}

#[tokio::test]
async fn a_refund_the_saga_asks_again_after_a_lost_answer_refunds_once() {
    let env = common::Env::new().await;
    let commands = env.config.topics.commands(Service::Payments);
    let answering = handler(&env, provider(0.0, 0.0, 0.0));
    let order_id = OrderId::new();
    apply_all(
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
    let lost = env
        .apply(&handler(&env, provider(0.0, 1.0, 0.0)), &first)
        .await;
    assert!(matches!(lost, Err(HandlerError::Transient(_))), "{lost:?}");
    // The saga's step times out and it asks again: the same refund, in a record with a new event id.
    let again = env.incoming(&commands, &refund).await;
    env.apply(&answering, &again).await.unwrap();

    assert_eq!(
        ledger_ops(&env, order_id).await,
        [
            ("authorize".to_owned(), 2500),
            ("capture".to_owned(), 2500),
            ("refund".to_owned(), 2500)
        ],
        "the customer is refunded once"
    );
}

/// Each partition worker holds a transaction across the provider call; a provider that drew its
/// connections from the same pool waited for one of them, and with every connection held by a worker
/// (here the pool's only one) nothing moved.
#[tokio::test]
async fn payments_on_a_one_connection_pool_still_authorize() {
    let mut env = common::Env::new().await;
    env.config.payments.provider = provider(0.0, 0.0, 0.0);
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
    assert_eq!(replies[0].2.event_type, "PaymentAuthorized");
    assert_eq!(
        ledger_ops(&env, order_id).await,
        [("authorize".to_owned(), 1200)]
    );
}

/// Issue 11, finding 1: an `AuthorizePayment` approved at the provider but dead-lettered here, then the
/// saga's `VoidPayment`, then an operator's redrive of the authorization.
#[tokio::test]
async fn a_void_before_the_authorization_is_voided_at_the_provider_and_remembered() {
    let env = common::Env::new().await;
    let commands = env.config.topics.commands(Service::Payments);
    let events = env.config.topics.events(Service::Payments);
    let answering = handler(&env, provider(0.0, 0.0, 0.0));
    let order_id = OrderId::new();
    let authorize = PaymentRequest::AuthorizePayment {
        order_id,
        amount: eur(3000),
    };
    // The provider approved; its answer never got recorded (the request was dead-lettered).
    Provider::new(env.db.pool().clone(), provider(0.0, 0.0, 0.0))
        .call(
            payments::Operation::Authorize,
            order_id,
            eur(3000),
            &order_id.to_string(),
        )
        .await
        .unwrap();

    for request in [PaymentRequest::VoidPayment { order_id }, authorize] {
        let record = env.incoming(&commands, &request).await;
        env.apply(&answering, &record).await.unwrap();
    }

    assert_eq!(
        ledger_ops(&env, order_id).await,
        [("authorize".to_owned(), 3000), ("void".to_owned(), 0)],
        "the hold is released at the provider, and the redrive authorizes nothing"
    );
    let replies: Vec<String> = env
        .outbox(&events)
        .await
        .into_iter()
        .map(|(_, d)| d.event_type)
        .collect();
    assert_eq!(replies, ["PaymentVoided", "PaymentDeclined"]);
    let row = payments::get_payment(env.db.pool(), order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, "voided");
}

#[tokio::test]
async fn two_partial_refunds_both_reach_the_provider() {
    let env = common::Env::new().await;
    let answering = handler(&env, provider(0.0, 0.0, 0.0));
    let order_id = OrderId::new();
    let refund = PaymentRequest::RefundPayment {
        order_id,
        amount: eur(1000),
    };
    apply_all(
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

/// The provider references the service kept, one per operation, in order.
async fn kept_operations(env: &common::Env, order_id: OrderId) -> Vec<(String, String, i64)> {
    sqlx::query_as(
        "SELECT operation, provider_ref, amount_minor FROM payment_operations
         WHERE order_id = $1 ORDER BY recorded_at, provider_ref",
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
    let answering = handler(&env, provider(0.0, 0.0, 0.0));
    let order_id = OrderId::new();
    apply_all(
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
    let mut ledger: Vec<(String, String, i64)> = payments::ledger(env.db.pool(), order_id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.operation, e.provider_ref, e.amount_minor))
        .collect();
    let mut kept = kept_operations(&env, order_id).await;
    assert_eq!(kept.len(), 4, "{kept:?}");
    ledger.sort();
    kept.sort();
    assert_eq!(kept, ledger);
}

/// A callback that contradicts the provider's answer (approved, then "declined") is kept beside the
/// operation for reconciliation; the payment records the answer, and the request is not dead-lettered
/// (which would leave an approved authorization nobody knows of). A duplicate that agrees leaves no note.
#[tokio::test]
async fn a_contradicting_callback_is_kept_for_reconciliation_and_the_answer_recorded() {
    let env = common::Env::new().await;
    let commands = env.config.topics.commands(Service::Payments);
    let events = env.config.topics.events(Service::Payments);
    let (agreeing, contradicting) = (OrderId::new(), OrderId::new());
    for (order_id, contradicting_callback_rate) in [(agreeing, 0.0), (contradicting, 1.0)] {
        let config = ProviderConfig {
            contradicting_callback_rate,
            ..provider(0.0, 0.0, 1.0)
        };
        let request = PaymentRequest::AuthorizePayment {
            order_id,
            amount: eur(700),
        };
        let record = env.incoming(&commands, &request).await;
        env.apply(&handler(&env, config), &record).await.unwrap();
    }
    let replies: Vec<String> = env
        .outbox(&events)
        .await
        .into_iter()
        .map(|(_, d)| d.event_type)
        .collect();
    assert_eq!(replies, ["PaymentAuthorized", "PaymentAuthorized"]);
    let pool = env.db.pool();
    let conflict = |order_id: OrderId| async move {
        sqlx::query_scalar::<_, Option<String>>(
            "SELECT callback_conflict FROM payment_operations WHERE order_id = $1",
        )
        .bind(order_id.as_uuid())
        .fetch_one(pool)
        .await
        .unwrap()
    };
    assert_eq!(conflict(agreeing).await, None);
    let noted = conflict(contradicting)
        .await
        .expect("the contradiction is kept");
    assert!(noted.contains("declined"), "{noted}");
}

/// The provider authorized, then the reply cannot be written (its schema is refused by the registry, a
/// failure that retrying alone does not cure): the request is retried in place, not dead-lettered, and once
/// an operator fixes the subject the authorization is recorded, charged once.
#[tokio::test]
async fn a_failure_to_record_what_the_provider_did_is_retried_not_dead_lettered() {
    let env = common::Env::new().await;
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
    let record = env.incoming(&commands, &authorize).await;
    let answering = handler(&env, provider(0.0, 0.0, 0.0));
    let result = env.apply(&answering, &record).await;
    assert!(
        matches!(result, Err(HandlerError::Transient(_))),
        "{result:?}"
    );
    assert_eq!(
        ledger_ops(&env, order_id).await,
        [("authorize".to_owned(), 2500)]
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
    env.apply(&answering, &record).await.unwrap();
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
