//! The saga store against a real Postgres: optimistic concurrency, one transaction per transition,
//! duplicates, and durable timers that drive sagas to their end.

mod common;

use domain::Service;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use domain::{DeliveryId, OrderId, PaymentId};
use sagas::queries;
use sagas::{Handled, SagaError, SagaInput, Step, TimerConfig, TimerKey, run_timers};
use testkit::TestDb;
use tokio_util::sync::CancellationToken;

/// How long a test waits for timers before it gives up (never a measurement).
const PATIENCE: Duration = Duration::from_secs(60);

fn applied(handled: &Handled) -> bool {
    matches!(handled, Handled::Applied(_))
}

#[tokio::test]
async fn two_writers_of_one_saga_one_conflicts_and_its_retry_sends_nothing_twice() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let (store, topics) = json_store(pool, patient());
    let order_id = OrderId::new();
    store
        .execute(order_id, start(order_id), &reply_metadata(order_id), 1)
        .await
        .unwrap();

    // Both load version 1 and decide the same reply, as two handlers of one saga would.
    let mut first = pool.begin().await.unwrap();
    let mut second = pool.begin().await.unwrap();
    let one = store.load(&mut first, order_id).await.unwrap();
    let two = store.load(&mut second, order_id).await.unwrap();
    assert_eq!((one.version, two.version), (1, 1));
    let decide = |state: &sagas::OrderSaga| match state
        .handle(SagaInput::StockReserved, store.config())
        .unwrap()
    {
        Handled::Applied(transition) => transition,
        Handled::Ignored(ignored) => panic!("ignored: {ignored:?}"),
    };
    let (t1, t2) = (decide(&one.state), decide(&two.state));
    let version = store
        .persist(&mut first, order_id, 1, &t1, &reply_metadata(order_id))
        .await
        .unwrap();
    assert_eq!(version, 2);
    first.commit().await.unwrap();

    let lost = store
        .persist(&mut second, order_id, 1, &t2, &reply_metadata(order_id))
        .await
        .unwrap_err();
    assert!(
        matches!(lost, SagaError::Conflict { expected: 1, .. }),
        "{lost:?}"
    );
    second.rollback().await.unwrap();

    // The retry reloads and decides again: the reply is now a duplicate.
    let retried = store
        .execute(
            order_id,
            SagaInput::StockReserved,
            &reply_metadata(order_id),
            3,
        )
        .await
        .unwrap();
    assert!(!applied(&retried), "{retried:?}");
    assert_eq!(
        outbox_commands(pool, order_id).await,
        [
            (
                topics.commands(Service::Inventory),
                "ReserveStock".to_owned()
            ),
            (
                topics.commands(Service::Payments),
                "AuthorizePayment".to_owned()
            ),
        ]
    );
    let row = saga_row(pool, order_id).await;
    assert_eq!((row.version, row.state.as_str()), (2, "AuthorizingPayment"));
    assert_eq!(
        row.timer,
        Some(("AuthorizePayment".to_owned(), 1, "deadline".to_owned()))
    );
}

#[tokio::test]
async fn concurrent_handlers_apply_a_reply_once() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let (store, topics) = json_store(pool, patient());
    let store = Arc::new(store);
    let order_id = OrderId::new();
    store
        .execute(order_id, start(order_id), &reply_metadata(order_id), 1)
        .await
        .unwrap();
    let handlers: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .execute(
                        order_id,
                        SagaInput::StockReserved,
                        &reply_metadata(order_id),
                        5,
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut moved = 0;
    for handler in handlers {
        if applied(&handler.await.unwrap()) {
            moved += 1;
        }
    }
    assert_eq!(moved, 1);
    let payments = outbox_commands(pool, order_id)
        .await
        .into_iter()
        .filter(|(topic, _)| *topic == topics.commands(Service::Payments))
        .count();
    assert_eq!(payments, 1);
    assert_eq!(saga_row(pool, order_id).await.version, 2);
}

#[tokio::test]
async fn a_duplicate_or_late_reply_changes_nothing() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let (store, _) = json_store(pool, patient());
    let order_id = OrderId::new();
    for input in [start(order_id), SagaInput::StockReserved] {
        let handled = store
            .execute(order_id, input, &reply_metadata(order_id), 1)
            .await
            .unwrap();
        assert!(applied(&handled));
    }
    let before = (
        saga_row(pool, order_id).await,
        outbox_commands(pool, order_id).await,
    );
    for input in [
        start(order_id),
        SagaInput::StockReserved,
        SagaInput::StockReleased,
        SagaInput::DeliveryCancelled,
    ] {
        let handled = store
            .execute(order_id, input, &reply_metadata(order_id), 1)
            .await
            .unwrap();
        assert!(!applied(&handled), "{handled:?}");
    }
    let after = (
        saga_row(pool, order_id).await,
        outbox_commands(pool, order_id).await,
    );
    assert_eq!(before, after);
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM saga_events WHERE order_id = $1")
        .bind(uuid::Uuid::from(order_id))
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(events, 2);
}

#[tokio::test]
async fn a_reply_for_a_saga_never_started_is_refused_and_writes_nothing() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let (store, _) = json_store(pool, patient());
    let order_id = OrderId::new();
    let refused = store
        .execute(
            order_id,
            SagaInput::StockReserved,
            &reply_metadata(order_id),
            1,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(refused, SagaError::NotStarted { .. }),
        "{refused:?}"
    );
    assert!(queries::saga(pool, order_id).await.unwrap().is_none());
    assert!(outbox_commands(pool, order_id).await.is_empty());
}

#[tokio::test]
async fn the_happy_path_completes_with_every_command_in_order() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let (store, topics) = json_store(pool, patient());
    let order_id = OrderId::new();
    for input in [
        start(order_id),
        SagaInput::StockReserved,
        SagaInput::PaymentAuthorized {
            payment_id: PaymentId::new(),
        },
        SagaInput::DeliveryScheduled {
            delivery_id: DeliveryId::new(),
        },
        SagaInput::DeliveryDispatched,
        SagaInput::PaymentCaptured,
        SagaInput::StockCommitted,
        SagaInput::DeliveryCompleted,
    ] {
        let name = input.name();
        let handled = store
            .execute(order_id, input, &reply_metadata(order_id), 1)
            .await
            .unwrap();
        assert!(applied(&handled), "{name}: {handled:?}");
    }
    let inventory = topics.commands(Service::Inventory);
    let payments = topics.commands(Service::Payments);
    let commands: Vec<(String, &str)> = [
        (&inventory, "ReserveStock"),
        (&payments, "AuthorizePayment"),
        (&topics.commands(Service::Delivery), "ScheduleDelivery"),
        (&payments, "CapturePayment"),
        (&inventory, "CommitStock"),
        (&topics.commands(Service::Orders), "CompleteOrder"),
    ]
    .into_iter()
    .map(|(topic, name)| (topic.clone(), name))
    .collect();
    let sent = outbox_commands(pool, order_id).await;
    let sent: Vec<(String, &str)> = sent.iter().map(|(t, n)| (t.clone(), n.as_str())).collect();
    assert_eq!(sent, commands);

    let row = saga_row(pool, order_id).await;
    assert_eq!(row.outcome.as_deref(), Some("completed"));
    assert_eq!(row.cancel_reason, None);
    assert_eq!(row.timer, None);
    let counts = queries::counts(pool).await.unwrap();
    assert_eq!(
        (counts.total, counts.completed, counts.running, counts.stuck),
        (1, 1, 0, 0)
    );
    let times = queries::ended_times(pool).await.unwrap();
    assert_eq!(times.len(), 1);
    assert!(times[0].duration() >= chrono::TimeDelta::zero());

    // Commands carry the order as correlation id and the reply as causation id.
    let headers: serde_json::Value =
        sqlx::query_scalar("SELECT headers FROM outbox WHERE key = $1 ORDER BY id DESC LIMIT 1")
            .bind(order_id.to_string())
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(headers["correlation_id"], order_id.to_string());
    assert!(headers["causation_id"].is_string());
}

#[tokio::test]
async fn a_timer_drives_a_timed_out_saga_to_compensated() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let (store, topics) = json_store(pool, hasty());
    let order_id = OrderId::new();
    store
        .execute(order_id, start(order_id), &reply_metadata(order_id), 1)
        .await
        .unwrap();
    // Fire one timer at a time until the reservation's deadline has moved the saga to compensation.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while saga_row(pool, order_id).await.state != "Compensating" {
        assert!(tokio::time::Instant::now() < deadline, "no timer fired");
        store.fire_due_timers(1).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let row = saga_row(pool, order_id).await;
    assert_eq!(row.cancel_reason.as_deref(), Some("Timeout"));
    assert_eq!(
        row.timer,
        Some(("ReleaseStock".to_owned(), 1, "deadline".to_owned()))
    );
    // Inventory answers the release: the saga cancels the order.
    let handled = store
        .execute(
            order_id,
            SagaInput::StockReleased,
            &reply_metadata(order_id),
            1,
        )
        .await
        .unwrap();
    assert!(applied(&handled));

    let inventory = topics.commands(Service::Inventory);
    assert_eq!(
        outbox_commands(pool, order_id).await,
        [
            (inventory.clone(), "ReserveStock".to_owned()),
            (inventory, "ReleaseStock".to_owned()),
            (topics.commands(Service::Orders), "CancelOrder".to_owned()),
        ]
    );
    let cancel: serde_json::Value = serde_json::from_slice(
        &sqlx::query_scalar::<_, Vec<u8>>(
            "SELECT payload FROM outbox WHERE key = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(order_id.to_string())
        .fetch_one(pool)
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(cancel["reason"], "Timeout");
    let row = saga_row(pool, order_id).await;
    assert_eq!(row.outcome.as_deref(), Some("compensated"));
    assert_eq!(row.timer, None);
    let counts = queries::counts(pool).await.unwrap();
    assert_eq!(
        (counts.compensated, counts.compensations, counts.stuck),
        (1, 1, 0)
    );
    assert_eq!(
        queries::cancel_reasons(pool).await.unwrap(),
        [("Timeout".to_owned(), 1)]
    );
    // Nothing is left to fire.
    assert_eq!(store.fire_due_timers(10).await.unwrap(), 0);
}

#[tokio::test]
async fn timers_alone_escalate_a_saga_nobody_answers_and_it_is_visible() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let (store, topics) = json_store(pool, hasty());
    let store = Arc::new(store);
    let order_id = OrderId::new();
    store
        .execute(order_id, start(order_id), &reply_metadata(order_id), 1)
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let poller = tokio::spawn(run_timers(
        Arc::clone(&store),
        TimerConfig {
            poll_interval: Duration::from_millis(5),
            batch_size: 10,
            error_backoff: Duration::from_millis(50),
        },
        shutdown.clone(),
    ));
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while saga_row(pool, order_id).await.outcome.is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the saga never ended"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutdown.cancel();
    poller.await.unwrap();

    let row = saga_row(pool, order_id).await;
    assert_eq!(row.outcome.as_deref(), Some("needs_attention"));
    assert_eq!(row.state, "NeedsAttention");
    assert_eq!(row.timer, None);
    // The reservation timed out; its release was tried twice (the budget), then the saga gave up
    // without cancelling the order.
    let inventory = topics.commands(Service::Inventory);
    assert_eq!(
        outbox_commands(pool, order_id).await,
        [
            (inventory.clone(), "ReserveStock".to_owned()),
            (inventory.clone(), "ReleaseStock".to_owned()),
            (inventory, "ReleaseStock".to_owned()),
        ]
    );
    let counts = queries::counts(pool).await.unwrap();
    assert_eq!(
        (counts.needs_attention, counts.running, counts.stuck),
        (1, 0, 0)
    );
    let escalated = queries::needing_attention(pool).await.unwrap();
    assert_eq!(escalated.len(), 1);
    assert_eq!(escalated[0].0, uuid::Uuid::from(order_id));
}

#[tokio::test]
async fn an_operator_resumes_an_escalated_saga_and_it_runs_again() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let (store, topics) = json_store(pool, hasty());
    let order_id = OrderId::new();
    let metadata = reply_metadata(order_id);
    store
        .execute(order_id, start(order_id), &metadata, 1)
        .await
        .unwrap();
    // The reservation times out; both attempts at releasing it fail: escalated.
    for input in [
        SagaInput::Timeout(TimerKey::deadline(Step::ReserveStock, 1)),
        SagaInput::StepFailed {
            step: Step::ReleaseStock,
            error: "inventory down".into(),
        },
        SagaInput::Timeout(TimerKey::retry(Step::ReleaseStock, 2)),
        SagaInput::StepFailed {
            step: Step::ReleaseStock,
            error: "inventory down".into(),
        },
    ] {
        assert!(applied(
            &store.execute(order_id, input, &metadata, 1).await.unwrap()
        ));
    }
    assert_eq!(
        saga_row(pool, order_id).await.outcome.as_deref(),
        Some("needs_attention")
    );

    let resumed = store
        .execute(order_id, SagaInput::Resume, &metadata, 1)
        .await
        .unwrap();
    assert!(applied(&resumed));
    let row = saga_row(pool, order_id).await;
    assert_eq!((row.state.as_str(), row.outcome), ("Compensating", None));
    assert_eq!(
        row.timer,
        Some(("ReleaseStock".to_owned(), 1, "deadline".to_owned()))
    );
    let ended_at: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT ended_at FROM sagas WHERE order_id = $1")
            .bind(uuid::Uuid::from(order_id))
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(ended_at, None, "a resumed saga runs again");
    let inventory = topics.commands(Service::Inventory);
    let release = (inventory.clone(), "ReleaseStock".to_owned());
    assert_eq!(
        outbox_commands(pool, order_id).await,
        [
            (inventory, "ReserveStock".to_owned()),
            release.clone(),
            release.clone(),
            release,
        ]
    );
    // A second resume (another operator, a double click) changes nothing.
    assert!(!applied(
        &store
            .execute(order_id, SagaInput::Resume, &metadata, 1)
            .await
            .unwrap()
    ));
    // The inventory answers this time: compensated, the order cancelled.
    store
        .execute(order_id, SagaInput::StockReleased, &metadata, 1)
        .await
        .unwrap();
    let row = saga_row(pool, order_id).await;
    assert_eq!(row.outcome.as_deref(), Some("compensated"));
    assert_eq!(row.cancel_reason.as_deref(), Some("Timeout"));
}

#[tokio::test]
async fn a_stale_timer_is_deleted_and_ignored() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let (store, _) = json_store(pool, patient());
    let order_id = OrderId::new();
    for input in [start(order_id), SagaInput::StockReserved] {
        store
            .execute(order_id, input, &reply_metadata(order_id), 1)
            .await
            .unwrap();
    }
    // A leftover timer of a step already answered, due now.
    sqlx::query(
        "UPDATE saga_timers SET step = 'ReserveStock', due_at = now() - interval '1 second'
         WHERE order_id = $1",
    )
    .bind(uuid::Uuid::from(order_id))
    .execute(pool)
    .await
    .unwrap();
    let before = outbox_commands(pool, order_id).await;
    assert_eq!(store.fire_due_timers(10).await.unwrap(), 1);
    let row = saga_row(pool, order_id).await;
    assert_eq!((row.version, row.state.as_str()), (2, "AuthorizingPayment"));
    // The saga's own timer is put back, not lost with the stale one.
    assert_eq!(
        row.timer,
        Some(("AuthorizePayment".to_owned(), 1, "deadline".to_owned()))
    );
    assert_eq!(outbox_commands(pool, order_id).await, before);
}

#[tokio::test]
async fn a_timer_that_cannot_fire_is_pushed_back_and_the_others_still_fire() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let (store, _) = json_store(pool, patient());
    let (broken, healthy) = (OrderId::new(), OrderId::new());
    for order_id in [broken, healthy] {
        store
            .execute(order_id, start(order_id), &reply_metadata(order_id), 1)
            .await
            .unwrap();
    }
    // Both timers are due, the broken saga's first; its history no longer reads.
    for (order_id, ago) in [(broken, "2 seconds"), (healthy, "1 second")] {
        sqlx::query("UPDATE saga_timers SET due_at = now() - $2::interval WHERE order_id = $1")
            .bind(uuid::Uuid::from(order_id))
            .bind(ago)
            .execute(pool)
            .await
            .unwrap();
    }
    sqlx::query("UPDATE saga_events SET event = '{\"not\": \"a saga event\"}' WHERE order_id = $1")
        .bind(uuid::Uuid::from(broken))
        .execute(pool)
        .await
        .unwrap();
    let healthy_before = saga_row(pool, healthy).await;

    let claimed = store.fire_due_timers(10).await.unwrap();

    assert_eq!(claimed, 2, "both due timers were taken up");
    let healthy_after = saga_row(pool, healthy).await;
    assert!(
        healthy_after.version > healthy_before.version,
        "the healthy saga's timer fired: {healthy_before:?} -> {healthy_after:?}"
    );
    let pushed_back: bool =
        sqlx::query_scalar("SELECT due_at > now() FROM saga_timers WHERE order_id = $1")
            .bind(uuid::Uuid::from(broken))
            .fetch_one(pool)
            .await
            .unwrap();
    assert!(
        pushed_back,
        "the broken saga keeps its timer, due later, so that it is not picked first forever"
    );
    // Nothing else is due: the next round neither fails nor loops on the broken one.
    assert_eq!(store.fire_due_timers(10).await.unwrap(), 0);
}
