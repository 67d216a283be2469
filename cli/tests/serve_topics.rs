//! `orderflow serve <part>` on a cluster that creates no topic by itself (Apache Kafka with
//! `auto.create.topics.enable=false`, as `./dev up` and most production clusters run it): the part creates
//! every topic of the pipeline before it serves, so the relay's first `OrderPlaced` has somewhere to go.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer as _};

use common::free_local_address;

fn existing_topics(kafka: &producers::KafkaConfig, prefix: &str) -> Vec<String> {
    let client: BaseConsumer = kafka.client_config().create().unwrap();
    let metadata = client
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
    let mut topics: Vec<String> = metadata
        .topics()
        .iter()
        .map(|t| t.name().to_owned())
        .filter(|name| name.starts_with(prefix))
        .collect();
    topics.sort();
    topics
}

#[tokio::test]
async fn serve_relay_creates_the_pipelines_topics_before_it_serves() {
    let db = testkit::TestDb::new().await;
    let kafka = testkit::kafka();
    let prefix = format!("{}.", testkit::unique_name("serve"));
    let health = free_local_address();
    let mut relay = Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args(["serve", "relay", "--health-addr", &health])
        .env("DATABASE_URL", db.url())
        .env("KAFKA_BOOTSTRAP", &kafka.bootstrap)
        .env("TOPIC_PREFIX", &prefix)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("the orderflow binary starts");
    common::wait_until_serving(&mut relay, &health, "relay").await;
    let topics = existing_topics(&kafka, &prefix);
    relay.kill().unwrap();
    relay.wait().unwrap();

    let mut expected: Vec<String> = [
        "orders.events",
        "payments.events",
        "inventory.events",
        "delivery.events",
        "orders.commands",
        "payments.commands",
        "inventory.commands",
        "delivery.commands",
    ]
    .iter()
    .map(|topic| format!("{prefix}{topic}"))
    .collect();
    expected.sort();
    assert_eq!(topics, expected);
}

/// `serve relay` takes the relay's settings as `orderflow relay` does (flags and `RELAY_*`): with a record
/// limit of 1,000 bytes, a record of 2,000 is refused before it is sent and quarantined with that reason.
#[tokio::test]
async fn serve_relay_honours_the_relay_settings() {
    let db = testkit::TestDb::new().await;
    let kafka = testkit::kafka();
    let prefix = format!("{}.", testkit::unique_name("serve"));
    let topic = format!("{prefix}orders.events");
    let record = outbox::OutboxRecord {
        topic: topic.clone(),
        key: "key".to_owned(),
        payload: vec![b'x'; 2_000],
        headers: producers::headers::RecordHeaders::new(),
    };
    outbox::records::enqueue(&mut db.pool().acquire().await.unwrap(), &[record])
        .await
        .unwrap();
    let health = free_local_address();
    let mut relay = Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args(["serve", "relay", "--health-addr", &health])
        .env("DATABASE_URL", db.url())
        .env("KAFKA_BOOTSTRAP", &kafka.bootstrap)
        .env("TOPIC_PREFIX", &prefix)
        .env("RELAY_MAX_MESSAGE_BYTES", "1000")
        .env("RELAY_MAX_ATTEMPTS", "1")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("the orderflow binary starts");
    // Serving means the topics exist.
    common::wait_until_serving(&mut relay, &health, "relay").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let reason = loop {
        let reasons: Vec<String> = sqlx::query_scalar("SELECT reason FROM outbox_quarantine")
            .fetch_all(db.pool())
            .await
            .unwrap();
        let published = testkit::count_records(&kafka, &topic).await;
        if !reasons.is_empty() || published > 0 || std::time::Instant::now() > deadline {
            relay.kill().unwrap();
            relay.wait().unwrap();
            assert_eq!(published, 0, "the 2,000-byte record was published");
            break reasons
                .first()
                .cloned()
                .expect("nothing quarantined in 60 s");
        }
        assert!(
            relay.try_wait().unwrap().is_none(),
            "serve relay exited early"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(reason.contains("1000-byte limit"), "{reason}");
}
