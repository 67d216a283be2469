//! Records already buffered for a partition are applied in one transaction; a failure inside the batch falls
//! back to one record at a time, so a bad record neither blocks nor loses the others, and nothing is applied
//! twice, also after a crash between the batch's commit and its offsets.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Running, effects, handler, produce, setup};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::{Offset, TopicPartitionList};
use uuid::Uuid;

#[tokio::test]
async fn buffered_records_are_applied_together_and_a_duplicate_inside_is_skipped() {
    let (db, kafka, topic) = setup().await;
    let ids: Vec<Uuid> = (0..20).map(|_| Uuid::now_v7()).collect();
    let mut records: Vec<(Option<Uuid>, String)> =
        ids.iter().map(|id| (Some(*id), format!("r{id}"))).collect();
    // Two deliveries again, inside the run of records.
    records.insert(7, records[3].clone());
    records.insert(15, records[10].clone());
    let produced: Vec<(Option<Uuid>, &str)> =
        records.iter().map(|(id, p)| (*id, p.as_str())).collect();
    produce(&kafka, &topic, &produced).await;

    let consumer = Running::start(&db, &kafka, &topic, handler());
    consumer.wait_until_handled(22).await;
    let stats = &consumer.stats;
    assert_eq!(stats.applied.load(Ordering::Relaxed), 20);
    assert_eq!(stats.duplicates.load(Ordering::Relaxed), 2);
    assert!(
        stats.batches.load(Ordering::Relaxed) >= 1,
        "no batch: {stats:?}"
    );
    consumer.stop().await;
    let applied: Vec<Uuid> = effects(&db).await.into_iter().map(|(id, _)| id).collect();
    assert_eq!(applied, ids, "each once, in offset order");
}

#[tokio::test]
async fn a_poison_record_inside_a_batch_is_dead_lettered_and_the_others_applied_once_in_order() {
    let (db, kafka, topic) = setup().await;
    let ids: Vec<Uuid> = (0..9).map(|_| Uuid::now_v7()).collect();
    let poison = Uuid::now_v7();
    let mut records: Vec<(Option<Uuid>, &str)> = ids.iter().map(|id| (Some(*id), "good")).collect();
    records.insert(4, (Some(poison), "poison"));
    produce(&kafka, &topic, &records).await;

    let consumer = Running::start(&db, &kafka, &topic, handler());
    consumer.wait_until_handled(10).await;
    assert_eq!(consumer.stats.dead_lettered.load(Ordering::Relaxed), 1);
    consumer.stop().await;
    let applied: Vec<Uuid> = effects(&db).await.into_iter().map(|(id, _)| id).collect();
    assert_eq!(applied, ids, "the other nine, each once, in order");
    let dead = testkit::read_topic(&kafka, &format!("{topic}.dlq")).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].payload, b"poison");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_of_a_batch_whose_offsets_were_never_committed_come_again_and_change_nothing() {
    let (db, kafka, topic) = setup().await;
    let ids: Vec<Uuid> = (0..12).map(|_| Uuid::now_v7()).collect();
    let records: Vec<(Option<Uuid>, &str)> = ids.iter().map(|id| (Some(*id), "paid")).collect();
    produce(&kafka, &topic, &records).await;
    let group = testkit::unique_name("crash");

    let first = Running::start_in(&group, &db, &kafka, &topic, handler());
    first.wait_until_handled(12).await;
    assert!(first.stats.batches.load(Ordering::Relaxed) >= 1);
    first.stop().await;
    // As if the process had died after the batch's transaction committed and before its offsets were: the
    // group's committed offset goes back to the start.
    let rewind: BaseConsumer = testkit::consumer_config(&kafka, &group).create().unwrap();
    let mut start = TopicPartitionList::new();
    start
        .add_partition_offset(&topic, 0, Offset::Offset(0))
        .unwrap();
    rewind.commit(&start, CommitMode::Sync).unwrap();
    drop(rewind);

    let again = Running::start_in(&group, &db, &kafka, &topic, handler());
    again.wait_until_handled(12).await;
    assert_eq!(again.stats.applied.load(Ordering::Relaxed), 0);
    assert_eq!(again.stats.duplicates.load(Ordering::Relaxed), 12);
    again.stop().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(effects(&db).await.len(), 12, "nothing applied twice");
}
