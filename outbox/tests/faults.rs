//! Broker faults, injected with librdkafka's mock cluster: a broker too slow to acknowledge within the
//! delivery timeout makes every record fail transiently, and that is not counted as the broker refusing
//! them (the count that quarantines a record).

mod common;

use std::time::Duration;

use common::RunningRelay;
use outbox::records::enqueue;
use outbox::{OutboxRecord, RelayConfig, quarantine};
use producers::{KafkaConfig, ProducerConfig};
use rdkafka::mocking::MockCluster;

/// A relay that quarantines at the second refusal, retries rounds quickly, and lets a record wait
/// `delivery_timeout` for its acknowledgement.
fn impatient(delivery_timeout: Duration) -> RelayConfig {
    RelayConfig {
        max_attempts: 2,
        poll_interval: Duration::from_millis(100),
        backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        producer: ProducerConfig {
            delivery_timeout,
            ..ProducerConfig::default()
        },
        ..RelayConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_are_not_counted_as_refusals_and_nothing_is_quarantined() {
    let mock = MockCluster::new(1).expect("mock cluster");
    let topic = testkit::unique_name("relay-faults");
    mock.create_topic(&topic, 1, 1).unwrap();
    let kafka = KafkaConfig::new(mock.bootstrap_servers());
    let db = testkit::TestDb::new().await;
    let records: Vec<OutboxRecord> = (0..10)
        .map(|n| {
            common::record(
                &topic,
                &format!("key-{}", n % 3),
                n.to_string().into_bytes(),
                n,
            )
        })
        .collect();
    enqueue(&mut db.pool().acquire().await.unwrap(), &records)
        .await
        .unwrap();

    // Every answer takes 2 s, and a record may wait 500 ms for its acknowledgement.
    mock.broker_round_trip_time(1, Duration::from_secs(2))
        .unwrap();
    let relay = RunningRelay::start(db.pool(), &kafka, impatient(Duration::from_millis(500)));
    // Rounds fail while the broker is slow; wait until a few did.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let failed: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE last_error IS NOT NULL")
                .fetch_one(db.pool())
                .await
                .unwrap();
        if failed > 0
            && relay
                .stats
                .failed
                .load(std::sync::atomic::Ordering::Relaxed)
                >= 20
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no failed round with the broker this slow"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let most_attempts: i32 = sqlx::query_scalar("SELECT max(attempts) FROM outbox")
        .fetch_one(db.pool())
        .await
        .unwrap();

    mock.broker_round_trip_time(1, Duration::ZERO).unwrap();
    common::wait_until_drained(db.pool(), 60).await;
    relay.stop().await;
    let quarantined = quarantine::backlog(db.pool()).await.unwrap().quarantined;
    assert_eq!(
        most_attempts, 0,
        "a broker that answers too late has refused nothing"
    );
    assert_eq!(quarantined, 0);
}

/// A topic whose metadata comes back with an error other than "unknown topic" (here its leader is not
/// available) exists: its records are not refused as if it were missing, and flow once it recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_without_a_leader_for_a_moment_is_not_taken_for_a_missing_one() {
    use rdkafka::types::RDKafkaRespErr;
    let mock = MockCluster::new(1).expect("mock cluster");
    let topic = testkit::unique_name("relay-leaderless");
    mock.create_topic(&topic, 1, 1).unwrap();
    mock.topic_error(
        &topic,
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
    )
    .unwrap();
    let kafka = KafkaConfig::new(mock.bootstrap_servers());
    let db = testkit::TestDb::new().await;
    let records: Vec<OutboxRecord> = (0..3)
        .map(|n| common::record(&topic, "key", n.to_string().into_bytes(), n))
        .collect();
    enqueue(&mut db.pool().acquire().await.unwrap(), &records)
        .await
        .unwrap();
    let relay = RunningRelay::start(db.pool(), &kafka, impatient(Duration::from_millis(1500)));
    // A few rounds with the topic in that state (or until something is quarantined).
    let quarantined = || async {
        sqlx::query_scalar::<_, String>("SELECT reason FROM outbox_quarantine")
            .fetch_all(db.pool())
            .await
            .unwrap()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while relay
        .stats
        .failed
        .load(std::sync::atomic::Ordering::Relaxed)
        < 6
        && quarantined().await.is_empty()
    {
        assert!(tokio::time::Instant::now() < deadline, "no failed round");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused = quarantined().await;
    assert!(refused.is_empty(), "quarantined: {refused:?}");

    mock.topic_error(&topic, RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR)
        .unwrap();
    common::wait_until_drained(db.pool(), 60).await;
    relay.stop().await;
}

/// A produce request answered "out of order sequence number" leaves librdkafka's idempotent producer failed
/// for good (a fatal error: every later record fails at once). The relay replaces the producer; no record
/// is taken for refused, and every one is published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_that_failed_fatally_is_replaced_and_nothing_is_quarantined() {
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    let mock = MockCluster::new(1).expect("mock cluster");
    let topic = testkit::unique_name("relay-fatal");
    mock.create_topic(&topic, 1, 1).unwrap();
    let kafka = KafkaConfig::new(mock.bootstrap_servers());
    let db = testkit::TestDb::new().await;
    let records: Vec<OutboxRecord> = (0..10)
        .map(|n| common::record(&topic, &format!("key-{}", n % 3), vec![b'v'], n))
        .collect();
    enqueue(&mut db.pool().acquire().await.unwrap(), &records)
        .await
        .unwrap();
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER],
    );
    let relay = RunningRelay::start(db.pool(), &kafka, impatient(Duration::from_secs(5)));
    common::wait_until_drained(db.pool(), 30).await;
    relay.stop().await;
    let quarantined = quarantine::backlog(db.pool()).await.unwrap().quarantined;
    assert_eq!(
        quarantined, 0,
        "a fatal error of the producer is no record's fault"
    );
}

/// Pipelined rounds: a record whose partition leader is unreachable stays in flight, and records of other
/// keys read with it or after it are published and deleted meanwhile, instead of waiting for its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_go_out_while_an_earlier_one_waits_for_its_acknowledgement() {
    let mock = MockCluster::new(2).expect("mock cluster");
    let (stuck, flowing) = (
        testkit::unique_name("relay-stuck"),
        testkit::unique_name("relay-flowing"),
    );
    for (topic, leader) in [(&stuck, 1), (&flowing, 2)] {
        mock.create_topic(topic, 1, 1).unwrap();
        mock.partition_leader(topic, 0, Some(leader)).unwrap();
    }
    mock.broker_down(1).unwrap();
    let kafka = KafkaConfig::new(mock.bootstrap_servers());
    let db = testkit::TestDb::new().await;
    let mut conn = db.pool().acquire().await.unwrap();
    let first = enqueue(&mut conn, &[common::record(&stuck, "stuck", vec![b's'], 0)])
        .await
        .unwrap()[0];
    let relay = RunningRelay::start(db.pool(), &kafka, impatient(Duration::from_secs(300)));
    let same_read = common::record(&flowing, "a", vec![b'a'], 1);
    let later = common::record(&flowing, "b", vec![b'b'], 2);
    enqueue(&mut conn, &[same_read]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    enqueue(&mut conn, &[later]).await.unwrap();

    let mut left = Vec::new();
    for _ in 0..300 {
        left = sqlx::query_scalar::<_, i64>("SELECT id FROM outbox ORDER BY id")
            .fetch_all(db.pool())
            .await
            .unwrap();
        if left == [first] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        left,
        [first],
        "the records of the other topic are published while the first waits for its leader"
    );
    mock.broker_up(1).unwrap();
    common::wait_until_drained(db.pool(), 60).await;
    relay.stop().await;
}
