//! Consumer group offsets moved by operators: `orderflow group reset`.
//!
//! A reset moves a group's committed offsets on one topic: to a time (the first record at or after it, found
//! with offsets-for-times), an offset, the earliest or latest record, or by a number of records either way
//! (clamped to what the partition holds). The dry run (the default) shows each partition's offset before
//! and after; applying commits the new offsets as the group. A group with active members is refused, with
//! their names: their next commit would undo the reset, and the broker refuses commits of a non-member to a
//! group that is not empty anyway. Every reset, refused or not, is a row of `group_resets`.
//!
//! Records the group reads again reach its handlers, and its inbox skips the events it applied: a rewind
//! re-delivers, it does not re-apply.

use std::time::Duration;

use chrono::{DateTime, Utc};
use producers::KafkaConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::OperatorError;

const TIMEOUT: Duration = Duration::from_secs(30);

/// Where to move a group's offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ResetTo {
    /// The first record at or after this time (the end when there is none).
    Time(DateTime<Utc>),
    /// This offset, on every partition.
    Offset(i64),
    Earliest,
    Latest,
    /// The committed offset plus this (minus to go back), clamped to the partition.
    ShiftBy(i64),
}

/// One partition's offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Moved {
    pub partition: i32,
    /// The committed offset before; `None` when the group had committed none.
    pub before: Option<i64>,
    pub after: i64,
}

/// Computes, and with `apply` commits, the offsets of `group` on `topic` moved `to`; records the reset as
/// `run_by`.
///
/// # Errors
/// [`OperatorError::BadInput`] naming the problem (the active members of the group, by name), and nothing
/// changed; Kafka and database errors.
pub async fn reset(
    pool: &PgPool,
    kafka: &KafkaConfig,
    group: &str,
    topic: &str,
    to: ResetTo,
    apply: bool,
    run_by: &str,
) -> Result<Vec<Moved>, OperatorError> {
    let outcome = {
        let (kafka, group, topic) = (kafka.clone(), group.to_owned(), topic.to_owned());
        tokio::task::spawn_blocking(move || reset_blocking(&kafka, &group, &topic, to, apply))
            .await
            .map_err(|e| OperatorError::Failed(format!("reset thread failed: {e}")))?
    };
    let offsets = outcome
        .as_ref()
        .ok()
        .and_then(|moved| serde_json::to_value(moved).ok());
    let (result, error) = crate::error::outcome_of(&outcome);
    sqlx::query(
        "INSERT INTO group_resets (id, run_by, mode, group_id, topic, arguments, offsets, outcome, error)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(Uuid::now_v7())
    .bind(run_by)
    .bind(if apply { "apply" } else { "dry_run" })
    .bind(group)
    .bind(topic)
    .bind(serde_json::to_value(to).unwrap_or_default())
    .bind(offsets)
    .bind(result)
    .bind(error)
    .execute(pool)
    .await?;
    outcome
}

/// The active members of `group` on `consumer`'s cluster, each as `member id (client id on host)`: a group
/// with any cannot have its offsets moved by someone else.
pub(crate) fn active_members(
    consumer: &BaseConsumer,
    group: &str,
) -> Result<Vec<String>, OperatorError> {
    let groups = consumer.fetch_group_list(Some(group), TIMEOUT)?;
    Ok(groups
        .groups()
        .iter()
        .filter(|g| g.name() == group)
        .flat_map(|g| g.members())
        .map(|m| format!("{} ({} on {})", m.id(), m.client_id(), m.client_host()))
        .collect())
}

fn reset_blocking(
    kafka: &KafkaConfig,
    group: &str,
    topic: &str,
    to: ResetTo,
    apply: bool,
) -> Result<Vec<Moved>, OperatorError> {
    let mut config = kafka.client_config();
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = config.create()?;
    let members = active_members(&consumer, group)?;
    if !members.is_empty() {
        return Err(OperatorError::BadInput(format!(
            "group {group} has {} active member(s): {}; stop them before resetting its offsets",
            members.len(),
            members.join(", ")
        )));
    }
    let partitions = producers::partitions(consumer.client(), topic, TIMEOUT)?;
    if partitions.is_empty() {
        return Err(OperatorError::BadInput(format!(
            "topic {topic} does not exist"
        )));
    }
    let mut wanted = TopicPartitionList::new();
    for &partition in &partitions {
        wanted.add_partition(topic, partition);
    }
    let committed = consumer.committed_offsets(wanted, TIMEOUT)?;
    let before = |partition: i32| match committed
        .find_partition(topic, partition)
        .map(|e| e.offset())
    {
        Some(Offset::Offset(offset)) => Some(offset),
        _ => None,
    };
    if partitions.iter().all(|&p| before(p).is_none()) {
        return Err(OperatorError::BadInput(format!(
            "unknown group {group}: it has no active members and no committed offsets on {topic}"
        )));
    }
    let mut moved = Vec::with_capacity(partitions.len());
    for partition in partitions {
        let (low, high) = consumer.fetch_watermarks(topic, partition, TIMEOUT)?;
        let before = before(partition);
        let after = match to {
            ResetTo::Earliest => low,
            ResetTo::Latest => high,
            ResetTo::Offset(offset) if (low..=high).contains(&offset) => offset,
            ResetTo::Offset(offset) => {
                return Err(OperatorError::BadInput(format!(
                    "offset {offset} is outside partition {partition} of {topic}, which holds [{low}, {high}]"
                )));
            }
            ResetTo::ShiftBy(by) => {
                let from = before.ok_or_else(|| {
                    OperatorError::BadInput(format!(
                        "group {group} has no committed offset on partition {partition} of {topic} to shift"
                    ))
                })?;
                from.saturating_add(by).clamp(low, high)
            }
            ResetTo::Time(time) => {
                let mut at = TopicPartitionList::new();
                at.add_partition_offset(topic, partition, Offset::Offset(time.timestamp_millis()))?;
                match consumer
                    .offsets_for_times(at, TIMEOUT)?
                    .find_partition(topic, partition)
                    .map(|e| e.offset())
                {
                    Some(Offset::Offset(offset)) => offset,
                    _ => high,
                }
            }
        };
        moved.push(Moved {
            partition,
            before,
            after,
        });
    }
    if apply {
        let mut offsets = TopicPartitionList::new();
        for m in &moved {
            offsets.add_partition_offset(topic, m.partition, Offset::Offset(m.after))?;
        }
        consumer.commit(&offsets, CommitMode::Sync).map_err(|e| {
            OperatorError::Failed(format!(
                "the broker refused the new offsets of group {group} (did a member join meanwhile?): {e}"
            ))
        })?;
    }
    Ok(moved)
}
