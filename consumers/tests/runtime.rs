//! The consumer runtime against the real broker and database.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{Effects, Running, effects, handler, produce, setup};
use consumers::runtime::dead_letter_headers as dlq;
use producers::headers;

#[tokio::test]
async fn the_same_event_delivered_three_times_has_one_effect() {
    let (db, kafka, topic) = setup().await;
    let event = uuid::Uuid::now_v7();
    produce(
        &kafka,
        &topic,
        &[
            (Some(event), "paid"),
            (Some(event), "paid"),
            (Some(event), "paid"),
        ],
    )
    .await;

    let consumer = Running::start(&db, &kafka, &topic, handler());
    consumer.wait_until_handled(3).await;
    assert_eq!(consumer.stats.applied.load(Ordering::Relaxed), 1);
    assert_eq!(consumer.stats.duplicates.load(Ordering::Relaxed), 2);
    consumer.stop().await;
    assert_eq!(effects(&db).await, [(event, "paid".to_owned())]);
}

#[tokio::test]
async fn a_poison_record_goes_to_the_dead_letter_topic_and_the_partition_moves_on() {
    let (db, kafka, topic) = setup().await;
    let (first, poison, last) = (
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
    );
    produce(
        &kafka,
        &topic,
        &[
            (Some(first), "one"),
            (Some(poison), "poison"),
            (None, "no event id"),
            (Some(last), "two"),
        ],
    )
    .await;

    let consumer = Running::start(&db, &kafka, &topic, handler());
    consumer.wait_until_handled(4).await;
    consumer.stop().await;
    assert_eq!(
        effects(&db).await,
        [(first, "one".to_owned()), (last, "two".to_owned())]
    );

    let dead = testkit::read_topic(&kafka, &format!("{topic}.dlq")).await;
    assert_eq!(dead.len(), 2);
    let envelope = &dead[0];
    assert_eq!(envelope.key.as_deref(), Some("order-1"));
    assert_eq!(envelope.payload, b"poison");
    let h = &envelope.headers;
    assert_eq!(h["note"], "original", "original headers are kept");
    assert_eq!(h[headers::EVENT_ID], poison.to_string());
    assert_eq!(h[dlq::SOURCE_TOPIC], topic);
    assert_eq!(h[dlq::SOURCE_PARTITION], "0");
    assert_eq!(h[dlq::SOURCE_OFFSET], "1");
    assert_eq!(h[dlq::ERROR_CLASS], "poison");
    assert!(
        h[dlq::ERROR_MESSAGE].contains("fails validation"),
        "{}",
        h[dlq::ERROR_MESSAGE]
    );
    assert_eq!(h[dlq::ATTEMPTS], "1");
    assert!(h.contains_key(dlq::FIRST_FAILED_AT) && h.contains_key(dlq::DEAD_LETTERED_AT));
    assert!(dead[1].headers[dlq::ERROR_MESSAGE].contains("no event_id header"));
    assert_eq!(dead[1].headers[dlq::SOURCE_OFFSET], "2");
}

#[tokio::test]
async fn a_handler_that_panics_dead_letters_the_record_and_the_partition_moves_on() {
    let (db, kafka, topic) = setup().await;
    let (first, panics, last) = (
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
    );
    produce(
        &kafka,
        &topic,
        &[
            (Some(first), "one"),
            (Some(panics), "panic"),
            (Some(last), "two"),
        ],
    )
    .await;

    let consumer = Running::start(&db, &kafka, &topic, handler());
    consumer.wait_until_handled(3).await;
    consumer.stop().await;
    assert_eq!(
        effects(&db).await,
        [(first, "one".to_owned()), (last, "two".to_owned())]
    );
    let dead = testkit::read_topic(&kafka, &format!("{topic}.dlq")).await;
    assert_eq!(dead.len(), 1);
    let h = &dead[0].headers;
    assert_eq!(h[dlq::ERROR_CLASS], "poison");
    assert!(
        h[dlq::ERROR_MESSAGE].contains("panicked") && h[dlq::ERROR_MESSAGE].contains("has a bug"),
        "{}",
        h[dlq::ERROR_MESSAGE]
    );
}

/// Produces `payloads` to `partition` of `topic`, each with a fresh event id.
async fn produce_to(
    kafka: &producers::KafkaConfig,
    topic: &str,
    partition: i32,
    payloads: &[String],
) {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = kafka.client_config().create().unwrap();
    for payload in payloads {
        let record_headers = headers::RecordHeaders::from([(
            headers::EVENT_ID.to_owned(),
            uuid::Uuid::now_v7().to_string(),
        )]);
        producer
            .send(
                FutureRecord::to(topic)
                    .partition(partition)
                    .key("k")
                    .payload(payload)
                    .headers(headers::to_kafka(&record_headers)),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
}

#[tokio::test]
async fn a_partition_retrying_in_place_does_not_hold_up_the_others() {
    let db = common::effects_db().await;
    let kafka = testkit::kafka();
    let topic = testkit::unique_name("stuck");
    producers::ensure_topic(&kafka, &topic, 2).await.unwrap();
    // Partition 0 fails transiently for as long as the test runs, with more records behind it than its
    // buffer holds.
    produce_to(&kafka, &topic, 0, &vec!["flaky".to_owned(); 20]).await;
    let stuck = Effects {
        fail_first: u32::MAX,
        ..handler()
    };
    let consumer = Running::start_with(
        &testkit::unique_name("group"),
        &db,
        &kafka,
        &topic,
        stuck,
        |s| consumers::ConsumerConfig {
            partition_buffer: 2,
            ..s
        },
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while consumer.stats.retries.load(Ordering::Relaxed) < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "partition 0 never got stuck"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Partition 1's records come after partition 0's buffer filled up.
    let others: Vec<String> = (0..10).map(|n| format!("other {n}")).collect();
    produce_to(&kafka, &topic, 1, &others).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let applied: Vec<String> = effects(&db).await.into_iter().map(|(_, p)| p).collect();
        if applied == others {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "partition 1 applied {applied:?} while partition 0 retried"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    consumer.stop().await;
}

#[tokio::test]
async fn shutdown_stops_between_records_and_leaves_the_buffered_ones_for_later() {
    let (db, kafka, topic) = setup().await;
    let slow: Vec<(Option<uuid::Uuid>, &str)> = (0..30)
        .map(|_| (Some(uuid::Uuid::now_v7()), "slow"))
        .collect();
    produce(&kafka, &topic, &slow).await;
    // Batches of two: the first commits, the one in hand at shutdown is rolled back.
    let consumer = Running::start_with(
        &testkit::unique_name("group"),
        &db,
        &kafka,
        &topic,
        handler(),
        |s| consumers::ConsumerConfig { max_batch: 2, ..s },
    );
    consumer.wait_until_handled(1).await;
    consumer.stop().await;
    let applied = effects(&db).await.len();
    assert!(
        applied < 5,
        "{applied} of 30 applied: shutdown worked through the buffered records"
    );
}

#[tokio::test]
async fn a_transient_failure_is_retried_in_place_and_keeps_partition_order() {
    let (db, kafka, topic) = setup().await;
    let ids: Vec<uuid::Uuid> = (0..3).map(|_| uuid::Uuid::now_v7()).collect();
    produce(
        &kafka,
        &topic,
        &[
            (Some(ids[0]), "before"),
            (Some(ids[1]), "flaky"),
            (Some(ids[2]), "after"),
        ],
    )
    .await;

    // One record per transaction: the attempts counted are the handler's own.
    let consumer = Running::start_with(
        &testkit::unique_name("group"),
        &db,
        &kafka,
        &topic,
        Effects {
            flaky_failures: AtomicU32::new(0),
            fail_first: 3,
            ..handler()
        },
        |s| consumers::ConsumerConfig { max_batch: 1, ..s },
    );
    consumer.wait_until_handled(3).await;
    assert_eq!(consumer.stats.retries.load(Ordering::Relaxed), 3);
    assert_eq!(consumer.stats.dead_lettered.load(Ordering::Relaxed), 0);
    consumer.stop().await;
    let applied: Vec<String> = effects(&db).await.into_iter().map(|(_, p)| p).collect();
    assert_eq!(
        applied,
        ["before", "flaky", "after"],
        "held the partition while retrying"
    );
}

#[tokio::test]
async fn redriving_a_dead_letter_twice_applies_it_once() {
    let (db, kafka, topic) = setup().await;
    let poison = uuid::Uuid::now_v7();
    produce(&kafka, &topic, &[(Some(poison), "poison")]).await;
    let fixed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let consumer = Running::start(
        &db,
        &kafka,
        &topic,
        Effects {
            accept_poison: fixed.clone(),
            ..handler()
        },
    );
    consumer.wait_until_handled(1).await;
    assert!(effects(&db).await.is_empty());

    // The handler is fixed; an operator redrives the dead letter, twice.
    fixed.store(true, Ordering::SeqCst);
    let dlq_topic = format!("{topic}.dlq");
    let letters = consumers::dlq::list(&kafka, &dlq_topic).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].envelope.as_ref().unwrap().source_topic, topic);
    assert!(
        !letters[0]
            .original_headers()
            .keys()
            .any(|k| k.starts_with("dlq."))
    );
    for _ in 0..2 {
        consumers::dlq::redrive(&kafka, &dlq_topic, &letters)
            .await
            .unwrap();
    }
    consumer.wait_until_handled(3).await;
    assert_eq!(consumer.stats.applied.load(Ordering::Relaxed), 1);
    assert_eq!(consumer.stats.duplicates.load(Ordering::Relaxed), 1);
    consumer.stop().await;
    assert_eq!(effects(&db).await, [(poison, "poison".to_owned())]);
}

#[tokio::test]
async fn pruning_removes_only_inbox_rows_past_the_horizon() {
    let (db, _, _) = setup().await;
    for (group, age_hours) in [("g", 48), ("g", 1), ("other", 48)] {
        sqlx::query(
            "INSERT INTO inbox (consumer_group, event_id, topic, processed_at)
             VALUES ($1, $2, 't', now() - $3 * interval '1 hour')",
        )
        .bind(group)
        .bind(uuid::Uuid::now_v7())
        .bind(f64::from(age_hours))
        .execute(db.pool())
        .await
        .unwrap();
    }
    let pruned = consumers::inbox::prune(db.pool(), "g", Duration::from_secs(24 * 3600))
        .await
        .unwrap();
    assert_eq!(pruned, 1);
    let left: Vec<(String,)> =
        sqlx::query_as("SELECT consumer_group FROM inbox ORDER BY consumer_group")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(left, [("g".to_owned(),), ("other".to_owned(),)]);
}

#[tokio::test]
async fn lag_counts_what_the_group_has_not_committed() {
    let (db, kafka, topic) = setup().await;
    let records: Vec<_> = (0..5).map(|_| (Some(uuid::Uuid::now_v7()), "x")).collect();
    produce(&kafka, &topic, &records).await;
    let group = testkit::unique_name("lag");
    let topics = [topic.clone()];

    let before = consumers::lag::group_lag(&kafka, &group, &topics)
        .await
        .unwrap();
    assert_eq!(before.len(), 1);
    assert_eq!(
        (before[0].committed, before[0].high, before[0].lag),
        (None, 5, 5)
    );

    let consumer = Running::start_in(&group, &db, &kafka, &topic, handler());
    consumer.wait_until_handled(5).await;
    consumer.stop().await; // the last commit
    let after = consumers::lag::group_lag(&kafka, &group, &topics)
        .await
        .unwrap();
    assert_eq!((after[0].committed, after[0].lag), (Some(5), 0));
}

#[tokio::test]
async fn a_retryable_failure_is_retried_later_then_dead_lettered_and_the_partition_moves_on() {
    let (db, kafka, topic) = setup().await;
    let (busy, always, after) = (
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
    );
    produce(
        &kafka,
        &topic,
        &[
            (Some(busy), "busy"),
            (Some(always), "always busy"),
            (Some(after), "after"),
        ],
    )
    .await;
    // One record per transaction: the attempts counted are the handler's own.
    let consumer = Running::start_with(
        &testkit::unique_name("group"),
        &db,
        &kafka,
        &topic,
        Effects {
            busy_fail_first: 2,
            ..handler()
        },
        |s| consumers::ConsumerConfig { max_batch: 1, ..s },
    );
    // "after" is applied while the others wait on the retry topic; "busy" succeeds on its second retry;
    // "always busy" is dead-lettered after two retries.
    consumer.wait_until_handled(3).await;
    assert_eq!(consumer.stats.retried_later.load(Ordering::Relaxed), 4);
    consumer.stop().await;
    let applied: Vec<uuid::Uuid> = effects(&db).await.into_iter().map(|(id, _)| id).collect();
    assert_eq!(
        applied,
        [after, busy],
        "the partition moved on while busy waited"
    );

    let retries = testkit::read_topic(&kafka, &format!("{topic}.retry")).await;
    assert_eq!(retries.len(), 4);
    assert!(
        retries
            .iter()
            .all(|r| r.headers[consumers::runtime::retry_headers::SOURCE_TOPIC] == topic)
    );
    let dead = testkit::read_topic(&kafka, &format!("{topic}.dlq")).await;
    assert_eq!(dead.len(), 1);
    let h = &dead[0].headers;
    assert_eq!(h[headers::EVENT_ID], always.to_string());
    assert_eq!(h[dlq::ERROR_CLASS], "retryable");
    assert_eq!(h[dlq::ATTEMPTS], "3");
    assert_eq!(
        h[dlq::SOURCE_TOPIC],
        topic,
        "the source, not the retry topic"
    );
    assert_eq!(h[dlq::SOURCE_OFFSET], "1");
    assert!(
        !h.keys().any(|k| k.starts_with("retry.")),
        "retry headers are not kept"
    );
}

#[tokio::test]
async fn a_retry_whose_envelope_does_not_read_is_dead_lettered_as_poison_to_its_source_topic() {
    use consumers::envelope::{DeadLetterEnvelope, FailureClass, retry_headers as retry};
    use rdkafka::producer::{FutureProducer, FutureRecord};

    let (db, kafka, topic) = setup().await;
    let retry_topic = format!("{topic}.retry");
    producers::ensure_topic(&kafka, &retry_topic, 1)
        .await
        .unwrap();
    let event = uuid::Uuid::now_v7();
    let record_headers = headers::RecordHeaders::from(
        [
            (headers::EVENT_ID, event.to_string()),
            (retry::SOURCE_TOPIC, topic.clone()),
            (retry::SOURCE_PARTITION, "0".to_owned()),
            (retry::SOURCE_OFFSET, "7".to_owned()),
            (retry::ATTEMPT, "first".to_owned()),
            (retry::NOT_BEFORE, "0".to_owned()),
            (retry::FIRST_FAILED_AT, "0".to_owned()),
            (retry::LAST_ERROR, "busy".to_owned()),
        ]
        .map(|(name, value)| (name.to_owned(), value)),
    );
    let producer: FutureProducer = kafka.client_config().create().unwrap();
    producer
        .send(
            FutureRecord::to(&retry_topic)
                .key("order-1")
                .payload("paid")
                .headers(headers::to_kafka(&record_headers)),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();

    let consumer = Running::start(&db, &kafka, &topic, handler());
    consumer.wait_until_handled(1).await;
    assert_eq!(consumer.stats.dead_lettered.load(Ordering::Relaxed), 1);
    consumer.stop().await;
    assert!(effects(&db).await.is_empty());

    let letters = consumers::dlq::list(&kafka, &format!("{topic}.dlq"))
        .await
        .unwrap();
    assert_eq!(letters.len(), 1);
    let envelope: &DeadLetterEnvelope = letters[0].envelope.as_ref().unwrap();
    assert_eq!(envelope.error_class, FailureClass::Poison);
    assert_eq!(envelope.source_topic, topic, "redrive goes to the source");
    assert!(
        envelope
            .error_message
            .contains(r#"header retry.attempt is "first""#),
        "{}",
        envelope.error_message
    );
    assert!(
        !letters[0]
            .record
            .headers
            .keys()
            .any(|k| k.starts_with("retry."))
    );
}
