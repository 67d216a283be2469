//! `orderflow bench replication`: at a steady rate of orders placed in east, how long until each is visible
//! in west's `orders_global` (commit in east, relay, MirrorMaker 2, west's global view), beside the same in
//! east's own `orders_global` (commit, relay, the local global view: the path without replication),
//! measured in the same run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use chrono::{DateTime, Utc};
use pipeline::{Part, Pipeline, PipelineConfig, RegistrySetting};
use producers::KafkaConfig;
use producers::topics::Topics;
use services::orders::{LineInput, PlaceOrder, place_order};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, clap::Args)]
pub struct ReplicationBenchArgs {
    /// Orders placed in east per second.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=20_000))]
    rate: u32,
    /// How long orders are placed, in seconds.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3600))]
    seconds: u64,
    /// Partitions of the orders events topic.
    #[arg(long, default_value_t = 3)]
    partitions: i32,
    /// Region west's cluster (region east's is --kafka-bootstrap). MirrorMaker 2 must replicate east's
    /// xr-* events into it, as `./dev up` runs it.
    #[arg(long, env = "KAFKA_BOOTSTRAP_WEST", default_value = "127.0.0.1:9094")]
    west_bootstrap: String,
}

pub async fn run(
    db_settings: &db::DbConfig,
    east: &KafkaConfig,
    args: &ReplicationBenchArgs,
) -> anyhow::Result<()> {
    let id = Uuid::now_v7().simple().to_string();
    let names = [
        format!("orderflow_bench_{id}_east"),
        format!("orderflow_bench_{id}_west"),
    ];
    let mut west = KafkaConfig::new(&args.west_bootstrap);
    west.properties.clone_from(&east.properties);
    let mut urls = Vec::new();
    for name in &names {
        urls.push(db::create_database(&db_settings.url, name).await?);
    }
    let result = measure(east, &west, &urls, &id, args).await;
    for name in &names {
        db::drop_database(&db_settings.url, name).await.ok();
    }
    result
}

async fn measure(
    east: &KafkaConfig,
    west: &KafkaConfig,
    urls: &[String],
    id: &str,
    args: &ReplicationBenchArgs,
) -> anyhow::Result<()> {
    // The orders are placed on this pool, up to 80 at once.
    let settings = |url: &String| db::DbConfig {
        max_connections: 80,
        ..db::DbConfig::from_url(url)
    };
    let east_pool = db::connect(&settings(&urls[0])).await?;
    let west_pool = db::connect(&settings(&urls[1])).await?;
    db::migrate(&east_pool).await?;
    let registry = schemas::registry::LocalRegistry::start(east_pool.clone()).await?;
    // xr-*: the prefix MirrorMaker 2 replicates (env/mm2/mm2.properties).
    let prefix = format!("xr-bench-{id}.");
    let region = |kafka: &KafkaConfig, name: &str, other: &str, url: &String| {
        let mut config = PipelineConfig::new(kafka.clone());
        // Each part on a pool of its own, as they run in production: the orders placed here must not
        // starve the parts that carry them of connections.
        config.roles = Some(
            db::RoleConfig::new(db::DbConfig::from_url(url))
                .with_limits(8, Duration::from_secs(60)),
        );
        config.registry = RegistrySetting::Url(registry.url().to_owned());
        config.partitions = args.partitions;
        config.services.topics = Topics::with_prefix(prefix.clone());
        config.services.group_prefix.clone_from(&prefix);
        config.services.region = name.to_owned();
        config.services.remote_regions = vec![other.to_owned()];
        config
    };
    let in_east = Pipeline::start_parts(
        east_pool.clone(),
        region(east, "east", "west", &urls[0]),
        &[Part::Relay, Part::GlobalView],
    )
    .await?;
    let in_west = Pipeline::start_parts(
        west_pool.clone(),
        region(west, "west", "east", &urls[1]),
        &[Part::GlobalView],
    )
    .await?;
    let store = Arc::new(in_east.shared().store.clone());

    // MirrorMaker 2 finds the new topic within its refresh interval; the measurement starts after.
    eprintln!(
        "bench replication: waiting for MirrorMaker 2 to replicate {prefix}orders.events into west"
    );
    let warm = place(&store, 20, 200).await?;
    visible(&west_pool, &warm, Duration::from_secs(90))
        .await
        .context(
            "MirrorMaker 2 replicated nothing into west in 90 s: does it run (./dev status)?",
        )?;

    let total = usize::try_from(u64::from(args.rate) * args.seconds)?;
    eprintln!(
        "bench replication: {total} orders at {}/s into east",
        args.rate
    );
    let started = Instant::now();
    let placed = place(&store, total, args.rate).await?;
    let placing = started.elapsed();
    visible(&west_pool, &placed, Duration::from_secs(120)).await?;
    visible(&east_pool, &placed, Duration::from_secs(30)).await?;
    let west_lags = lags(&west_pool, &placed).await?;
    let east_lags = lags(&east_pool, &placed).await?;
    let (first, last) = arrivals(&west_pool, &placed).await?;
    in_west.stop().await?;
    in_east.stop().await?;
    registry.stop().await?;

    let p = |lags: &[f64], q| crate::bench::percentile(lags, q);
    println!(
        "placed {} orders in east in {:.1} s = {:.0}/s",
        placed.len(),
        placing.as_secs_f64(),
        placed.len() as f64 / placing.as_secs_f64()
    );
    println!(
        "east, its own orders_global (no replication): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        p(&east_lags, 0.5),
        p(&east_lags, 0.99),
        p(&east_lags, 1.0)
    );
    println!(
        "west, through MirrorMaker 2:                  p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        p(&west_lags, 0.5),
        p(&west_lags, 0.99),
        p(&west_lags, 1.0)
    );
    let span = (last - first).num_milliseconds().max(1) as f64 / 1000.0;
    println!(
        "replicated into west: {} orders between the first and the last arrival in {span:.1} s = {:.0}/s",
        placed.len(),
        placed.len() as f64 / span
    );
    println!(
        "target p99 under 2 s: {}",
        if p(&west_lags, 0.99) < 2000.0 {
            "met"
        } else {
            "missed"
        }
    );
    println!(
        "ratio (west p99 / east p99): {:.2}",
        p(&west_lags, 0.99) / p(&east_lags, 0.99).max(1.0)
    );
    Ok(())
}

/// Places `count` orders at `rate` per second (open loop: each at its time, whatever the ones before);
/// returns each order's id and when its commit returned.
async fn place(
    store: &Arc<outbox::EventStore<Arc<schemas::AvroCodec>>>,
    count: usize,
    rate: u32,
) -> anyhow::Result<Vec<(Uuid, DateTime<Utc>)>> {
    let started = tokio::time::Instant::now();
    let interval = Duration::from_secs(1) / rate;
    let mut tasks = Vec::with_capacity(count);
    for n in 0..count {
        tokio::time::sleep_until(started + interval * u32::try_from(n)?).await;
        let store = Arc::clone(store);
        tasks.push(tokio::spawn(async move {
            let order = PlaceOrder {
                idempotency_key: None,
                customer_id: domain::CustomerId::new(),
                lines: vec![LineInput::new("SKU-BENCH", 1, 1_999, "EUR")],
                delivery_address: None,
            };
            let placed = place_order(&store, order).await?;
            anyhow::Ok((placed.order_id.as_uuid(), Utc::now()))
        }));
    }
    let mut placed = Vec::with_capacity(count);
    for task in tasks {
        placed.push(task.await??);
    }
    Ok(placed)
}

/// Waits until every one of `placed` is in `pool`'s `orders_global`.
async fn visible(
    pool: &PgPool,
    placed: &[(Uuid, DateTime<Utc>)],
    timeout: Duration,
) -> anyhow::Result<()> {
    let ids: Vec<Uuid> = placed.iter().map(|(id, _)| *id).collect();
    let deadline = Instant::now() + timeout;
    loop {
        let (seen,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM orders_global WHERE order_id = ANY($1)")
                .bind(&ids)
                .fetch_one(pool)
                .await?;
        if seen == i64::try_from(ids.len())? {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "{seen} of {} orders visible after {timeout:?}",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Each order's time from its commit to its row in `pool`'s `orders_global`, in ms, sorted.
async fn lags(pool: &PgPool, placed: &[(Uuid, DateTime<Utc>)]) -> anyhow::Result<Vec<f64>> {
    let ids: Vec<Uuid> = placed.iter().map(|(id, _)| *id).collect();
    let seen: std::collections::HashMap<Uuid, DateTime<Utc>> =
        sqlx::query_as("SELECT order_id, seen_at FROM orders_global WHERE order_id = ANY($1)")
            .bind(&ids)
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect();
    let mut lags: Vec<f64> = placed
        .iter()
        .map(|(id, committed)| {
            (seen[id] - *committed).num_microseconds().unwrap_or(0) as f64 / 1000.0
        })
        .map(|ms| ms.max(0.0))
        .collect();
    lags.sort_by(f64::total_cmp);
    Ok(lags)
}

async fn arrivals(
    pool: &PgPool,
    placed: &[(Uuid, DateTime<Utc>)],
) -> anyhow::Result<(DateTime<Utc>, DateTime<Utc>)> {
    let ids: Vec<Uuid> = placed.iter().map(|(id, _)| *id).collect();
    Ok(sqlx::query_as(
        "SELECT min(seen_at), max(seen_at) FROM orders_global WHERE order_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_one(pool)
    .await?)
}
