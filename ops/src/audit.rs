//! The audit trail of operators' actions that have no table of their own (`operator_actions`): redriving
//! dead letters from the CLI or the console, and the console's other actions. Replays, group resets,
//! failovers and reconciliation runs keep their own rows.

use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::OperatorError;

/// Where an action came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Via {
    Cli,
    Console,
}

impl Via {
    const fn name(self) -> &'static str {
        match self {
            Self::Cli => "cli",
            Self::Console => "console",
        }
    }
}

/// One action, as recorded.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Action<'a> {
    pub via: Via,
    /// The CLI's `$USER`, or `console@<client address>`.
    pub actor: &'a str,
    /// e.g. `dlq.redrive`.
    pub action: &'a str,
    /// What it acted on, e.g. a dead-letter topic.
    pub target: &'a str,
    pub detail: serde_json::Value,
}

/// Records `action` with how it ended: done, refused (bad input, nothing changed) or failed.
///
/// # Errors
/// Database errors.
pub async fn record<T>(
    pool: &PgPool,
    action: &Action<'_>,
    outcome: &Result<T, OperatorError>,
) -> Result<(), OperatorError> {
    let (result, error) = crate::error::outcome_of(outcome);
    sqlx::query(
        "INSERT INTO operator_actions (id, via, actor, action, target, detail, outcome, error)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(Uuid::now_v7())
    .bind(action.via.name())
    .bind(action.actor)
    .bind(action.action)
    .bind(action.target)
    .bind(&action.detail)
    .bind(result)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}
