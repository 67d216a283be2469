//! The local environment works as the rest of the suite assumes: a consumer group on the real broker receives
//! every record produced, in order per key, and each test's database is its own.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};

#[tokio::test]
async fn a_consumer_group_receives_every_record_in_key_order() {
    let kafka = testkit::kafka();
    let topic = testkit::unique_name("env-check");
    producers::ensure_topic(&kafka, &topic, 3).await.unwrap();

    let producer: FutureProducer = kafka
        .client_config()
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    let keys = ["order-a", "order-b", "order-c", "order-d"];
    let per_key = 25;
    for seq in 0..per_key {
        for key in keys {
            let payload = seq.to_string();
            producer
                .send(
                    FutureRecord::to(&topic).key(key).payload(&payload),
                    Duration::from_secs(10),
                )
                .await
                .map_err(|(e, _)| e)
                .unwrap();
        }
    }

    let consumer: StreamConsumer = testkit::consumer_config(&kafka, &testkit::unique_name("env"))
        .create()
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let mut seen: HashMap<String, Vec<u32>> = HashMap::new();
    let expected = keys.len() * per_key as usize;
    let mut received = 0;
    while received < expected {
        let message = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("only {received} of {expected} records arrived"))
            .unwrap();
        let key = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
        let seq: u32 = std::str::from_utf8(message.payload().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        seen.entry(key).or_default().push(seq);
        received += 1;
    }
    for key in keys {
        assert_eq!(
            seen[key],
            (0..per_key).collect::<Vec<_>>(),
            "order of {key}"
        );
    }
}

#[tokio::test]
async fn postgres_round_trips_a_row_in_a_fresh_database() {
    let db = testkit::TestDb::new().await;
    sqlx::query("CREATE TABLE t (id uuid PRIMARY KEY, note text NOT NULL)")
        .execute(db.pool())
        .await
        .unwrap();
    let id = uuid::Uuid::now_v7();
    sqlx::query("INSERT INTO t VALUES ($1, 'hello')")
        .bind(id)
        .execute(db.pool())
        .await
        .unwrap();
    let note: String = sqlx::query_scalar("SELECT note FROM t WHERE id = $1")
        .bind(id)
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(note, "hello");
}
