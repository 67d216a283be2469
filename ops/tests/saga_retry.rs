//! Retrying an escalated saga's step (`orderflow saga retry`, the console) against a real Postgres: the saga
//! runs again and sends the step's command through the outbox; what cannot be retried is refused with
//! nothing changed; every attempt is a row of `operator_actions`.

use domain::{Currency, CustomerId, Money, OrderId, OrderLine, OrderLines, Quantity, Sku};
use ops::OperatorError;
use ops::audit::Via;
use outbox::{JsonCodec, Metadata};
use producers::topics::Topics;
use sagas::{RetryPolicy, SagaConfig, SagaInput, SagaStore, Step, TimerKey};
use testkit::TestDb;

fn store(db: &TestDb) -> SagaStore<JsonCodec> {
    let config = SagaConfig {
        retry: RetryPolicy {
            max_attempts: 1,
            ..SagaConfig::default().retry
        },
        ..SagaConfig::default()
    };
    let topics = Topics::with_prefix(testkit::unique_name("retry"));
    SagaStore::new(db.pool().clone(), JsonCodec, topics, "test", config)
}

/// Feeds `inputs` to the saga of `order_id`, started first.
async fn drive(store: &SagaStore<JsonCodec>, order_id: OrderId, inputs: Vec<SagaInput>) {
    let lines = OrderLines::new(vec![OrderLine {
        sku: Sku::new("MUG-RED").unwrap(),
        quantity: Quantity::new(1).unwrap(),
        unit_price: Money::new(1250, Currency::EUR).unwrap(),
    }])
    .unwrap();
    let start = SagaInput::Start {
        order_id,
        customer_id: CustomerId::new(),
        lines,
    };
    let metadata = Metadata::new(order_id.into());
    for input in std::iter::once(start).chain(inputs) {
        store.execute(order_id, input, &metadata, 1).await.unwrap();
    }
}

/// `(action, outcome, error)` of the audit rows of the saga of `order_id`, oldest first.
async fn audited(db: &TestDb, order_id: OrderId) -> Vec<(String, String, Option<String>)> {
    sqlx::query_as(
        "SELECT action, outcome, error FROM operator_actions WHERE target = $1 ORDER BY at",
    )
    .bind(format!("saga/{order_id}"))
    .fetch_all(db.pool())
    .await
    .unwrap()
}

async fn row(db: &TestDb, order_id: OrderId) -> sagas::queries::SagaRow {
    sagas::queries::saga(db.pool(), order_id)
        .await
        .unwrap()
        .expect("the saga exists")
}

async fn outcome(db: &TestDb, order_id: OrderId) -> Option<String> {
    row(db, order_id).await.outcome
}

async fn version(db: &TestDb, order_id: OrderId) -> i64 {
    row(db, order_id).await.version
}

#[tokio::test]
async fn an_escalated_compensation_is_retried_once_and_recorded() {
    let db = TestDb::new().await;
    let store = store(&db);
    let order_id = OrderId::new();
    // The reservation times out; its one allowed release fails: escalated.
    drive(
        &store,
        order_id,
        vec![
            SagaInput::Timeout(TimerKey::deadline(Step::ReserveStock, 1)),
            SagaInput::StepFailed {
                step: Step::ReleaseStock,
                error: "inventory down".into(),
            },
        ],
    )
    .await;
    assert_eq!(
        outcome(&db, order_id).await.as_deref(),
        Some("needs_attention")
    );

    let step = ops::sagas::retry(&store, order_id, Via::Cli, "alice")
        .await
        .unwrap();
    assert_eq!(step, Step::ReleaseStock);
    assert_eq!(outcome(&db, order_id).await, None, "it runs again");
    let releases: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE key = $1 AND convert_from(payload, 'UTF8') LIKE '%ReleaseStock%'",
    )
    .bind(order_id.to_string())
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(releases, 2, "the release is sent again");

    // Twice is refused: the saga no longer needs attention.
    let again = ops::sagas::retry(&store, order_id, Via::Console, "console").await;
    let Err(OperatorError::BadInput(why)) = again else {
        panic!("{again:?}")
    };
    assert!(
        why.contains("does not need attention: it is Compensating"),
        "{why}"
    );
    let rows = audited(&db, order_id).await;
    assert_eq!(
        rows,
        [
            ("saga.retry".to_owned(), "done".to_owned(), None),
            ("saga.retry".to_owned(), "refused".to_owned(), Some(why)),
        ]
    );
}

#[tokio::test]
async fn what_retrying_cannot_help_is_refused_with_nothing_changed() {
    let db = TestDb::new().await;
    let store = store(&db);
    // Dispatched before its delivery could be cancelled: a person decides, no retry.
    let dispatched = OrderId::new();
    drive(
        &store,
        dispatched,
        vec![
            SagaInput::StockReserved,
            SagaInput::PaymentAuthorized {
                payment_id: domain::PaymentId::new(),
            },
            SagaInput::DeliveryScheduled {
                delivery_id: domain::DeliveryId::new(),
            },
            SagaInput::Timeout(TimerKey::deadline(Step::AwaitDispatch, 1)),
            SagaInput::DeliveryDispatched,
        ],
    )
    .await;
    assert_eq!(
        outcome(&db, dispatched).await.as_deref(),
        Some("needs_attention")
    );
    let before = version(&db, dispatched).await;
    let refused = ops::sagas::retry(&store, dispatched, Via::Cli, "alice").await;
    let Err(OperatorError::BadInput(why)) = refused else {
        panic!("{refused:?}")
    };
    assert!(
        why.contains("cannot help") && why.contains("CancelDelivery"),
        "{why}"
    );
    assert_eq!(
        version(&db, dispatched).await,
        before,
        "nothing was written"
    );
    assert_eq!(
        outcome(&db, dispatched).await.as_deref(),
        Some("needs_attention")
    );

    // An order without a saga.
    let unknown = OrderId::new();
    let refused = ops::sagas::retry(&store, unknown, Via::Cli, "alice").await;
    assert!(
        matches!(&refused, Err(OperatorError::NotFound(why)) if why.contains("has no saga")),
        "{refused:?}"
    );
    for order_id in [dispatched, unknown] {
        let rows = audited(&db, order_id).await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].1, "refused");
    }
}
