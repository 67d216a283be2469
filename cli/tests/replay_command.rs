//! `orderflow replay` and `orderflow group` as operators run them: a replay killed with SIGKILL at a random
//! point and resumed writes each source record to the target once; bad input is exit 2 with nothing
//! written; a dry run says what it would do.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{orderflow_on, run_on as orderflow, text};
use producers::headers::{self, RecordHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

const RECORDS: usize = 20_000;

/// A topic of `records` records with event ids, keyed over 100 keys, 3 partitions.
async fn source(kafka: &producers::KafkaConfig, records: usize) -> String {
    let topic = testkit::unique_name("replay-src");
    producers::ensure_topic(kafka, &topic, 3).await.unwrap();
    let producer: FutureProducer = kafka
        .producer_config(&producers::ProducerConfig::default())
        .create()
        .unwrap();
    let mut deliveries = Vec::with_capacity(records);
    for i in 0..records {
        let mut h = RecordHeaders::new();
        h.insert(headers::EVENT_ID.into(), uuid::Uuid::now_v7().to_string());
        h.insert(headers::EVENT_TYPE.into(), "Test".into());
        let (key, payload) = (format!("k{}", i % 100), format!("payload {i}"));
        let record = FutureRecord::to(&topic)
            .key(&key)
            .payload(&payload)
            .headers(headers::to_kafka(&h));
        deliveries.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
    }
    for delivery in deliveries {
        delivery.await.unwrap().map_err(|(e, _)| e).unwrap();
    }
    topic
}

#[tokio::test]
async fn a_replay_killed_at_a_random_point_and_resumed_writes_each_source_record_once() {
    let db = testkit::TestDb::new().await;
    let kafka = testkit::kafka();
    let source = source(&kafka, RECORDS).await;
    let target = testkit::unique_name("replay-dst");
    producers::ensure_topic(&kafka, &target, 3).await.unwrap();
    // Somewhere past the first checkpoints and before the end.
    let kill_after = 1_000 + (uuid::Uuid::new_v4().as_u128() % 17_000) as i64;
    println!("killing after {kill_after} records are checkpointed");
    let mut first = orderflow_on(&db)
        .args([
            "replay",
            &source,
            "--to-topic",
            &target,
            "--apply",
            "--batch",
            "500",
            "--rate",
            "4000",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let written = || async {
        let row: Option<(uuid::Uuid, i64)> =
            sqlx::query_as("SELECT id, written FROM replays WHERE source_topic = $1")
                .bind(&source)
                .fetch_optional(db.pool())
                .await
                .unwrap();
        row
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let id = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the replay never got there"
        );
        assert!(
            first.try_wait().unwrap().is_none(),
            "the replay ended before the kill"
        );
        if let Some((id, n)) = written().await
            && n >= kill_after
        {
            break id;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let (_, at_kill) = written().await.unwrap();
    assert!(at_kill < RECORDS as i64, "killed before the end: {at_kill}");

    let resumed = orderflow(&db, &["replay", "resume", &id.to_string()]);
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed.stderr));
    assert!(
        text(&resumed.stdout).contains(&format!(
            "done: {RECORDS} records written to topic:{target}"
        )),
        "{}",
        text(&resumed.stdout)
    );

    let copied = testkit::read_topic(&kafka, &target).await;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for record in &copied {
        assert_eq!(record.headers["replay.id"], id.to_string());
        *seen
            .entry(record.headers["replay.source"].clone())
            .or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "written more than once: {twice:?}");
    assert_eq!(seen.len(), RECORDS, "every source record on the target");
    assert_eq!(copied.len(), RECORDS);

    let history = orderflow(&db, &["replay", "history"]);
    let history = text(&history.stdout);
    assert!(
        history.contains(&format!("written {RECORDS}  finished")),
        "{history}"
    );
}

#[tokio::test]
async fn bad_input_exits_2_with_nothing_written_and_a_dry_run_says_what_it_would_do() {
    let db = testkit::TestDb::new().await;
    let kafka = testkit::kafka();
    let source = source(&kafka, 30).await;
    let target = testkit::unique_name("replay-dst");
    producers::ensure_topic(&kafka, &target, 3).await.unwrap();

    for (args, says) in [
        (
            vec!["replay", "no-such-topic", "--to-topic", &target, "--apply"],
            "topic no-such-topic does not exist",
        ),
        (
            vec![
                "replay",
                &source,
                "--to-topic",
                &target,
                "--apply",
                "--from-time",
                "2001-01-01T00:00:00Z",
                "--to-time",
                "2001-01-02T00:00:00Z",
            ],
            "holds no records in times [2001-01-01 00:00:00 UTC, 2001-01-02 00:00:00 UTC)",
        ),
        (
            vec![
                "replay",
                &source,
                "--to-topic",
                &target,
                "--apply",
                "--to-offset",
                "999999",
            ],
            "past the high watermark",
        ),
        (
            vec![
                "replay",
                &source,
                "--to-topic",
                &target,
                "--apply",
                "--key",
                "nobody",
            ],
            "the filters match none of the 30 records",
        ),
        (
            vec!["replay", &source, "--to-group", "inventory", "--rebuild"],
            "group inventory is not rebuildable: its handlers reserve and release stock",
        ),
        (
            vec![
                "group",
                "reset",
                "no-such-group",
                "--topic",
                &source,
                "--to-earliest",
            ],
            "unknown group no-such-group",
        ),
    ] {
        let out = orderflow(&db, &args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    assert_eq!(testkit::count_records(&kafka, &target).await, 0);

    let dry = orderflow(
        &db,
        &["replay", &source, "--to-topic", &target, "--partition", "1"],
    );
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry.stderr));
    let out = text(&dry.stdout);
    assert!(out.contains("(dry run)"), "{out}");
    assert!(out.contains("matched by event type:\n  Test"), "{out}");
    assert!(
        out.contains("dry run: nothing written; add --apply to replay"),
        "{out}"
    );
    assert_eq!(testkit::count_records(&kafka, &target).await, 0);
}
