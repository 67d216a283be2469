//! `orderflow bench pipeline`: orders per second completed end to end, beside the Postgres commit ceiling
//! measured on the same pool in the same run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::ensure;
use indicatif::ProgressBar;
use pipeline::report::{Report, wait_until_ended};
use pipeline::workload::Workload;
use pipeline::{Pipeline, PipelineConfig};
use producers::KafkaConfig;
use producers::topics::Topics;
use tokio::sync::Semaphore;

#[derive(Debug, clap::Args)]
pub struct PipelineBenchArgs {
    /// Orders placed; every one can complete (no declines, no failures, stock for all).
    #[arg(long, default_value_t = 2000)]
    orders: usize,
    /// Order submissions in flight at once, and writers of the commit-ceiling phase.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Single-row insert transactions of the commit-ceiling phase.
    #[arg(long, default_value_t = 20_000)]
    ceiling_commits: usize,
    /// Most records of one partition a consumer applies in one transaction (1: each on its own, as before
    /// batching).
    #[arg(long, default_value_t = consumers::ConsumerConfig::new("", Vec::new()).max_batch)]
    consumer_batch: usize,
    /// Postgres connections of the pipeline's pool.
    #[arg(long, default_value_t = 60)]
    connections: u32,
    /// Give up waiting for the sagas after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout_secs: u64,
    /// Open loop: place orders through the HTTP API at this many per second (the next request never waits
    /// for the last) instead of --orders all at once, and report orders completed per second,
    /// place-to-final latency p50/p99/p99.9 and HTTP accept latency p99.
    #[arg(long, value_parser = parse_rate)]
    rate: Option<f64>,
    /// Seconds each open-loop rate is held.
    #[arg(long, default_value_t = 60, requires = "rate")]
    duration_secs: u64,
    /// Open loop: step the rate up from --rate by half each time until a step is not held (p99 over 1 s,
    /// orders shed or left open, or the sender fell behind), and report the highest rate held.
    #[arg(long, requires = "rate")]
    find_max: bool,
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate.is_finite() => Ok(rate),
        _ => Err(format!(
            "{text:?} is not a rate above zero (orders per second)"
        )),
    }
}

pub async fn run(
    db_settings: &db::DbConfig,
    kafka: &KafkaConfig,
    args: &PipelineBenchArgs,
) -> anyhow::Result<()> {
    ensure!(
        args.orders > 0 && args.concurrency > 0,
        "orders and concurrency must be above zero"
    );
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let db_name = format!("orderflow_bench_{run_id}");
    let url = db::create_database(&db_settings.url, &db_name).await?;
    let result = async {
        let pool = db::connect(&db::DbConfig {
            max_connections: args.connections,
            acquire_timeout: Duration::from_secs(120),
            ..db::DbConfig::from_url(&url)
        })
        .await?;
        db::migrate(&pool).await?;
        let ceiling = commit_ceiling(&pool, args).await?;
        println!(
            "postgres ceiling:  {} single-row insert transactions from {} writers: {ceiling:.0} commits/s",
            args.ceiling_commits, args.concurrency
        );

        let mut workload = Workload::happy(args.orders);
        workload.concurrency = args.concurrency;
        let mut config = bench_config(kafka, &workload.run_id);
        config.services.consumer.max_batch = args.consumer_batch.max(1);
        if args.rate.is_some() {
            config.http = Some(pipeline::HttpConfig {
                listen: "127.0.0.1:0".parse()?,
                api: api::ApiConfig::default(),
            });
        }
        let pipeline = Pipeline::start(pool.clone(), config).await?;
        let outcome = match args.rate {
            Some(rate) => open_loop(&pipeline, &workload.run_id, rate, args, ceiling).await,
            None => closed_loop(&pipeline, &pool, &workload, args, ceiling).await,
        };
        pipeline.stop().await?;
        outcome?;
        pool.close().await;
        anyhow::Ok(())
    }
    .await;
    db::drop_database(&db_settings.url, &db_name).await.ok();
    result
}

/// A pipeline that completes every order at once: no declines, timeouts or failures, no delays.
fn bench_config(kafka: &KafkaConfig, run_id: &str) -> PipelineConfig {
    let mut config = PipelineConfig::new(kafka.clone());
    config.services.topics = Topics::with_prefix(format!("bench-{run_id}."));
    config.services.group_prefix = format!("bench-{run_id}-");
    config.provider.decline_rate = 0.0;
    config.provider.timeout_rate = 0.0;
    config.provider.duplicate_notification_rate = 0.0;
    config.provider.latency = Duration::ZERO;
    config.services.carrier.failure_rate = 0.0;
    config.services.carrier.dispatch_delay = Duration::ZERO;
    config.services.carrier.delivery_delay = Duration::ZERO;
    config
}

/// `--orders` placed at once (`--concurrency` in flight), through the library.
async fn closed_loop(
    pipeline: &Pipeline,
    pool: &sqlx::PgPool,
    workload: &Workload,
    args: &PipelineBenchArgs,
    ceiling: f64,
) -> anyhow::Result<()> {
    let shared = pipeline.shared();
    workload.stock(shared).await?;
    let commits_before = commits(pool).await?;
    let progress = ProgressBar::new(0);
    let placed = workload.place(shared, &progress).await?;
    let timeout = Duration::from_secs(args.timeout_secs);
    let open = wait_until_ended(pool, &placed, timeout, &progress, || pipeline.check()).await?;
    let commits_after = commits(pool).await?;
    ensure!(
        open == 0,
        "{open} orders still open after {} s",
        args.timeout_secs
    );
    let report = Report::gather(pool, &placed, &workload.flash_sku(), 0, None).await?;
    ensure!(
        report.passed(),
        "a consistency check failed:\n{}",
        report.render()
    );
    let commits_per_order = (commits_after - commits_before) as f64 / args.orders as f64;
    println!(
        "pipeline:          {} orders completed end to end: {:.1} orders/s, latency p50 {:.0} ms, p99 {:.0} ms",
        args.orders,
        report.throughput,
        report.latency_p50 * 1000.0,
        report.latency_p99 * 1000.0
    );
    println!(
        "commits per order: {commits_per_order:.1} (pg_stat_database, every part's transactions)"
    );
    println!(
        "ratio (orders/s x commits per order / commit ceiling): {:.2}",
        report.throughput * commits_per_order / ceiling
    );
    Ok(())
}

/// Orders through the HTTP API at `rate` (stepping up with `--find-max`).
async fn open_loop(
    pipeline: &Pipeline,
    run_id: &str,
    rate: f64,
    args: &PipelineBenchArgs,
    ceiling: f64,
) -> anyhow::Result<()> {
    let skus = crate::bench_open_loop::stock(pipeline, run_id).await?;
    // Warm up: consumer groups join and every path runs once before anything is measured.
    let warm_up =
        crate::bench_open_loop::step(pipeline, &skus, 10.0, Duration::from_secs(2)).await?;
    ensure!(
        warm_up.open == 0,
        "the warm-up orders did not end: {}",
        warm_up.render()
    );
    let duration = Duration::from_secs(args.duration_secs);
    let mut rate = rate;
    let mut best: Option<crate::bench_open_loop::Step> = None;
    loop {
        eprintln!(
            "bench pipeline: {rate:.0} orders/s for {} s",
            args.duration_secs
        );
        let step = crate::bench_open_loop::step(pipeline, &skus, rate, duration).await?;
        println!("{}", step.render());
        let held = step.held();
        let last = step.commits_per_second;
        if held {
            best = Some(step);
        }
        if !args.find_max || !held {
            if args.find_max {
                match &best {
                    Some(best) => println!("highest rate held: {:.0} orders/s", best.rate),
                    None => println!(
                        "highest rate held: none (the first step, {rate:.0} orders/s, was not)"
                    ),
                }
            }
            let used = best.as_ref().map_or(last, |b| b.commits_per_second);
            println!(
                "ratio (commits/s used / commit ceiling): {:.2}",
                used / ceiling
            );
            return Ok(());
        }
        rate *= 1.5;
    }
}

/// Single-row insert transactions per second from `concurrency` writers on `pool`.
async fn commit_ceiling(pool: &sqlx::PgPool, args: &PipelineBenchArgs) -> anyhow::Result<f64> {
    sqlx::query("CREATE TABLE bench_commits (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())")
        .execute(pool)
        .await?;
    let limit = Arc::new(Semaphore::new(args.concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    for _ in 0..args.ceiling_commits {
        let permit = limit.clone().acquire_owned().await?;
        let pool = pool.clone();
        tasks.spawn(async move {
            let _permit = permit;
            // Autocommit: one statement is one transaction.
            sqlx::query("INSERT INTO bench_commits DEFAULT VALUES")
                .execute(&pool)
                .await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(args.ceiling_commits as f64 / started.elapsed().as_secs_f64())
}

/// Transactions committed in the current database so far (statistics lag by up to a few hundred ms).
pub(crate) async fn commits(pool: &sqlx::PgPool) -> anyhow::Result<i64> {
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(pool)
        .await?;
    Ok(sqlx::query_scalar(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await?)
}
