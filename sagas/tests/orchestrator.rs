//! The orchestrator over the real broker, the real registry and Postgres: an `OrderPlaced` written by the
//! orders event store and published by the relay starts a saga, whose `ReserveStock` arrives on
//! `inventory.commands`; redelivered and duplicated events change nothing; an undecodable record is
//! dead-lettered.

mod common;

use domain::Service;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use domain::{CustomerId, InventoryRequest, OrderCommand, OrderId, OrderState};
use outbox::{EventStore, Metadata, Relay, RelayConfig};
use producers::headers::{self, RecordHeaders};
use producers::topics::Topics;
use producers::{KafkaConfig, ProducerConfig};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sagas::{OrchestratorConfig, run_orchestrator, subscribed_topics};
use schemas::AvroCodec;
use schemas::registry::LocalRegistry;
use sqlx::PgPool;
use testkit::TestDb;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const PATIENCE: Duration = Duration::from_secs(90);

async fn produce(kafka: &KafkaConfig, topic: &str, key: &str, payload: &[u8], h: &RecordHeaders) {
    let producer: FutureProducer = kafka
        .producer_config(&ProducerConfig::default())
        .create()
        .unwrap();
    producer
        .send(
            FutureRecord::to(topic)
                .key(key)
                .payload(payload)
                .headers(headers::to_kafka(h)),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
}

async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited too long for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn count(pool: &PgPool, sql: &'static str, bind: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(bind)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_order_placed_on_kafka_starts_a_saga_that_sends_reserve_stock() {
    let db = TestDb::new().await;
    let pool = db.pool().clone();
    let kafka = testkit::kafka();
    let stop = CancellationToken::new();
    let registry = LocalRegistry::start(pool.clone()).await.unwrap();
    let codec = Arc::new(AvroCodec::new(registry.url()).unwrap());
    let topics = Topics::with_prefix(format!("{}.", testkit::unique_name("t")));
    let inventory_commands = topics.commands(Service::Inventory);
    for topic in subscribed_topics(&topics)
        .into_iter()
        .chain(Service::ALL.map(|s| topics.commands(s)))
    {
        producers::ensure_topic(&kafka, &topic, 1).await.unwrap();
    }

    let relay = Relay::new(
        pool.clone(),
        &kafka,
        RelayConfig {
            poll_interval: Duration::from_millis(50),
            ..RelayConfig::default()
        },
    )
    .unwrap();
    let relay = tokio::spawn(relay.run(stop.clone()));
    let group = testkit::unique_name("orchestrator");
    let mut settings = OrchestratorConfig::new(&topics);
    settings.region = "test".to_owned();
    settings.consumer.group_id = group;
    settings.consumer.retry_delays = Vec::new();
    let orchestrator = tokio::spawn(run_orchestrator(
        pool.clone(),
        kafka.clone(),
        Arc::clone(&codec),
        topics.clone(),
        patient(),
        settings,
        stop.clone(),
    ));

    // The orders service places an order: OrderPlaced goes out through its outbox and the relay.
    let orders = EventStore::new(pool.clone(), Arc::clone(&codec), topics.clone(), "test");
    let order_id = OrderId::new();
    orders
        .execute::<OrderState>(
            &order_id.to_string(),
            OrderCommand::Place {
                order_id,
                customer_id: CustomerId::new(),
                lines: lines(),
                idempotency_key: None,
            },
            &Metadata::new(order_id.into()),
        )
        .await
        .unwrap()
        .unwrap();
    let placed_event_id: Uuid = sqlx::query_scalar(
        "SELECT event_id FROM events WHERE aggregate_id = $1 AND event_type = 'OrderPlaced'",
    )
    .bind(order_id.to_string())
    .fetch_one(&pool)
    .await
    .unwrap();

    testkit::wait_for_records(&kafka, &inventory_commands, 1, PATIENCE).await;
    let records = testkit::read_topic(&kafka, &inventory_commands).await;
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record.key.as_deref(), Some(order_id.to_string().as_str()));
    let request: InventoryRequest = codec.decode_as(&record.payload).await.unwrap();
    let InventoryRequest::ReserveStock {
        order_id: requested,
        lines: stock,
    } = request
    else {
        panic!("expected ReserveStock, got {request:?}");
    };
    assert_eq!(requested, order_id);
    let skus: Vec<&str> = stock.iter().map(|l| l.sku.as_str()).collect();
    assert_eq!(skus, ["MUG-RED", "TEA-1KG"]);
    assert_eq!(
        record.headers[headers::CORRELATION_ID],
        order_id.to_string()
    );
    assert_eq!(
        record.headers[headers::CAUSATION_ID],
        placed_event_id.to_string()
    );
    assert_eq!(record.headers[headers::ORIGIN_REGION], "test");
    assert!(record.headers.contains_key(headers::SCHEMA_ID));

    // The same OrderPlaced redelivered (same event id: the inbox skips it), then duplicated under a new
    // event id (the saga ignores it), then a record that does not decode (dead-lettered).
    let orders_events = topics.events(Service::Orders);
    let placed = testkit::read_topic(&kafka, &orders_events).await;
    assert_eq!(placed.len(), 1);
    let key = order_id.to_string();
    produce(
        &kafka,
        &orders_events,
        &key,
        &placed[0].payload,
        &placed[0].headers,
    )
    .await;
    let mut copy = placed[0].headers.clone();
    let copy_id = Uuid::now_v7().to_string();
    copy.insert(headers::EVENT_ID.to_owned(), copy_id.clone());
    produce(&kafka, &orders_events, &key, &placed[0].payload, &copy).await;
    let mut garbage = copy.clone();
    garbage.insert(headers::EVENT_ID.to_owned(), Uuid::now_v7().to_string());
    produce(&kafka, &orders_events, &key, b"not avro", &garbage).await;
    testkit::wait_for_records(&kafka, &Topics::dead_letters(&orders_events), 1, PATIENCE).await;
    wait_until("the duplicate to be handled", async || {
        count(
            &pool,
            "SELECT count(*) FROM inbox WHERE event_id::text = $1",
            &copy_id,
        )
        .await
            == 1
    })
    .await;
    wait_until("the outbox to drain", async || {
        count(&pool, "SELECT count(*) FROM outbox WHERE key = $1", &key).await == 0
    })
    .await;
    assert_eq!(testkit::count_records(&kafka, &inventory_commands).await, 1);
    let row = saga_row(&pool, order_id).await;
    assert_eq!((row.version, row.state.as_str()), (1, "ReservingStock"));
    let dead = testkit::read_topic(&kafka, &Topics::dead_letters(&orders_events)).await;
    assert_eq!(dead[0].headers["dlq.error_class"], "poison");

    stop.cancel();
    orchestrator.await.unwrap().unwrap();
    relay.await.unwrap().unwrap();
}

/// A new order's `OrderPlaced`, encoded with `codec`, as the orchestrator's consumer hands it over.
async fn order_placed(codec: &AvroCodec, topics: &Topics) -> (OrderId, consumers::Incoming) {
    let order_id = OrderId::new();
    let placed = domain::OrderEvent::Placed {
        order_id,
        customer_id: CustomerId::new(),
        lines: lines(),
        total: lines().total(),
        idempotency_key: None,
    };
    let topic = topics.events(Service::Orders);
    let record = incoming(codec, &topic, &order_id.to_string(), &placed).await;
    (order_id, record)
}

/// An event in the Confluent wire format, as the orchestrator's consumer hands it over.
async fn incoming<E: domain::Message>(
    codec: &AvroCodec,
    topic: &str,
    key: &str,
    event: &E,
) -> consumers::Incoming {
    let (payload, _) = codec
        .encode(
            topic,
            event.event_type(),
            &serde_json::to_value(event).unwrap(),
        )
        .await
        .unwrap();
    consumers::Incoming {
        topic: topic.to_owned(),
        partition: 0,
        offset: 0,
        key: Some(key.as_bytes().to_vec()),
        payload,
        headers: RecordHeaders::new(),
        event_id: Uuid::now_v7(),
    }
}

async fn apply(
    orchestrator: &sagas::Orchestrator,
    pool: &PgPool,
    record: &consumers::Incoming,
) -> Result<(), consumers::HandlerError> {
    use consumers::Handler as _;
    let mut tx = pool.begin().await.unwrap();
    orchestrator.handle(&mut tx, record).await?;
    tx.commit().await.unwrap();
    Ok(())
}

#[tokio::test]
async fn the_handler_reads_every_service_reply_and_completes_the_saga() {
    use domain::{
        DeliveryEvent, DeliveryId, InventoryEvent, OrderEvent, OrderStockEvent, PaymentEvent,
        PaymentId, Quantity, Sku,
    };
    let db = TestDb::new().await;
    let pool = db.pool().clone();
    let stop = CancellationToken::new();
    let registry = LocalRegistry::start(pool.clone()).await.unwrap();
    let codec = Arc::new(AvroCodec::new(registry.url()).unwrap());
    let topics = Topics::with_prefix(format!("{}.", testkit::unique_name("t")));
    let orchestrator = sagas::Orchestrator::new(
        pool.clone(),
        Arc::clone(&codec),
        topics.clone(),
        "test",
        patient(),
    );
    let order_id = OrderId::new();
    let payment_id = PaymentId::new();
    let delivery_id = DeliveryId::new();
    let total = lines().total();
    let (orders, inventory, payments, delivery) = (
        topics.events(Service::Orders),
        topics.events(Service::Inventory),
        topics.events(Service::Payments),
        topics.events(Service::Delivery),
    );

    // A reply before the start: a routing bug, dead-lettered.
    let early = incoming(
        &codec,
        &inventory,
        &order_id.to_string(),
        &OrderStockEvent::OrderStockReserved { order_id },
    )
    .await;
    assert!(matches!(
        apply(&orchestrator, &pool, &early).await,
        Err(consumers::HandlerError::Poison(_))
    ));

    let records = vec![
        incoming(
            &codec,
            &orders,
            &order_id.to_string(),
            &OrderEvent::Placed {
                order_id,
                customer_id: CustomerId::new(),
                lines: lines(),
                total,
                idempotency_key: Some("k-1".into()),
            },
        )
        .await,
        // Per-SKU inventory events share the topic; the saga does not act on them.
        incoming(
            &codec,
            &inventory,
            "MUG-RED",
            &InventoryEvent::Reserved {
                sku: Sku::new("MUG-RED").unwrap(),
                order_id,
                quantity: Quantity::new(2).unwrap(),
            },
        )
        .await,
        incoming(
            &codec,
            &inventory,
            &order_id.to_string(),
            &OrderStockEvent::OrderStockReserved { order_id },
        )
        .await,
        incoming(
            &codec,
            &payments,
            &order_id.to_string(),
            &PaymentEvent::Authorized {
                payment_id,
                order_id,
                amount: total,
                provider_ref: "psp-1".into(),
            },
        )
        .await,
        incoming(
            &codec,
            &delivery,
            &order_id.to_string(),
            &DeliveryEvent::Scheduled {
                delivery_id,
                order_id,
            },
        )
        .await,
        incoming(
            &codec,
            &delivery,
            &order_id.to_string(),
            &DeliveryEvent::Dispatched {
                delivery_id,
                order_id,
            },
        )
        .await,
        incoming(
            &codec,
            &payments,
            &order_id.to_string(),
            &PaymentEvent::Captured {
                payment_id,
                order_id,
                amount: total,
            },
        )
        .await,
        incoming(
            &codec,
            &inventory,
            &order_id.to_string(),
            &OrderStockEvent::OrderStockCommitted { order_id },
        )
        .await,
        incoming(
            &codec,
            &delivery,
            &order_id.to_string(),
            &DeliveryEvent::Completed {
                delivery_id,
                order_id,
            },
        )
        .await,
        incoming(
            &codec,
            &orders,
            &order_id.to_string(),
            &OrderEvent::Completed { order_id },
        )
        .await,
    ];
    for record in &records {
        apply(&orchestrator, &pool, record).await.unwrap();
    }
    let row = saga_row(&pool, order_id).await;
    assert_eq!(row.outcome.as_deref(), Some("completed"));
    assert_eq!(row.version, 8);
    let sent: Vec<String> =
        sqlx::query_scalar("SELECT headers->>'event_type' FROM outbox WHERE key = $1 ORDER BY id")
            .bind(order_id.to_string())
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        sent,
        [
            "ReserveStock",
            "AuthorizePayment",
            "ScheduleDelivery",
            "CapturePayment",
            "CommitStock",
            "CompleteOrder"
        ]
    );

    // Bytes that are not in the wire format are poison.
    let mut junk = records[0].clone();
    junk.payload = b"{\"type\":\"OrderPlaced\"}".to_vec();
    assert!(matches!(
        apply(&orchestrator, &pool, &junk).await,
        Err(consumers::HandlerError::Poison(_))
    ));
    stop.cancel();
}

#[tokio::test]
async fn an_unreachable_registry_is_a_transient_failure_and_the_saga_starts_once_it_answers() {
    let db = TestDb::new().await;
    let pool = db.pool().clone();
    // Nothing listens on this port once the listener is dropped.
    let address = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let codec = Arc::new(AvroCodec::new(&format!("http://{address}")).unwrap());
    let topics = Topics::with_prefix(format!("{}.", testkit::unique_name("t")));
    let orchestrator = sagas::Orchestrator::new(
        pool.clone(),
        Arc::clone(&codec),
        topics.clone(),
        "test",
        patient(),
    );
    // The writer's registry (same database, so the same schema ids) encodes the order placed.
    let writer_registry = LocalRegistry::start(pool.clone()).await.unwrap();
    let writer = Arc::new(AvroCodec::new(writer_registry.url()).unwrap());
    let (order_id, placed) = order_placed(&writer, &topics).await;

    let failed = apply(&orchestrator, &pool, &placed).await;
    assert!(
        matches!(failed, Err(consumers::HandlerError::Transient(_))),
        "{failed:?}"
    );
    assert!(
        sagas::queries::saga(&pool, order_id)
            .await
            .unwrap()
            .is_none()
    );

    // The orchestrator's registry comes up: the record the runtime retries now starts the saga.
    let listener = TcpListener::bind(address).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(schemas::registry::serve(
        listener,
        pool.clone(),
        async move {
            let _ = stopped.await;
        },
    ));
    let retried = apply(&orchestrator, &pool, &placed).await;
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    retried.unwrap();
    let saga = sagas::queries::saga(&pool, order_id).await.unwrap();
    assert!(
        saga.is_some(),
        "the saga started once the registry answered"
    );
}

/// The command the saga sends cannot be written: the registry refuses its schema as incompatible (409). A
/// retry fails the same way until an operator acts, so the record is poison, as it is for the services
/// (`ServiceError::is_transient`): dead-lettered, not retried in place for ever. Once the subject is fixed,
/// the redriven record starts the saga.
#[tokio::test]
async fn a_command_schema_the_registry_refuses_is_poison_not_retried_for_ever() {
    let db = TestDb::new().await;
    let pool = db.pool().clone();
    let registry = LocalRegistry::start(pool.clone()).await.unwrap();
    let codec = Arc::new(AvroCodec::new(registry.url()).unwrap());
    let topics = Topics::with_prefix(format!("{}.", testkit::unique_name("t")));
    let orchestrator = sagas::Orchestrator::new(
        pool.clone(),
        Arc::clone(&codec),
        topics.clone(),
        "test",
        patient(),
    );
    let subject = format!(
        "{}-orderflow.inventory.ReserveStock",
        topics.commands(Service::Inventory)
    );
    let client = reqwest::Client::new();
    let incompatible = serde_json::json!({
        "type": "record", "name": "ReserveStock", "namespace": "orderflow.inventory",
        "fields": [{"name": "something_else", "type": "int"}]
    });
    let registered = client
        .post(format!("{}/subjects/{subject}/versions", registry.url()))
        .json(&serde_json::json!({ "schema": incompatible.to_string() }))
        .send()
        .await
        .unwrap();
    assert!(registered.status().is_success(), "{registered:?}");
    let (order_id, placed) = order_placed(&codec, &topics).await;

    let failed = apply(&orchestrator, &pool, &placed).await;
    assert!(
        matches!(failed, Err(consumers::HandlerError::Poison(_))),
        "{failed:?}"
    );
    assert!(
        sagas::queries::saga(&pool, order_id)
            .await
            .unwrap()
            .is_none()
    );

    // An operator removes the incompatible subject and redrives the dead letter.
    for permanent in ["false", "true"] {
        let deleted = client
            .delete(format!(
                "{}/subjects/{subject}?permanent={permanent}",
                registry.url()
            ))
            .send()
            .await
            .unwrap();
        assert!(deleted.status().is_success(), "{deleted:?}");
    }
    apply(&orchestrator, &pool, &placed).await.unwrap();
    let row = saga_row(&pool, order_id).await;
    assert_eq!((row.version, row.state.as_str()), (1, "ReservingStock"));
}
