//! Replication between regions as operators see it: `orderflow region status`.
//!
//! MirrorMaker 2 copies each region's topics into the other regions' clusters under the region's prefix
//! (`east.orders.events` in west). For every such copy and partition, status compares the source partition
//! with its copy by the records' timestamps, which replication keeps: the copy's last timestamp says how far
//! it got, and the source records after it are the lag (in records, and in seconds between the newest source
//! record and the copy's newest). Offsets are not compared: the copy's offsets are its own. It also reads
//! the age of MirrorMaker 2's newest heartbeat per flow (`<source>.heartbeats` in the target) and of its
//! newest checkpoint per consumer group (`<source>.checkpoints.internal`).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use producers::KafkaConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::OperatorError;

const TIMEOUT: Duration = Duration::from_secs(30);

/// A region: its name (MirrorMaker 2's cluster alias) and its cluster.
#[derive(Clone, Debug)]
pub struct Region {
    pub name: String,
    pub kafka: KafkaConfig,
}

/// One partition of one replicated topic.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PartitionLag {
    /// `east->west`.
    pub flow: String,
    /// The topic in its source region, e.g. `orders.events`.
    pub topic: String,
    pub partition: i32,
    /// The source partition's high watermark, and its copy's.
    pub source_end: i64,
    pub replicated_end: i64,
    /// Source records newer than the copy's newest.
    pub lag_records: i64,
    /// Between the source's newest record and the copy's newest, when records lag.
    pub lag_seconds: f64,
}

/// How fresh one flow's heartbeats and checkpoints are.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Flow {
    pub flow: String,
    /// Seconds since MirrorMaker 2's newest heartbeat of the flow reached the target; `None`: none yet.
    pub heartbeat_age_seconds: Option<f64>,
    /// Per consumer group, seconds since its newest checkpoint (offsets translated for a failover).
    pub checkpoint_age_seconds: BTreeMap<String, f64>,
}

/// Everything `region status` shows.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Status {
    pub partitions: Vec<PartitionLag>,
    pub flows: Vec<Flow>,
}

impl Status {
    /// Sets the replication gauges from this status, through the `metrics` facade (`orderflow region status
    /// --serve` exports them to Prometheus): `replication_lag_records` and
    /// `replication_lag_seconds` per flow, topic and partition;
    /// `replication_heartbeat_age_seconds` per flow; `replication_checkpoint_age_seconds`
    /// per flow and consumer group.
    pub fn publish(&self) {
        for p in &self.partitions {
            let labels = [
                ("flow", p.flow.clone()),
                ("topic", p.topic.clone()),
                ("partition", p.partition.to_string()),
            ];
            metrics::gauge!("replication_lag_records", &labels).set(p.lag_records as f64);
            metrics::gauge!("replication_lag_seconds", &labels).set(p.lag_seconds);
        }
        for flow in &self.flows {
            if let Some(age) = flow.heartbeat_age_seconds {
                metrics::gauge!("replication_heartbeat_age_seconds", "flow" => flow.flow.clone())
                    .set(age);
            }
            for (group, age) in &flow.checkpoint_age_seconds {
                metrics::gauge!(
                    "replication_checkpoint_age_seconds",
                    "flow" => flow.flow.clone(),
                    "group" => group.clone()
                )
                .set(*age);
            }
        }
    }

    /// The partitions whose lag passes either limit.
    pub fn lagging(
        &self,
        max_records: i64,
        max_seconds: f64,
    ) -> impl Iterator<Item = &PartitionLag> {
        self.partitions
            .iter()
            .filter(move |p| p.lag_records > max_records || p.lag_seconds > max_seconds)
    }
}

/// The replication between every ordered pair of `regions` ([`Status::publish`] sets its gauges).
///
/// # Errors
/// A message naming the cluster that does not answer.
pub async fn status(regions: &[Region]) -> Result<Status, String> {
    let regions = regions.to_vec();
    tokio::task::spawn_blocking(move || status_blocking(&regions))
        .await
        .map_err(|e| format!("status thread failed: {e}"))?
}

fn status_blocking(regions: &[Region]) -> Result<Status, String> {
    let mut status = Status::default();
    for source in regions {
        for target in regions.iter().filter(|r| r.name != source.name) {
            let flow = format!("{}->{}", source.name, target.name);
            let (from, to) = (looker(&source.kafka)?, looker(&target.kafka)?);
            let prefix = format!("{}.", source.name);
            let source_topics = topics(&from, &source.kafka)?;
            // (topic in the source, its copy in the target, partition)
            let mut copied = Vec::new();
            for copy in topics(&to, &target.kafka)? {
                let Some(topic) = copy.strip_prefix(&prefix) else {
                    continue;
                };
                if is_data_topic(topic) && source_topics.iter().any(|t| t == topic) {
                    for partition in partitions(&from, topic)? {
                        copied.push((topic.to_owned(), copy.clone(), partition));
                    }
                }
            }
            let sources: Vec<(String, i32)> =
                copied.iter().map(|(t, _, p)| (t.clone(), *p)).collect();
            let copies: Vec<(String, i32)> =
                copied.iter().map(|(_, c, p)| (c.clone(), *p)).collect();
            let (source_low, source_end) = (
                offsets(&from, &sources, |_| Offset::Beginning)?,
                offsets(&from, &sources, |_| Offset::End)?,
            );
            let copy_end = offsets(&to, &copies, |_| Offset::End)?;
            let source_newest = newest_timestamps(&from, &sources, &source_end)?;
            let copy_newest = newest_timestamps(&to, &copies, &copy_end)?;
            // The first source record after the copy's newest, where the copy has one.
            let after: Vec<(String, i32)> = sources
                .iter()
                .zip(&copies)
                .filter(|(_, c)| copy_newest.contains_key(*c))
                .map(|(s, _)| s.clone())
                .collect();
            let first_uncopied = offsets(&from, &after, |(topic, partition)| {
                let copy = (format!("{prefix}{topic}"), *partition);
                Offset::Offset(copy_newest[&copy].timestamp_millis() + 1)
            })?;
            for ((topic, _, partition), (s, c)) in copied.iter().zip(sources.iter().zip(&copies)) {
                let end = source_end[s];
                let lag_records = match first_uncopied.get(s) {
                    Some(&first) if first >= 0 => (end - first).max(0),
                    Some(_) => 0,
                    // Nothing copied yet: every source record lags.
                    None => end - source_low[s],
                };
                let lag_seconds = match (source_newest.get(s), copy_newest.get(c)) {
                    (Some(newest), Some(copied)) if lag_records > 0 => {
                        (*newest - *copied).num_milliseconds().max(0) as f64 / 1000.0
                    }
                    _ => 0.0,
                };
                status.partitions.push(PartitionLag {
                    flow: flow.clone(),
                    topic: topic.clone(),
                    partition: *partition,
                    source_end: end,
                    replicated_end: copy_end[c],
                    lag_records,
                    lag_seconds,
                });
            }
            let heartbeats = (format!("{prefix}heartbeats"), 0);
            let heartbeat_end = offsets(&to, std::slice::from_ref(&heartbeats), |_| Offset::End)
                .unwrap_or_default();
            status.flows.push(Flow {
                flow: flow.clone(),
                heartbeat_age_seconds: newest_timestamps(
                    &to,
                    std::slice::from_ref(&heartbeats),
                    &heartbeat_end,
                )
                .ok()
                .and_then(|newest| newest.get(&heartbeats).copied())
                .map(age_seconds),
                checkpoint_age_seconds: checkpoints(
                    &to,
                    &format!("{}.checkpoints.internal", source.name),
                )
                .into_iter()
                .map(|(group, at)| (group, age_seconds(at)))
                .collect(),
            });
        }
    }
    Ok(status)
}

/// MirrorMaker 2's own topics, which status leaves out.
fn is_data_topic(name: &str) -> bool {
    !(name == "heartbeats"
        || name.ends_with(".internal")
        || name.starts_with("mm2-")
        || name.starts_with("__"))
}

fn looker(kafka: &KafkaConfig) -> Result<BaseConsumer, String> {
    let mut config = kafka.client_config();
    config
        .set(
            "group.id",
            format!("orderflow-region-{}", uuid::Uuid::now_v7().simple()),
        )
        .set("enable.auto.commit", "false");
    config.create().map_err(|e| e.to_string())
}

fn topics(consumer: &BaseConsumer, kafka: &KafkaConfig) -> Result<Vec<String>, String> {
    Ok(consumer
        .fetch_metadata(None, TIMEOUT)
        .map_err(|e| format!("{} does not answer: {e}", kafka.bootstrap))?
        .topics()
        .iter()
        .map(|t| t.name().to_owned())
        .collect())
}

fn partitions(consumer: &BaseConsumer, topic: &str) -> Result<Vec<i32>, String> {
    producers::partitions(consumer.client(), topic, TIMEOUT).map_err(|e| e.to_string())
}

type Key = (String, i32);

/// The offsets of `wanted` for the look-up `at` gives each (a time, or Beginning/End for the watermarks),
/// in one request; -1 where no record is that late.
fn offsets(
    consumer: &BaseConsumer,
    wanted: &[Key],
    at: impl Fn(&Key) -> Offset,
) -> Result<HashMap<Key, i64>, String> {
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let mut list = TopicPartitionList::new();
    for key in wanted {
        list.add_partition_offset(&key.0, key.1, at(key))
            .map_err(|e| e.to_string())?;
    }
    Ok(consumer
        .offsets_for_times(list, TIMEOUT)
        .map_err(|e| e.to_string())?
        .elements()
        .iter()
        .map(|e| {
            let offset = match e.offset() {
                Offset::Offset(offset) => offset,
                _ => -1,
            };
            ((e.topic().to_owned(), e.partition()), offset)
        })
        .collect())
}

/// The timestamp of the newest record of each of `wanted` that holds one, read at once from the last few
/// offsets before each one's `end` (the very last may be a transaction marker, which no record shows).
fn newest_timestamps(
    consumer: &BaseConsumer,
    wanted: &[Key],
    end: &HashMap<Key, i64>,
) -> Result<HashMap<Key, DateTime<Utc>>, String> {
    let mut newest = HashMap::new();
    let mut list = TopicPartitionList::new();
    let mut left = std::collections::HashSet::new();
    for key in wanted {
        let Some(&high) = end.get(key).filter(|high| **high > 0) else {
            continue;
        };
        list.add_partition_offset(&key.0, key.1, Offset::Offset((high - 5).max(0)))
            .map_err(|e| e.to_string())?;
        left.insert(key.clone());
    }
    if left.is_empty() {
        return Ok(newest);
    }
    consumer.assign(&list).map_err(|e| e.to_string())?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !left.is_empty() && std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                let key = (message.topic().to_owned(), message.partition());
                if let Some(at) = message
                    .timestamp()
                    .to_millis()
                    .and_then(DateTime::from_timestamp_millis)
                {
                    newest.insert(key.clone(), at);
                }
                if end
                    .get(&key)
                    .is_some_and(|high| message.offset() + 1 >= *high)
                {
                    left.remove(&key);
                }
            }
            None => {
                // Quiet: a partition whose last offsets are transaction markers is read when the position
                // is at its end.
                let positions = consumer.position().map_err(|e| e.to_string())?;
                left.retain(|key| {
                    !matches!(
                        positions.find_partition(&key.0, key.1).map(|e| e.offset()),
                        Some(Offset::Offset(at)) if end.get(key).is_some_and(|high| at >= *high)
                    )
                });
            }
            Some(Err(_)) => {}
        }
    }
    consumer.unassign().map_err(|e| e.to_string())?;
    Ok(newest)
}

/// Per consumer group, the newest checkpoint's timestamp in `topic` (MirrorMaker 2's
/// `<source>.checkpoints.internal`, keyed by group, topic and partition). Reads the last 10,000 records.
fn checkpoints(consumer: &BaseConsumer, topic: &str) -> BTreeMap<String, DateTime<Utc>> {
    let mut newest = BTreeMap::new();
    let Ok((low, high)) = consumer.fetch_watermarks(topic, 0, TIMEOUT) else {
        return newest;
    };
    let from = (high - 10_000).max(low);
    if from >= high {
        return newest;
    }
    let mut assignment = TopicPartitionList::new();
    if assignment
        .add_partition_offset(topic, 0, Offset::Offset(from))
        .is_err()
        || consumer.assign(&assignment).is_err()
    {
        return newest;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let message = match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => message,
            _ => continue,
        };
        if let (Some(group), Some(at)) = (
            message.key().and_then(checkpoint_group),
            message
                .timestamp()
                .to_millis()
                .and_then(DateTime::from_timestamp_millis),
        ) {
            newest.insert(group, at);
        }
        if message.offset() + 1 >= high {
            break;
        }
    }
    newest
}

/// The consumer group of a MirrorMaker 2 checkpoint's key.
fn checkpoint_group(key: &[u8]) -> Option<String> {
    checkpoint_key(key).map(|(group, _, _)| group)
}

fn age_seconds(at: DateTime<Utc>) -> f64 {
    (Utc::now() - at).num_milliseconds().max(0) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_reads_as_group_topic_partition_and_both_offsets() {
        let mut key = vec![0, 5];
        key.extend(b"mygrp");
        key.extend([0, 8]);
        key.extend(b"east.top");
        key.extend(7_i32.to_be_bytes());
        assert_eq!(
            checkpoint_key(&key),
            Some(("mygrp".into(), "east.top".into(), 7))
        );
        assert_eq!(checkpoint_group(&key).as_deref(), Some("mygrp"));
        assert_eq!(
            checkpoint_key(&key[..key.len() - 1]),
            None,
            "a partition cut short"
        );
        assert_eq!(checkpoint_group(&[0, 9, b'x']), None);

        let mut value = vec![0, 0];
        value.extend(120_i64.to_be_bytes());
        value.extend(117_i64.to_be_bytes());
        value.extend([0, 0]);
        assert_eq!(checkpoint_value(&value), Some((120, 117)));
        value[1] = 1;
        assert_eq!(checkpoint_value(&value), None, "an unknown version");
    }

    #[test]
    fn mirror_makers_own_topics_are_left_out() {
        assert!(is_data_topic("orders.events"));
        for own in [
            "heartbeats",
            "checkpoints.internal",
            "mm2-offset-syncs.west.internal",
        ] {
            assert!(!is_data_topic(own), "{own}");
        }
    }
}

/// One partition of a group's failover: the copy's partition in the target region, the group's committed
/// offset there before, and the offset MirrorMaker 2 translated from the source region's (`upstream`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Translated {
    /// The copy, e.g. `east.orders.events`.
    pub topic: String,
    pub partition: i32,
    pub before: Option<i64>,
    pub after: i64,
    /// The group's offset in the source region that `after` stands for.
    pub upstream: i64,
}

/// Moves consumer group `group`, which read `from`'s topics in `from`, to read their copies in `to` at the
/// offsets MirrorMaker 2 translated (its newest checkpoints, `<from>.checkpoints.internal` in `to`); a dry
/// run unless `apply`. Every failover, refused or not, is a row of `region_failovers` in `pool`, run by
/// `run_by`.
///
/// What is lost at most is what `from` had not replicated when it was lost (its unreplicated tail, there
/// again when it returns); what the group read in `from` after its newest checkpoint is read again in `to`,
/// and its inbox applies each of those events once.
///
/// # Errors
/// [`OperatorError::BadInput`] when the group has active members in `to` (named) or no checkpoint there.
pub async fn failover(
    pool: &sqlx::PgPool,
    group: &str,
    from: &Region,
    to: &Region,
    apply: bool,
    run_by: &str,
) -> Result<Vec<Translated>, OperatorError> {
    let outcome = {
        let (group, from, to) = (group.to_owned(), from.clone(), to.clone());
        tokio::task::spawn_blocking(move || failover_blocking(&group, &from, &to, apply))
            .await
            .map_err(|e| OperatorError::Failed(format!("failover thread failed: {e}")))?
    };
    let offsets = outcome
        .as_ref()
        .ok()
        .and_then(|moved| serde_json::to_value(moved).ok());
    let (result, error) = crate::error::outcome_of(&outcome);
    sqlx::query(
        "INSERT INTO region_failovers
             (id, run_by, mode, group_id, from_region, to_region, offsets, outcome, error)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(run_by)
    .bind(if apply { "apply" } else { "dry_run" })
    .bind(group)
    .bind(&from.name)
    .bind(&to.name)
    .bind(offsets)
    .bind(result)
    .bind(error)
    .execute(pool)
    .await?;
    outcome
}

fn failover_blocking(
    group: &str,
    from: &Region,
    to: &Region,
    apply: bool,
) -> Result<Vec<Translated>, OperatorError> {
    let mut config = to.kafka.client_config();
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = config.create()?;
    let members = crate::groups::active_members(&consumer, group)?;
    if !members.is_empty() {
        return Err(OperatorError::BadInput(format!(
            "group {group} has {} active member(s) in {}: {}; stop them before failing it over",
            members.len(),
            to.name,
            members.join(", ")
        )));
    }
    let topic = format!("{}.checkpoints.internal", from.name);
    let checkpoints = read_checkpoints(&consumer, &topic, group)?;
    if checkpoints.is_empty() {
        return Err(OperatorError::BadInput(format!(
            "no checkpoint of group {group} in {topic} on {}: MirrorMaker 2 has translated none of its \
             offsets (is the group among mm2.properties' groups, and has it committed offsets in {}?)",
            to.name, from.name
        )));
    }
    let mut wanted = TopicPartitionList::new();
    for (topic, partition) in checkpoints.keys() {
        wanted.add_partition(topic, *partition);
    }
    let committed = consumer.committed_offsets(wanted, TIMEOUT)?;
    let moved: Vec<Translated> = checkpoints
        .into_iter()
        .map(|((topic, partition), (upstream, downstream))| Translated {
            before: match committed
                .find_partition(&topic, partition)
                .map(|e| e.offset())
            {
                Some(Offset::Offset(offset)) => Some(offset),
                _ => None,
            },
            topic,
            partition,
            after: downstream,
            upstream,
        })
        .collect();
    if apply {
        let mut offsets = TopicPartitionList::new();
        for m in &moved {
            offsets.add_partition_offset(&m.topic, m.partition, Offset::Offset(m.after))?;
        }
        consumer
            .commit(&offsets, rdkafka::consumer::CommitMode::Sync)
            .map_err(|e| {
                OperatorError::Failed(format!(
                    "{} refused the translated offsets of group {group} (did a member join meanwhile?): {e}",
                    to.name
                ))
            })?;
    }
    Ok(moved)
}

/// The newest checkpoint of `group` per copied partition in `topic`: (upstream, downstream) offsets.
fn read_checkpoints(
    consumer: &BaseConsumer,
    topic: &str,
    group: &str,
) -> Result<BTreeMap<Key, (i64, i64)>, OperatorError> {
    let mut newest = BTreeMap::new();
    let (low, high) = match consumer.fetch_watermarks(topic, 0, TIMEOUT) {
        Ok(marks) => marks,
        Err(e)
            if e.rdkafka_error_code()
                == Some(rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition) =>
        {
            return Ok(newest);
        }
        Err(e) => return Err(e.into()),
    };
    if high <= low {
        return Ok(newest);
    }
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Offset(low))?;
    consumer.assign(&assignment)?;
    let deadline = std::time::Instant::now() + TIMEOUT;
    while std::time::Instant::now() < deadline {
        let Some(received) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = received?;
        if let (Some(key), Some(value)) = (message.key(), message.payload())
            && let Some((g, copy, partition)) = checkpoint_key(key)
            && g == group
            && let Some(offsets) = checkpoint_value(value)
        {
            newest.insert((copy, partition), offsets);
        }
        if message.offset() + 1 >= high {
            break;
        }
    }
    consumer.unassign()?;
    Ok(newest)
}

/// A checkpoint's key: group, topic (the copy's name) and partition, in Kafka's struct encoding (strings
/// with a 2-byte length, the partition a 4-byte integer, all big-endian).
fn checkpoint_key(key: &[u8]) -> Option<(String, String, i32)> {
    let string = |at: usize| -> Option<(String, usize)> {
        let len = usize::from(u16::from_be_bytes([*key.get(at)?, *key.get(at + 1)?]));
        let text = String::from_utf8(key.get(at + 2..at + 2 + len)?.to_vec()).ok()?;
        Some((text, at + 2 + len))
    };
    let (group, at) = string(0)?;
    let (topic, at) = string(at)?;
    let partition = i32::from_be_bytes(key.get(at..at + 4)?.try_into().ok()?);
    Some((group, topic, partition))
}

/// A checkpoint's value: a 2-byte version (0), then the upstream and downstream offsets, 8 bytes each.
fn checkpoint_value(value: &[u8]) -> Option<(i64, i64)> {
    if value.get(..2)? != [0, 0] {
        return None;
    }
    let upstream = i64::from_be_bytes(value.get(2..10)?.try_into().ok()?);
    let downstream = i64::from_be_bytes(value.get(10..18)?.try_into().ok()?);
    Some((upstream, downstream))
}
