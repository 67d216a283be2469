//! Redriving dead letters, from the CLI (`orderflow dlq redrive`) or the console: the chosen dead letters of
//! a dead-letter topic go back to their source topics with their original headers (the same `event_id`, so
//! a consumer that applied one already skips it), and the action is a row of `operator_actions`.

use consumers::dlq::{self, DeadLetter};
use producers::KafkaConfig;
use serde_json::json;
use sqlx::PgPool;

use crate::OperatorError;
use crate::audit::{self, Action, Via};

/// Which dead letters of a topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    All,
    /// These, by partition and offset.
    Only(Vec<(i32, i64)>),
}

/// Redrives `selection` of `dlq_topic` and records the action as done by `actor` via `via`; returns how
/// many were published.
///
/// # Errors
/// [`OperatorError::NotFound`] for a position that holds no dead letter of the topic,
/// [`OperatorError::BadInput`] for a record this runtime did not dead-letter (nothing published then); Kafka
/// and database errors.
pub async fn redrive(
    pool: &PgPool,
    kafka: &KafkaConfig,
    dlq_topic: &str,
    selection: &Selection,
    via: Via,
    actor: &str,
) -> Result<usize, OperatorError> {
    let outcome = select_and_send(kafka, dlq_topic, selection).await;
    let detail = match selection {
        Selection::All => json!({ "letters": "all", "redriven": outcome.as_ref().ok() }),
        Selection::Only(positions) => json!({
            "letters": positions
                .iter()
                .map(|(partition, offset)| json!({ "partition": partition, "offset": offset }))
                .collect::<Vec<_>>(),
            "redriven": outcome.as_ref().ok(),
        }),
    };
    let action = Action {
        via,
        actor,
        action: "dlq.redrive",
        target: dlq_topic,
        detail,
    };
    audit::record(pool, &action, &outcome).await?;
    outcome
}

async fn select_and_send(
    kafka: &KafkaConfig,
    dlq_topic: &str,
    selection: &Selection,
) -> Result<usize, OperatorError> {
    let letters = dlq::list(kafka, dlq_topic)
        .await
        .map_err(|e| OperatorError::Failed(format!("cannot read {dlq_topic}: {e}")))?;
    let chosen: Vec<DeadLetter> = match selection {
        Selection::All => letters,
        Selection::Only(positions) => {
            let missing: Vec<String> = positions
                .iter()
                .filter(|(p, o)| {
                    !letters
                        .iter()
                        .any(|l| l.record.partition == *p && l.record.offset == *o)
                })
                .map(|(p, o)| format!("{p}/{o}"))
                .collect();
            if !missing.is_empty() {
                return Err(OperatorError::NotFound(format!(
                    "no dead letter at {} of {dlq_topic}",
                    missing.join(", ")
                )));
            }
            letters
                .into_iter()
                .filter(|l| positions.contains(&(l.record.partition, l.record.offset)))
                .collect()
        }
    };
    if let Some(bad) = chosen.iter().find(|l| l.envelope.is_err()) {
        return Err(OperatorError::BadInput(format!(
            "{dlq_topic}/{}/{} is not a dead letter of this runtime (its dlq.* headers do not read)",
            bad.record.partition, bad.record.offset
        )));
    }
    dlq::redrive(kafka, dlq_topic, &chosen)
        .await
        .map_err(|e| OperatorError::Failed(e.to_string()))
}
