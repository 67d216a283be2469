//! Drills of the replication between the two local regions, which `./dev up` runs with MirrorMaker 2
//! (env/mm2/mm2.properties): each region's topics reach the other under the region's prefix, with their
//! keys, values and headers, and nothing comes back to where it started.

use std::collections::BTreeSet;
use std::time::Duration;

use producers::KafkaConfig;
use producers::headers::{self, RecordHeaders};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::producer::{FutureProducer, FutureRecord};
use testkit::Consumed;

const RECORDS: usize = 50;

/// Writes [`RECORDS`] records to `topic` in `region`'s cluster, each with an event id, an `index` header and
/// the region as `origin_region`; returns their event ids.
async fn write(kafka: &KafkaConfig, region: &str, topic: &str) -> BTreeSet<String> {
    producers::ensure_topic(kafka, topic, 3).await.unwrap();
    let producer: FutureProducer = kafka
        .producer_config(&producers::ProducerConfig::default())
        .create()
        .unwrap();
    let mut ids = BTreeSet::new();
    for i in 0..RECORDS {
        let id = uuid::Uuid::now_v7().to_string();
        let mut h = RecordHeaders::new();
        h.insert(headers::EVENT_ID.into(), id.clone());
        h.insert(headers::ORIGIN_REGION.into(), region.into());
        h.insert("index".into(), i.to_string());
        let (key, payload) = (format!("order-{}", i % 7), format!("{region} {i}"));
        producer
            .send(
                FutureRecord::to(topic)
                    .key(&key)
                    .payload(&payload)
                    .headers(headers::to_kafka(&h)),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
        ids.insert(id);
    }
    ids
}

fn topics(kafka: &KafkaConfig) -> Vec<String> {
    let consumer: BaseConsumer = kafka.client_config().create().unwrap();
    consumer
        .fetch_metadata(None, Duration::from_secs(30))
        .unwrap()
        .topics()
        .iter()
        .map(|t| t.name().to_owned())
        .collect()
}

/// Waits until `topic` exists in `kafka`'s cluster and holds `count` records, and returns them.
async fn replicated(kafka: &KafkaConfig, topic: &str, count: usize) -> Vec<Consumed> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        if topics(kafka).iter().any(|t| t == topic) {
            let records = testkit::read_topic(kafka, topic).await;
            if records.len() >= count {
                return records;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{topic} did not reach {} with {count} records in 120 s: does MirrorMaker 2 run? (`./dev up` \
             starts it; `./dev status` shows it)",
            kafka.bootstrap
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn each_region_receives_the_others_events_whole_and_nothing_comes_back() {
    let (east, west) = (testkit::kafka(), testkit::kafka_west());
    // xr-*: the drills' topics, which MirrorMaker 2 replicates.
    let topic = format!("{}.orders.events", testkit::unique_name("xr"));
    let (from_east, from_west) =
        tokio::join!(write(&east, "east", &topic), write(&west, "west", &topic));

    let in_west = replicated(&west, &format!("east.{topic}"), RECORDS).await;
    let in_east = replicated(&east, &format!("west.{topic}"), RECORDS).await;
    for (records, ids, origin) in [
        (&in_west, &from_east, "east"),
        (&in_east, &from_west, "west"),
    ] {
        let got: BTreeSet<String> = records
            .iter()
            .map(|r| r.headers[headers::EVENT_ID].clone())
            .collect();
        assert_eq!(&got, ids, "every {origin} event once");
        assert_eq!(records.len(), RECORDS);
        for record in records.iter() {
            assert_eq!(record.headers[headers::ORIGIN_REGION], origin);
            let i: usize = record.headers["index"].parse().unwrap();
            assert_eq!(
                record.key.as_deref(),
                Some(format!("order-{}", i % 7).as_str())
            );
            assert_eq!(record.payload, format!("{origin} {i}").into_bytes());
        }
    }

    // The loop guard: MirrorMaker 2 has had time to copy the copies back (its topics are refreshed every
    // 5 s); it must not have.
    tokio::time::sleep(Duration::from_secs(8)).await;
    for (kafka, region) in [(&east, "east"), (&west, "west")] {
        let doubled: Vec<String> = topics(kafka)
            .into_iter()
            .filter(|t| {
                (t.starts_with("east.") || t.starts_with("west."))
                    && (t[5..].starts_with("east.") || t[5..].starts_with("west."))
            })
            .collect();
        assert!(
            doubled.is_empty(),
            "topics with two region prefixes in {region}: {doubled:?}"
        );
    }
    assert!(
        in_west
            .iter()
            .all(|r| r.headers[headers::ORIGIN_REGION] != "west")
            && in_east
                .iter()
                .all(|r| r.headers[headers::ORIGIN_REGION] != "east"),
        "a record replicated into the region it came from"
    );
}
