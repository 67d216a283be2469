//! Consumers join and leave the group while 10,000 events flow: every event has exactly one effect.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Running, handler};
use producers::headers::{self, RecordHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

#[tokio::test]
async fn consumers_joining_and_leaving_apply_every_event_exactly_once() {
    let db = common::effects_db().await;
    let kafka = testkit::kafka();
    let topic = testkit::unique_name("group-flow");
    producers::ensure_topic(&kafka, &topic, 4).await.unwrap();
    let total = 10_000u64;

    // Events flow for about ten seconds while the group changes.
    let producing = {
        let (kafka, topic) = (kafka.clone(), topic.clone());
        tokio::spawn(async move {
            let producer: FutureProducer = kafka.client_config().create().unwrap();
            let mut every = tokio::time::interval(Duration::from_millis(10));
            for n in 0..total {
                if n % 10 == 0 {
                    every.tick().await;
                }
                let record_headers = RecordHeaders::from([(
                    headers::EVENT_ID.to_owned(),
                    uuid::Uuid::now_v7().to_string(),
                )]);
                let payload = n.to_string();
                producer
                    .send(
                        FutureRecord::to(&topic)
                            .key(&format!("order-{}", n % 97))
                            .payload(&payload)
                            .headers(headers::to_kafka(&record_headers)),
                        Duration::from_secs(30),
                    )
                    .await
                    .map_err(|(e, _)| e)
                    .unwrap();
            }
        })
    };

    let group = testkit::unique_name("group");
    let first = Running::start_in(&group, &db, &kafka, &topic, handler());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let second = Running::start_in(&group, &db, &kafka, &topic, handler());
    tokio::time::sleep(Duration::from_secs(4)).await;
    let second_applied = second.stats.applied.load(Ordering::Relaxed);
    second.stop().await; // leaves: its partitions go back to the first
    let third = Running::start_in(&group, &db, &kafka, &topic, handler());
    producing.await.unwrap();

    common::wait_for_effects(&db, total as i64, Duration::from_secs(180)).await;
    let duplicates = first.stats.duplicates.load(Ordering::Relaxed)
        + third.stats.duplicates.load(Ordering::Relaxed);
    let applied = |r: &Running| r.stats.applied.load(Ordering::Relaxed);
    eprintln!(
        "10,000 events, each applied once (first {}, second {second_applied}, third {}); \
         {duplicates} redeliveries skipped by the inbox",
        applied(&first),
        applied(&third)
    );
    first.stop().await;
    third.stop().await;
}
