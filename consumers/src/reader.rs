//! Reading a whole topic as it is now, without a consumer group: for operators (dead letters) and tests.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use producers::KafkaConfig;
use producers::headers::{self, RecordHeaders};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::Message as _;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::ConsumerError;

const TIMEOUT: Duration = Duration::from_secs(30);

/// A record read back from a topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: RecordHeaders,
}

/// Every record in `topic` now: each partition read from its low to its high watermark, in offset order per
/// partition. Partitions are assigned, not subscribed, so no group is joined and no offset is committed.
pub async fn read_to_end(kafka: &KafkaConfig, topic: &str) -> Result<Vec<Record>, ConsumerError> {
    let kafka = kafka.clone();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || read_blocking(&kafka, &topic))
        .await
        .map_err(|e| ConsumerError::Read(format!("reader thread failed: {e}")))?
}

/// The number of offsets in `topic` now (high minus low watermark, summed over partitions): its records,
/// plus the commit markers of transactional producers.
pub async fn count(kafka: &KafkaConfig, topic: &str) -> Result<i64, ConsumerError> {
    let kafka = kafka.clone();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer = reader(&kafka)?;
        Ok(watermarks(&consumer, &topic)?
            .into_iter()
            .map(|(_, low, high)| high - low)
            .sum())
    })
    .await
    .map_err(|e| ConsumerError::Read(format!("reader thread failed: {e}")))?
}

fn reader(kafka: &KafkaConfig) -> Result<BaseConsumer, ConsumerError> {
    let mut config = kafka.client_config();
    // librdkafka wants a group id even for assigned partitions; nothing is committed to it.
    config
        .set(
            "group.id",
            format!("orderflow-reader-{}", uuid::Uuid::now_v7().simple()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true");
    Ok(config.create()?)
}

/// (partition, low, high) of every partition of `topic`.
fn watermarks(consumer: &BaseConsumer, topic: &str) -> Result<Vec<(i32, i64, i64)>, ConsumerError> {
    let partitions = producers::partitions(consumer.client(), topic, TIMEOUT)?;
    if partitions.is_empty() {
        return Err(ConsumerError::Read(format!("topic {topic} does not exist")));
    }
    partitions
        .into_iter()
        .map(|partition| {
            let (low, high) =
                with_leader_retries(|| consumer.fetch_watermarks(topic, partition, TIMEOUT))?;
            Ok((partition, low, high))
        })
        .collect()
}

/// Runs `call` again while the broker answers that it does not lead the partition yet, for up to
/// [`TIMEOUT`]: a broker that just restarted, or a partition whose leadership moves, says so for a moment.
fn with_leader_retries<T>(mut call: impl FnMut() -> KafkaResult<T>) -> Result<T, KafkaError> {
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        match call() {
            Err(e)
                if matches!(
                    e.rdkafka_error_code(),
                    Some(
                        RDKafkaErrorCode::NotLeaderForPartition
                            | RDKafkaErrorCode::LeaderNotAvailable
                    )
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(200));
            }
            result => return result,
        }
    }
}

fn read_blocking(kafka: &KafkaConfig, topic: &str) -> Result<Vec<Record>, ConsumerError> {
    let consumer = reader(kafka)?;
    let marks = watermarks(&consumer, topic)?;
    let mut assignment = TopicPartitionList::new();
    let mut remaining: i64 = 0;
    for &(partition, low, high) in &marks {
        if high > low {
            assignment.add_partition_offset(topic, partition, Offset::Offset(low))?;
            remaining += high - low;
        }
    }
    let mut records = Vec::with_capacity(usize::try_from(remaining).unwrap_or(0));
    if remaining == 0 {
        return Ok(records);
    }
    consumer.assign(&assignment)?;
    // A partition is read when its end is reached: a transactional producer's commit markers take offsets
    // that no record has, so counting records would never get there.
    let ends: HashMap<i32, i64> = marks.iter().map(|&(p, _, high)| (p, high)).collect();
    let mut left: HashSet<i32> = marks
        .iter()
        .filter(|&&(_, low, high)| high > low)
        .map(|&(p, _, _)| p)
        .collect();
    let mut quiet_since = std::time::Instant::now();
    while !left.is_empty() {
        if quiet_since.elapsed() > TIMEOUT {
            return Err(ConsumerError::Read(format!(
                "{topic}: nothing read for {TIMEOUT:?} with partitions {left:?} not read to their end; \
                 watermarks (partition, low, high) {marks:?}"
            )));
        }
        let message = match consumer.poll(Duration::from_millis(500)) {
            None => continue,
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                left.remove(&partition);
                continue;
            }
            Some(received) => received?,
        };
        quiet_since = std::time::Instant::now();
        let end = ends[&message.partition()];
        if message.offset() >= end {
            left.remove(&message.partition());
            continue;
        }
        if message.offset() + 1 >= end {
            left.remove(&message.partition());
        }
        records.push(Record {
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().unwrap_or_default().to_vec(),
            headers: message
                .headers()
                .map(headers::from_kafka)
                .unwrap_or_default(),
        });
    }
    Ok(records)
}
