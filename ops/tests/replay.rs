//! Replays and group resets on the real broker and database: ranges, filters, headers, dry runs, bad input,
//! resumes, duplicates and the inbox.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use consumers::{ConsumerConfig, ConsumerRuntime, Handler, HandlerError, Incoming};
use indicatif::ProgressBar;
use ops::OperatorError;
use ops::groups::{self, ResetTo};
use ops::replay::{
    Cursor, Filters, Mode, REPLAY_ID, REPLAY_SOURCE, Range, ReplaySpec, Replayer, Report, Target,
};
use producers::KafkaConfig;
use producers::headers::{self, RecordHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::PgPool;
use testkit::{Consumed, TestDb};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const RECORDS: i64 = 30;
const PARTITIONS: i32 = 3;

/// A source topic of [`RECORDS`] records, record `i` on partition `i % 3`, one second after record `i - 1`,
/// keyed `k{i % 5}`, of event type `A` when `i` is even and `B` when odd, from region `east` when `i % 3 == 0`,
/// with header `index` = `i`.
struct Source {
    topic: String,
    t0: DateTime<Utc>,
    /// Record `i`'s partition and offset.
    positions: Vec<(i32, i64)>,
    headers: Vec<RecordHeaders>,
}

impl Source {
    async fn new(kafka: &KafkaConfig) -> Self {
        let topic = new_topic(kafka).await;
        // An hour ago, in whole seconds: records older than the broker's retention (a day) may be deleted
        // under the test by its next retention check.
        let hour_ago = (Utc::now() - chrono::Duration::hours(1)).timestamp();
        let t0 = DateTime::from_timestamp(hour_ago, 0).unwrap();
        let producer: FutureProducer = kafka
            .producer_config(&producers::ProducerConfig::default())
            .create()
            .unwrap();
        let mut positions = Vec::new();
        let mut all_headers = Vec::new();
        for i in 0..RECORDS {
            let mut h = RecordHeaders::new();
            h.insert(headers::EVENT_ID.into(), Uuid::now_v7().to_string());
            h.insert(
                headers::EVENT_TYPE.into(),
                if i % 2 == 0 { "A" } else { "B" }.into(),
            );
            h.insert(
                headers::ORIGIN_REGION.into(),
                if i % 3 == 0 { "east" } else { "west" }.into(),
            );
            h.insert("index".into(), i.to_string());
            let key = format!("k{}", i % 5);
            let payload = format!("payload {i}");
            let record = FutureRecord::to(&topic)
                .partition(i32::try_from(i).unwrap() % PARTITIONS)
                .timestamp(t0.timestamp_millis() + i * 1000)
                .key(&key)
                .payload(&payload)
                .headers(headers::to_kafka(&h));
            let delivered = producer
                .send(record, Duration::from_secs(30))
                .await
                .map_err(|(e, _)| e)
                .unwrap();
            positions.push((delivered.partition, delivered.offset));
            all_headers.push(h);
        }
        Self {
            topic,
            t0,
            positions,
            headers: all_headers,
        }
    }

    fn at(&self, seconds: i64) -> DateTime<Utc> {
        self.t0 + chrono::Duration::seconds(seconds)
    }

    fn spec(&self, target: Target) -> ReplaySpec {
        ReplaySpec {
            source: self.topic.clone(),
            partitions: None,
            range: Range::default(),
            filters: Filters::default(),
            target,
            rate: None,
        }
    }
}

async fn new_topic(kafka: &KafkaConfig) -> String {
    let topic = testkit::unique_name("replay");
    producers::ensure_topic(kafka, &topic, PARTITIONS)
        .await
        .unwrap();
    topic
}

/// A replayer on `pool` whose codec has no registry to reach (these records are not Avro).
struct Setup {
    progress: ProgressBar,
    cancel: CancellationToken,
    kafka: KafkaConfig,
    codec: Arc<schemas::AvroCodec>,
}

impl Setup {
    fn new() -> Self {
        Self::with_registry("http://127.0.0.1:9")
    }

    fn with_registry(url: &str) -> Self {
        Self {
            progress: ProgressBar::hidden(),
            cancel: CancellationToken::new(),
            kafka: testkit::kafka(),
            codec: Arc::new(schemas::AvroCodec::new(url).unwrap()),
        }
    }

    fn replayer<'a>(&'a self, pool: &'a PgPool) -> Replayer<'a> {
        Replayer {
            pool,
            kafka: &self.kafka,
            codec: Arc::clone(&self.codec),
            progress: &self.progress,
            cancel: &self.cancel,
            max_batch: 4,
        }
    }
}

fn index(record: &Consumed) -> i64 {
    record.headers["index"].parse().unwrap()
}

fn indexes(records: &[Consumed]) -> BTreeSet<i64> {
    records.iter().map(index).collect()
}

/// Checks that each of `records` is its source record whole, with the replay's headers added.
fn assert_copies(source: &Source, records: &[Consumed], replay: Uuid) {
    for record in records {
        let i = index(record);
        let (partition, offset) = source.positions[usize::try_from(i).unwrap()];
        for (name, value) in &source.headers[usize::try_from(i).unwrap()] {
            assert_eq!(
                record.headers.get(name),
                Some(value),
                "header {name} of record {i}"
            );
        }
        assert_eq!(record.headers[REPLAY_ID], replay.to_string());
        assert_eq!(
            record.headers[REPLAY_SOURCE],
            format!("{}/{partition}/{offset}", source.topic)
        );
        assert!(record.headers.contains_key("replay.at"));
        assert_eq!(record.key.as_deref(), Some(format!("k{}", i % 5).as_str()));
        assert_eq!(record.payload, format!("payload {i}").into_bytes());
    }
}

#[tokio::test]
async fn a_time_range_moves_exactly_its_records_with_their_headers_and_filters_select_exactly() {
    let db = TestDb::new().await;
    let setup = Setup::new();
    let source = Source::new(&setup.kafka).await;
    let replayer = setup.replayer(db.pool());

    let target = new_topic(&setup.kafka).await;
    let mut spec = source.spec(Target::Topic(target.clone()));
    spec.range = Range::Times {
        from: Some(source.at(10)),
        to: Some(source.at(20)),
    };
    let report = replayer.start(spec, Mode::Apply, "test").await.unwrap();
    let copied = testkit::read_topic(&setup.kafka, &target).await;
    assert_eq!(indexes(&copied), (10..20).collect());
    assert_eq!(copied.len(), 10, "each record once");
    assert_eq!(report.written(), 10);
    assert_copies(&source, &copied, report.id);

    // A topic a replay wrote ends with a transaction's commit marker, which no record shows; replaying it
    // again ends all the same, and the second replay's headers replace the first's.
    let again = new_topic(&setup.kafka).await;
    let mut spec = source.spec(Target::Topic(again.clone()));
    spec.source = target.clone();
    let second = replayer.start(spec, Mode::Apply, "test").await.unwrap();
    let copied_again = testkit::read_topic(&setup.kafka, &again).await;
    assert_eq!(indexes(&copied_again), (10..20).collect());
    for record in &copied_again {
        assert_eq!(record.headers[REPLAY_ID], second.id.to_string());
        assert!(record.headers[REPLAY_SOURCE].starts_with(&format!("{target}/")));
    }

    let target = new_topic(&setup.kafka).await;
    let mut spec = source.spec(Target::Topic(target.clone()));
    spec.filters = Filters {
        event_types: vec!["A".into()],
        keys: vec![],
        headers: vec![(headers::ORIGIN_REGION.into(), "east".into())],
    };
    let report = replayer.start(spec, Mode::Apply, "test").await.unwrap();
    let copied = testkit::read_topic(&setup.kafka, &target).await;
    assert_eq!(
        indexes(&copied),
        (0..RECORDS).filter(|i| i % 6 == 0).collect()
    );
    assert_eq!(copied.len(), 5);
    assert_copies(&source, &copied, report.id);

    let target = new_topic(&setup.kafka).await;
    let mut spec = source.spec(Target::Topic(target.clone()));
    spec.filters.keys = vec!["k1".into(), "k2".into()];
    spec.partitions = Some(vec![1, 2]);
    replayer.start(spec, Mode::Apply, "test").await.unwrap();
    let copied = testkit::read_topic(&setup.kafka, &target).await;
    let expected: BTreeSet<i64> = (0..RECORDS)
        .filter(|i| matches!(i % 5, 1 | 2) && i % 3 != 0)
        .collect();
    assert_eq!(indexes(&copied), expected);
    assert_eq!(copied.len(), expected.len());
}

#[tokio::test]
async fn a_dry_run_writes_nothing_and_shows_the_range_the_types_and_decoded_samples() {
    let db = TestDb::new().await;
    let registry = schemas::registry::LocalRegistry::start(db.pool().clone())
        .await
        .unwrap();
    let setup = Setup::with_registry(registry.url());
    let source = Source::new(&setup.kafka).await;
    // Two Avro records among the others, as the pipeline writes them.
    let order = Uuid::now_v7();
    let (bytes, _) = setup
        .codec
        .encode(
            &source.topic,
            "OrderCompleted",
            &serde_json::json!({"type": "OrderCompleted", "order_id": order}),
        )
        .await
        .unwrap();
    let producer: FutureProducer = setup
        .kafka
        .producer_config(&producers::ProducerConfig::default())
        .create()
        .unwrap();
    let mut h = RecordHeaders::new();
    h.insert(headers::EVENT_TYPE.into(), "OrderCompleted".into());
    h.insert("index".into(), "avro".into());
    producer
        .send(
            FutureRecord::to(&source.topic)
                .partition(0)
                .key("avro")
                .payload(&bytes)
                .headers(headers::to_kafka(&h)),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    let target = new_topic(&setup.kafka).await;
    let mut spec = source.spec(Target::Topic(target.clone()));
    spec.filters.event_types = vec!["OrderCompleted".into(), "B".into()];
    let report = setup
        .replayer(db.pool())
        .start(spec, Mode::DryRun, "tester")
        .await
        .unwrap();

    assert_eq!(testkit::count_records(&setup.kafka, &target).await, 0);
    assert_eq!(report.tally.counts.read, RECORDS + 1);
    assert_eq!(report.tally.counts.matched, RECORDS / 2 + 1);
    assert_eq!(
        report.tally.by_type,
        BTreeMap::from([("B".to_owned(), 15), ("OrderCompleted".to_owned(), 1)])
    );
    let p0 = report.tally.partitions[&0];
    assert_eq!(
        p0.first_at,
        Some(source.at(3)),
        "record 3 is partition 0's first B"
    );
    assert!(report.cursors.iter().all(|c| c.written == 0));
    let decoded: Vec<_> = report
        .samples
        .iter()
        .filter_map(|s| s.event.as_ref().ok())
        .collect();
    assert_eq!(decoded.len(), 1, "{:?}", report.samples);
    assert_eq!(decoded[0]["order_id"], order.to_string());
    assert_eq!(decoded[0]["type"], "OrderCompleted");

    let rows = ops::replay::history(db.pool(), 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (row.mode.as_str(), row.run_by.as_str()),
        ("dry_run", "tester")
    );
    assert_eq!((row.read, row.matched, row.written), (RECORDS + 1, 16, 0));
    assert_eq!(row.outcome, "finished");
    assert_eq!(row.target, format!("topic:{target}"));
    let (moved,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM replay_partitions WHERE replay_id = $1 AND next_offset <> start_offset",
    )
    .bind(row.id)
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(moved, 0, "a dry run checkpoints nothing");
}

#[tokio::test]
async fn input_it_cannot_carry_out_is_refused_by_name_and_nothing_is_written() {
    let db = TestDb::new().await;
    let setup = Setup::new();
    let source = Source::new(&setup.kafka).await;
    let replayer = setup.replayer(db.pool());
    let target = new_topic(&setup.kafka).await;

    let refused = |result: Result<Report, OperatorError>| match result {
        Err(OperatorError::BadInput(why)) => why,
        other => panic!("expected bad input, got {other:?}"),
    };
    let mut unknown = source.spec(Target::Topic(target.clone()));
    unknown.source = "no-such-topic-here".into();
    let why = refused(replayer.start(unknown, Mode::DryRun, "t").await);
    assert!(
        why.contains("topic no-such-topic-here does not exist"),
        "{why}"
    );

    let why = refused(
        replayer
            .start(
                source.spec(Target::Topic("no-such-target".into())),
                Mode::Apply,
                "t",
            )
            .await,
    );
    assert!(
        why.contains("no-such-target does not exist; create it first"),
        "{why}"
    );

    let mut late = source.spec(Target::Topic(target.clone()));
    late.range = Range::Times {
        from: Some(source.at(100)),
        to: Some(source.at(200)),
    };
    let why = refused(replayer.start(late, Mode::Apply, "t").await);
    assert!(why.contains("holds no records"), "{why}");

    let mut past = source.spec(Target::Topic(target.clone()));
    past.range = Range::Offsets {
        from: None,
        to: Some(11),
    };
    let why = refused(replayer.start(past, Mode::Apply, "t").await);
    assert!(
        why.contains("past the high watermark 10 of partition 0"),
        "{why}"
    );

    let mut nothing = source.spec(Target::Topic(target.clone()));
    nothing.filters.event_types = vec!["NoSuchType".into()];
    let why = refused(replayer.start(nothing, Mode::Apply, "t").await);
    assert!(
        why.contains("the filters match none of the 30 records"),
        "{why}"
    );

    let why = refused(
        replayer
            .start(
                source.spec(Target::Topic(source.topic.clone())),
                Mode::Apply,
                "t",
            )
            .await,
    );
    assert!(why.contains("is the source topic"), "{why}");

    let why = refused(
        replayer
            .start(
                source.spec(Target::Group {
                    group: "payments".into(),
                    rebuild: true,
                }),
                Mode::Apply,
                "t",
            )
            .await,
    );
    assert!(why.contains("group payments is not rebuildable"), "{why}");

    let unknown = Uuid::now_v7();
    match replayer.resume(unknown).await {
        Err(OperatorError::NotFound(why)) => {
            assert!(why.contains(&format!("no replay {unknown}")), "{why}");
        }
        other => panic!("expected no such replay, got {other:?}"),
    }

    assert_eq!(testkit::count_records(&setup.kafka, &target).await, 0);
    let rows = ops::replay::history(db.pool(), 10).await.unwrap();
    assert!(rows.iter().all(|r| r.written == 0), "{rows:?}");
    assert_eq!(
        rows.iter().map(|r| r.outcome.as_str()).collect::<Vec<_>>(),
        ["failed"],
        "only the filters are found out after the replay started"
    );
}

#[tokio::test]
async fn a_resume_finds_what_was_written_after_the_last_checkpoint_and_writes_it_no_more() {
    let db = TestDb::new().await;
    let setup = Setup::new();
    let source = Source::new(&setup.kafka).await;
    let target = new_topic(&setup.kafka).await;
    let replayer = setup.replayer(db.pool());
    let report = replayer
        .start(source.spec(Target::Topic(target.clone())), Mode::Apply, "t")
        .await
        .unwrap();
    assert_eq!(report.written(), RECORDS);
    // As if the process had died after the target took every batch and before any checkpoint was saved.
    sqlx::query(
        "UPDATE replay_partitions SET next_offset = start_offset, written = 0 WHERE replay_id = $1",
    )
    .bind(report.id)
    .execute(db.pool())
    .await
    .unwrap();
    sqlx::query(
        "UPDATE replays SET written = 0, outcome = 'running', target_marks = '{\"0\": 0, \"1\": 0, \"2\": 0}'
         WHERE id = $1",
    )
    .bind(report.id)
    .execute(db.pool())
    .await
    .unwrap();

    let resumed = replayer.resume(report.id).await.unwrap();
    assert_eq!(resumed.found_on_resume, RECORDS);
    assert_eq!(resumed.written(), RECORDS);
    let copied = testkit::read_topic(&setup.kafka, &target).await;
    assert_eq!(
        copied.len(),
        usize::try_from(RECORDS).unwrap(),
        "nothing written twice"
    );
    assert_eq!(indexes(&copied), (0..RECORDS).collect());

    let why = match replayer.resume(report.id).await {
        Err(OperatorError::BadInput(why)) => why,
        other => panic!("{other:?}"),
    };
    assert!(why.contains("finished"), "{why}");
}

/// Starts replaying `source` to `target` at 20 records a second and stops it once some records are on the
/// target (the first checkpoints say so). Returns the stopped run's report.
async fn stopped_replay(setup: &Setup, pool: &PgPool, source: &Source, target: &str) -> Report {
    let mut spec = source.spec(Target::Topic(target.to_owned()));
    spec.rate = Some(20);
    let (cancel, watching, topic) = (setup.cancel.clone(), pool.clone(), source.topic.clone());
    tokio::spawn(async move {
        loop {
            let written: Option<(i64,)> =
                sqlx::query_as("SELECT written FROM replays WHERE source_topic = $1")
                    .bind(&topic)
                    .fetch_optional(&watching)
                    .await
                    .unwrap();
            if written.is_some_and(|(w,)| w >= 4) {
                cancel.cancel();
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let report = setup
        .replayer(pool)
        .start(spec, Mode::Apply, "t")
        .await
        .unwrap();
    assert!(report.stopped);
    assert!(
        (1..RECORDS).contains(&report.written()),
        "{}",
        report.written()
    );
    let row = ops::replay::row(pool, report.id).await.unwrap().unwrap();
    assert_eq!(
        (row.outcome.as_str(), row.written),
        ("stopped", report.written())
    );
    report
}

#[tokio::test]
async fn a_stopped_replay_resumes_where_it_stopped() {
    let db = TestDb::new().await;
    let source = Source::new(&testkit::kafka()).await;
    let target = new_topic(&testkit::kafka()).await;
    let report = stopped_replay(&Setup::new(), db.pool(), &source, &target).await;

    let setup = Setup::new();
    let resumed = setup.replayer(db.pool()).resume(report.id).await.unwrap();
    assert!(!resumed.stopped);
    assert_eq!(resumed.written(), RECORDS);
    let copied = testkit::read_topic(&setup.kafka, &target).await;
    assert_eq!(copied.len(), usize::try_from(RECORDS).unwrap());
    assert_eq!(indexes(&copied), (0..RECORDS).collect());
}

/// Records a stopped replay had yet to read are deleted before it resumes (by retention in real life, by
/// delete-records here): the resume names each partition that lost records and where it now starts, fails
/// the replay's row with that, and writes nothing more.
#[tokio::test]
async fn a_resume_whose_unread_records_were_deleted_names_them_and_writes_nothing() {
    use rdkafka::admin::{AdminClient, AdminOptions};
    let db = TestDb::new().await;
    let kafka = testkit::kafka();
    let source = Source::new(&kafka).await;
    let target = new_topic(&kafka).await;
    let report = stopped_replay(&Setup::new(), db.pool(), &source, &target).await;
    let unfinished: Vec<&Cursor> = report.cursors.iter().filter(|c| !c.is_done()).collect();
    assert!(!unfinished.is_empty(), "{:?}", report.cursors);

    let mut everything = rdkafka::TopicPartitionList::new();
    for cursor in &report.cursors {
        everything
            .add_partition_offset(
                &source.topic,
                cursor.range.partition,
                rdkafka::Offset::Offset(cursor.range.end),
            )
            .unwrap();
    }
    let admin: AdminClient<_> = kafka.client_config().create().unwrap();
    let deleted = admin
        .delete_records(&everything, &AdminOptions::new())
        .await
        .unwrap();
    assert!(
        deleted.elements().iter().all(|e| e.error().is_ok()),
        "{deleted:?}"
    );

    let why = match Setup::new().replayer(db.pool()).resume(report.id).await {
        Err(OperatorError::Failed(why)) => why,
        other => panic!("{other:?}"),
    };
    assert!(why.contains("deleted"), "{why}");
    for cursor in unfinished {
        let lost = format!(
            "{}/{} starts at offset {}, past offset {}",
            source.topic, cursor.range.partition, cursor.range.end, cursor.next
        );
        assert!(why.contains(&lost), "{lost:?} not in {why}");
    }
    let row = ops::replay::row(db.pool(), report.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.outcome.as_str(), row.written, row.error.as_deref()),
        ("failed", report.written(), Some(why.as_str()))
    );
    let copied = testkit::read_topic(&kafka, &target).await;
    assert_eq!(
        copied.len(),
        usize::try_from(report.written()).unwrap(),
        "nothing written after the stop"
    );
}

/// Inserts each record's event id into `applied`.
struct Applied;

impl Handler for Applied {
    async fn handle(
        &self,
        tx: &mut sqlx::PgConnection,
        record: &Incoming,
    ) -> Result<(), HandlerError> {
        sqlx::query("INSERT INTO applied (event_id) VALUES ($1)")
            .bind(record.event_id)
            .execute(tx)
            .await
            .map_err(|e| HandlerError::Transient(e.into()))?;
        Ok(())
    }
}

struct Consumer {
    stats: Arc<consumers::ConsumerStats>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn consume(pool: &PgPool, kafka: &KafkaConfig, group: &str, topic: &str) -> Consumer {
    let mut settings = ConsumerConfig::new(group, vec![topic.to_owned()]);
    settings.commit_interval = Duration::from_millis(200);
    let runtime = ConsumerRuntime::new(pool.clone(), kafka, settings, Applied).unwrap();
    let stats = runtime.stats();
    let stop = CancellationToken::new();
    let token = stop.clone();
    let task = tokio::spawn(async move { runtime.run(token).await.unwrap() });
    Consumer { stats, stop, task }
}

impl Consumer {
    async fn until(&self, what: &str, done: impl Fn(&consumers::ConsumerStats) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !done(&self.stats) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "waiting for {what}: {:?}",
                self.stats
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap();
    }
}

async fn applied(pool: &PgPool) -> (i64, i64) {
    sqlx::query_as("SELECT count(*), count(DISTINCT event_id) FROM applied")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn two_replays_are_two_rows_and_honest_duplicates_that_a_consumers_inbox_applies_once() {
    let db = TestDb::new().await;
    sqlx::query("CREATE TABLE applied (event_id uuid NOT NULL)")
        .execute(db.pool())
        .await
        .unwrap();
    let setup = Setup::new();
    let source = Source::new(&setup.kafka).await;
    let target = new_topic(&setup.kafka).await;
    let replayer = setup.replayer(db.pool());
    let first = replayer
        .start(source.spec(Target::Topic(target.clone())), Mode::Apply, "t")
        .await
        .unwrap();
    let second = replayer
        .start(source.spec(Target::Topic(target.clone())), Mode::Apply, "t")
        .await
        .unwrap();
    assert_ne!(first.id, second.id);
    assert_eq!(ops::replay::history(db.pool(), 10).await.unwrap().len(), 2);
    assert_eq!(
        testkit::read_topic(&setup.kafka, &target).await.len(),
        usize::try_from(2 * RECORDS).unwrap(),
        "the second replay writes every record again"
    );

    let consumer = consume(db.pool(), &setup.kafka, &testkit::unique_name("g"), &target);
    consumer
        .until("every record", |s| {
            s.applied.load(Ordering::Relaxed) + s.duplicates.load(Ordering::Relaxed)
                == u64::try_from(2 * RECORDS).unwrap()
        })
        .await;
    assert_eq!(consumer.stats.duplicates.load(Ordering::Relaxed), 30);
    consumer.stop().await;
    assert_eq!(applied(db.pool()).await, (RECORDS, RECORDS));
}

#[tokio::test]
async fn group_reset_refuses_an_active_group_and_a_rewind_to_a_time_redelivers_exactly_what_came_after()
 {
    let db = TestDb::new().await;
    sqlx::query("CREATE TABLE applied (event_id uuid NOT NULL)")
        .execute(db.pool())
        .await
        .unwrap();
    let kafka = testkit::kafka();
    let source = Source::new(&kafka).await;
    let group = testkit::unique_name("g");
    let consumer = consume(db.pool(), &kafka, &group, &source.topic);
    consumer
        .until("every record", |s| s.applied.load(Ordering::Relaxed) == 30)
        .await;

    let refused = groups::reset(
        db.pool(),
        &kafka,
        &group,
        &source.topic,
        ResetTo::Earliest,
        true,
        "t",
    )
    .await;
    match refused {
        Err(OperatorError::BadInput(why)) => {
            assert!(
                why.contains(&format!("group {group} has 1 active member(s)")),
                "{why}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    consumer.stop().await;

    let at = source.at(20);
    let dry = groups::reset(
        db.pool(),
        &kafka,
        &group,
        &source.topic,
        ResetTo::Time(at),
        false,
        "t",
    )
    .await
    .unwrap();
    assert_eq!(
        dry.iter().map(|m| m.before).collect::<Vec<_>>(),
        [Some(10); 3]
    );
    // Records 20..30: offsets 7, 7 and 6 of partitions 2, 0 and 1 (record i is offset i / 3 of i % 3).
    let after: Vec<i64> = dry.iter().map(|m| m.after).collect();
    assert_eq!(after, [7, 7, 6]);
    let moved = groups::reset(
        db.pool(),
        &kafka,
        &group,
        &source.topic,
        ResetTo::Time(at),
        true,
        "t",
    )
    .await
    .unwrap();
    assert_eq!(moved, dry);

    let again = consume(db.pool(), &kafka, &group, &source.topic);
    again
        .until("the records after the time", |s| {
            s.duplicates.load(Ordering::Relaxed) == 10
        })
        .await;
    // Nothing more comes: the others were before the time.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(again.stats.duplicates.load(Ordering::Relaxed), 10);
    assert_eq!(again.stats.applied.load(Ordering::Relaxed), 0);
    again.stop().await;
    assert_eq!(applied(db.pool()).await, (RECORDS, RECORDS));

    let (rows, refused, done): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE outcome = 'refused'), count(*) FILTER (WHERE outcome = 'done')
         FROM group_resets WHERE group_id = $1",
    )
    .bind(&group)
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!((rows, refused, done), (3, 1, 2));
}
