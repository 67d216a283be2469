//! The history of replays and reconciliation runs, and one run's details: what `orderflow replay history`
//! and `orderflow reconcile history` list, with a rebuild's differences and a reconciliation's repairs.
//! A replay's dry run can be started here (`POST /api/replays/dry-run`, or the form on `/replays`); applying
//! one stays a CLI action, and the answer shows the exact command that would.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use ops::reconcile::Run;
use ops::replay::ReplayRow;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::actions::Operator;
use crate::{Console, Problem};

/// How many runs a history shows.
const LIMIT: i64 = 50;

/// A reconciliation run and what it left for people (its repairs that need attention, its re-sent
/// notifications).
#[derive(Clone, Debug, Serialize)]
pub struct Reconciliation {
    #[serde(flatten)]
    pub run: Run,
    pub repairs: Vec<Repair>,
}

/// One repair row of a run.
#[derive(Clone, Debug, PartialEq, Serialize, sqlx::FromRow)]
pub struct Repair {
    pub class: String,
    pub order_id: Option<Uuid>,
    pub amount_minor: i64,
    pub currency: String,
    pub action: String,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

fn id(text: &str, what: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(text)
        .map_err(|_| Problem::bad_request(format!("{text:?} is not a {what} id (a UUID)")))
}

/// The latest replays, newest first.
pub(crate) async fn replays(console: &Console) -> Result<Vec<ReplayRow>, Problem> {
    ops::replay::history(&console.pool, LIMIT)
        .await
        .map_err(Problem::unavailable)
}

/// Replay `text`.
pub(crate) async fn replay(console: &Console, text: &str) -> Result<ReplayRow, Problem> {
    let id = id(text, "replay")?;
    ops::replay::row(&console.pool, id)
        .await
        .map_err(Problem::unavailable)?
        .ok_or_else(|| Problem::not_found(format!("no replay {id}")))
}

/// The latest reconciliation runs, newest first.
pub(crate) async fn reconciliations(console: &Console) -> Result<Vec<Run>, Problem> {
    ops::reconcile::history(&console.pool, LIMIT)
        .await
        .map_err(Problem::unavailable)
}

/// Reconciliation run `text`, with its repairs.
pub(crate) async fn reconciliation(
    console: &Console,
    text: &str,
) -> Result<Reconciliation, Problem> {
    let id = id(text, "reconciliation run")?;
    let run = reconciliations_by_id(console, id).await?;
    let repairs = sqlx::query_as(
        "SELECT class, order_id, amount_minor, currency, action, reason, created_at
         FROM reconcile_repairs WHERE run_id = $1 ORDER BY created_at",
    )
    .bind(id)
    .fetch_all(&console.pool)
    .await
    .map_err(Problem::unavailable)?;
    Ok(Reconciliation { run, repairs })
}

async fn reconciliations_by_id(console: &Console, id: Uuid) -> Result<Run, Problem> {
    sqlx::query_as(
        "SELECT id, run_by, started_at, finished_at, window_from, window_to, mode, found, repaired, outcome
         FROM reconcile_runs WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&console.pool)
    .await
    .map_err(Problem::unavailable)?
    .ok_or_else(|| Problem::not_found(format!("no reconciliation run {id}")))
}

/// `GET /api/replays`.
pub(crate) async fn get_replays(
    State(console): State<Console>,
) -> Result<Json<Vec<ReplayRow>>, Problem> {
    Ok(Json(replays(&console).await?))
}

/// `GET /api/replays/{id}`.
pub(crate) async fn get_replay(
    State(console): State<Console>,
    Path(id): Path<String>,
) -> Result<Json<ReplayRow>, Problem> {
    Ok(Json(replay(&console, &id).await?))
}

/// `GET /api/reconciliations`.
pub(crate) async fn get_reconciliations(
    State(console): State<Console>,
) -> Result<Json<Vec<Run>>, Problem> {
    Ok(Json(reconciliations(&console).await?))
}

/// `GET /api/reconciliations/{id}`.
pub(crate) async fn get_reconciliation(
    State(console): State<Console>,
    Path(id): Path<String>,
) -> Result<Json<Reconciliation>, Problem> {
    Ok(Json(reconciliation(&console, &id).await?))
}

/// The body of `POST /api/replays/dry-run`: what `orderflow replay` takes, without `--apply`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct DryRunRequest {
    pub source: String,
    /// Exactly one of the two targets.
    #[serde(default)]
    pub to_topic: Option<String>,
    #[serde(default)]
    pub to_group: Option<String>,
    #[serde(default)]
    pub rebuild: bool,
    #[serde(default)]
    pub from_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub to_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub event_types: Vec<String>,
}

/// What a dry run found, and the command that would apply it.
#[derive(Clone, Debug, Serialize)]
pub struct DryRun {
    pub report: ops::replay::Report,
    pub apply: String,
}

impl DryRunRequest {
    fn spec(&self) -> Result<ops::replay::ReplaySpec, Problem> {
        let target = match (&self.to_topic, &self.to_group) {
            (Some(topic), None) if !self.rebuild => ops::replay::Target::Topic(topic.clone()),
            (None, Some(group)) => ops::replay::Target::Group {
                group: group.clone(),
                rebuild: self.rebuild,
            },
            _ => {
                return Err(Problem::bad_request(
                    "give one target: to_topic, or to_group (with rebuild or not)",
                ));
            }
        };
        if self.source.trim().is_empty() {
            return Err(Problem::bad_request("give the source topic"));
        }
        Ok(ops::replay::ReplaySpec {
            source: self.source.trim().to_owned(),
            partitions: None,
            range: ops::replay::Range::Times {
                from: self.from_time,
                to: self.to_time,
            },
            filters: ops::replay::Filters {
                event_types: self.event_types.clone(),
                ..ops::replay::Filters::default()
            },
            target,
            rate: None,
        })
    }

    /// The `orderflow replay` command that applies this replay.
    #[must_use]
    pub fn command(&self) -> String {
        let mut words = vec![
            "orderflow".to_owned(),
            "replay".to_owned(),
            quote(&self.source),
        ];
        match (&self.to_topic, &self.to_group) {
            (Some(topic), _) => words.extend(["--to-topic".to_owned(), quote(topic)]),
            (_, Some(group)) => words.extend(["--to-group".to_owned(), quote(group)]),
            _ => {}
        }
        if self.rebuild {
            words.push("--rebuild".to_owned());
        }
        for (flag, time) in [("--from-time", self.from_time), ("--to-time", self.to_time)] {
            if let Some(time) = time {
                words.extend([flag.to_owned(), time.to_rfc3339()]);
            }
        }
        for event_type in &self.event_types {
            words.extend(["--event-type".to_owned(), quote(event_type)]);
        }
        words.push("--apply".to_owned());
        words.join(" ")
    }
}

/// `word` as one shell word.
fn quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:/+=,".contains(&b))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Runs the dry run `request` asks for, recorded as `operator`'s (a `replays` row).
///
/// # Errors
/// 400 naming what the replay cannot carry out (an unknown topic or group, an empty range, ...).
pub(crate) async fn dry_run(
    console: &Console,
    operator: &Operator,
    request: &DryRunRequest,
) -> Result<DryRun, Problem> {
    let spec = request.spec()?;
    let codec = console.config.codec.clone().ok_or_else(|| {
        Problem::unavailable("the console has no schema registry to decode samples with")
    })?;
    let (progress, cancel) = (
        indicatif::ProgressBar::hidden(),
        tokio_util::sync::CancellationToken::new(),
    );
    let replayer = ops::replay::Replayer {
        pool: &console.pool,
        kafka: &console.kafka,
        codec,
        progress: &progress,
        cancel: &cancel,
        max_batch: ops::replay::DEFAULT_BATCH,
    };
    let report = replayer
        .start(spec, ops::replay::Mode::DryRun, operator.actor())
        .await
        .map_err(|e| match e {
            ops::OperatorError::BadInput(why) => Problem::bad_request(why),
            other => Problem::unavailable(other),
        })?;
    Ok(DryRun {
        report,
        apply: request.command(),
    })
}

/// `POST /api/replays/dry-run`.
pub(crate) async fn post_dry_run(
    State(console): State<Console>,
    operator: Operator,
    body: Result<Json<DryRunRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<DryRun>, Problem> {
    let request = crate::problem::json_body(
        body,
        concat!(
            r#"{"source": "orders.events", "to_topic" or "to_group": ..., "#,
            r#""from_time", "to_time" (RFC 3339), "event_types"}"#
        ),
    )?;
    Ok(Json(dry_run(&console, &operator, &request).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_apply_command_is_the_dry_runs_arguments_with_apply() {
        let request = DryRunRequest {
            source: "orders.events".into(),
            to_group: Some("orders-view".into()),
            rebuild: true,
            from_time: Some("2026-12-01T10:00:00Z".parse().unwrap()),
            event_types: vec!["OrderPlaced".into(), "it's odd".into()],
            ..DryRunRequest::default()
        };
        assert_eq!(
            request.command(),
            "orderflow replay orders.events --to-group orders-view --rebuild --from-time \
             2026-12-01T10:00:00+00:00 --event-type OrderPlaced --event-type 'it'\\''s odd' --apply"
        );
    }

    #[test]
    fn a_dry_run_needs_one_target() {
        for request in [
            DryRunRequest {
                source: "t".into(),
                ..DryRunRequest::default()
            },
            DryRunRequest {
                source: "t".into(),
                to_topic: Some("a".into()),
                to_group: Some("b".into()),
                ..DryRunRequest::default()
            },
            DryRunRequest {
                source: "t".into(),
                to_topic: Some("a".into()),
                rebuild: true,
                ..DryRunRequest::default()
            },
        ] {
            assert!(
                request
                    .spec()
                    .unwrap_err()
                    .detail
                    .contains("give one target")
            );
        }
    }
}
