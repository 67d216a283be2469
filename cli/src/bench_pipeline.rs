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
    /// Postgres connections of the pipeline's pool.
    #[arg(long, default_value_t = 60)]
    connections: u32,
    /// Give up waiting for the sagas after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout_secs: u64,
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
        let mut config = PipelineConfig::new(kafka.clone());
        config.services.topics = Topics::with_prefix(format!("bench-{}.", workload.run_id));
        config.services.group_prefix = format!("bench-{}-", workload.run_id);
        config.services.payments.provider.decline_rate = 0.0;
        config.services.payments.provider.timeout_rate = 0.0;
        config.services.payments.provider.duplicate_callback_rate = 0.0;
        config.services.payments.provider.latency = Duration::ZERO;
        config.services.carrier.failure_rate = 0.0;
        config.services.carrier.dispatch_delay = Duration::ZERO;
        config.services.carrier.delivery_delay = Duration::ZERO;
        let pipeline = Pipeline::start(pool.clone(), config).await?;
        let outcome = async {
            let shared = pipeline.shared();
            workload.stock(shared).await?;
            let commits_before = commits(&pool).await?;
            let progress = ProgressBar::new(0);
            let placed = workload.place(shared, &progress).await?;
            let open = wait_until_ended(&pool, &placed, Duration::from_secs(args.timeout_secs), &progress, || {
                pipeline.check()
            })
            .await?;
            let commits_after = commits(&pool).await?;
            ensure!(open == 0, "{open} orders still open after {} s", args.timeout_secs);
            let report = Report::gather(&pool, &placed, &workload.flash_sku(), 0).await?;
            ensure!(report.passed(), "a consistency check failed:\n{}", report.render());
            anyhow::Ok((report, (commits_after - commits_before) as f64 / args.orders as f64))
        }
        .await;
        pipeline.stop().await?;
        let (report, commits_per_order) = outcome?;
        println!(
            "pipeline:          {} orders completed end to end: {:.1} orders/s, latency p50 {:.0} ms, p99 {:.0} ms",
            args.orders,
            report.throughput,
            report.latency_p50 * 1000.0,
            report.latency_p99 * 1000.0
        );
        println!("commits per order: {commits_per_order:.1} (pg_stat_database, every part's transactions)");
        println!(
            "ratio (orders/s x commits per order / commit ceiling): {:.2}",
            report.throughput * commits_per_order / ceiling
        );
        pool.close().await;
        anyhow::Ok(())
    }
    .await;
    db::drop_database(&db_settings.url, &db_name).await.ok();
    result
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
async fn commits(pool: &sqlx::PgPool) -> anyhow::Result<i64> {
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(pool)
        .await?;
    Ok(sqlx::query_scalar(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await?)
}
