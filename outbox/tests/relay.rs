//! The relay against the real broker and database.

mod common;

use std::time::Duration;

use common::RunningRelay;
use outbox::records::enqueue;
use outbox::{EventStore, RelayConfig, quarantine};
use producers::headers;
use rand::Rng as _;

fn fast_config() -> RelayConfig {
    RelayConfig {
        batch_size: 500,
        poll_interval: Duration::from_millis(200),
        backoff: Duration::from_millis(50),
        ..RelayConfig::default()
    }
}

#[tokio::test]
async fn every_record_reaches_the_topic_in_key_order_and_leaves_the_outbox() {
    let db = testkit::TestDb::new().await;
    let kafka = testkit::kafka();
    let (topics, topic) = common::topics(&kafka, 4).await;
    let store = EventStore::json(db.pool().clone(), topics, "eu-west");
    for n in 0..20 {
        let sku = common::sku(n);
        let mut version = 0;
        for _ in 0..5 {
            version = common::append(&store, &sku, version, &common::received(&sku, 5)).await;
        }
    }
    let relay = RunningRelay::start(db.pool(), &kafka, fast_config());
    common::wait_until_drained(db.pool(), 60).await;
    relay.stop().await;

    let records = testkit::read_topic(&kafka, &topic).await;
    assert_eq!(records.len(), 500);
    let duplicates = testkit::assert_every_event_in_key_order(db.pool(), &records).await;
    assert_eq!(duplicates, 0);
    let first = &records[0];
    assert!(first.headers.contains_key(headers::EVENT_TYPE));
    assert!(headers::is_traceparent(
        &first.headers[headers::TRACEPARENT]
    ));
}

/// Reads walk the primary key from its lowest entry, dead ones included: the relay vacuums the outbox once
/// it deleted `vacuum_after` records, instead of leaving them to autovacuum (a minute away, or more).
#[tokio::test]
async fn the_relay_vacuums_the_outbox_after_deleting_a_backlog() {
    let db = testkit::TestDb::new().await;
    let kafka = testkit::kafka();
    let (_, topic) = common::topics(&kafka, 1).await;
    let records: Vec<_> = (0..300)
        .map(|n| common::record(&topic, &format!("key-{}", n % 7), vec![b'v'], n))
        .collect();
    enqueue(&mut db.pool().acquire().await.unwrap(), &records)
        .await
        .unwrap();
    let vacuums = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'outbox'",
        )
        .fetch_one(db.pool())
        .await
        .unwrap()
    };
    assert_eq!(vacuums().await, 0);
    let config = RelayConfig {
        vacuum_after: 100,
        ..fast_config()
    };
    let relay = RunningRelay::start(db.pool(), &kafka, config);
    common::wait_until_drained(db.pool(), 60).await;
    let mut count = 0;
    for _ in 0..100 {
        count = vacuums().await;
        if count > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    relay.stop().await;
    assert!(count >= 1, "no vacuum after 300 records were deleted");
}

/// 50 writers commit after random delays, so ids commit out of order, and one transaction stays open for
/// 30 s while the relay publishes everything around it. Nothing may be skipped.
#[tokio::test]
async fn late_commits_and_a_transaction_open_for_30_s_are_not_skipped() {
    let db = testkit::TestDb::new().await;
    let kafka = testkit::kafka();
    let (topics, topic) = common::topics(&kafka, 4).await;
    let store = EventStore::json(db.pool().clone(), topics, "eu-west");
    let relay = RunningRelay::start(db.pool(), &kafka, fast_config());

    let long = {
        let store = store.clone();
        tokio::spawn(async move {
            let sku = common::sku(9999);
            let mut tx = store.pool().begin().await.unwrap();
            store
                .append::<domain::InventoryState>(
                    &mut tx,
                    sku.as_str(),
                    0,
                    &common::received(&sku, 3),
                    &outbox::Metadata::new(uuid::Uuid::now_v7()),
                )
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
            tx.commit().await.unwrap();
        })
    };
    let writers: Vec<_> = (0..50)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let sku = common::sku(n);
                let mut version = 0;
                for _ in 0..10 {
                    let delay = rand::rng().random_range(0..300);
                    let mut tx = store.pool().begin().await.unwrap();
                    version = store
                        .append::<domain::InventoryState>(
                            &mut tx,
                            sku.as_str(),
                            version,
                            &common::received(&sku, 2),
                            &outbox::Metadata::new(uuid::Uuid::now_v7()),
                        )
                        .await
                        .unwrap();
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    tx.commit().await.unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    // The writers are done while the long transaction is still open: their records are published around it.
    testkit::wait_for_records(&kafka, &topic, 1000, Duration::from_secs(60)).await;
    assert!(!long.is_finished(), "the long transaction is still open");
    long.await.unwrap();
    common::wait_until_drained(db.pool(), 60).await;
    relay.stop().await;

    let records = testkit::read_topic(&kafka, &topic).await;
    let duplicates = testkit::assert_every_event_in_key_order(db.pool(), &records).await;
    assert_eq!(records.len() - duplicates, 1003, "every committed event");
}

/// Two relays run at once while 10,000 events are written: one leads, the other stands by, and per-key
/// order holds with no duplicates. The leader then stops and the standby takes over.
#[tokio::test]
async fn two_relays_at_once_keep_key_order_over_10_000_events() {
    let db = testkit::TestDb::new().await;
    let kafka = testkit::kafka();
    let (topics, topic) = common::topics(&kafka, 6).await;
    let store = EventStore::json(db.pool().clone(), topics, "eu-west");
    let first = RunningRelay::start(db.pool(), &kafka, fast_config());
    let second = RunningRelay::start(db.pool(), &kafka, fast_config());

    let write = |skus: std::ops::Range<usize>| {
        let writers = common::spawn_writers(&store, skus);
        async move {
            for writer in writers {
                writer.await.unwrap();
            }
        }
    };
    write(0..50).await;
    common::wait_until_drained(db.pool(), 120).await;
    let (leader, standby) = if first
        .stats
        .published
        .load(std::sync::atomic::Ordering::Relaxed)
        > 0
    {
        (first, second)
    } else {
        (second, first)
    };
    let published = |r: &RunningRelay| r.stats.published.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(published(&leader), 5000, "the leader published everything");
    assert_eq!(published(&standby), 0, "the standby published nothing");

    leader.stop().await;
    write(50..100).await;
    common::wait_until_drained(db.pool(), 120).await;
    assert_eq!(published(&standby), 5000, "the standby took over");
    standby.stop().await;

    let records = testkit::read_topic(&kafka, &topic).await;
    assert_eq!(records.len(), 10_000);
    let duplicates = testkit::assert_every_event_in_key_order(db.pool(), &records).await;
    assert_eq!(duplicates, 0);
}

/// The leader's database session is killed in the middle of its work (a network partition, an operator's
/// `pg_terminate_backend`): it loses the lock, a relay (the standby, or the old leader on a new session)
/// takes it, and every event reaches the topic in key order; duplicates are allowed.
#[tokio::test]
async fn a_leader_whose_session_is_killed_mid_batch_hands_over_and_loses_nothing() {
    use std::sync::atomic::Ordering::Relaxed;
    let db = testkit::TestDb::new().await;
    let kafka = testkit::kafka();
    let (topics, topic) = common::topics(&kafka, 6).await;
    let store = EventStore::json(db.pool().clone(), topics, "eu-west");
    let relays = [
        RunningRelay::start(db.pool(), &kafka, fast_config()),
        RunningRelay::start(db.pool(), &kafka, fast_config()),
    ];
    let writers = common::spawn_writers(&store, 0..50);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    // Everything is drained in the end only if a relay leads again after the kill.
    while !relays
        .iter()
        .any(|r| r.stats.published.load(Relaxed) >= 500)
    {
        assert!(tokio::time::Instant::now() < deadline, "no relay published");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_locks
         WHERE locktype = 'advisory' AND granted
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert_eq!(killed, [true], "one session held the leader's lock");
    let published_at_kill: u64 = relays.iter().map(|r| r.stats.published.load(Relaxed)).sum();
    for writer in writers {
        writer.await.unwrap();
    }
    common::wait_until_drained(db.pool(), 120).await;
    assert!(
        published_at_kill < 5000,
        "everything was published before the kill; the test proves nothing"
    );
    for relay in relays {
        relay.stop().await;
    }
    let records = testkit::read_topic(&kafka, &topic).await;
    let duplicates = testkit::assert_every_event_in_key_order(db.pool(), &records).await;
    assert_eq!(records.len(), 5000 + duplicates);
}

async fn quarantined(pool: &sqlx::PgPool, count: usize) -> Vec<quarantine::Quarantined> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let list = quarantine::list(pool).await.unwrap();
        if list.len() >= count {
            return list;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing quarantined after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A record over the size limit is tried `max_attempts` times, then quarantined with its reason; the later
/// record of its key waits, another key flows; discarding it lets the waiting record go.
#[tokio::test]
async fn a_refused_record_is_quarantined_and_its_key_waits_behind_it() {
    let db = testkit::TestDb::new().await;
    let kafka = testkit::kafka();
    let (_, topic) = common::topics(&kafka, 1).await;
    let mut conn = db.pool().acquire().await.unwrap();
    enqueue(
        &mut conn,
        &[
            common::record(&topic, "poisoned", vec![b'x'; 2_000_000], 1),
            common::record(&topic, "poisoned", b"after".to_vec(), 2),
            common::record(&topic, "healthy", b"fine".to_vec(), 3),
        ],
    )
    .await
    .unwrap();
    let config = RelayConfig {
        max_attempts: 3,
        ..fast_config()
    };
    let relay = RunningRelay::start(db.pool(), &kafka, config);

    let list = quarantined(db.pool(), 1).await;
    assert_eq!(list.len(), 1);
    let poisoned = &list[0];
    assert_eq!(poisoned.key, "poisoned");
    assert_eq!(poisoned.attempts, 3);
    assert!(poisoned.reason.contains("exceeds"), "{}", poisoned.reason);
    assert_eq!(poisoned.waiting, 1, "the later record of its key waits");

    testkit::wait_for_records(&kafka, &topic, 1, Duration::from_secs(30)).await;
    // The waiting record was never tried: a send would have left an error on it, an acknowledgement
    // would have deleted it. So the topic holds the healthy key's record only, for good reason.
    let waiting: (i32, Option<String>) =
        sqlx::query_as("SELECT attempts, last_error FROM outbox WHERE key = 'poisoned'")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(waiting, (0, None));
    let records = testkit::read_topic(&kafka, &topic).await;
    assert_eq!(records.len(), 1, "only the healthy key's record");
    assert_eq!(records[0].key.as_deref(), Some("healthy"));

    // Retry puts it back with its id, and it is refused and quarantined again.
    assert!(quarantine::retry(db.pool(), poisoned.id).await.unwrap());
    assert!(
        !quarantine::retry(db.pool(), -1).await.unwrap(),
        "there is no record -1 to retry"
    );
    let again = quarantined(db.pool(), 1).await;
    assert_eq!(again[0].id, poisoned.id);

    assert!(quarantine::discard(db.pool(), poisoned.id).await.unwrap());
    assert!(!quarantine::discard(db.pool(), poisoned.id).await.unwrap());
    testkit::wait_for_records(&kafka, &topic, 2, Duration::from_secs(30)).await;
    common::wait_until_drained(db.pool(), 30).await;
    relay.stop().await;
    let records = testkit::read_topic(&kafka, &topic).await;
    assert_eq!(records[1].key.as_deref(), Some("poisoned"));
    assert_eq!(records[1].payload, b"after");
}

#[tokio::test]
async fn a_record_for_a_missing_topic_is_quarantined() {
    let db = testkit::TestDb::new().await;
    let kafka = testkit::kafka();
    let missing = testkit::unique_name("missing");
    let mut conn = db.pool().acquire().await.unwrap();
    enqueue(
        &mut conn,
        &[common::record(&missing, "k", b"v".to_vec(), 1)],
    )
    .await
    .unwrap();
    let relay = RunningRelay::start(
        db.pool(),
        &kafka,
        RelayConfig {
            max_attempts: 2,
            ..fast_config()
        },
    );
    let list = quarantined(db.pool(), 1).await;
    relay.stop().await;
    assert!(
        list[0].reason.contains("does not exist"),
        "{}",
        list[0].reason
    );
}

/// The broker itself refuses a record the relay let through (the topic's `max.message.bytes` is below the
/// producer's limit) while the later records of its key are already in flight in requests of their own.
/// None of them may reach the topic before it: they wait behind it, quarantined or not.
#[tokio::test]
async fn a_record_the_broker_refuses_is_never_overtaken_by_a_later_one_of_its_key() {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let db = testkit::TestDb::new().await;
    let kafka = testkit::kafka();
    let topic = testkit::unique_name("outbox-small-records");
    let admin: AdminClient<_> = kafka.client_config().create().unwrap();
    let small =
        NewTopic::new(&topic, 1, TopicReplication::Fixed(1)).set("max.message.bytes", "1000");
    let created = admin
        .create_topics([&small], &AdminOptions::new())
        .await
        .unwrap();
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    // Random bytes: compression must not bring the record under the topic's limit.
    let large: Vec<u8> = (0..2_000).map(|_| rand::rng().random()).collect();
    let mut records = vec![common::record(&topic, "key", large, 0)];
    records.extend((1..20).map(|n| common::record(&topic, "key", vec![b'y'; 200], n)));
    records.push(common::record(&topic, "other", b"fine".to_vec(), 20));
    enqueue(&mut db.pool().acquire().await.unwrap(), &records)
        .await
        .unwrap();
    // A request per record, so the refused one leaves the later ones of its key in requests of their own.
    let config = RelayConfig {
        max_attempts: 2,
        producer: producers::ProducerConfig {
            linger: Duration::ZERO,
            batch_bytes: 300,
            ..producers::ProducerConfig::default()
        },
        ..fast_config()
    };
    let relay = RunningRelay::start(db.pool(), &kafka, config);
    let list = quarantined(db.pool(), 1).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].key, "key");
    assert_eq!(list[0].waiting, 19, "the later records of its key wait");
    testkit::wait_for_records(&kafka, &topic, 1, Duration::from_secs(30)).await;
    let published = testkit::read_topic(&kafka, &topic).await;
    let keys: Vec<_> = published.iter().map(|r| r.key.as_deref()).collect();
    assert_eq!(
        keys,
        [Some("other")],
        "a later record overtook the refused one"
    );

    assert!(quarantine::discard(db.pool(), list[0].id).await.unwrap());
    common::wait_until_drained(db.pool(), 30).await;
    relay.stop().await;
    let order: Vec<String> = testkit::read_topic(&kafka, &topic)
        .await
        .iter()
        .filter(|r| r.key.as_deref() == Some("key"))
        .map(|r| r.headers["n"].clone())
        .collect();
    let expected: Vec<String> = (1..20).map(|n: u32| n.to_string()).collect();
    assert_eq!(order, expected);
}

/// The leader's database stops answering behind a connection that stays open (a partition, a vanished
/// host): the relay gives up leadership within its session timeout instead of holding it for hours.
#[tokio::test]
async fn a_leader_whose_database_stops_answering_gives_up_leadership() {
    use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
    use std::str::FromStr as _;
    use std::sync::atomic::Ordering;
    let db = testkit::TestDb::new().await;
    let kafka = testkit::kafka();
    let (_, topic) = common::topics(&kafka, 1).await;
    let direct = PgConnectOptions::from_str(db.url()).unwrap();
    let proxy =
        testkit::proxy::Proxy::start(&format!("{}:{}", direct.get_host(), direct.get_port())).await;
    let through_proxy = direct.host("127.0.0.1").port(proxy.address().port());
    let pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(through_proxy)
        .await
        .unwrap();
    let config = RelayConfig {
        session_timeout: Duration::from_secs(3),
        ..fast_config()
    };
    let relay = RunningRelay::start(&pool, &kafka, config);
    let leads = || relay.stats.leader.load(Ordering::Relaxed);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !leads() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relay never led"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    proxy.freeze();
    let mut conn = db.pool().acquire().await.unwrap();
    enqueue(
        &mut conn,
        &[common::record(&topic, "key", b"v".to_vec(), 1)],
    )
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while leads() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relay still leads 60 s after its database stopped answering"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    relay.stop.cancel();
}
