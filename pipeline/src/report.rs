//! Waiting for every saga of a run to end, and what the demo reports and checks afterwards.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use sqlx::PgPool;
use uuid::Uuid;

use crate::workload::{Placed, bar_style};

/// Waits until every order of `placed` has an ended saga and a final order status, or `timeout` passes.
/// The progress bar counts finished orders. Returns how many are still open.
///
/// # Errors
/// Database errors.
pub async fn wait_until_ended(
    pool: &PgPool,
    placed: &Placed,
    timeout: Duration,
    progress: &ProgressBar,
    mut alive: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<i64> {
    let ids = ids(placed);
    progress.set_length(ids.len() as u64);
    progress.set_position(0);
    progress.set_style(bar_style("waiting for sagas"));
    let deadline = Instant::now() + timeout;
    loop {
        alive()?;
        let finished: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM orders_view o JOIN sagas s USING (order_id)
             WHERE o.order_id = ANY($1) AND s.ended_at IS NOT NULL AND o.status <> 'placed'",
        )
        .bind(&ids)
        .fetch_one(pool)
        .await?;
        progress.set_position(u64::try_from(finished).unwrap_or(0));
        let open = i64::try_from(ids.len()).unwrap_or(i64::MAX) - finished;
        if open == 0 || Instant::now() >= deadline {
            progress.finish();
            return Ok(open);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn ids(placed: &Placed) -> Vec<Uuid> {
    placed.order_ids.iter().map(|id| id.as_uuid()).collect()
}

/// One check of the report.
#[derive(Clone, Debug)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
}

/// The figures and checks of a run.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub orders_by_state: BTreeMap<String, i64>,
    pub cancel_reasons: BTreeMap<String, i64>,
    pub saga_outcomes: BTreeMap<String, i64>,
    pub compensations: i64,
    pub duplicates_suppressed: u64,
    /// Order placed to saga ended, in seconds, over ended sagas.
    pub latency_p50: f64,
    pub latency_p99: f64,
    /// Orders ended per second, from the first placement to the last end.
    pub throughput: f64,
    /// What `reconcile --apply` found and repaired at the end of the run, when the run repairs.
    pub reconciliation: Option<Reconciliation>,
    pub checks: Vec<Check>,
}

/// What the end-of-run `reconcile --apply` found and did.
#[derive(Clone, Debug, Default)]
pub struct Reconciliation {
    pub found: ops::reconcile::Summary,
    pub repairs: ops::reconcile::Repairs,
}

impl Report {
    /// Whether every check passed.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    /// Gathers the figures and runs the checks over the orders of `placed`; `flash_sku` had
    /// `flash_units` in stock. With `repairer`, finance's reconciliation over the run repairs what it finds
    /// (`reconcile --apply`), and a second one must find nothing; without, the one run must find nothing.
    ///
    /// # Errors
    /// Database errors.
    pub async fn gather(
        pool: &PgPool,
        placed: &Placed,
        flash_sku: &str,
        flash_units: u32,
        repairer: Option<&ops::reconcile::Repairer>,
    ) -> anyhow::Result<Self> {
        let ids = ids(placed);
        let mut report = Self {
            duplicates_suppressed: placed.duplicates_suppressed,
            ..Self::default()
        };
        report.orders_by_state = counts(
            pool,
            "SELECT status, count(*) FROM orders_view WHERE order_id = ANY($1) GROUP BY status",
            &ids,
        )
        .await?;
        report.cancel_reasons = counts(
            pool,
            "SELECT coalesce(cancel_reason, '?'), count(*) FROM orders_view
             WHERE order_id = ANY($1) AND status = 'cancelled' GROUP BY 1",
            &ids,
        )
        .await?;
        report.saga_outcomes = counts(
            pool,
            "SELECT coalesce(outcome, 'open'), count(*) FROM sagas WHERE order_id = ANY($1) GROUP BY 1",
            &ids,
        )
        .await?;
        report.compensations = report
            .saga_outcomes
            .get("compensated")
            .copied()
            .unwrap_or(0);
        let (p50, p99, throughput): (Option<f64>, Option<f64>, Option<f64>) = sqlx::query_as(
            "WITH l AS (
                 SELECT extract(epoch FROM s.ended_at - o.placed_at)::float8 AS seconds, o.placed_at, s.ended_at
                 FROM sagas s JOIN orders_view o USING (order_id)
                 WHERE s.order_id = ANY($1) AND s.ended_at IS NOT NULL)
             SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds),
                    percentile_cont(0.99) WITHIN GROUP (ORDER BY seconds),
                    count(*) / nullif(extract(epoch FROM max(ended_at) - min(placed_at))::float8, 0)
             FROM l",
        )
        .bind(&ids)
        .fetch_one(pool)
        .await?;
        report.latency_p50 = p50.unwrap_or(0.0);
        report.latency_p99 = p99.unwrap_or(0.0);
        report.throughput = throughput.unwrap_or(0.0);
        report.checks = checks(pool, &ids, flash_sku, flash_units, &report).await?;
        let window = run_window(pool, &ids).await?;
        if let (Some(window), Some(repairer)) = (window, repairer) {
            let applied = reconcile(pool, window, ops::reconcile::Mode::Apply(repairer)).await?;
            report.reconciliation = Some(Reconciliation {
                found: applied.summary,
                repairs: applied.repairs.unwrap_or_default(),
            });
        }
        if let Some(window) = window {
            let found = reconcile(pool, window, ops::reconcile::Mode::DryRun)
                .await?
                .summary;
            let name = if repairer.is_some() {
                "a second reconciliation, after the repairs, finds no difference"
            } else {
                "reconciliation finds no difference"
            };
            report.checks.push(Check {
                name,
                passed: found.total() == 0,
                detail: describe(&found),
            });
        }
        Ok(report)
    }

    /// The summary, for people.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        let list = |map: &BTreeMap<String, i64>| {
            map.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            out,
            "orders by final state: {}",
            list(&self.orders_by_state)
        );
        let _ = writeln!(out, "cancelled because:     {}", list(&self.cancel_reasons));
        let _ = writeln!(out, "sagas:                 {}", list(&self.saga_outcomes));
        let _ = writeln!(out, "compensations:         {}", self.compensations);
        let _ = writeln!(
            out,
            "duplicates suppressed: {} double submits",
            self.duplicates_suppressed
        );
        let _ = writeln!(
            out,
            "end-to-end latency:    p50 {:.0} ms, p99 {:.0} ms (order placed to saga ended)",
            self.latency_p50 * 1000.0,
            self.latency_p99 * 1000.0
        );
        let _ = writeln!(
            out,
            "throughput:            {:.1} orders/s ended",
            self.throughput
        );
        if let Some(reconciliation) = &self.reconciliation {
            let repairs = &reconciliation.repairs;
            let _ = writeln!(
                out,
                "reconciliation:        found {}; repaired {} (captures recorded {}, refunds {}, voids {}, \
                 notifications sent again {}); {} need attention",
                describe(&reconciliation.found),
                repairs.repaired(),
                repairs.recorded_captures,
                repairs.refunds,
                repairs.voids,
                repairs.resent_notifications,
                repairs.needs_attention
            );
        }
        for check in &self.checks {
            let mark = if check.passed { "ok  " } else { "FAIL" };
            let _ = writeln!(out, "check {mark} {}: {}", check.name, check.detail);
        }
        out
    }
}

async fn counts(
    pool: &PgPool,
    query: &'static str,
    ids: &[Uuid],
) -> anyhow::Result<BTreeMap<String, i64>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(query).bind(ids).fetch_all(pool).await?;
    Ok(rows.into_iter().collect())
}

async fn count(pool: &PgPool, query: &'static str, ids: &[Uuid]) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(query).bind(ids).fetch_one(pool).await?)
}

async fn checks(
    pool: &PgPool,
    ids: &[Uuid],
    flash_sku: &str,
    flash_units: u32,
    report: &Report,
) -> anyhow::Result<Vec<Check>> {
    let mut checks = Vec::new();
    let mut check = |name, passed, detail: String| {
        checks.push(Check {
            name,
            passed,
            detail,
        })
    };

    let open = report.saga_outcomes.get("open").copied().unwrap_or(0);
    let missing =
        i64::try_from(ids.len()).unwrap_or(i64::MAX) - report.saga_outcomes.values().sum::<i64>();
    check(
        "every saga ended",
        open == 0 && missing == 0,
        format!("{open} still open, {missing} never started"),
    );
    let escalated = report
        .saga_outcomes
        .get("needs_attention")
        .copied()
        .unwrap_or(0);
    check(
        "no saga needs attention",
        escalated == 0,
        format!("{escalated} escalated"),
    );

    let oversold: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT sku FROM stock_buckets GROUP BY sku HAVING sum(reserved) > sum(on_hand)) o",
    )
    .fetch_one(pool)
    .await?;
    let flash_sold: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(quantity), 0)::bigint FROM stock_reservations
         WHERE sku = $1 AND status IN ('reserved', 'committed')",
    )
    .bind(flash_sku)
    .fetch_one(pool)
    .await?;
    check(
        "no oversell",
        oversold == 0 && flash_sold <= i64::from(flash_units),
        format!(
            "{flash_sold} of {flash_units} flash-sale units sold; {oversold} SKUs over their stock"
        ),
    );

    let completed_unpaid = count(
        pool,
        "SELECT count(*) FROM orders_view o LEFT JOIN payments p USING (order_id)
         WHERE o.order_id = ANY($1) AND o.status = 'completed'
           AND (p.order_id IS NULL OR p.captured_minor - p.refunded_minor <> o.total_minor)",
        ids,
    )
    .await?;
    let completed_unshipped = count(
        pool,
        "SELECT count(*) FROM orders_view o
         WHERE o.order_id = ANY($1) AND o.status = 'completed'
           AND NOT EXISTS (SELECT 1 FROM stock_orders s WHERE s.order_id = o.order_id AND s.status = 'committed')",
        ids,
    )
    .await?;
    check(
        "completed orders are paid and shipped",
        completed_unpaid == 0 && completed_unshipped == 0,
        format!(
            "{completed_unpaid} without captured money, {completed_unshipped} without committed stock"
        ),
    );
    let cancelled_charged = count(
        pool,
        "SELECT count(*) FROM orders_view o JOIN payments p USING (order_id)
         WHERE o.order_id = ANY($1) AND o.status = 'cancelled' AND p.captured_minor - p.refunded_minor <> 0",
        ids,
    )
    .await?;
    let cancelled_holding = count(
        pool,
        "SELECT count(*) FROM orders_view o JOIN stock_orders s USING (order_id)
         WHERE o.order_id = ANY($1) AND o.status = 'cancelled' AND s.status IN ('reserved', 'committed')",
        ids,
    )
    .await?;
    check(
        "cancelled orders hold no money and no stock",
        cancelled_charged == 0 && cancelled_holding == 0,
        format!("{cancelled_charged} still charged, {cancelled_holding} still holding stock"),
    );
    let disagree = count(
        pool,
        "SELECT count(*) FROM orders_view o JOIN sagas s USING (order_id)
         WHERE o.order_id = ANY($1) AND NOT (
             (s.outcome = 'completed' AND o.status = 'completed')
             OR (s.outcome = 'compensated' AND o.status = 'cancelled'))",
        ids,
    )
    .await?;
    check(
        "order states agree with their sagas",
        disagree == 0,
        format!("{disagree} orders whose state differs from their saga's outcome"),
    );
    Ok(checks)
}

/// The run's time, a minute either side (as finance would pick it); `None` when no order was placed.
async fn run_window(pool: &PgPool, ids: &[Uuid]) -> anyhow::Result<Option<ops::reconcile::Window>> {
    let first: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT min(placed_at) FROM orders_view WHERE order_id = ANY($1)")
            .bind(ids)
            .fetch_one(pool)
            .await?;
    let minute = chrono::Duration::minutes(1);
    first
        .map(|first| ops::reconcile::Window::new(first - minute, chrono::Utc::now() + minute))
        .transpose()
        .map_err(anyhow::Error::msg)
}

/// Finance's reconciliation over `window`, as `orderflow reconcile` runs it (the run is in its history).
async fn reconcile(
    pool: &PgPool,
    window: ops::reconcile::Window,
    mode: ops::reconcile::Mode<'_>,
) -> anyhow::Result<ops::reconcile::Report> {
    let progress = ProgressBar::hidden();
    Ok(ops::reconcile::reconcile(pool, window, "demo", mode, &progress).await?)
}

/// "0 differences", or each class found with its count and amounts.
fn describe(found: &ops::reconcile::Summary) -> String {
    let classes: Vec<String> = found
        .classes
        .iter()
        .filter(|(_, class)| class.count > 0)
        .map(|(name, class)| {
            let amounts: Vec<String> = class
                .amounts
                .iter()
                .map(|(currency, minor)| format!("{minor} {currency}"))
                .collect();
            format!("{} {name} ({})", class.count, amounts.join(", "))
        })
        .collect();
    if classes.is_empty() {
        "0 differences".into()
    } else {
        classes.join("; ")
    }
}
