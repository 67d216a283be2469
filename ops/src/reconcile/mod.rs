//! Finance's reconciliation: the provider's statement against our payments, orders and notifications for a
//! window, each difference classified ([`Class`]) with the money at stake, and every run recorded for audit.
//!
//! This is the safety net behind the outbox and the notifier: whatever they missed (a provider that
//! charged and then timed out, a notification given up) shows here. Matching is by provider reference, in
//! the database; a line in the window is matched with the other side's line of any time, so movements
//! either side of midnight do not show as differences. [`apply`] repairs what it can through the provider and
//! the payments service ([`repair`] lists how), and leaves the rest to a person with the reason.

mod classify;
mod load;
pub mod repair;

use chrono::{DateTime, Days, NaiveTime, Utc};
use indicatif::ProgressBar;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

pub use classify::{
    Books, Class, ClassSummary, Difference, EndedOrder, GivenUp, Line, Pair, Summary, classify,
};
pub use load::load;
pub use repair::{Repairer, Repairs, apply};

/// The time range a run covers, `[from, to)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl Window {
    /// `[from, to)`, refused when it is empty or backwards.
    ///
    /// # Errors
    /// A message naming both ends.
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Self, String> {
        if from >= to {
            return Err(format!(
                "the window's start {from} is not before its end {to}"
            ));
        }
        Ok(Self { from, to })
    }

    /// The window an operator asks for: `[from, to)`, a day from `from` without `to`, or yesterday without
    /// either.
    ///
    /// # Errors
    /// A message for an end without a start, or a window that is empty or backwards.
    pub fn asked(
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Self, String> {
        match (from, to) {
            (None, None) => Ok(Self::yesterday(now)),
            (None, Some(to)) => Err(format!("the window's end {to} needs its start (from)")),
            (Some(from), to) => Self::new(
                from,
                to.unwrap_or_else(|| from.checked_add_days(Days::new(1)).unwrap_or(from)),
            ),
        }
    }

    /// Yesterday in UTC, midnight to midnight: finance's daily run.
    #[must_use]
    pub fn yesterday(now: DateTime<Utc>) -> Self {
        let today = now.date_naive().and_time(NaiveTime::MIN).and_utc();
        let yesterday = today.checked_sub_days(Days::new(1)).unwrap_or(today);
        Self {
            from: yesterday,
            to: today,
        }
    }
}

/// A window's end as operators write it: RFC 3339 (`2026-11-30T00:00:00Z`) or a UTC date (`2026-11-30`,
/// its midnight).
///
/// # Errors
/// A message naming the text and both forms.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|date| date.and_time(NaiveTime::MIN).and_utc())
        .map_err(|_| {
            format!("`{text}` is neither RFC 3339 (2026-11-30T00:00:00Z) nor a date (2026-11-30)")
        })
}

/// Whether a run only reports, or repairs too, and through what.
#[derive(Clone, Copy, Debug)]
pub enum Mode<'a> {
    DryRun,
    Apply(&'a Repairer),
}

impl Mode<'_> {
    /// The mode's name in `reconcile_runs`.
    const fn name(self) -> &'static str {
        match self {
            Self::DryRun => "dry_run",
            Self::Apply(_) => "apply",
        }
    }
}

/// What a run found, and with [`Mode::Apply`] what it did about it.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub run_id: Uuid,
    pub window: Window,
    pub summary: Summary,
    pub differences: Vec<Difference>,
    pub repairs: Option<Repairs>,
}

/// Finds the differences of `window`, repairs them in [`Mode::Apply`], and records the run, as `run_by`,
/// in `reconcile_runs`. `progress` shows the phase, and the repairs done of those to do.
///
/// # Errors
/// A database error; the run is then recorded as failed when the database still answers.
pub async fn reconcile(
    pool: &PgPool,
    window: Window,
    run_by: &str,
    mode: Mode<'_>,
    progress: &ProgressBar,
) -> Result<Report, sqlx::Error> {
    let run_id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO reconcile_runs (id, run_by, window_from, window_to, mode)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(run_id)
    .bind(run_by)
    .bind(window.from)
    .bind(window.to)
    .bind(mode.name())
    .execute(pool)
    .await?;
    let run = async {
        progress.set_message("reading both books");
        let differences = classify(&load(pool, &window).await?);
        let repairs = match mode {
            Mode::DryRun => None,
            Mode::Apply(repairer) => {
                progress.set_message("repairing");
                progress.set_length(differences.len() as u64);
                Some(apply(pool, repairer, run_id, &differences, progress).await?)
            }
        };
        Ok::<_, sqlx::Error>((differences, repairs))
    };
    let (differences, repairs) = match run.await {
        Ok(done) => done,
        Err(e) => {
            finish(pool, run_id, None, None, "failed").await.ok();
            return Err(e);
        }
    };
    let summary = Summary::of(&differences);
    for (class, found) in &summary.classes {
        metrics::gauge!("reconcile_differences", "class" => *class).set(found.count as f64);
        metrics::counter!("reconcile_differences_total", "class" => *class)
            .increment(found.count as u64);
    }
    progress.finish_and_clear();
    let outcome = if differences.is_empty() {
        "clean"
    } else {
        "differences"
    };
    finish(pool, run_id, Some(&summary), repairs.as_ref(), outcome).await?;
    Ok(Report {
        run_id,
        window,
        summary,
        differences,
        repairs,
    })
}

async fn finish(
    pool: &PgPool,
    run_id: Uuid,
    summary: Option<&Summary>,
    repairs: Option<&Repairs>,
    outcome: &str,
) -> Result<(), sqlx::Error> {
    let found = summary.map(|s| sqlx::types::Json(&s.classes));
    sqlx::query(
        "UPDATE reconcile_runs SET finished_at = clock_timestamp(), found = $2, repaired = $3, outcome = $4
         WHERE id = $1",
    )
    .bind(run_id)
    .bind(found)
    .bind(repairs.map(sqlx::types::Json))
    .bind(outcome)
    .execute(pool)
    .await?;
    Ok(())
}

/// A recorded run.
#[derive(Clone, Debug, sqlx::FromRow, Serialize)]
pub struct Run {
    pub id: Uuid,
    pub run_by: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub window_from: DateTime<Utc>,
    pub window_to: DateTime<Utc>,
    pub mode: String,
    pub found: Option<serde_json::Value>,
    pub repaired: Option<serde_json::Value>,
    pub outcome: Option<String>,
}

/// The latest runs, newest first.
///
/// # Errors
/// A database error.
pub async fn history(pool: &PgPool, limit: i64) -> Result<Vec<Run>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, run_by, started_at, finished_at, window_from, window_to, mode, found, repaired, outcome
         FROM reconcile_runs ORDER BY started_at DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// The report as a table per class (counts and amounts), then every difference.
#[must_use]
pub fn render_table(report: &Report) -> String {
    let mut out = format!(
        "reconciliation {} of {} to {}\n\n{:<30} {:>7}  amounts\n",
        report.run_id, report.window.from, report.window.to, "class", "count"
    );
    for (class, summary) in &report.summary.classes {
        let amounts: Vec<String> = summary
            .amounts
            .iter()
            .map(|(currency, minor)| format!("{minor} {currency}"))
            .collect();
        out.push_str(&format!(
            "{class:<30} {:>7}  {}\n",
            summary.count,
            amounts.join(", ")
        ));
    }
    if !report.differences.is_empty() {
        out.push('\n');
    }
    for d in &report.differences {
        out.push_str(&format!(
            "{}\t{}\t{}\t{} {}\t{}\n",
            d.class.name(),
            d.order_id.map(|o| o.to_string()).unwrap_or_default(),
            d.provider_ref.as_deref().unwrap_or(""),
            d.amount_minor,
            d.currency,
            d.detail
        ));
    }
    if let Some(repairs) = &report.repairs {
        out.push_str(&format!(
            "\nrepaired: {} captures recorded, {} refunds and {} voids asked of the provider, {} notifications \
             sent again; {} need attention; {} handled by an earlier run; {} failed (the next run tries again)\n",
            repairs.recorded_captures,
            repairs.refunds,
            repairs.voids,
            repairs.resent_notifications,
            repairs.needs_attention,
            repairs.handled_before,
            repairs.failed
        ));
    }
    out.push_str(&format!("\n{} differences\n", report.summary.total()));
    out
}

/// The differences as CSV with a header line, quoted where a field needs it.
#[must_use]
pub fn render_csv(report: &Report) -> String {
    let mut out = String::from("class,order_id,provider_ref,amount_minor,currency,detail\n");
    for d in &report.differences {
        let fields = [
            d.class.name().to_owned(),
            d.order_id.map(|o| o.to_string()).unwrap_or_default(),
            d.provider_ref.clone().unwrap_or_default(),
            d.amount_minor.to_string(),
            d.currency.clone(),
            d.detail.clone(),
        ];
        let quoted: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&quoted.join(","));
        out.push('\n');
    }
    out
}

fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yesterday_is_midnight_to_midnight_in_utc() {
        let now = "2026-12-01T22:13:46Z".parse().unwrap();
        let window = Window::yesterday(now);
        assert_eq!(window.from.to_rfc3339(), "2026-11-30T00:00:00+00:00");
        assert_eq!(window.to.to_rfc3339(), "2026-12-01T00:00:00+00:00");
        assert!(Window::new(window.to, window.from).is_err());
    }

    #[test]
    fn csv_fields_are_quoted_when_they_must_be() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a, b"), "\"a, b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn the_window_asked_is_yesterday_a_day_from_its_start_or_both_ends() {
        let time = |text| parse_time(text).unwrap();
        let now = time("2026-12-02T13:45:00Z");
        assert_eq!(
            Window::asked(None, None, now).unwrap(),
            Window::new(time("2026-12-01"), time("2026-12-02")).unwrap()
        );
        assert_eq!(
            Window::asked(Some(time("2026-11-30T06:00:00+02:00")), None, now).unwrap(),
            Window::new(time("2026-11-30T04:00:00Z"), time("2026-12-01T04:00:00Z")).unwrap()
        );
        assert!(
            Window::asked(None, Some(time("2026-12-01")), now)
                .unwrap_err()
                .contains("needs its start")
        );
        assert!(
            parse_time("monday")
                .unwrap_err()
                .contains("neither RFC 3339")
        );
    }
}
