//! `orderflow bench reconcile`: statement lines matched per second by `orderflow reconcile`, beside one SQL
//! full outer join of the same two tables in the same run.

use std::time::Instant;

use anyhow::ensure;
use chrono::{Duration, Utc};
use ops::reconcile::{self, Class, Window};

#[derive(Debug, clap::Args)]
pub struct ReconcileBenchArgs {
    /// Statement lines (and as many of ours, matched by reference) in the window.
    #[arg(long, default_value_t = 1_000_000,
        value_parser = clap::value_parser!(u64).range(1..=50_000_000))]
    rows: u64,
}

/// The provider's lines: `$1` captures in the hour after `$2`.
const STATEMENT: &str = "
    INSERT INTO provider_ledger (order_id, operation, amount_minor, currency, provider_ref, created_at)
    SELECT gen_random_uuid(), 'capture', 1000 + n % 500, 'EUR', 'psp-bench-' || n,
           $2 + make_interval(secs => n % 3600)
    FROM generate_series(1, $1) AS n";

/// Ours: every thousandth line missing, another thousandth with another amount, and one in a thousand
/// that the provider does not have, so that every reference class finds work.
const OURS: &str = "
    INSERT INTO payment_operations (provider_ref, order_id, operation, amount_minor, currency, recorded_at)
    SELECT provider_ref, order_id, operation,
           CASE WHEN substr(provider_ref, 11)::bigint % 1000 = 7 THEN amount_minor + 1 ELSE amount_minor END,
           currency, created_at
    FROM provider_ledger WHERE substr(provider_ref, 11)::bigint % 1000 <> 3
    UNION ALL
    SELECT 'psp-ours-only-' || provider_ref, order_id, 'refund', 10, currency, created_at
    FROM provider_ledger WHERE substr(provider_ref, 11)::bigint % 1000 = 5";

/// The baseline: the reference-level differences in one statement.
const FULL_OUTER_JOIN: &str = "
    SELECT count(*) FILTER (WHERE o.provider_ref IS NULL),
           count(*) FILTER (WHERE p.provider_ref IS NULL),
           count(*) FILTER (WHERE p.provider_ref IS NOT NULL AND o.provider_ref IS NOT NULL
                             AND (p.amount_minor, p.currency) IS DISTINCT FROM (o.amount_minor, o.currency))
    FROM (SELECT * FROM provider_ledger WHERE created_at >= $1 AND created_at < $2) p
    FULL OUTER JOIN (SELECT * FROM payment_operations WHERE recorded_at >= $1 AND recorded_at < $2) o
      ON o.provider_ref = p.provider_ref";

pub async fn run(db_settings: &db::DbConfig, args: &ReconcileBenchArgs) -> anyhow::Result<()> {
    let db_name = format!("orderflow_bench_{}", uuid::Uuid::now_v7().simple());
    let url = db::create_database(&db_settings.url, &db_name).await?;
    let result = async {
        let pool = db::connect(&db::DbConfig::from_url(&url)).await?;
        db::migrate(&pool).await?;
        let window = Window::new(Utc::now() - Duration::hours(2), Utc::now())
            .map_err(anyhow::Error::msg)?;
        eprintln!("bench reconcile: writing {} statement lines and ours", args.rows);
        sqlx::query(STATEMENT)
            .bind(i64::try_from(args.rows)?)
            .bind(window.from)
            .execute(&pool)
            .await?;
        sqlx::query(OURS).execute(&pool).await?;
        sqlx::raw_sql("ANALYZE provider_ledger; ANALYZE payment_operations")
            .execute(&pool)
            .await?;

        eprintln!("bench reconcile: the baseline, one full outer join");
        let started = Instant::now();
        let (missing_ours, missing_theirs, mismatched): (i64, i64, i64) =
            sqlx::query_as(FULL_OUTER_JOIN)
                .bind(window.from)
                .bind(window.to)
                .fetch_one(&pool)
                .await?;
        let join = started.elapsed();

        eprintln!("bench reconcile: orderflow reconcile");
        let started = Instant::now();
        let report = reconcile::reconcile(
            &pool,
            window,
            "bench",
            reconcile::Mode::DryRun,
            &indicatif::ProgressBar::hidden(),
        )
        .await?;
        let ours = started.elapsed();
        let count = |class| report.differences.iter().filter(|d| d.class == class).count() as i64;
        ensure!(
            (count(Class::CapturedNotRecorded), count(Class::RecordedNotAtProvider), count(Class::AmountMismatch))
                == (missing_ours, missing_theirs, mismatched),
            "reconcile and the join disagree: {:?} against {:?}",
            report.summary,
            (missing_ours, missing_theirs, mismatched)
        );
        pool.close().await;
        let rows = args.rows as f64;
        let (ours_rate, join_rate) = (rows / ours.as_secs_f64(), rows / join.as_secs_f64());
        println!(
            "differences:   {missing_ours} not recorded, {missing_theirs} not at the provider, {mismatched} amounts differ (both agree)"
        );
        println!("full outer join: {} lines in {:.2} s = {join_rate:.0} lines/s", args.rows, join.as_secs_f64());
        println!("reconcile:       {} lines in {:.2} s = {ours_rate:.0} lines/s", args.rows, ours.as_secs_f64());
        println!("ratio (reconcile / full outer join): {:.2}", ours_rate / join_rate);
        anyhow::Ok(())
    }
    .await;
    db::drop_database(&db_settings.url, &db_name).await.ok();
    result
}
