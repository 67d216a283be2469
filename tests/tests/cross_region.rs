//! Drills of the replication between the two local regions, which `./dev up` runs with MirrorMaker 2
//! (env/mm2/mm2.properties): each region's topics reach the other under the region's prefix, with their
//! keys, values and headers, and nothing comes back to where it started; two regions taking orders at once
//! converge to the same global view, also when one region's broker is killed for 20 s on the way (ignored
//! in the normal run: `./dev test` runs it alone after the suite); a group fails over with its translated
//! offsets. Each drill prints `N events, 0 lost, 0 applied twice`.
use std::collections::BTreeSet;
use std::time::Duration;

use indicatif::ProgressBar;
use pipeline::report::wait_until_ended;
use pipeline::workload::{Placed, Workload};
use pipeline::{Part, Pipeline, PipelineConfig, RegistrySetting};
use producers::KafkaConfig;
use producers::headers::{self, RecordHeaders};
use producers::topics::Topics;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::producer::{FutureProducer, FutureRecord};
use testkit::{Consumed, TestDb};

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

    // `region status` sees both copies caught up, and MirrorMaker 2's heartbeats fresh.
    let regions = [
        ops::region::Region {
            name: "east".into(),
            kafka: east.clone(),
        },
        ops::region::Region {
            name: "west".into(),
            kafka: west.clone(),
        },
    ];
    let status = ops::region::status(&regions).await.unwrap();
    for flow in ["east->west", "west->east"] {
        let ours: Vec<_> = status
            .partitions
            .iter()
            .filter(|p| p.flow == flow && p.topic == topic)
            .collect();
        assert_eq!(ours.len(), 3, "{flow}: every partition of {topic}");
        assert!(
            ours.iter()
                .all(|p| p.lag_records == 0 && p.lag_seconds == 0.0),
            "{flow}: {ours:?}"
        );
        let ends = |end: fn(&&ops::region::PartitionLag) -> i64| ours.iter().map(end).sum::<i64>();
        assert_eq!(ends(|p| p.source_end), RECORDS as i64);
        assert_eq!(ends(|p| p.replicated_end), RECORDS as i64);
        let heartbeat = status.flows.iter().find(|f| f.flow == flow).unwrap();
        assert!(
            heartbeat
                .heartbeat_age_seconds
                .is_some_and(|age| age < 30.0),
            "{heartbeat:?}"
        );
    }
    println!(
        "replication: {} events, 0 lost, 0 applied twice",
        2 * RECORDS
    );

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

/// One region's pipeline: its own database and cluster, its topics and groups under `prefix` (an `xr-` one,
/// which MirrorMaker 2 replicates), its global view reading the other region's copies.
struct Region {
    name: &'static str,
    db: TestDb,
    pipeline: Pipeline,
    topics: Topics,
    prefix: String,
}

/// The region that is not `name`.
fn other(name: &str) -> &'static str {
    if name == "east" { "west" } else { "east" }
}

async fn region(name: &'static str, kafka: KafkaConfig, prefix: &str, registry: &str) -> Region {
    let db = TestDb::new().await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(20)
        .acquire_timeout(Duration::from_secs(60))
        .connect(db.url())
        .await
        .unwrap();
    let mut config = PipelineConfig::new(kafka);
    // One registry for both regions, as a global schema registry would be: a replicated record's schema id
    // must mean the same schema in the region that reads the copy.
    config.registry = RegistrySetting::Url(registry.to_owned());
    config.services.topics = Topics::with_prefix(prefix);
    config.services.group_prefix = prefix.to_owned();
    config.services.region = name.into();
    config.services.remote_regions = vec![other(name).to_owned()];
    config.partitions = 3;
    config.provider.decline_rate = 0.3;
    config.services.carrier.failure_rate = 0.0;
    config.services.carrier.dispatch_delay = Duration::from_millis(100);
    config.services.carrier.delivery_delay = Duration::from_millis(100);
    config.roles = Some(
        db::RoleConfig::new(db::DbConfig::from_url(db.url()))
            .with_limits(8, Duration::from_secs(60)),
    );
    let pipeline = Pipeline::start_parts(pool, config, &Part::ALL)
        .await
        .unwrap();
    Region {
        name,
        db,
        pipeline,
        topics: Topics::with_prefix(prefix),
        prefix: prefix.to_owned(),
    }
}

/// East and west, each with its pipeline under one `xr-` prefix, and the schema registry they share.
struct TwoRegions {
    east: Region,
    west: Region,
    _registry: (schemas::registry::LocalRegistry, TestDb),
}

impl TwoRegions {
    /// Stops both pipelines; a part that failed on the way fails the drill.
    async fn stop(self) {
        self.east.pipeline.stop().await.unwrap();
        self.west.pipeline.stop().await.unwrap();
    }
}

async fn two_regions() -> TwoRegions {
    let prefix = format!("{}.", testkit::unique_name("xr"));
    let registry_db = TestDb::new().await;
    let registry = schemas::registry::LocalRegistry::start(registry_db.pool().clone())
        .await
        .unwrap();
    let (east, west) = tokio::join!(
        region("east", testkit::kafka(), &prefix, registry.url()),
        region("west", testkit::kafka_west(), &prefix, registry.url())
    );
    TwoRegions {
        east,
        west,
        _registry: (registry, registry_db),
    }
}

/// Stocks and places `orders` orders in `region`: they are in its database and outbox when this returns.
async fn take(region: &Region, orders: usize) -> Placed {
    let shared = region.pipeline.shared();
    let workload = Workload::happy(orders);
    workload.stock(shared).await.unwrap();
    workload
        .place(shared, &ProgressBar::hidden())
        .await
        .unwrap()
}

/// Waits until every order of `placed` has ended in `region`.
async fn ended(region: &Region, placed: &Placed) {
    wait_until_ended(
        &region.pipeline.shared().pool,
        placed,
        Duration::from_secs(180),
        &ProgressBar::hidden(),
        || region.pipeline.check(),
    )
    .await
    .unwrap();
}

/// Places `orders` orders in `region` and waits until every one has ended.
async fn place(region: &Region, orders: usize) -> Placed {
    let placed = take(region, orders).await;
    ended(region, &placed).await;
    placed
}

type GlobalRow = (uuid::Uuid, String, String, Option<String>, i64, String);

async fn global_view(pool: &sqlx::PgPool) -> Vec<GlobalRow> {
    sqlx::query_as(
        "SELECT order_id, home_region, status, cancel_reason, total_minor, currency FROM orders_global
         ORDER BY order_id",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Waits until both regions' global views hold every order of `all`, ended, and returns them, east's first;
/// both are the same rows.
async fn converged(
    east: &Region,
    west: &Region,
    all: &BTreeSet<uuid::Uuid>,
) -> (Vec<GlobalRow>, Vec<GlobalRow>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    let (in_east, in_west) = loop {
        let (e, w) = (
            global_view(east.db.pool()).await,
            global_view(west.db.pool()).await,
        );
        let ended =
            |rows: &[GlobalRow]| rows.len() == all.len() && rows.iter().all(|r| r.2 != "placed");
        if ended(&e) && ended(&w) {
            break (e, w);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the global views did not converge in 180 s: east has {} rows, west {}",
            e.len(),
            w.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(
        in_east, in_west,
        "both regions see the same orders in the same states"
    );
    assert_eq!(
        &in_east.iter().map(|r| r.0).collect::<BTreeSet<_>>(),
        all,
        "none lost"
    );
    (in_east, in_west)
}

#[tokio::test]
async fn two_regions_taking_orders_at_once_converge_to_the_same_global_view() {
    const ORDERS: usize = 12;
    let regions = two_regions().await;
    let (east, west) = (&regions.east, &regions.west);

    // Both regions take orders at once; each one's services act on its own.
    let (placed_east, placed_west) = tokio::join!(place(east, ORDERS), place(west, ORDERS));
    let all: BTreeSet<uuid::Uuid> = placed_east
        .order_ids
        .iter()
        .chain(&placed_west.order_ids)
        .map(|id| id.as_uuid())
        .collect();
    assert_eq!(all.len(), 2 * ORDERS);

    let (in_east, in_west) = converged(east, west, &all).await;
    for region in [east, west] {
        // The home region's own view agrees with what the other region sees of its orders.
        let own: Vec<(uuid::Uuid, String, Option<String>, i64, String)> = sqlx::query_as(
            "SELECT order_id, status, cancel_reason, total_minor, currency FROM orders_view ORDER BY order_id",
        )
        .fetch_all(region.db.pool())
        .await
        .unwrap();
        let homed: Vec<_> = in_west
            .iter()
            .filter(|r| r.1 == region.name)
            .map(|r| (r.0, r.2.clone(), r.3.clone(), r.4, r.5.clone()))
            .collect();
        assert_eq!(own, homed, "{}'s orders as placed there", region.name);
        assert_eq!(
            own.len(),
            ORDERS,
            "{} acted on its own orders only",
            region.name
        );
    }
    let events = in_east.len() + in_east.iter().filter(|r| r.2 != "placed").count();
    println!(
        "active-active: {} events per region, 0 lost, 0 applied twice",
        events
    );

    // West's global view loses five of east's orders and moves one back to placed; replaying east's copy
    // into the view with --rebuild finds the six and restores them, leaving west's own orders as they are.
    let east_homed: Vec<uuid::Uuid> = in_west
        .iter()
        .filter(|r| r.1 == "east")
        .map(|r| r.0)
        .collect();
    sqlx::query("DELETE FROM orders_global WHERE order_id = ANY($1)")
        .bind(&east_homed[..5])
        .execute(west.db.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE orders_global SET status = 'placed' WHERE order_id = $1")
        .bind(east_homed[5])
        .execute(west.db.pool())
        .await
        .unwrap();
    let shared = west.pipeline.shared();
    let (progress, cancel) = (
        ProgressBar::hidden(),
        tokio_util::sync::CancellationToken::new(),
    );
    let replayer = ops::replay::Replayer {
        pool: west.db.pool(),
        kafka: &shared.config.kafka,
        codec: std::sync::Arc::clone(&shared.codec),
        progress: &progress,
        cancel: &cancel,
        max_batch: 10,
    };
    let spec = ops::replay::ReplaySpec {
        source: Topics::replicated(
            "east",
            &west.topics.events(producers::topics::Service::Orders),
        ),
        partitions: None,
        range: ops::replay::Range::default(),
        filters: ops::replay::Filters::default(),
        target: ops::replay::Target::Group {
            group: "orders-global".into(),
            rebuild: true,
        },
        rate: None,
    };
    let rebuilt = replayer
        .start(spec, ops::replay::Mode::Apply, "test")
        .await
        .unwrap();
    let differences = rebuilt.differences.unwrap();
    assert_eq!(
        (
            differences.rebuilt,
            differences.missing,
            differences.differing,
            differences.only_in_view,
            differences.restored
        ),
        (ORDERS as i64, 5, 1, ORDERS as i64, 6),
        "{differences:?}"
    );
    assert_eq!(
        global_view(west.db.pool()).await,
        in_west,
        "west's view restored"
    );
    regions.stop().await;
}

/// The ids of `placed`'s orders.
fn ids(placed: &Placed) -> BTreeSet<uuid::Uuid> {
    placed.order_ids.iter().map(|id| id.as_uuid()).collect()
}

/// How many of `ids`' orders `region`'s own view shows as `status`.
async fn with_status(region: &Region, ids: &BTreeSet<uuid::Uuid>, status: &str) -> usize {
    let ids: Vec<uuid::Uuid> = ids.iter().copied().collect();
    let (n,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM orders_view WHERE order_id = ANY($1) AND status = $2")
            .bind(&ids)
            .bind(status)
            .fetch_one(region.db.pool())
            .await
            .unwrap();
    usize::try_from(n).unwrap()
}

/// The events of `topics` in `kafka`'s cluster: records, and distinct event ids.
async fn events_in(kafka: &KafkaConfig, topics: &[String]) -> (usize, BTreeSet<String>) {
    let mut records = 0;
    let mut ids = BTreeSet::new();
    for topic in topics {
        for record in testkit::read_topic(kafka, topic).await {
            records += 1;
            ids.insert(record.headers[headers::EVENT_ID].clone());
        }
    }
    (records, ids)
}

/// Region outage: east's broker is killed with SIGKILL for 20 s while both regions take orders. West goes on
/// completing its own; east keeps accepting orders into its database and outbox. When east's broker is back
/// (`./dev up` restarts it), east's orders end, MirrorMaker 2 catches up both ways, and both global views
/// converge, with nothing lost and nothing applied twice, though MirrorMaker 2 may copy some records twice.
#[tokio::test]
#[ignore = "kills east's shared local broker; `./dev test` runs it alone after the suite"]
async fn a_region_whose_broker_is_killed_for_20_s_converges_with_the_other_when_it_returns() {
    const ORDERS: usize = 8;
    const OUTAGE: Duration = Duration::from_secs(20);
    let regions = two_regions().await;
    let (east, west) = (&regions.east, &regions.west);
    let (east_before, west_before) = tokio::join!(place(east, ORDERS), place(west, ORDERS));

    let killed = tokio::time::Instant::now();
    let pid = testkit::local::kill_broker("east");
    // West completes its orders while east's broker is down: they end in west before east's returns.
    let (east_during, west_during) = tokio::join!(take(east, ORDERS), place(west, ORDERS));
    assert_eq!(
        with_status(east, &ids(&east_during), "placed").await,
        ORDERS,
        "east accepted its orders into its outbox; without its broker none moved on"
    );
    tokio::time::sleep_until(killed + OUTAGE).await;
    assert!(
        testkit::local::dev("up").success(),
        "./dev up restarts east's broker"
    );
    assert_ne!(testkit::local::broker_pid("east"), pid);
    println!(
        "east's broker was down {:.0} s; west completed its {ORDERS} orders meanwhile",
        killed.elapsed().as_secs_f64()
    );

    ended(east, &east_during).await;
    let all: BTreeSet<uuid::Uuid> = [&east_before, &west_before, &east_during, &west_during]
        .into_iter()
        .flat_map(ids)
        .collect();
    assert_eq!(all.len(), 4 * ORDERS);
    let (view, _) = converged(east, west, &all).await;
    for region in [east, west] {
        let homed: BTreeSet<uuid::Uuid> = view
            .iter()
            .filter(|r| r.1 == region.name)
            .map(|r| r.0)
            .collect();
        assert_eq!(
            homed.len(),
            2 * ORDERS,
            "{}'s orders homed there",
            region.name
        );
    }

    // Each region's view applied every event of its topics, its own and the other region's copy, once:
    // the inbox holds a row per event id, however many times MirrorMaker 2 copied it.
    let (mut events, mut copied_twice) = (0, 0);
    for (here, kafka) in [(east, testkit::kafka()), (west, testkit::kafka_west())] {
        let topics = services::orders::global::topics(&here.topics, &[other(here.name).to_owned()]);
        let (records, ids) = events_in(&kafka, &topics).await;
        let group = format!("{}{}", here.prefix, services::orders::global::GROUP);
        let applied: Vec<(uuid::Uuid,)> =
            sqlx::query_as("SELECT event_id FROM inbox WHERE consumer_group = $1")
                .bind(&group)
                .fetch_all(here.db.pool())
                .await
                .unwrap();
        let applied: BTreeSet<String> = applied.into_iter().map(|(id,)| id.to_string()).collect();
        assert_eq!(
            applied, ids,
            "{}'s view applied each event of {topics:?}",
            here.name
        );
        events += ids.len();
        copied_twice += records - ids.len();
    }
    println!(
        "region outage: {events} events, 0 lost, 0 applied twice ({copied_twice} copied twice by MirrorMaker 2, \
         skipped by the inbox)"
    );
    regions.stop().await;
}

/// Commits `offsets[p]` for each partition `p` of `topic` in `group`, without joining it (as a consumer
/// that stopped leaves its group: no members, offsets kept).
fn commit(kafka: &KafkaConfig, group: &str, topic: &str, offsets: &[i64]) {
    let consumer: BaseConsumer = testkit::consumer_config(kafka, group).create().unwrap();
    let offsets = rdkafka::TopicPartitionList::from_topic_map(
        &(0..)
            .zip(offsets)
            .map(|(p, o)| ((topic.to_owned(), p), rdkafka::Offset::Offset(*o)))
            .collect(),
    )
    .unwrap();
    consumer
        .commit(&offsets, rdkafka::consumer::CommitMode::Sync)
        .unwrap();
}

/// `group`'s committed offsets on `topic`'s three partitions.
fn committed(kafka: &KafkaConfig, group: &str, topic: &str) -> Vec<i64> {
    let consumer: BaseConsumer = testkit::consumer_config(kafka, group).create().unwrap();
    let mut partitions = rdkafka::TopicPartitionList::new();
    for partition in 0..3 {
        partitions.add_partition(topic, partition);
    }
    consumer
        .committed_offsets(partitions, Duration::from_secs(30))
        .unwrap()
        .elements()
        .iter()
        .map(|e| e.offset().to_raw().unwrap_or(-1))
        .collect()
}

/// The global view's group runs in every region under one name, and in the region that reads the copies
/// its offsets are its own: MirrorMaker 2 must not overwrite them with the translation of the other
/// region's progress on the original topic (its `sync.group.offsets` would, whenever the group has no
/// member, as while it rejoins after its broker restarted, and the view would skip the copies in between).
#[tokio::test]
async fn mirror_maker_leaves_the_global_views_offsets_on_the_copies_alone() {
    let (east, west) = (testkit::kafka(), testkit::kafka_west());
    let prefix = format!("{}.", testkit::unique_name("xr"));
    let topic = Topics::with_prefix(&prefix).events(producers::topics::Service::Orders);
    let group = format!("{prefix}{}", services::orders::global::GROUP);
    write(&east, "east", &topic).await;
    let copy = Topics::replicated("east", &topic);
    replicated(&west, &copy, RECORDS).await;
    // In west the view has read one record of each partition of the copy; in east it has read all of
    // east's topic, which MirrorMaker 2 checkpoints (a group it checkpoints shows within 5 s, then every
    // second).
    commit(&west, &group, &copy, &[1, 1, 1]);
    let consumer: BaseConsumer = east.client_config().create().unwrap();
    let ends: Vec<i64> = (0..3)
        .map(|p| {
            consumer
                .fetch_watermarks(&topic, p, Duration::from_secs(30))
                .unwrap()
                .1
        })
        .collect();
    commit(&east, &group, &topic, &ends);
    // Time for MirrorMaker 2 to find the group (5 s) and sync it (every second), were it to.
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_eq!(
        committed(&west, &group, &copy),
        vec![1, 1, 1],
        "west's view keeps its own place in {copy}"
    );
}

/// Inserts each record's event id into `applied`.
struct Applied;

impl consumers::Handler for Applied {
    async fn handle(
        &self,
        tx: &mut sqlx::PgConnection,
        record: &consumers::Incoming,
    ) -> Result<(), consumers::HandlerError> {
        sqlx::query("INSERT INTO applied (event_id) VALUES ($1)")
            .bind(record.event_id)
            .execute(tx)
            .await
            .map_err(|e| consumers::HandlerError::Transient(e.into()))?;
        Ok(())
    }
}

/// Runs group `group` on `topic` of `kafka` into `pool` until `done` holds of its counters, then stops it
/// and returns them (applied, skipped by the inbox).
async fn consume_until(
    pool: &sqlx::PgPool,
    kafka: &KafkaConfig,
    group: &str,
    topic: &str,
    done: impl Fn(u64, u64) -> bool,
) -> (u64, u64) {
    use std::sync::atomic::Ordering;
    let mut settings = consumers::ConsumerConfig::new(group, vec![topic.to_owned()]);
    settings.commit_interval = Duration::from_millis(200);
    let runtime = consumers::ConsumerRuntime::new(pool.clone(), kafka, settings, Applied).unwrap();
    let stats = runtime.stats();
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn({
        let stop = stop.clone();
        async move { runtime.run(stop).await.unwrap() }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let counts = || {
        (
            stats.applied.load(Ordering::Relaxed),
            stats.duplicates.load(Ordering::Relaxed),
        )
    };
    while !done(counts().0, counts().1) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stuck at {:?}",
            counts()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    task.await.unwrap();
    counts()
}

#[tokio::test]
async fn a_group_failed_over_to_the_other_region_applies_every_event_once() {
    let (east, west) = (testkit::kafka(), testkit::kafka_west());
    let db = TestDb::new().await;
    sqlx::query("CREATE TABLE applied (event_id uuid NOT NULL)")
        .execute(db.pool())
        .await
        .unwrap();
    let id = testkit::unique_name("xr");
    let (topic, group) = (format!("{id}.orders.events"), format!("{id}-consumer"));
    let first = write(&east, "east", &topic).await;
    let (applied, _) = consume_until(db.pool(), &east, &group, &topic, |applied, _| {
        applied == RECORDS as u64
    })
    .await;
    assert_eq!(applied, RECORDS as u64);
    // East goes on taking events the group has not read when east is lost.
    let second = write(&east, "east", &topic).await;
    let copy = format!("east.{topic}");
    replicated(&west, &copy, 2 * RECORDS).await;

    let (from, to) = (
        ops::region::Region {
            name: "east".into(),
            kafka: east.clone(),
        },
        ops::region::Region {
            name: "west".into(),
            kafka: west.clone(),
        },
    );
    // MirrorMaker 2 finds the group within 5 s and checkpoints it every second.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let dry = loop {
        match ops::region::failover(db.pool(), &group, &from, &to, false, "drill").await {
            Ok(moved)
                if moved.len() == 3
                    && moved.iter().map(|m| m.upstream).sum::<i64>() == RECORDS as i64 =>
            {
                break moved;
            }
            Ok(_) | Err(ops::OperatorError::BadInput(_)) => {}
            Err(e) => panic!("{e}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no checkpoint of {group} covering its {RECORDS} records in 90 s"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert!(dry.iter().all(|m| m.topic == copy), "{dry:?}");
    let moved = ops::region::failover(db.pool(), &group, &from, &to, true, "drill")
        .await
        .unwrap();
    // Each attempt is on the audit trail; the one applied holds the offsets it committed.
    let (applied, offsets): (String, serde_json::Value) = sqlx::query_as(
        "SELECT mode, offsets FROM region_failovers
         WHERE group_id = $1 AND from_region = 'east' AND to_region = 'west' AND run_by = 'drill'
         ORDER BY at DESC LIMIT 1",
    )
    .bind(&group)
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(applied, "apply");
    assert_eq!(offsets, serde_json::to_value(&moved).unwrap());
    assert_eq!(
        moved
            .iter()
            .map(|m| (m.partition, m.after))
            .collect::<Vec<_>>(),
        dry.iter()
            .map(|m| (m.partition, m.after))
            .collect::<Vec<_>>()
    );

    // In west, the group reads east's copy from the translated offsets: the new events, and perhaps some
    // it applied in east, which its inbox skips.
    let (applied, skipped) = consume_until(db.pool(), &west, &group, &copy, |applied, _| {
        applied == RECORDS as u64
    })
    .await;
    let (rows, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT event_id) FROM applied")
            .fetch_one(db.pool())
            .await
            .unwrap();
    let all: BTreeSet<String> = first.union(&second).cloned().collect();
    assert_eq!(
        (rows, distinct),
        (all.len() as i64, all.len() as i64),
        "each event applied once"
    );
    assert_eq!(
        applied, RECORDS as u64,
        "the events east took after the group's last read"
    );
    println!(
        "failover: {} events, 0 lost, 0 applied twice ({skipped} redelivered and skipped by the inbox)",
        all.len()
    );
}
