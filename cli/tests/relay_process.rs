//! The `orderflow relay` binary, killed with SIGKILL in the middle of its work: every committed event still
//! reaches the topic at least once, in per-key order; and a SIGTERM stops it cleanly.

mod common;

use domain::Service;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use domain::{InventoryEvent, InventoryState, Sku};
use outbox::{EventStore, Metadata};
use producers::topics::Topics;

use common::free_local_address;

fn start_relay(db: &testkit::TestDb, kafka: &producers::KafkaConfig, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args(["relay", "--batch-size", "200", "--poll-interval-ms", "200"])
        .args(extra)
        .env("DATABASE_URL", db.url())
        .env("KAFKA_BOOTSTRAP", &kafka.bootstrap)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("start orderflow relay")
}

/// The value of a Prometheus counter or gauge scraped from `addr`.
async fn metric(addr: &str, name: &str) -> f64 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("metrics endpoint");
    stream
        .write_all(
            format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).await.unwrap();
    body.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in the metrics:\n{body}"))
}

async fn outbox_len(db: &testkit::TestDb) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(db.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_relay_killed_mid_batch_loses_nothing_and_keeps_key_order() {
    let db = testkit::TestDb::new().await;
    let kafka = testkit::kafka();
    let topics = Topics::with_prefix(format!("{}-", testkit::unique_name("relay-kill")));
    let topic = topics.events(Service::Inventory);
    producers::ensure_topic(&kafka, &topic, 4).await.unwrap();
    let store = EventStore::json(db.pool().clone(), topics, "eu-west");

    let total: i64 = 20_000;
    for n in 0..200 {
        let sku = Sku::new(format!("SKU-{n:04}")).unwrap();
        let mut version = 0;
        for _ in 0..10 {
            let events: Vec<_> = (1..=10)
                .map(|quantity| InventoryEvent::Received {
                    sku: sku.clone(),
                    quantity,
                })
                .collect();
            let mut tx = db.pool().begin().await.unwrap();
            version = store
                .append::<InventoryState>(
                    &mut tx,
                    sku.as_str(),
                    version,
                    &events,
                    &Metadata::new(uuid::Uuid::now_v7()),
                )
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
    }
    assert_eq!(outbox_len(&db).await, total);

    // Kill it in the middle of a batch: records are on the topic that the outbox still holds (acknowledged or
    // in flight, not yet deleted).
    let mut relay = start_relay(&db, &kafka, &[]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let deleted = total - outbox_len(&db).await;
        let on_topic = testkit::count_records(&kafka, &topic).await;
        if deleted > 0 && on_topic > deleted {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never saw the relay mid-batch in 120 s ({deleted} deleted, {on_topic} on the topic)"
        );
    }
    relay.kill().expect("SIGKILL");
    relay.wait().unwrap();
    let left = outbox_len(&db).await;
    assert!(left > 0, "the relay was killed before it finished");

    // A new relay takes over (the killed session's lock is gone) and drains the rest.
    let metrics_addr = free_local_address();
    let mut relay = start_relay(&db, &kafka, &["--metrics-addr", &metrics_addr]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    while outbox_len(&db).await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the outbox did not drain"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let published = metric(&metrics_addr, "outbox_relay_published_total").await;
    assert!(
        published >= left as f64,
        "the second relay reports {published} published, at least {left} expected"
    );
    let terminated = Command::new("kill")
        .args(["-TERM", &relay.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    let status = relay.wait().unwrap();
    assert!(status.success(), "SIGTERM ends the relay cleanly: {status}");

    let records = testkit::read_topic(&kafka, &topic).await;
    let duplicates = testkit::assert_every_event_in_key_order(db.pool(), &records).await;
    assert_eq!(records.len() - duplicates, total as usize);
    eprintln!(
        "killed with {left} records left; {} records on the topic, {duplicates} duplicates",
        records.len()
    );
}
