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

/// Records each application with the member that made it, slowly, so a member has records buffered when
/// its partitions are taken away.
struct Labeled(&'static str);

impl consumers::Handler for Labeled {
    async fn handle(
        &self,
        tx: &mut sqlx::PgConnection,
        record: &consumers::Incoming,
    ) -> Result<(), consumers::HandlerError> {
        tokio::time::sleep(Duration::from_millis(150)).await;
        sqlx::query("INSERT INTO applied (member, partition, record_offset) VALUES ($1, $2, $3)")
            .bind(self.0)
            .bind(record.partition)
            .bind(record.offset)
            .execute(tx)
            .await
            .map_err(|e| consumers::HandlerError::Transient(e.into()))?;
        Ok(())
    }
}

/// A member whose partition is given to a newcomer stops applying it: it finishes the record in hand and
/// drops the ones it had buffered, so the partition is never applied by two members at once (which would
/// interleave their records out of order).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_stops_applying_a_partition_once_it_is_revoked() {
    use consumers::{ConsumerConfig, ConsumerRuntime};
    let db = testkit::TestDb::new().await;
    sqlx::query(
        "CREATE TABLE applied (n bigserial PRIMARY KEY, member text NOT NULL, partition int NOT NULL,
                               record_offset bigint NOT NULL)",
    )
    .execute(db.pool())
    .await
    .unwrap();
    let kafka = testkit::kafka();
    let topic = testkit::unique_name("group-revoke");
    producers::ensure_topic(&kafka, &topic, 2).await.unwrap();
    let producer: FutureProducer = kafka.client_config().create().unwrap();
    for n in 0..80 {
        let record_headers = RecordHeaders::from([(
            headers::EVENT_ID.to_owned(),
            uuid::Uuid::now_v7().to_string(),
        )]);
        let payload = n.to_string();
        let record = FutureRecord::to(&topic)
            .key("k")
            .partition(n % 2)
            .payload(&payload)
            .headers(headers::to_kafka(&record_headers));
        producer
            .send(record, Duration::from_secs(10))
            .await
            .unwrap();
    }
    let group = testkit::unique_name("group");
    let start = |member: &'static str| {
        let settings = ConsumerConfig {
            session_timeout: Duration::from_secs(6),
            ..ConsumerConfig::new(&group, vec![topic.clone()])
        };
        let runtime =
            ConsumerRuntime::new(db.pool().clone(), &kafka, settings, Labeled(member)).unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(runtime.run(stop.clone()));
        (stop, task)
    };
    let first = start("first");
    let applied = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM applied")
            .fetch_one(db.pool())
            .await
            .unwrap()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while applied().await < 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first member applied nothing"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let second = start("second");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while applied().await < 80 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every record was applied in 120 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (stop, task) in [first, second] {
        stop.cancel();
        task.await.unwrap().unwrap();
    }
    // Per partition, in the order applied: once the second member applied a record of it, the first
    // applies none after (the partition did not come back to it: nobody left the group).
    let rows: Vec<(String, i32, i64)> =
        sqlx::query_as("SELECT member, partition, record_offset FROM applied ORDER BY n")
            .fetch_all(db.pool())
            .await
            .unwrap();
    for partition in 0..2 {
        let members: Vec<&str> = rows
            .iter()
            .filter(|(_, p, _)| *p == partition)
            .map(|(member, _, _)| member.as_str())
            .collect();
        if let Some(taken) = members.iter().position(|m| *m == "second") {
            let late: Vec<_> = members[taken..].iter().filter(|m| **m == "first").collect();
            assert!(
                late.is_empty(),
                "partition {partition}: the first member applied {} records after the second took it over: {members:?}",
                late.len()
            );
        }
        let offsets: Vec<i64> = rows
            .iter()
            .filter(|(_, p, _)| *p == partition)
            .map(|(_, _, offset)| *offset)
            .collect();
        assert!(
            offsets.is_sorted(),
            "partition {partition} applied out of order: {offsets:?}"
        );
    }
}
