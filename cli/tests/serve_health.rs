//! A stuck part is visible: `orderflow serve payments` whose registry does not answer retries its first
//! record in place, and once that has lasted longer than `--stuck-after-secs`, GET /health answers 503 and
//! names the partition and the reason.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use producers::headers::{self, RecordHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use common::{free_local_address, get};

#[tokio::test]
async fn health_turns_503_when_a_partition_is_stuck_retrying() {
    let db = testkit::TestDb::new().await;
    let kafka = testkit::kafka();
    let prefix = format!("{}.", testkit::unique_name("stuck"));
    let addr = free_local_address();
    let registry = format!("http://{}", free_local_address()); // nothing listens there
    let mut payments = Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args([
            "serve",
            "payments",
            "--health-addr",
            &addr,
            "--stuck-after-secs",
            "1",
        ])
        .env("DATABASE_URL", db.url())
        .env("KAFKA_BOOTSTRAP", &kafka.bootstrap)
        .env("PAYMENTS_CALLBACK_LISTEN", free_local_address())
        .env("SCHEMA_REGISTRY_URL", &registry)
        .env("TOPIC_PREFIX", &prefix)
        .env("GROUP_PREFIX", &prefix)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("the orderflow binary starts");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let first = loop {
        if let Ok(answer) = get(&addr, "/health").await {
            break answer;
        }
        assert!(
            payments.try_wait().unwrap().is_none(),
            "serve payments exited"
        );
        assert!(tokio::time::Instant::now() < deadline, "never served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // A record in the wire format whose schema only the (absent) registry knows.
    let topic = format!("{prefix}payments.commands");
    let producer: FutureProducer = kafka.client_config().create().unwrap();
    let record_headers = RecordHeaders::from([(
        headers::EVENT_ID.to_owned(),
        uuid::Uuid::now_v7().to_string(),
    )]);
    producer
        .send(
            FutureRecord::to(&topic)
                .key("order")
                .payload(&[0u8, 0, 0, 0, 1, 2, 4][..])
                .headers(headers::to_kafka(&record_headers)),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();

    let stuck = loop {
        let answer = get(&addr, "/health").await.unwrap_or_default();
        if answer.starts_with("HTTP/1.1 503") {
            break answer;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "health stayed {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    payments.kill().unwrap();
    payments.wait().unwrap();
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(
        stuck.contains(&topic) && stuck.contains("registry"),
        "the answer names the partition and the reason: {stuck}"
    );
}
