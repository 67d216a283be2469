//! Helpers shared by the consumer runtime's integration tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use consumers::{ConsumerConfig, ConsumerRuntime, ConsumerStats, Handler, HandlerError, Incoming};
use producers::KafkaConfig;
use producers::headers::{self, RecordHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::PgConnection;
use tokio_util::sync::CancellationToken;

/// Writes one row per applied record; "poison" payloads are refused for good, "panic" ones make it panic,
/// "slow" ones take 300 ms, and the first `fail_first` attempts of a "flaky" payload fail transiently.
pub struct Effects {
    pub flaky_failures: AtomicU32,
    pub fail_first: u32,
    /// Once set, "poison" payloads are applied like any other (the bug was fixed).
    pub accept_poison: Arc<AtomicBool>,
    /// "busy" payloads fail as retryable this many times, then succeed; "always busy" ones never do.
    pub busy_failures: AtomicU32,
    pub busy_fail_first: u32,
}

impl Handler for Effects {
    async fn handle(&self, tx: &mut PgConnection, record: &Incoming) -> Result<(), HandlerError> {
        let payload = String::from_utf8(record.payload.clone())
            .map_err(|e| HandlerError::Poison(e.into()))?;
        assert_ne!(payload, "panic", "the handler has a bug");
        if payload == "slow" {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        if payload == "poison" && !self.accept_poison.load(Ordering::SeqCst) {
            return Err(HandlerError::Poison("payload fails validation".into()));
        }
        if payload == "always busy"
            || (payload == "busy"
                && self.busy_failures.fetch_add(1, Ordering::SeqCst) < self.busy_fail_first)
        {
            return Err(HandlerError::Retryable("payment provider timed out".into()));
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

pub struct Running {
    pub stop: CancellationToken,
    pub stats: Arc<ConsumerStats>,
    pub task: tokio::task::JoinHandle<Result<(), consumers::ConsumerError>>,
}

impl Running {
    pub fn start(db: &testkit::TestDb, kafka: &KafkaConfig, topic: &str, handler: Effects) -> Self {
        Self::start_in(&testkit::unique_name("group"), db, kafka, topic, handler)
    }

    pub fn start_in(
        group: &str,
        db: &testkit::TestDb,
        kafka: &KafkaConfig,
        topic: &str,
        handler: Effects,
    ) -> Self {
        Self::start_with(group, db, kafka, topic, handler, |s| s)
    }

    pub fn start_with(
        group: &str,
        db: &testkit::TestDb,
        kafka: &KafkaConfig,
        topic: &str,
        handler: Effects,
        adjust: impl FnOnce(ConsumerConfig) -> ConsumerConfig,
    ) -> Self {
        let settings = ConsumerConfig {
            backoff: Duration::from_millis(20),
            retry_delays: vec![Duration::from_millis(200), Duration::from_millis(200)],
            ..ConsumerConfig::new(group, vec![topic.to_owned()])
        };
        let settings = adjust(settings);
        let runtime = ConsumerRuntime::new(db.pool().clone(), kafka, settings, handler).unwrap();
        let stop = CancellationToken::new();
        let stats = runtime.stats();
        let task = tokio::spawn(runtime.run(stop.clone()));
        Self { stop, stats, task }
    }

    pub async fn wait_until_handled(&self, records: u64) {
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

    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
    }
}

/// A fresh database with the table the [`Effects`] handler writes to.
pub async fn effects_db() -> testkit::TestDb {
    let db = testkit::TestDb::new().await;
    sqlx::query(
        "CREATE TABLE effects (n bigserial PRIMARY KEY, event_id uuid NOT NULL, payload text NOT NULL)",
    )
    .execute(db.pool())
    .await
    .unwrap();
    db
}

/// Waits until `count` effects exist, asserting all along that no event has two.
pub async fn wait_for_effects(db: &testkit::TestDb, count: i64, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let (rows, distinct): (i64, i64) =
            sqlx::query_as("SELECT count(*), count(DISTINCT event_id) FROM effects")
                .fetch_one(db.pool())
                .await
                .unwrap();
        assert_eq!(rows, distinct, "an event had two effects");
        if rows >= count {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {rows} of {count} effects after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn setup() -> (testkit::TestDb, KafkaConfig, String) {
    let db = effects_db().await;
    let kafka = testkit::kafka();
    let topic = testkit::unique_name("consumed");
    producers::ensure_topic(&kafka, &topic, 1).await.unwrap();
    producers::ensure_topic(&kafka, &format!("{topic}.dlq"), 1)
        .await
        .unwrap();
    (db, kafka, topic)
}

pub async fn produce(kafka: &KafkaConfig, topic: &str, records: &[(Option<uuid::Uuid>, &str)]) {
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

pub fn handler() -> Effects {
    Effects {
        flaky_failures: AtomicU32::new(0),
        fail_first: 0,
        accept_poison: Arc::default(),
        busy_failures: AtomicU32::new(0),
        busy_fail_first: 0,
    }
}

pub async fn effects(db: &testkit::TestDb) -> Vec<(uuid::Uuid, String)> {
    sqlx::query_as("SELECT event_id, payload FROM effects ORDER BY n")
        .fetch_all(db.pool())
        .await
        .unwrap()
}
