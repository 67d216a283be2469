//! Orders: validation, a double submit makes one order, complete and cancel with the read model, a Kafka
//! round trip.

mod common;

use domain::Service;
use std::sync::Arc;

use domain::{CancelReason, CustomerId, OrderId, OrderRequest};
use outbox::EventStore;
use producers::topics::Topics;
use services::ServiceError;
use services::orders::{self, LineInput, Orders, OrdersHandler, PlaceOrder};
use testkit::TestDb;

fn order(key: Option<&str>) -> PlaceOrder {
    PlaceOrder {
        idempotency_key: key.map(str::to_owned),
        customer_id: CustomerId::new(),
        lines: vec![
            LineInput::new("MUG-RED", 2, 1250, "EUR"),
            LineInput::new("TEA-1KG", 1, 1899, "EUR"),
        ],
        delivery_address: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_double_submit_makes_one_order() {
    let db = TestDb::new().await;
    let store = Arc::new(EventStore::json(
        db.pool().clone(),
        Topics::default(),
        "test",
    ));
    let submission = order(Some("checkout-7f3a"));
    // Ten submissions of the same checkout at once, as a double-clicking client and its retries would.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let store = Arc::clone(&store);
        let submission = submission.clone();
        tasks.spawn(async move { orders::place_order(&store, submission).await.unwrap() });
    }
    let mut placed = Vec::new();
    while let Some(result) = tasks.join_next().await {
        placed.push(result.unwrap());
    }
    let first = placed
        .iter()
        .find(|p| !p.duplicate)
        .expect("one submission placed it");
    assert!(placed.iter().all(|p| p.order_id == first.order_id));
    assert_eq!(placed.iter().filter(|p| !p.duplicate).count(), 1);
    let (orders, events, outbox): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM orders_view), (SELECT count(*) FROM events),
                (SELECT count(*) FROM outbox)",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!((orders, events, outbox), (1, 1, 1));
    let key: serde_json::Value =
        sqlx::query_scalar("SELECT payload -> 'idempotency_key' FROM events")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(key, "checkout-7f3a");
    let view = orders::get_order(db.pool(), first.order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            view.status.as_str(),
            view.total_minor,
            view.currency.as_str()
        ),
        ("placed", 4399, "EUR")
    );
    // Without a key, two submissions are two orders.
    let a = orders::place_order(&store, order(None)).await.unwrap();
    let b = orders::place_order(&store, order(None)).await.unwrap();
    assert_ne!(a.order_id, b.order_id);
}

#[tokio::test]
async fn bad_input_gets_an_error_that_names_the_field() {
    let db = TestDb::new().await;
    let store = EventStore::json(db.pool().clone(), Topics::default(), "test");
    let cases = [
        (vec![], "lines"),
        (
            vec![LineInput::new("mug red", 1, 100, "EUR")],
            "lines[0].sku",
        ),
        (
            vec![LineInput::new("MUG-RED", 0, 100, "EUR")],
            "lines[0].quantity",
        ),
        (
            vec![LineInput::new("MUG-RED", 1, -5, "EUR")],
            "lines[0].unit_price_minor",
        ),
        (
            vec![LineInput::new("MUG-RED", 1, 0, "EUR")],
            "lines[0].unit_price_minor",
        ),
        (
            vec![LineInput::new("MUG-RED", 1, 100, "XXX")],
            "lines[0].currency",
        ),
        (
            vec![
                LineInput::new("MUG-RED", 1, 100, "EUR"),
                LineInput::new("TEA-1KG", 1, 100, "USD"),
            ],
            "lines",
        ),
    ];
    for (lines, expected) in cases {
        let submission = PlaceOrder {
            lines,
            ..order(None)
        };
        match orders::place_order(&store, submission.clone()).await {
            Err(ServiceError::Invalid { field, reason }) => {
                assert_eq!(field, expected, "{submission:?}: {reason}");
                assert!(!reason.is_empty());
            }
            other => panic!("{submission:?} gave {other:?}"),
        }
    }
    for key in ["", "   ", &"k".repeat(201)] {
        let result = orders::place_order(&store, order(Some(key))).await;
        assert!(
            matches!(&result, Err(ServiceError::Invalid { field, .. }) if field == "idempotency_key"),
            "{result:?}"
        );
    }
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(written, 0);
}

#[tokio::test]
async fn complete_and_cancel_update_the_read_model_and_repeats_get_the_same_reply() {
    let env = common::Env::new().await;
    let ctx = env.context();
    let handler = OrdersHandler::from(Orders::new(ctx.clone()));
    let commands = env.config.topics.commands(Service::Orders);
    let events = env.config.topics.events(Service::Orders);
    let completed = orders::place_order(&ctx.store, order(None))
        .await
        .unwrap()
        .order_id;
    let cancelled = orders::place_order(&ctx.store, order(None))
        .await
        .unwrap()
        .order_id;
    let complete = OrderRequest::CompleteOrder {
        order_id: completed,
    };
    let cancel = OrderRequest::CancelOrder {
        order_id: cancelled,
        reason: CancelReason::OutOfStock,
    };
    for request in [&complete, &cancel, &complete, &cancel] {
        let record = env.incoming(&commands, request).await;
        env.apply(&handler, &record).await.unwrap();
    }
    // Completing the cancelled order tells the truth.
    let record = env
        .incoming(
            &commands,
            &OrderRequest::CompleteOrder {
                order_id: cancelled,
            },
        )
        .await;
    env.apply(&handler, &record).await.unwrap();
    let replies = env.outbox(&events).await;
    let seen: Vec<(String, &str)> = replies
        .iter()
        .filter(|(_, d)| d.event_type != "OrderPlaced")
        .map(|(key, d)| (key.clone(), d.event_type.as_str()))
        .collect();
    let (c, x) = (completed.to_string(), cancelled.to_string());
    assert_eq!(
        seen,
        [
            (c.clone(), "OrderCompleted"),
            (x.clone(), "OrderCancelled"),
            (c, "OrderCompleted"),
            (x.clone(), "OrderCancelled"),
            (x, "OrderCancelled"),
        ]
    );
    let view = orders::get_order(env.db.pool(), cancelled)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.status, "cancelled");
    assert_eq!(view.cancel_reason.as_deref(), Some("OutOfStock"));
    assert!(view.ended_at.is_some());
    let counts = orders::count_by_status(env.db.pool()).await.unwrap();
    assert_eq!(
        counts,
        [("cancelled".to_owned(), 1), ("completed".to_owned(), 1)]
    );
    // An order never placed cannot be completed: poison, no reply.
    let record = env
        .incoming(
            &commands,
            &OrderRequest::CompleteOrder {
                order_id: OrderId::new(),
            },
        )
        .await;
    assert!(matches!(
        env.apply(&handler, &record).await,
        Err(consumers::HandlerError::Poison(_))
    ));
}

#[tokio::test]
async fn kafka_round_trip_cancel_order() {
    let env = common::Env::new().await;
    let store = env.context().store;
    let order_id = orders::place_order(&store, order(Some("k-1")))
        .await
        .unwrap()
        .order_id;
    let pipeline = env
        .start_pipeline(|pool, kafka, codec, config, stop| async move {
            services::run(Service::Orders, pool, &kafka, codec, &config, stop).await
        })
        .await;
    let commands = env.config.topics.commands(Service::Orders);
    let events = env.config.topics.events(Service::Orders);
    let request = OrderRequest::CancelOrder {
        order_id,
        reason: CancelReason::PaymentDeclined,
    };
    pipeline.send(&env.codec, &commands, &request).await;
    let replies = pipeline.replies(&env.codec, &events, 2).await;
    let types: Vec<&str> = replies
        .iter()
        .map(|(_, _, d)| d.event_type.as_str())
        .collect();
    assert_eq!(types, ["OrderPlaced", "OrderCancelled"]);
    assert!(
        replies
            .iter()
            .all(|(key, _, _)| key == &order_id.to_string())
    );
    assert_eq!(replies[1].2.event["reason"], "PaymentDeclined");
    pipeline.stop().await;
    let view = orders::get_order(env.db.pool(), order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.status, "cancelled");
}
