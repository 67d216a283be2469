//! Consumer lag: how far a group's committed offsets are behind the end of each partition.

use std::time::Duration;

use producers::KafkaConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::{Offset, TopicPartitionList};

use crate::ConsumerError;

const TIMEOUT: Duration = Duration::from_secs(15);

/// The lag of one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    /// The group's committed offset; `None` when it has committed nothing for the partition.
    pub committed: Option<i64>,
    /// The partition's high watermark (the offset the next record will get).
    pub high: i64,
    /// Records not yet consumed by the group: high minus committed (minus the low watermark when nothing was
    /// committed).
    pub lag: i64,
}

/// The lag of `group` on every partition of `topics`, also reported as the gauge
/// `consumer_lag{group, topic, partition}`.
pub async fn group_lag(
    kafka: &KafkaConfig,
    group: &str,
    topics: &[String],
) -> Result<Vec<PartitionLag>, ConsumerError> {
    let (kafka, group, topics) = (kafka.clone(), group.to_owned(), topics.to_vec());
    tokio::task::spawn_blocking(move || lag_blocking(&kafka, &group, &topics))
        .await
        .map_err(|e| ConsumerError::Read(format!("lag thread failed: {e}")))?
}

fn lag_blocking(
    kafka: &KafkaConfig,
    group: &str,
    topics: &[String],
) -> Result<Vec<PartitionLag>, ConsumerError> {
    let mut config = kafka.client_config();
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = config.create()?;
    let mut wanted = TopicPartitionList::new();
    for topic in topics {
        let partitions = producers::partitions(consumer.client(), topic, TIMEOUT)?;
        if partitions.is_empty() {
            return Err(ConsumerError::Read(format!("topic {topic} does not exist")));
        }
        for partition in partitions {
            wanted.add_partition(topic, partition);
        }
    }
    let committed = consumer.committed_offsets(wanted, TIMEOUT)?;
    let mut lags = Vec::new();
    for element in committed.elements() {
        let (topic, partition) = (element.topic(), element.partition());
        let (low, high) = consumer.fetch_watermarks(topic, partition, TIMEOUT)?;
        let committed = match element.offset() {
            Offset::Offset(offset) => Some(offset),
            _ => None,
        };
        let lag = (high - committed.unwrap_or(low)).max(0);
        metrics::gauge!("consumer_lag", "group" => group.to_owned(), "topic" => topic.to_owned(),
            "partition" => partition.to_string())
        .set(lag as f64);
        lags.push(PartitionLag {
            topic: topic.to_owned(),
            partition,
            committed,
            high,
            lag,
        });
    }
    Ok(lags)
}
