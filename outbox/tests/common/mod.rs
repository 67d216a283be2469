//! Helpers shared by the outbox's integration tests.
#![allow(dead_code)]

use domain::Service;
use std::sync::Arc;

use domain::{InventoryEvent, InventoryState, Sku};
use outbox::{EventStore, Metadata, OutboxRecord, Relay, RelayConfig, RelayStats};
use producers::KafkaConfig;
use producers::headers::RecordHeaders;
use producers::topics::Topics;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A test's own topics (unique prefix) with the inventory events topic created.
pub async fn topics(kafka: &KafkaConfig, partitions: i32) -> (Topics, String) {
    let topics = Topics::with_prefix(format!("{}-", testkit::unique_name("outbox")));
    let topic = topics.events(Service::Inventory);
    producers::ensure_topic(kafka, &topic, partitions)
        .await
        .expect("create topic");
    (topics, topic)
}

pub fn sku(n: usize) -> Sku {
    Sku::new(format!("SKU-{n:05}")).expect("valid sku")
}

/// `count` events for the stream of `sku`, starting after `version`.
pub fn received(sku: &Sku, count: usize) -> Vec<InventoryEvent> {
    (1..=count)
        .map(|quantity| InventoryEvent::Received {
            sku: sku.clone(),
            quantity: quantity as u32,
        })
        .collect()
}

/// Appends `events` to the stream of `sku` at `version` in one committed transaction; returns the new version.
pub async fn append(store: &EventStore, sku: &Sku, version: i64, events: &[InventoryEvent]) -> i64 {
    let mut tx = store.pool().begin().await.unwrap();
    let version = store
        .append::<InventoryState>(
            &mut tx,
            sku.as_str(),
            version,
            events,
            &Metadata::new(uuid::Uuid::now_v7()),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    version
}

/// Starts one writer per SKU of `skus`, each appending 100 events to its stream in 10 transactions.
pub fn spawn_writers(store: &EventStore, skus: std::ops::Range<usize>) -> Vec<JoinHandle<()>> {
    skus.map(|n| {
        let store = store.clone();
        tokio::spawn(async move {
            let sku = sku(n);
            let mut version = 0;
            for _ in 0..10 {
                version = append(&store, &sku, version, &received(&sku, 10)).await;
            }
        })
    })
    .collect()
}

/// An outbox record for `topic` and `key`, with an `n` header that tells records apart.
pub fn record(topic: &str, key: &str, payload: Vec<u8>, n: u32) -> OutboxRecord {
    OutboxRecord {
        topic: topic.to_owned(),
        key: key.to_owned(),
        payload,
        headers: RecordHeaders::from([("n".to_owned(), n.to_string())]),
    }
}

/// A relay running in this process until the returned token is cancelled.
pub struct RunningRelay {
    pub stop: CancellationToken,
    pub stats: Arc<RelayStats>,
    pub task: JoinHandle<Result<(), outbox::OutboxError>>,
}

impl RunningRelay {
    pub fn start(pool: &PgPool, kafka: &KafkaConfig, config: RelayConfig) -> Self {
        let relay = Relay::new(pool.clone(), kafka, config).expect("relay");
        let stop = CancellationToken::new();
        let stats = relay.stats();
        let task = tokio::spawn(relay.run(stop.clone()));
        Self { stop, stats, task }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.expect("relay task").expect("relay result");
    }
}

pub async fn outbox_len(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Waits until the outbox is empty; panics after `secs` seconds with what is left.
pub async fn wait_until_drained(pool: &PgPool, secs: u64) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let left = outbox_len(pool).await;
        if left == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{left} records still in the outbox after {secs} s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
