//! A reconciliation's dry run, started from the console (`POST /api/reconciliations/dry-run`, or the form on
//! `/reconciliations`): the same run as `orderflow reconcile` without `--apply`, recorded as the console's.
//! Applying stays a CLI action; the answer shows the exact command that would.

use axum::Json;
use axum::extract::State;
use chrono::{SecondsFormat, Utc};
use ops::reconcile::{Mode, Report, Window};
use serde::{Deserialize, Serialize};

use crate::actions::Operator;
use crate::{Console, Problem};

/// The dry run asked for: a window's start and end, each RFC 3339 or a UTC date, as
/// `orderflow reconcile --from --to` takes them. Without `from`, yesterday; without `to`, a day from `from`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DryRunRequest {
    pub from: Option<String>,
    pub to: Option<String>,
}

impl DryRunRequest {
    /// The window it names.
    ///
    /// # Errors
    /// 400 naming a time that does not read, an end without a start, or a window that is empty.
    pub(crate) fn window(&self) -> Result<Window, Problem> {
        let time = |text: &Option<String>| {
            text.as_deref()
                .filter(|t| !t.trim().is_empty())
                .map(ops::reconcile::parse_time)
                .transpose()
                .map_err(Problem::bad_request)
        };
        Window::asked(time(&self.from)?, time(&self.to)?, Utc::now()).map_err(Problem::bad_request)
    }
}

/// A dry run's report, and the command that would apply it.
#[derive(Debug, Serialize)]
pub struct DryRun {
    #[serde(flatten)]
    pub report: Report,
    pub apply: String,
}

/// The command that applies a reconciliation of `window`.
fn apply_command(window: &Window) -> String {
    let time = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    format!(
        "orderflow reconcile --from {} --to {} --apply",
        time(window.from),
        time(window.to)
    )
}

/// Runs the dry run `request` asks for, recorded as `operator`'s (a `reconcile_runs` row).
///
/// # Errors
/// 400 for a window that does not read; 503 when the database does not answer.
pub(crate) async fn dry_run(
    console: &Console,
    operator: &Operator,
    request: &DryRunRequest,
) -> Result<DryRun, Problem> {
    let window = request.window()?;
    let report = ops::reconcile::reconcile(
        &console.pool,
        window,
        operator.actor(),
        Mode::DryRun,
        &indicatif::ProgressBar::hidden(),
    )
    .await
    .map_err(Problem::unavailable)?;
    Ok(DryRun {
        apply: apply_command(&report.window),
        report,
    })
}

/// `POST /api/reconciliations/dry-run`.
pub(crate) async fn post_dry_run(
    State(console): State<Console>,
    operator: Operator,
    body: Result<Json<DryRunRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<DryRun>, Problem> {
    let request = crate::problem::json_body(
        body,
        r#"{"from": "2026-11-30", "to": "2026-12-01T00:00:00Z"} (both optional)"#,
    )?;
    Ok(Json(dry_run(&console, &operator, &request).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_reads_like_the_clis_and_the_command_applies_it() {
        let request = DryRunRequest {
            from: Some("2026-11-30".into()),
            to: None,
        };
        let window = request.window().unwrap();
        assert_eq!(
            apply_command(&window),
            "orderflow reconcile --from 2026-11-30T00:00:00Z --to 2026-12-01T00:00:00Z --apply"
        );
        for (from, to, named) in [
            (Some("yesterday"), None, "yesterday"),
            (None, Some("2026-12-01"), "needs its start"),
            (Some("2026-12-01"), Some("2026-11-30"), "not before"),
        ] {
            let request = DryRunRequest {
                from: from.map(Into::into),
                to: to.map(Into::into),
            };
            let problem = request.window().unwrap_err();
            assert_eq!(problem.status, 400);
            assert!(problem.detail.contains(named), "{}", problem.detail);
        }
    }
}
