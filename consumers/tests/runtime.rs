//! The consumer runtime against the real broker and database.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use consumers::runtime::dead_letter_headers as dlq;
use consumers::{
    ConsumerRuntime, ConsumerSettings, ConsumerStats, Handler, HandlerError, Incoming,
};
use producers::KafkaSettings;
use producers::headers::{self, RecordHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::PgConnection;
use tokio_util::sync::CancellationToken;

/// Writes one row per applied record; "poison" payloads are refused for good, and the first
/// `fail_first` attempts of a "flaky" payload fail transiently.
struct Effects {
    flaky_failures: AtomicU32,
    fail_first: u32,
}

impl Handler for Effects {
    async fn handle(&self, tx: &mut PgConnection, record: &Incoming) -> Result<(), HandlerError> {
        let payload = String::from_utf8(record.payload.clone())
            .map_err(|e| HandlerError::Poison(e.into()))?;
        if payload == "poison" {
            return Err(HandlerError::Poison("payload fails validation".into()));
        }
        if payload == "flaky"
            && self.flaky_failures.fetch_add(1, Ordering::SeqCst) < self.fail_first
        {
            return Err(HandlerError::Transient(
                "database briefly unavailable".into(),
            ));
        }
        sqlx::query("INSERT INTO effects (event_id, payload) VALUES ($1, $2)")
            .bind(record.event_id)
            .bind(&payload)
            .execute(tx)
            .await
            .map_err(|e| HandlerError::Transient(e.into()))?;
        Ok(())
    }
}

struct Running {
    stop: CancellationToken,
    stats: Arc<ConsumerStats>,
    task: tokio::task::JoinHandle<Result<(), consumers::ConsumerError>>,
}

impl Running {
    fn start(db: &testkit::TestDb, kafka: &KafkaSettings, topic: &str, handler: Effects) -> Self {
        let settings = ConsumerSettings {
            backoff: Duration::from_millis(20),
            ..ConsumerSettings::new(testkit::unique_name("group"), vec![topic.to_owned()])
        };
        let runtime = ConsumerRuntime::new(db.pool().clone(), kafka, settings, handler).unwrap();
        let stop = CancellationToken::new();
        let stats = runtime.stats();
        let task = tokio::spawn(runtime.run(stop.clone()));
        Self { stop, stats, task }
    }

    async fn wait_until_handled(&self, records: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let handled = self.stats.applied.load(Ordering::Relaxed)
                + self.stats.duplicates.load(Ordering::Relaxed)
                + self.stats.dead_lettered.load(Ordering::Relaxed);
            if handled >= records {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {handled} of {records} records handled after 60 s: {:?}",
                self.stats
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
    }
}

async fn setup() -> (testkit::TestDb, KafkaSettings, String) {
    let db = testkit::TestDb::new().await;
    sqlx::query("CREATE TABLE effects (n bigserial PRIMARY KEY, event_id uuid NOT NULL, payload text NOT NULL)")
        .execute(db.pool())
        .await
        .unwrap();
    let kafka = testkit::kafka();
    let topic = testkit::unique_name("consumed");
    producers::ensure_topic(&kafka, &topic, 1).await.unwrap();
    producers::ensure_topic(&kafka, &format!("{topic}.dlq"), 1)
        .await
        .unwrap();
    (db, kafka, topic)
}

async fn produce(kafka: &KafkaSettings, topic: &str, records: &[(Option<uuid::Uuid>, &str)]) {
    let producer: FutureProducer = kafka.client_config().create().unwrap();
    for (event_id, payload) in records {
        let mut record_headers = RecordHeaders::from([("note".to_owned(), "original".to_owned())]);
        if let Some(id) = event_id {
            record_headers.insert(headers::EVENT_ID.to_owned(), id.to_string());
        }
        producer
            .send(
                FutureRecord::to(topic)
                    .key("order-1")
                    .payload(*payload)
                    .headers(headers::to_kafka(&record_headers)),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
}

fn handler() -> Effects {
    Effects {
        flaky_failures: AtomicU32::new(0),
        fail_first: 0,
    }
}

async fn effects(db: &testkit::TestDb) -> Vec<(uuid::Uuid, String)> {
    sqlx::query_as("SELECT event_id, payload FROM effects ORDER BY n")
        .fetch_all(db.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn the_same_event_delivered_three_times_has_one_effect() {
    let (db, kafka, topic) = setup().await;
    let event = uuid::Uuid::now_v7();
    produce(
        &kafka,
        &topic,
        &[
            (Some(event), "paid"),
            (Some(event), "paid"),
            (Some(event), "paid"),
        ],
    )
    .await;

    let consumer = Running::start(&db, &kafka, &topic, handler());
    consumer.wait_until_handled(3).await;
    assert_eq!(consumer.stats.applied.load(Ordering::Relaxed), 1);
    assert_eq!(consumer.stats.duplicates.load(Ordering::Relaxed), 2);
    consumer.stop().await;
    assert_eq!(effects(&db).await, [(event, "paid".to_owned())]);
}

#[tokio::test]
async fn a_poison_record_goes_to_the_dead_letter_topic_and_the_partition_moves_on() {
    let (db, kafka, topic) = setup().await;
    let (first, poison, last) = (
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
    );
    produce(
        &kafka,
        &topic,
        &[
            (Some(first), "one"),
            (Some(poison), "poison"),
            (None, "no event id"),
            (Some(last), "two"),
        ],
    )
    .await;

    let consumer = Running::start(&db, &kafka, &topic, handler());
    consumer.wait_until_handled(4).await;
    consumer.stop().await;
    assert_eq!(
        effects(&db).await,
        [(first, "one".to_owned()), (last, "two".to_owned())]
    );

    let dead = testkit::read_topic(&kafka, &format!("{topic}.dlq")).await;
    assert_eq!(dead.len(), 2);
    let envelope = &dead[0];
    assert_eq!(envelope.key.as_deref(), Some("order-1"));
    assert_eq!(envelope.payload, b"poison");
    let h = &envelope.headers;
    assert_eq!(h["note"], "original", "original headers are kept");
    assert_eq!(h[headers::EVENT_ID], poison.to_string());
    assert_eq!(h[dlq::SOURCE_TOPIC], topic);
    assert_eq!(h[dlq::SOURCE_PARTITION], "0");
    assert_eq!(h[dlq::SOURCE_OFFSET], "1");
    assert_eq!(h[dlq::ERROR_CLASS], "poison");
    assert!(
        h[dlq::ERROR_MESSAGE].contains("fails validation"),
        "{}",
        h[dlq::ERROR_MESSAGE]
    );
    assert_eq!(h[dlq::ATTEMPTS], "1");
    assert!(h.contains_key(dlq::FIRST_FAILED_AT) && h.contains_key(dlq::DEAD_LETTERED_AT));
    assert!(dead[1].headers[dlq::ERROR_MESSAGE].contains("no event_id header"));
    assert_eq!(dead[1].headers[dlq::SOURCE_OFFSET], "2");
}

#[tokio::test]
async fn a_transient_failure_is_retried_in_place_and_keeps_partition_order() {
    let (db, kafka, topic) = setup().await;
    let ids: Vec<uuid::Uuid> = (0..3).map(|_| uuid::Uuid::now_v7()).collect();
    produce(
        &kafka,
        &topic,
        &[
            (Some(ids[0]), "before"),
            (Some(ids[1]), "flaky"),
            (Some(ids[2]), "after"),
        ],
    )
    .await;

    let consumer = Running::start(
        &db,
        &kafka,
        &topic,
        Effects {
            flaky_failures: AtomicU32::new(0),
            fail_first: 3,
        },
    );
    consumer.wait_until_handled(3).await;
    assert_eq!(consumer.stats.retries.load(Ordering::Relaxed), 3);
    assert_eq!(consumer.stats.dead_lettered.load(Ordering::Relaxed), 0);
    consumer.stop().await;
    let applied: Vec<String> = effects(&db).await.into_iter().map(|(_, p)| p).collect();
    assert_eq!(
        applied,
        ["before", "flaky", "after"],
        "held the partition while retrying"
    );
}
