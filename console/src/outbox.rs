//! The outbox: its backlog, and the records the broker refused for good (quarantined), each retried or
//! discarded through [`ops::quarantine::decide`], the path of `orderflow outbox quarantine retry|discard`.

use axum::Json;
use axum::extract::{Path, State};
use ops::audit::Via;
use ops::quarantine::Decision;
use outbox::quarantine::Quarantined;
use serde::Serialize;

use crate::actions::Operator;
use crate::overview::Outbox;
use crate::{Console, Problem};

/// The outbox page's content.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutboxState {
    #[serde(flatten)]
    pub backlog: Outbox,
    pub quarantine: Vec<Quarantined>,
}

/// Reads the backlog and the quarantine.
///
/// # Errors
/// 503 when the database does not answer.
pub(crate) async fn read(console: &Console) -> Result<OutboxState, Problem> {
    let backlog = outbox::quarantine::backlog(&console.pool)
        .await
        .map_err(Problem::unavailable)?;
    let quarantine = outbox::quarantine::list(&console.pool)
        .await
        .map_err(Problem::unavailable)?;
    Ok(OutboxState {
        backlog: Outbox::from(&backlog),
        quarantine,
    })
}

/// `GET /api/outbox`.
pub(crate) async fn get(State(console): State<Console>) -> Result<Json<OutboxState>, Problem> {
    Ok(Json(read(&console).await?))
}

/// The decision a path names.
pub(crate) fn decision(name: &str) -> Result<Decision, Problem> {
    match name {
        "retry" => Ok(Decision::Retry),
        "discard" => Ok(Decision::Discard),
        other => Err(Problem::not_found(format!(
            "a quarantined record can be retried or discarded, not {other:?}"
        ))),
    }
}

/// Carries out `decision` on record `id` as `operator`'s action.
///
/// # Errors
/// 404 when no quarantined record has that id; nothing changed then.
pub(crate) async fn decide(
    console: &Console,
    operator: &Operator,
    id: &str,
    decision: Decision,
) -> Result<(), Problem> {
    let id: i64 = id.parse().map_err(|_| {
        Problem::bad_request(format!(
            "{id:?} is not a quarantined record's id (a number)"
        ))
    })?;
    ops::quarantine::decide(&console.pool, id, decision, Via::Console, operator.actor())
        .await
        .map_err(|e| match e {
            ops::OperatorError::NotFound(why) => Problem::not_found(why),
            other => Problem::unavailable(other),
        })
}

/// What a decision did.
#[derive(Debug, Serialize)]
pub(crate) struct Decided {
    id: i64,
    action: &'static str,
}

/// `POST /api/outbox/quarantine/{id}/{retry|discard}`.
pub(crate) async fn post(
    State(console): State<Console>,
    Path((id, name)): Path<(String, String)>,
    operator: Operator,
) -> Result<Json<Decided>, Problem> {
    let decision = decision(&name)?;
    decide(&console, &operator, &id, decision).await?;
    Ok(Json(Decided {
        id: id.parse().unwrap_or_default(),
        action: decision.action(),
    }))
}
