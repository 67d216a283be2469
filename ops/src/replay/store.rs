//! The audit rows of replays and their checkpoints, in Postgres.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::plan::PartitionRange;
use super::{Mode, ReplaySpec};
use crate::OperatorError;

/// One partition's place in a replay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Cursor {
    pub range: PartitionRange,
    /// Every matching record before it is on the target.
    pub next: i64,
    /// Records written to the target from this partition.
    pub written: i64,
}

impl Cursor {
    #[must_use]
    pub const fn is_done(&self) -> bool {
        self.next >= self.range.end
    }
}

/// A replay as recorded.
#[derive(Clone, Debug, Serialize)]
pub struct ReplayRow {
    pub id: Uuid,
    pub run_by: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub mode: String,
    pub source_topic: String,
    pub target: String,
    pub arguments: serde_json::Value,
    pub read: i64,
    pub matched: i64,
    pub written: i64,
    pub differences: Option<serde_json::Value>,
    pub outcome: String,
    pub error: Option<String>,
}

/// Counts to add to a replay's row at a checkpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub read: i64,
    pub matched: i64,
    pub written: i64,
}

/// Records a new replay and its partitions' ranges.
pub async fn insert(
    pool: &PgPool,
    id: Uuid,
    run_by: &str,
    mode: Mode,
    spec: &ReplaySpec,
    ranges: &[PartitionRange],
) -> Result<(), OperatorError> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO replays (id, run_by, mode, source_topic, target, arguments)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(run_by)
    .bind(mode.as_str())
    .bind(&spec.source)
    .bind(spec.target.to_string())
    .bind(serde_json::to_value(spec).map_err(|e| OperatorError::Failed(e.to_string()))?)
    .execute(&mut *tx)
    .await?;
    let (partitions, starts, ends): (Vec<i32>, Vec<i64>, Vec<i64>) = ranges
        .iter()
        .map(|r| (r.partition, r.start, r.end))
        .collect();
    sqlx::query(
        "INSERT INTO replay_partitions (replay_id, partition, start_offset, end_offset, next_offset)
         SELECT $1, p, s, e, s FROM unnest($2::int[], $3::bigint[], $4::bigint[]) AS r(p, s, e)",
    )
    .bind(id)
    .bind(&partitions)
    .bind(&starts)
    .bind(&ends)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A replay to resume: its row, its partitions' cursors and its target marks.
pub async fn load(
    pool: &PgPool,
    id: Uuid,
) -> Result<(ReplayRow, Vec<Cursor>, BTreeMap<i32, i64>), OperatorError> {
    let row = row(pool, id).await?.ok_or_else(|| {
        OperatorError::NotFound(format!("no replay {id} (see `orderflow replay history`)"))
    })?;
    let cursors = sqlx::query_as::<_, (i32, i64, i64, i64, i64)>(
        "SELECT partition, start_offset, end_offset, next_offset, written
         FROM replay_partitions WHERE replay_id = $1 ORDER BY partition",
    )
    .bind(id)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|(partition, start, end, next, written)| Cursor {
        range: PartitionRange {
            partition,
            start,
            end,
        },
        next,
        written,
    })
    .collect();
    let (marks,): (serde_json::Value,) =
        sqlx::query_as("SELECT target_marks FROM replays WHERE id = $1")
            .bind(id)
            .fetch_one(pool)
            .await?;
    let marks: BTreeMap<String, i64> =
        serde_json::from_value(marks).map_err(|e| OperatorError::Failed(e.to_string()))?;
    let marks = marks
        .into_iter()
        .filter_map(|(p, offset)| Some((p.parse().ok()?, offset)))
        .collect();
    Ok((row, cursors, marks))
}

/// Saves `cursors` (the partitions that moved), adds `counts` and replaces the target marks, on `conn`
/// (the caller's transaction when the target is in this database).
pub async fn checkpoint(
    conn: &mut PgConnection,
    id: Uuid,
    cursors: &[Cursor],
    counts: Counts,
    marks: Option<&BTreeMap<i32, i64>>,
) -> Result<(), OperatorError> {
    let (partitions, nexts, written): (Vec<i32>, Vec<i64>, Vec<i64>) = cursors
        .iter()
        .map(|c| (c.range.partition, c.next, c.written))
        .collect();
    sqlx::query(
        "UPDATE replay_partitions p SET next_offset = c.next, written = c.written
         FROM unnest($2::int[], $3::bigint[], $4::bigint[]) AS c(partition, next, written)
         WHERE p.replay_id = $1 AND p.partition = c.partition",
    )
    .bind(id)
    .bind(&partitions)
    .bind(&nexts)
    .bind(&written)
    .execute(&mut *conn)
    .await?;
    let marks = marks.map(|marks| {
        serde_json::Value::Object(
            marks
                .iter()
                .map(|(p, offset)| (p.to_string(), (*offset).into()))
                .collect(),
        )
    });
    sqlx::query(
        "UPDATE replays SET read = read + $2, matched = matched + $3, written = written + $4,
                target_marks = coalesce($5, target_marks)
         WHERE id = $1",
    )
    .bind(id)
    .bind(counts.read)
    .bind(counts.matched)
    .bind(counts.written)
    .bind(marks)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// How a replay ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    Finished,
    Stopped,
    Failed,
}

impl Ending {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Finished => "finished",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
        }
    }
}

/// Records how replay `id` ended, and what a rebuild found.
pub async fn finish(
    pool: &PgPool,
    id: Uuid,
    ending: Ending,
    error: Option<&str>,
    differences: Option<&serde_json::Value>,
) -> Result<(), OperatorError> {
    sqlx::query(
        "UPDATE replays SET outcome = $2, error = $3, differences = coalesce($4, differences),
                finished_at = clock_timestamp()
         WHERE id = $1",
    )
    .bind(id)
    .bind(ending.as_str())
    .bind(error)
    .bind(differences)
    .execute(pool)
    .await?;
    Ok(())
}

/// Marks replay `id` running again, for a resume.
pub async fn reopen(pool: &PgPool, id: Uuid) -> Result<(), OperatorError> {
    sqlx::query(
        "UPDATE replays SET outcome = 'running', error = NULL, finished_at = NULL WHERE id = $1",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

type Row = (
    Uuid,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    String,
    String,
    String,
    serde_json::Value,
    i64,
    i64,
    i64,
    Option<serde_json::Value>,
    String,
    Option<String>,
);

/// The columns of a [`Row`], for `concat!`.
macro_rules! columns {
    () => {
        "id, run_by, started_at, finished_at, mode, source_topic, target, arguments, read, matched, written, \
         differences, outcome, error"
    };
}

fn from_row(r: Row) -> ReplayRow {
    ReplayRow {
        id: r.0,
        run_by: r.1,
        started_at: r.2,
        finished_at: r.3,
        mode: r.4,
        source_topic: r.5,
        target: r.6,
        arguments: r.7,
        read: r.8,
        matched: r.9,
        written: r.10,
        differences: r.11,
        outcome: r.12,
        error: r.13,
    }
}

/// Replay `id`, if there is one.
pub async fn row(pool: &PgPool, id: Uuid) -> Result<Option<ReplayRow>, OperatorError> {
    Ok(sqlx::query_as::<_, Row>(concat!(
        "SELECT ",
        columns!(),
        " FROM replays WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?
    .map(from_row))
}

/// The latest `limit` replays, newest first.
///
/// # Errors
/// Database errors.
pub async fn history(pool: &PgPool, limit: i64) -> Result<Vec<ReplayRow>, OperatorError> {
    Ok(sqlx::query_as::<_, Row>(concat!(
        "SELECT ",
        columns!(),
        " FROM replays ORDER BY started_at DESC LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(from_row)
    .collect())
}
