//! `orderflow serve <part>` on a cluster that creates no topic by itself (Apache Kafka with
//! `auto.create.topics.enable=false`, as `./dev up` and most production clusters run it): the part creates
//! every topic of the pipeline before it serves, so the relay's first `OrderPlaced` has somewhere to go.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer as _};

use common::free_local_address;

fn existing_topics(kafka: &producers::KafkaSettings, prefix: &str) -> Vec<String> {
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
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(&health).await.is_err() {
        assert!(
            relay.try_wait().unwrap().is_none(),
            "serve relay exited before it served"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "serve relay never served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
