//! Retrying and discarding the outbox's quarantined records, from the CLI (`orderflow outbox quarantine
//! retry|discard`) or the console; each is a row of `operator_actions`, refused ones too.

use serde_json::json;
use sqlx::PgPool;

use crate::OperatorError;
use crate::audit::{self, Action, Via};

/// What to do with a quarantined record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Back into the outbox with its original id (the records of its key waiting behind it follow).
    Retry,
    /// Deleted for good.
    Discard,
}

impl Decision {
    /// The action's name in `operator_actions`.
    #[must_use]
    pub const fn action(self) -> &'static str {
        match self {
            Self::Retry => "outbox.retry",
            Self::Discard => "outbox.discard",
        }
    }
}

/// Carries out `decision` on quarantined record `id`, recorded as done by `actor` via `via`.
///
/// # Errors
/// [`OperatorError::NotFound`] when no quarantined record has that id; database errors.
pub async fn decide(
    pool: &PgPool,
    id: i64,
    decision: Decision,
    via: Via,
    actor: &str,
) -> Result<(), OperatorError> {
    let found = match decision {
        Decision::Retry => outbox::quarantine::retry(pool, id).await,
        Decision::Discard => outbox::quarantine::discard(pool, id).await,
    };
    let outcome = match found {
        Ok(true) => Ok(()),
        Ok(false) => Err(OperatorError::NotFound(format!(
            "no quarantined record with id {id}"
        ))),
        Err(e) => Err(OperatorError::Failed(e.to_string())),
    };
    let target = format!("outbox_quarantine/{id}");
    let action = Action {
        via,
        actor,
        action: decision.action(),
        target: &target,
        detail: json!({ "id": id }),
    };
    audit::record(pool, &action, &outcome).await?;
    outcome
}
