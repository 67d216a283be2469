//! The range of a replay: which partitions, from which offset to which, resolved against the broker once,
//! when the replay starts (a resume continues the range it resolved then).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use producers::KafkaConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::OperatorError;

const TIMEOUT: Duration = Duration::from_secs(30);

/// The consumer that looks things up.
type Looker = BaseConsumer<super::run::Quiet>;

/// What part of each partition to replay. Ends are exclusive: `to` is the first offset (or the first record's
/// time) left out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Range {
    /// From offset `from` (default: the partition's first) up to `to` (default: its high watermark).
    Offsets { from: Option<i64>, to: Option<i64> },
    /// Records whose timestamp is at or after `from` and before `to`, found with the broker's
    /// offsets-for-times lookup; an end not given is the partition's first offset or its high watermark.
    Times {
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    },
}

impl Default for Range {
    fn default() -> Self {
        Self::Offsets {
            from: None,
            to: None,
        }
    }
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn end<T: std::fmt::Display>(value: Option<&T>, default: &str) -> String {
            value.map_or_else(|| default.to_owned(), ToString::to_string)
        }
        match self {
            Self::Offsets { from, to } => write!(
                f,
                "offsets [{}, {})",
                end(from.as_ref(), "first"),
                end(to.as_ref(), "high watermark")
            ),
            Self::Times { from, to } => write!(
                f,
                "times [{}, {})",
                end(from.as_ref(), "first"),
                end(to.as_ref(), "high watermark")
            ),
        }
    }
}

/// One partition's part of the range: offsets `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PartitionRange {
    pub partition: i32,
    pub start: i64,
    pub end: i64,
}

impl PartitionRange {
    /// Offsets in the range (records, less any transaction markers among them).
    #[must_use]
    pub const fn len(&self) -> i64 {
        self.end - self.start
    }

    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// Resolves `range` on `partitions` of `topic` (every partition when `None`).
///
/// # Errors
/// [`OperatorError::BadInput`] for a topic or a partition that does not exist, an offset before the first one
/// kept or past the high watermark, a backwards range, or a range holding no records.
pub async fn resolve(
    kafka: &KafkaConfig,
    topic: &str,
    partitions: Option<&[i32]>,
    range: &Range,
) -> Result<Vec<PartitionRange>, OperatorError> {
    let (kafka, topic, partitions, range) = (
        kafka.clone(),
        topic.to_owned(),
        partitions.map(<[i32]>::to_vec),
        range.clone(),
    );
    tokio::task::spawn_blocking(move || {
        resolve_blocking(&kafka, &topic, partitions.as_deref(), &range)
    })
    .await
    .map_err(|e| OperatorError::Failed(format!("range thread failed: {e}")))?
}

/// The partitions of `topic`, in order.
///
/// # Errors
/// [`OperatorError::BadInput`] when the topic does not exist.
pub(super) fn partitions_of(consumer: &Looker, topic: &str) -> Result<Vec<i32>, OperatorError> {
    let partitions = producers::partitions(consumer.client(), topic, TIMEOUT)?;
    if partitions.is_empty() {
        return Err(OperatorError::BadInput(format!(
            "topic {topic} does not exist"
        )));
    }
    Ok(partitions)
}

/// `(low, high)` watermarks of `partitions` of `topic`, in two requests for them all (offsets for the
/// timestamps -2, earliest, and -1, latest) rather than two per partition.
pub(super) fn watermarks(
    consumer: &Looker,
    topic: &str,
    partitions: &[i32],
) -> Result<BTreeMap<i32, (i64, i64)>, OperatorError> {
    let ask = |which: Offset| -> Result<BTreeMap<i32, i64>, OperatorError> {
        let mut wanted = TopicPartitionList::new();
        for &partition in partitions {
            wanted.add_partition_offset(topic, partition, which)?;
        }
        consumer
            .offsets_for_times(wanted, TIMEOUT)?
            .elements()
            .iter()
            .map(|e| match e.offset() {
                Offset::Offset(offset) => Ok((e.partition(), offset)),
                other => Err(OperatorError::Failed(format!(
                    "the broker answered {other:?} for the {} offset of {topic}/{}",
                    if which == Offset::End {
                        "latest"
                    } else {
                        "earliest"
                    },
                    e.partition()
                ))),
            })
            .collect()
    };
    // As timestamps of a look-up, Beginning (-2) and End (-1) ask for the earliest and latest offsets.
    let (lows, highs) = (ask(Offset::Beginning)?, ask(Offset::End)?);
    partitions
        .iter()
        .map(|&p| match (lows.get(&p), highs.get(&p)) {
            (Some(&low), Some(&high)) => Ok((p, (low, high))),
            _ => Err(OperatorError::Failed(format!(
                "the broker gave no watermarks for {topic}/{p}"
            ))),
        })
        .collect()
}

fn resolve_blocking(
    kafka: &KafkaConfig,
    topic: &str,
    wanted: Option<&[i32]>,
    range: &Range,
) -> Result<Vec<PartitionRange>, OperatorError> {
    let consumer = super::run::plain_consumer(kafka)?;
    let existing = partitions_of(&consumer, topic)?;
    let chosen = match wanted {
        None => existing.clone(),
        Some(wanted) => {
            if let Some(missing) = wanted.iter().find(|p| !existing.contains(p)) {
                return Err(OperatorError::BadInput(format!(
                    "topic {topic} has no partition {missing} (it has {})",
                    describe_partitions(&existing)
                )));
            }
            wanted.to_vec()
        }
    };
    let marks = watermarks(&consumer, topic, &chosen)?;
    let mut ranges = Vec::with_capacity(chosen.len());
    for partition in chosen {
        let (low, high) = marks[&partition];
        let resolved = match range {
            Range::Offsets { from, to } => offsets(partition, low, high, *from, *to),
            Range::Times { from, to } => {
                let at = |time: Option<DateTime<Utc>>, default: i64| match time {
                    None => Ok(default),
                    Some(time) => offset_for_time(&consumer, topic, partition, time, high),
                };
                let (start, end) = (at(*from, low)?, at(*to, high)?);
                Ok(PartitionRange {
                    partition,
                    start,
                    end: end.max(start),
                })
            }
        };
        ranges.push(resolved.map_err(OperatorError::BadInput)?);
    }
    if ranges.iter().all(PartitionRange::is_empty) {
        return Err(OperatorError::BadInput(format!(
            "{topic} holds no records in {range} (partitions {})",
            describe_partitions(&ranges.iter().map(|r| r.partition).collect::<Vec<_>>())
        )));
    }
    Ok(ranges)
}

/// The first offset of `partition` whose record's timestamp is at or after `time`, or `high` when none is.
fn offset_for_time(
    consumer: &Looker,
    topic: &str,
    partition: i32,
    time: DateTime<Utc>,
    high: i64,
) -> Result<i64, OperatorError> {
    let mut wanted = TopicPartitionList::new();
    wanted.add_partition_offset(topic, partition, Offset::Offset(time.timestamp_millis()))?;
    let found = consumer.offsets_for_times(wanted, TIMEOUT)?;
    Ok(
        match found
            .find_partition(topic, partition)
            .map(|element| element.offset())
        {
            Some(Offset::Offset(offset)) => offset,
            _ => high,
        },
    )
}

/// `[from, to)` of a partition whose offsets run from `low` to `high`, checked.
fn offsets(
    partition: i32,
    low: i64,
    high: i64,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<PartitionRange, String> {
    let (start, end) = (from.unwrap_or(low), to.unwrap_or(high));
    if start < low {
        return Err(format!(
            "offset {start} of partition {partition} is no longer kept: the partition starts at {low}"
        ));
    }
    if end > high {
        return Err(format!(
            "offset {end} is past the high watermark {high} of partition {partition}"
        ));
    }
    if start > end {
        return Err(format!(
            "the range [{start}, {end}) of partition {partition} runs backwards"
        ));
    }
    Ok(PartitionRange {
        partition,
        start,
        end,
    })
}

fn describe_partitions(partitions: &[i32]) -> String {
    match partitions {
        [] => "none".into(),
        [only] => only.to_string(),
        [first, .., last] if (last - first) as usize + 1 == partitions.len() => {
            format!("{first}-{last}")
        }
        _ => partitions
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_default_to_the_whole_partition() {
        assert_eq!(
            offsets(2, 5, 90, None, None),
            Ok(PartitionRange {
                partition: 2,
                start: 5,
                end: 90
            })
        );
        assert_eq!(offsets(2, 5, 90, Some(10), Some(20)).unwrap().len(), 10);
    }

    #[test]
    fn offsets_outside_the_partition_or_backwards_are_refused_by_name() {
        let past = offsets(1, 0, 90, None, Some(91)).unwrap_err();
        assert!(
            past.contains("past the high watermark 90 of partition 1"),
            "{past}"
        );
        let gone = offsets(1, 40, 90, Some(3), None).unwrap_err();
        assert!(gone.contains("starts at 40"), "{gone}");
        let backwards = offsets(1, 0, 90, Some(50), Some(10)).unwrap_err();
        assert!(backwards.contains("backwards"), "{backwards}");
    }

    #[test]
    fn partitions_are_described_briefly() {
        assert_eq!(describe_partitions(&[0, 1, 2, 3]), "0-3");
        assert_eq!(describe_partitions(&[0, 2]), "0,2");
        assert_eq!(describe_partitions(&[4]), "4");
    }

    #[test]
    fn ranges_read_as_their_ends() {
        let range = Range::Offsets {
            from: Some(3),
            to: None,
        };
        assert_eq!(range.to_string(), "offsets [3, high watermark)");
    }
}
