//! `orderflow bench ...`: benchmarks that print figures and their ratio to a baseline measured in the same run.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use outbox::records::enqueue;
use outbox::relay::Acked;
use outbox::{OutboxRecord, Relay, RelayConfig};
use producers::headers::{self, RecordHeaders};
use producers::{KafkaConfig, ProducerConfig, send};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

/// `orderflow bench ...`
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Relay drain rate of a backlog against a raw rdkafka producer, and commit-to-acknowledged latency at a
    /// steady rate. Uses a database and a topic of its own; the last line printed is the ratio.
    Outbox(OutboxBenchArgs),
    /// Consumer throughput with the inbox against the same handler without it, in one run, on a topic and a
    /// database of its own; the last line printed is the ratio.
    Consumers(ConsumerBenchArgs),
    /// Orders per second completed end to end through the whole pipeline, with latency p50/p99, beside the
    /// Postgres commit ceiling measured on the same pool in the same run; the last line is the ratio of the
    /// pipeline's commits per second to that ceiling.
    Pipeline(crate::bench_pipeline::PipelineBenchArgs),
    /// Statement lines matched per second by `orderflow reconcile`, beside one SQL full outer join of the
    /// same tables in the same run, on a database of its own; the last line printed is the ratio.
    Reconcile(crate::bench_reconcile::ReconcileBenchArgs),
    /// Records per second copied topic to topic by `orderflow replay --apply`, beside a copy loop written
    /// with Confluent's Python client on the same broker and records in the same run; the last line printed
    /// is the ratio.
    Replay(crate::bench_replay::ReplayBenchArgs),
    /// At a steady rate of orders placed in east, commit-to-visible lag p50/p99 in west's orders_global
    /// (through MirrorMaker 2) beside east's own, in the same run; the last line printed is the ratio.
    Replication(crate::bench_replication::ReplicationBenchArgs),
}

#[derive(Debug, clap::Args)]
pub struct ConsumerBenchArgs {
    /// Records consumed by each of the two runs.
    #[arg(long, default_value_t = 50_000)]
    records: usize,
    /// Payload size of each record, in bytes.
    #[arg(long, default_value_t = 300)]
    payload_bytes: usize,
    /// Partitions of the benchmark topic (partitions are applied in parallel).
    #[arg(long, default_value_t = 6)]
    partitions: i32,
}

#[derive(Debug, clap::Args)]
pub struct OutboxBenchArgs {
    /// Records in the backlog the relay drains (and the raw producer sends).
    #[arg(long, default_value_t = 200_000)]
    records: usize,
    /// Payload size of each record, in bytes.
    #[arg(long, default_value_t = 300)]
    payload_bytes: usize,
    /// Distinct keys (aggregates) the records are spread over.
    #[arg(long, default_value_t = 1000)]
    keys: usize,
    /// Partitions of the benchmark topic.
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// Events per second written during the latency phase.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Length of the latency phase, in seconds.
    #[arg(long, default_value_t = 10)]
    latency_seconds: u64,
    /// Producer linger of both the relay and the raw producer, in milliseconds (the relay's default when
    /// not given).
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    linger_ms: Option<u64>,
}

impl OutboxBenchArgs {
    /// The producer settings of both sides.
    fn producer(&self) -> ProducerConfig {
        let defaults = ProducerConfig::default();
        ProducerConfig {
            linger: self
                .linger_ms
                .map_or(defaults.linger, Duration::from_millis),
            ..defaults
        }
    }
}

pub async fn run(
    db_settings: &db::DbConfig,
    kafka: &KafkaConfig,
    command: &BenchCommand,
) -> anyhow::Result<()> {
    match command {
        BenchCommand::Outbox(args) => outbox_bench(db_settings, kafka, args).await,
        BenchCommand::Consumers(args) => consumers_bench(db_settings, kafka, args).await,
        BenchCommand::Pipeline(args) => crate::bench_pipeline::run(db_settings, kafka, args).await,
        BenchCommand::Reconcile(args) => crate::bench_reconcile::run(db_settings, args).await,
        BenchCommand::Replay(args) => crate::bench_replay::run(db_settings, kafka, args).await,
        BenchCommand::Replication(args) => {
            crate::bench_replication::run(db_settings, kafka, args).await
        }
    }
}

async fn outbox_bench(
    db_settings: &db::DbConfig,
    kafka: &KafkaConfig,
    args: &OutboxBenchArgs,
) -> anyhow::Result<()> {
    ensure!(
        args.records > 0 && args.keys > 0 && args.rate > 0,
        "records, keys and rate must be above zero"
    );
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let db_name = format!("orderflow_bench_{run_id}");
    let url = db::create_database(&db_settings.url, &db_name).await?;
    let result = async {
        let pool = db::connect(&db::DbConfig { url: url.clone(), ..db::DbConfig::from_url(&url) }).await?;
        db::migrate(&pool).await?;
        let topic = format!("orderflow-bench-{run_id}");
        producers::ensure_topic(kafka, &topic, args.partitions).await?;
        eprintln!("bench outbox: {} records of {} bytes over {} keys, topic {topic} ({} partitions)",
            args.records, args.payload_bytes, args.keys, args.partitions);

        let records = make_records(&topic, args.records, args.payload_bytes, args.keys);
        let raw = raw_producer_rate(kafka, &args.producer(), &records).await?;
        println!("raw producer:  {} records in {:.2} s = {:.0} records/s", records.len(), raw.0.as_secs_f64(), raw.1);

        let floor = raw_producer_latency(kafka, &records, args).await?;
        println!(
            "raw latency:   {} records at {}/s for {} s, send to acknowledged: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            floor.len(), args.rate, args.latency_seconds,
            percentile(&floor, 0.50), percentile(&floor, 0.99), percentile(&floor, 1.0)
        );

        let relay = relay_drain_and_latency(&pool, kafka, &records, args).await?;
        println!("relay drain:   {} records in {:.2} s = {:.0} records/s", records.len(), relay.drain.as_secs_f64(), relay.drain_rate);
        println!(
            "latency:       {} events at {}/s for {} s, commit to acknowledged: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            relay.latencies.len(), args.rate, args.latency_seconds,
            percentile(&relay.latencies, 0.50), percentile(&relay.latencies, 0.99), percentile(&relay.latencies, 1.0)
        );
        println!("ratio (relay drain / raw producer): {:.2}", relay.drain_rate / raw.1);
        pool.close().await;
        anyhow::Ok(())
    }
    .await;
    db::drop_database(&db_settings.url, &db_name).await.ok();
    result
}

/// Inserts one row per record: the effect both runs of the consumer benchmark apply.
struct InsertEffect;

impl consumers::Handler for InsertEffect {
    async fn handle(
        &self,
        tx: &mut sqlx::PgConnection,
        record: &consumers::Incoming,
    ) -> Result<(), consumers::HandlerError> {
        sqlx::query("INSERT INTO bench_effects (event_id, payload) VALUES ($1, $2)")
            .bind(record.event_id)
            .bind(&record.payload)
            .execute(tx)
            .await
            .map_err(|e| consumers::HandlerError::Transient(e.into()))?;
        Ok(())
    }
}

async fn consumers_bench(
    db_settings: &db::DbConfig,
    kafka: &KafkaConfig,
    args: &ConsumerBenchArgs,
) -> anyhow::Result<()> {
    ensure!(args.records > 0, "records must be above zero");
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let db_name = format!("orderflow_bench_{run_id}");
    let url = db::create_database(&db_settings.url, &db_name).await?;
    let result = async {
        let pool = db::connect(&db::DbConfig {
            max_connections: 20,
            ..db::DbConfig::from_url(&url)
        })
        .await?;
        db::migrate(&pool).await?;
        sqlx::query("CREATE TABLE bench_effects (event_id uuid NOT NULL, payload bytea NOT NULL)")
            .execute(&pool)
            .await?;
        let topic = format!("orderflow-bench-{run_id}");
        producers::ensure_topic(kafka, &topic, args.partitions).await?;
        eprintln!(
            "bench consumers: {} records of {} bytes, topic {topic} ({} partitions)",
            args.records, args.payload_bytes, args.partitions
        );
        let records = make_records(&topic, args.records, args.payload_bytes, 1000);
        raw_producer_rate(kafka, &ProducerConfig::default(), &records).await?;

        // Two runs each, alternating, keeping the faster of each: the first run on a topic also pays for
        // cold caches, and this machine is shared.
        let (mut without, mut with) = (Duration::MAX, Duration::MAX);
        for round in 1..=2 {
            for inbox in [false, true] {
                let run = consume_all(&pool, kafka, &topic, args.records, inbox).await?;
                println!(
                    "{} inbox, run {round}: {} records in {:.2} s = {:.0} records/s",
                    if inbox { "with   " } else { "without" },
                    args.records,
                    run.as_secs_f64(),
                    args.records as f64 / run.as_secs_f64()
                );
                let best = if inbox { &mut with } else { &mut without };
                *best = (*best).min(run);
            }
        }
        println!(
            "ratio (with inbox / without): {:.2}",
            without.as_secs_f64() / with.as_secs_f64()
        );
        pool.close().await;
        anyhow::Ok(())
    }
    .await;
    db::drop_database(&db_settings.url, &db_name).await.ok();
    result
}

/// Consumes the whole topic with a new group; the time runs from the first applied record to the last, so
/// the group join is not counted.
async fn consume_all(
    pool: &sqlx::PgPool,
    kafka: &KafkaConfig,
    topic: &str,
    records: usize,
    inbox: bool,
) -> anyhow::Result<Duration> {
    let group = format!("bench-{}", uuid::Uuid::now_v7().simple());
    let settings = consumers::ConsumerConfig {
        inbox,
        ..consumers::ConsumerConfig::new(group, vec![topic.to_owned()])
    };
    let runtime = consumers::ConsumerRuntime::new(pool.clone(), kafka, settings, InsertEffect)?;
    let stats = runtime.stats();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(runtime.run(shutdown.clone()));
    let applied = || stats.applied.load(std::sync::atomic::Ordering::Relaxed) as usize;
    let deadline = Instant::now() + Duration::from_secs(600);
    while applied() == 0 {
        ensure!(Instant::now() < deadline, "the consumer applied nothing");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let started = Instant::now();
    while applied() < records {
        ensure!(
            Instant::now() < deadline,
            "the consumer applied only {} of {records} records",
            applied()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    shutdown.cancel();
    task.await??;
    Ok(elapsed)
}

pub(crate) fn make_records(
    topic: &str,
    count: usize,
    payload_bytes: usize,
    keys: usize,
) -> Vec<OutboxRecord> {
    let payload: Vec<u8> = (0..payload_bytes).map(|i| b'a' + (i % 26) as u8).collect();
    let traceparent = headers::new_traceparent();
    (0..count)
        .map(|n| OutboxRecord {
            topic: topic.to_owned(),
            key: format!("aggregate-{:06}", n % keys),
            payload: payload.clone(),
            headers: RecordHeaders::from([
                (
                    headers::EVENT_ID.to_owned(),
                    uuid::Uuid::now_v7().to_string(),
                ),
                (headers::EVENT_TYPE.to_owned(), "BenchEvent".to_owned()),
                (
                    headers::CORRELATION_ID.to_owned(),
                    uuid::Uuid::now_v7().to_string(),
                ),
                (headers::TRACEPARENT.to_owned(), traceparent.clone()),
                (headers::ORIGIN_REGION.to_owned(), "local".to_owned()),
            ]),
        })
        .collect()
}

/// Sends every record with a producer configured like the relay's and waits for every acknowledgement.
pub(crate) async fn raw_producer_rate(
    kafka: &KafkaConfig,
    producer: &ProducerConfig,
    records: &[OutboxRecord],
) -> anyhow::Result<(Duration, f64)> {
    let producer: FutureProducer = kafka.producer_config(producer).create()?;
    eprintln!("bench: raw producer sending {} records", records.len());
    let started = Instant::now();
    let mut deliveries = Vec::with_capacity(records.len());
    for r in records {
        let record = FutureRecord::to(&r.topic)
            .key(&r.key)
            .payload(&r.payload)
            .headers(headers::to_kafka(&r.headers));
        let delivery = send::enqueue(&producer, record)
            .await
            .context("raw producer refused a record")?;
        deliveries.push(delivery);
    }
    for delivery in deliveries {
        send::acknowledged(delivery)
            .await
            .context("raw producer delivery failed")?;
    }
    let elapsed = started.elapsed();
    Ok((elapsed, records.len() as f64 / elapsed.as_secs_f64()))
}

/// The broker's own floor: a raw producer sending single records at `args.rate` per second, each one's
/// send-to-acknowledged time in milliseconds, sorted.
async fn raw_producer_latency(
    kafka: &KafkaConfig,
    records: &[OutboxRecord],
    args: &OutboxBenchArgs,
) -> anyhow::Result<Vec<f64>> {
    eprintln!(
        "bench outbox: raw producer latency at {} records/s for {} s",
        args.rate, args.latency_seconds
    );
    let producer: FutureProducer = kafka.producer_config(&args.producer()).create()?;
    // The relay's producer is warm when its latency is measured: this one gets its producer id and the
    // topic's metadata first too, or the first half second of records waits for them.
    let first = &records[0];
    let warm_up = FutureRecord::to(&first.topic)
        .key(&first.key)
        .payload(&first.payload);
    send::acknowledged(send::enqueue(&producer, warm_up).await?)
        .await
        .context("raw producer warm-up failed")?;
    let mut every = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rate)));
    let total = args.latency_seconds * u64::from(args.rate);
    let mut waiting = tokio::task::JoinSet::new();
    for n in 0..total {
        every.tick().await;
        let r = &records[n as usize % records.len()];
        let record = FutureRecord::to(&r.topic)
            .key(&r.key)
            .payload(&r.payload)
            .headers(headers::to_kafka(&r.headers));
        let sent = Instant::now();
        let delivery = send::enqueue(&producer, record)
            .await
            .context("raw producer refused a record")?;
        waiting.spawn(async move {
            send::acknowledged(delivery).await.ok()?;
            Some(sent.elapsed().as_secs_f64() * 1000.0)
        });
    }
    let mut latencies = Vec::with_capacity(total as usize);
    while let Some(latency) = waiting.join_next().await {
        latencies.push(latency?.context("raw producer delivery failed")?);
    }
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

struct RelayFigures {
    drain: Duration,
    drain_rate: f64,
    latencies: Vec<f64>,
}

/// Fills the outbox with `records`, times the relay draining it, then writes single-record transactions at
/// `args.rate` per second and measures each one's commit-to-acknowledged time.
async fn relay_drain_and_latency(
    pool: &sqlx::PgPool,
    kafka: &KafkaConfig,
    records: &[OutboxRecord],
    args: &OutboxBenchArgs,
) -> anyhow::Result<RelayFigures> {
    eprintln!(
        "bench outbox: filling the outbox with {} records",
        records.len()
    );
    for chunk in records.chunks(5000) {
        let mut tx = pool.begin().await?;
        enqueue(&mut tx, chunk).await?;
        tx.commit().await?;
    }
    let config = RelayConfig {
        producer: args.producer(),
        ..RelayConfig::default()
    };
    let mut relay = Relay::new(pool.clone(), kafka, config)?;
    let mut acks = relay.observe_acks();
    let shutdown = CancellationToken::new();
    eprintln!("bench outbox: relay draining the backlog");
    let started = Instant::now();
    let relay_task = tokio::spawn(relay.run(shutdown.clone()));
    let mut drained = 0;
    while drained < records.len() {
        let ack = tokio::time::timeout(Duration::from_secs(60), acks.recv())
            .await
            .with_context(|| format!("relay stalled after {drained} of {} records", records.len()))?
            .context("relay stopped")?;
        let _: Acked = ack;
        drained += ack.ids.len();
    }
    let drain = started.elapsed();

    eprintln!(
        "bench outbox: latency at {} events/s for {} s",
        args.rate, args.latency_seconds
    );
    let committed: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let writers = 10u32.min(args.rate);
    let per_writer = Duration::from_secs_f64(f64::from(writers) / f64::from(args.rate));
    let ticks = args.latency_seconds * u64::from(args.rate) / u64::from(writers);
    let (errors_tx, mut errors_rx) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let (pool, committed, errors) = (pool.clone(), Arc::clone(&committed), errors_tx.clone());
        let record = records[writer as usize % records.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut every = tokio::time::interval(per_writer);
            for _ in 0..ticks {
                every.tick().await;
                let written = async {
                    let mut tx = pool.begin().await?;
                    let ids = enqueue(&mut tx, std::slice::from_ref(&record)).await?;
                    tx.commit().await?;
                    anyhow::Ok(ids[0])
                }
                .await;
                match written {
                    Ok(id) => {
                        committed.lock().await.insert(id, Instant::now());
                    }
                    Err(e) => {
                        errors.send(e).ok();
                    }
                }
            }
        }));
    }
    drop(errors_tx);
    let expected = ticks as usize * writers as usize;
    let mut acked_at = HashMap::with_capacity(expected);
    let deadline = Instant::now() + Duration::from_secs(args.latency_seconds + 60);
    while acked_at.len() < expected && Instant::now() < deadline {
        if let Ok(Some(ack)) = tokio::time::timeout(Duration::from_millis(500), acks.recv()).await {
            acked_at.extend(ack.ids.into_iter().map(|id| (id, ack.at)));
        }
    }
    for task in tasks {
        task.await?;
    }
    if let Ok(e) = errors_rx.try_recv() {
        return Err(e.context("a latency-phase write failed"));
    }
    shutdown.cancel();
    relay_task.await??;
    ensure!(
        acked_at.len() == expected,
        "only {} of {expected} latency-phase records were acknowledged",
        acked_at.len()
    );

    let committed = committed.lock().await;
    let mut latencies: Vec<f64> = acked_at
        .iter()
        .filter_map(|(id, acked)| {
            // The acknowledgement can be seen before the writer noted its commit time: that is zero latency.
            let commit = committed.get(id)?;
            Some(acked.saturating_duration_since(*commit).as_secs_f64() * 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    Ok(RelayFigures {
        drain,
        drain_rate: records.len() as f64 / drain.as_secs_f64(),
        latencies,
    })
}

/// The `q` quantile (0 to 1) of sorted `values`, by nearest rank; 0 for none.
pub(crate) fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_by_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.5), 50.0);
        assert_eq!(percentile(&values, 0.99), 99.0);
        assert_eq!(percentile(&values, 1.0), 100.0);
        assert_eq!(percentile(&[7.0], 0.5), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
