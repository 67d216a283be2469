//! Consumers join and leave the group while 10,000 events flow: every event has exactly one effect, each
//! consumer that was in the group applied some, and the effects of each key are in the order produced.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Running, handler};
use producers::headers::{self, RecordHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

const KEYS: u64 = 97;

/// Waits until `running` has applied at least one record; panics after a minute.
async fn until_it_applies(running: &Running, which: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while running.stats.applied.load(Ordering::Relaxed) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the {which} consumer was given no partition with records"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn consumers_joining_and_leaving_apply_every_event_exactly_once_in_key_order() {
    let db = common::effects_db().await;
    let kafka = testkit::kafka();
    let topic = testkit::unique_name("group-flow");
    producers::ensure_topic(&kafka, &topic, 4).await.unwrap();
    let total = 10_000u64;

    // Events flow for about ten seconds while the group changes; the idempotent producer keeps each
    // key's records in order.
    let producing = {
        let (kafka, topic) = (kafka.clone(), topic.clone());
        tokio::spawn(async move {
            let producer: FutureProducer = kafka
                .client_config()
                .set("enable.idempotence", "true")
                .create()
                .unwrap();
            let mut every = tokio::time::interval(Duration::from_millis(10));
            let mut deliveries = Vec::with_capacity(total as usize);
            for n in 0..total {
                if n % 10 == 0 {
                    every.tick().await;
                }
                let record_headers = RecordHeaders::from([(
                    headers::EVENT_ID.to_owned(),
                    uuid::Uuid::now_v7().to_string(),
                )]);
                let (key, payload) = (format!("order-{}", n % KEYS), n.to_string());
                let record = FutureRecord::to(&topic)
                    .key(&key)
                    .payload(&payload)
                    .headers(headers::to_kafka(&record_headers));
                deliveries.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
            }
            for delivery in deliveries {
                delivery.await.unwrap().map_err(|(e, _)| e).unwrap();
            }
        })
    };

    let group = testkit::unique_name("group");
    let first = Running::start_in(&group, &db, &kafka, &topic, handler());
    until_it_applies(&first, "first").await;
    let second = Running::start_in(&group, &db, &kafka, &topic, handler());
    until_it_applies(&second, "second").await;
    let second_applied = second.stats.applied.load(Ordering::Relaxed);
    second.stop().await; // leaves: its partitions go back to the first
    let third = Running::start_in(&group, &db, &kafka, &topic, handler());
    producing.await.unwrap();

    common::wait_for_effects(&db, total as i64, Duration::from_secs(180)).await;
    let out_of_order: Vec<(i64, Vec<i64>)> = sqlx::query_as(
        "SELECT key, produced FROM (
             SELECT payload::bigint % $1 AS key, array_agg(payload::bigint ORDER BY n) AS produced
             FROM effects GROUP BY 1) per_key
         WHERE produced <> (SELECT array_agg(p ORDER BY p) FROM unnest(produced) AS p)",
    )
    .bind(KEYS as i64)
    .fetch_all(db.pool())
    .await
    .unwrap();
    let applied = |r: &Running| r.stats.applied.load(Ordering::Relaxed);
    let duplicates = first.stats.duplicates.load(Ordering::Relaxed)
        + third.stats.duplicates.load(Ordering::Relaxed);
    eprintln!(
        "10,000 events, each applied once (first {}, second {second_applied}, third {}); \
         {duplicates} redeliveries skipped by the inbox",
        applied(&first),
        applied(&third)
    );
    first.stop().await;
    third.stop().await;
    assert!(
        out_of_order.is_empty(),
        "keys whose effects are out of the produced order: {:?}",
        out_of_order.iter().map(|(key, _)| key).collect::<Vec<_>>()
    );
}
