//! Each region's local broker keeps every acknowledged record across `kill -9`, and `./dev up` brings it back.
//!
//! It kills the brokers every other test uses, so it is ignored in the normal run; `./dev test` runs it alone,
//! after the suite, one region at a time:
//! `cargo test -p orderflow-tests --test broker_restart -- --ignored --test-threads=1`.

use std::time::Duration;

use producers::KafkaConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use testkit::local;

#[tokio::test]
#[ignore = "kills the shared local broker; `./dev test` runs it alone after the suite"]
async fn region_east_keeps_acknowledged_records_across_a_kill_9_and_dev_up_restarts_it() {
    survives_a_kill_9("east", &testkit::kafka()).await;
}

#[tokio::test]
#[ignore = "kills the shared local broker; `./dev test` runs it alone after the suite"]
async fn region_west_keeps_acknowledged_records_across_a_kill_9_and_dev_up_restarts_it() {
    survives_a_kill_9("west", &testkit::kafka_west()).await;
}

async fn survives_a_kill_9(region: &str, kafka: &KafkaConfig) {
    let topic = testkit::unique_name("restart");
    producers::ensure_topic(kafka, &topic, 2).await.unwrap();
    let producer: FutureProducer = kafka
        .client_config()
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    // Every record is acknowledged (acks=all) before the kill.
    for n in 0..20 {
        let payload = format!("record {n}");
        producer
            .send(
                FutureRecord::to(&topic)
                    .key(&format!("k{}", n % 5))
                    .payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
    drop(producer);

    let pid = local::kill_broker(region);
    assert!(
        !local::dev("status").success(),
        "status reports region {region} down after kill -9"
    );
    let up = local::dev("up");
    assert!(up.success(), "./dev up restarts region {region}");
    assert_ne!(
        local::broker_pid(region),
        pid,
        "a new broker process in {region}"
    );
    assert!(
        local::dev("status").success(),
        "status reports every region up again"
    );

    let mut payloads: Vec<String> = testkit::read_topic(kafka, &topic)
        .await
        .into_iter()
        .map(|r| String::from_utf8(r.payload).unwrap())
        .collect();
    payloads.sort();
    let mut expected: Vec<String> = (0..20).map(|n| format!("record {n}")).collect();
    expected.sort();
    assert_eq!(
        payloads, expected,
        "every record acknowledged before the kill, in region {region}"
    );
}
