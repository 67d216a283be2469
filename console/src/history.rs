//! The history of replays and reconciliation runs, and one run's details: what `orderflow replay history`
//! and `orderflow reconcile history` list, with a rebuild's differences and a reconciliation's repairs.
//! Starting runs stays with the CLI; each page shows the command.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use ops::reconcile::Run;
use ops::replay::ReplayRow;
use serde::Serialize;
use uuid::Uuid;

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
