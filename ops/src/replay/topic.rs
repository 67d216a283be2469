//! A replay into another topic, exactly once per source record across crashes.
//!
//! Records are written in Kafka transactions of the producer `orderflow-replay-<id>`, one per batch; after a
//! batch's transaction commits, its checkpoint is saved in Postgres. A replay killed between the two left
//! one committed batch that its checkpoint does not show. `replay resume` first fences the old producer
//! (`init_transactions` with the same transactional id aborts a transaction left open), then reads the
//! target from the offsets saved with the last checkpoint (the target marks) and finds the records of this
//! replay there by their `replay.id` header: their `replay.source` headers say how far each source
//! partition really got. Readers of the target must read committed records (`isolation.level`
//! `read_committed`, librdkafka's and orderflow's default) to see each record once.

use std::collections::BTreeMap;
use std::time::Duration;

use producers::{KafkaConfig, ProducerConfig};
use rdkafka::consumer::Consumer as _;
use rdkafka::message::{BorrowedMessage, Header, Headers as _, Message as _, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use sqlx::PgPool;
use uuid::Uuid;

use super::store::{self, Counts, Cursor};
use super::{REPLAY_AT, REPLAY_ID, REPLAY_SOURCE};
use crate::OperatorError;

const TIMEOUT: Duration = Duration::from_secs(60);

/// Writes matched records to `target` in one transaction per batch.
pub(super) struct TopicSink {
    pool: PgPool,
    producer: FutureProducer,
    replay_id: Uuid,
    id_text: String,
    source: String,
    target: String,
    /// When this batch was written, the `replay.at` of its records.
    at: String,
    deliveries: Vec<DeliveryFuture>,
    in_transaction: bool,
    marks: BTreeMap<i32, i64>,
}

impl TopicSink {
    /// A sink for replay `replay_id` whose previous producer, if any, is fenced: a transaction it left
    /// open is aborted.
    pub async fn new(
        pool: &PgPool,
        kafka: &KafkaConfig,
        replay_id: Uuid,
        source: &str,
        target: &str,
        marks: BTreeMap<i32, i64>,
    ) -> Result<Self, OperatorError> {
        let settings = ProducerConfig {
            linger: Duration::from_millis(20),
            delivery_timeout: TIMEOUT,
            ..ProducerConfig::default()
        };
        let mut config = kafka.producer_config(&settings);
        // A transaction outlives its records' delivery timeout (librdkafka requires it); the broker
        // aborts one left open longer, as by a producer killed mid-batch.
        config
            .set("transactional.id", transactional_id(replay_id))
            .set(
                "transaction.timeout.ms",
                (2 * TIMEOUT).as_millis().to_string(),
            );
        let producer: FutureProducer = config.create()?;
        let fencing = producer.clone();
        blocking(move || fencing.init_transactions(TIMEOUT)).await?;
        Ok(Self {
            pool: pool.clone(),
            producer,
            replay_id,
            id_text: replay_id.to_string(),
            source: source.to_owned(),
            target: target.to_owned(),
            at: String::new(),
            deliveries: Vec::new(),
            in_transaction: false,
            marks,
        })
    }
}

/// The transactional id of replay `id`'s producer: the same across resumes, so a resume fences the last.
fn transactional_id(id: Uuid) -> String {
    format!("orderflow-replay-{id}")
}

async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> rdkafka::error::KafkaResult<T> + Send + 'static,
) -> Result<T, OperatorError> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|e| OperatorError::Failed(format!("producer thread failed: {e}")))?
        .map_err(OperatorError::from)
}

impl super::run::Sink for TopicSink {
    const WRITES: bool = true;

    async fn take(&mut self, message: &BorrowedMessage<'_>) -> Result<(), OperatorError> {
        if !self.in_transaction {
            self.producer.begin_transaction()?;
            self.in_transaction = true;
            self.at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        }
        let original = message.headers();
        let kept = original.map_or(0, |h| h.count());
        let mut headers = OwnedHeaders::new_with_capacity(kept + 3);
        if let Some(original) = original {
            for header in original.iter() {
                // A record replayed before carries the earlier replay's headers: this one's replace them.
                if !header.key.starts_with("replay.") {
                    headers = headers.insert(header);
                }
            }
        }
        let source = format!(
            "{}/{}/{}",
            self.source,
            message.partition(),
            message.offset()
        );
        for (key, value) in [
            (REPLAY_ID, self.id_text.as_str()),
            (REPLAY_SOURCE, source.as_str()),
            (REPLAY_AT, self.at.as_str()),
        ] {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let mut record = FutureRecord::to(&self.target)
            .payload(message.payload().unwrap_or_default())
            .headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        loop {
            match self.producer.send_result(record) {
                Ok(delivery) => {
                    self.deliveries.push(delivery);
                    return Ok(());
                }
                Err((e, returned))
                    if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) =>
                {
                    record = returned;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }

    fn pending(&self) -> usize {
        self.deliveries.len()
    }

    async fn land(&mut self, moved: &[Cursor], counts: Counts) -> Result<(), OperatorError> {
        if self.in_transaction {
            // Committing flushes the batch at once (awaiting the deliveries first would wait out the
            // linger) and fails when a record of it failed.
            let producer = self.producer.clone();
            blocking(move || producer.commit_transaction(TIMEOUT)).await?;
            self.in_transaction = false;
        }
        for delivery in self.deliveries.drain(..) {
            let delivered = delivery
                .await
                .map_err(|_| OperatorError::Failed("the producer went away".into()))?
                .map_err(|(e, _)| e)?;
            let mark = self.marks.entry(delivered.partition).or_default();
            *mark = (*mark).max(delivered.offset + 1);
        }
        let mut conn = self.pool.acquire().await?;
        store::checkpoint(&mut conn, self.replay_id, moved, counts, Some(&self.marks)).await
    }
}

/// The high watermark of every partition of `topic`, the marks of a replay that has written nothing yet.
pub(super) async fn current_marks(
    kafka: &KafkaConfig,
    topic: &str,
) -> Result<BTreeMap<i32, i64>, OperatorError> {
    let (kafka, topic) = (kafka.clone(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let consumer = super::run::plain_consumer(&kafka)?;
        let partitions = super::plan::partitions_of(&consumer, &topic)?;
        Ok(super::plan::watermarks(&consumer, &topic, &partitions)?
            .into_iter()
            .map(|(p, (_, high))| (p, high))
            .collect())
    })
    .await
    .map_err(|e| OperatorError::Failed(format!("watermark thread failed: {e}")))?
}

/// What a resume found on the target past the last checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Found {
    /// Per source partition, the last offset of a record of this replay on the target.
    pub last: BTreeMap<i32, i64>,
    /// Records of this replay per source partition.
    pub records: BTreeMap<i32, i64>,
    /// The target's marks after them.
    pub marks: BTreeMap<i32, i64>,
}

/// Reads `target` from `marks` to its end for records of replay `id` (committed ones only).
pub(super) async fn written_after(
    kafka: &KafkaConfig,
    target: &str,
    id: Uuid,
    marks: &BTreeMap<i32, i64>,
) -> Result<Found, OperatorError> {
    let (kafka, target, marks) = (kafka.clone(), target.to_owned(), marks.clone());
    tokio::task::spawn_blocking(move || written_after_blocking(&kafka, &target, id, &marks))
        .await
        .map_err(|e| OperatorError::Failed(format!("resume thread failed: {e}")))?
}

fn written_after_blocking(
    kafka: &KafkaConfig,
    target: &str,
    id: Uuid,
    marks: &BTreeMap<i32, i64>,
) -> Result<Found, OperatorError> {
    let consumer = super::run::plain_consumer(kafka)?;
    let mut found = Found::default();
    let mut assignment = TopicPartitionList::new();
    let mut left = std::collections::BTreeSet::new();
    let partitions = super::plan::partitions_of(&consumer, target)?;
    for (partition, (low, high)) in super::plan::watermarks(&consumer, target, &partitions)? {
        let from = marks.get(&partition).copied().unwrap_or(low).max(low);
        found.marks.insert(partition, high);
        if from < high {
            assignment.add_partition_offset(target, partition, Offset::Offset(from))?;
            left.insert(partition);
        }
    }
    if left.is_empty() {
        return Ok(found);
    }
    consumer.assign(&assignment)?;
    let id = id.to_string();
    let deadline = std::time::Instant::now() + TIMEOUT;
    while !left.is_empty() {
        if std::time::Instant::now() > deadline {
            return Err(OperatorError::Failed(format!(
                "reading {target} to its end to resume took over {TIMEOUT:?}; an open transaction of \
                 another producer may hold its readers back"
            )));
        }
        let Some(received) = consumer.poll(Duration::from_millis(200)) else {
            // Quiet: partitions that end with transaction markers show their end by the position alone.
            left.retain(|&p| {
                !super::run::is_read(
                    &consumer,
                    target,
                    p,
                    found.marks.get(&p).copied().unwrap_or(0),
                )
            });
            continue;
        };
        let message = match received {
            Ok(message) => message,
            Err(rdkafka::error::KafkaError::PartitionEOF(partition)) => {
                left.remove(&partition);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if super::run::header(&message, REPLAY_ID) != Some(id.as_bytes()) {
            continue;
        }
        let source = super::run::header(&message, REPLAY_SOURCE)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(parse_source)
            .ok_or_else(|| {
                OperatorError::Failed(format!(
                    "{target}/{}/{} carries replay.id {id} without a readable {REPLAY_SOURCE}",
                    message.partition(),
                    message.offset()
                ))
            })?;
        let last = found.last.entry(source.0).or_insert(source.1);
        *last = (*last).max(source.1);
        *found.records.entry(source.0).or_default() += 1;
    }
    Ok(found)
}

/// `(partition, offset)` of a `replay.source` value, `topic/partition/offset` (the topic may hold '/').
fn parse_source(value: &str) -> Option<(i32, i64)> {
    let (rest, offset) = value.rsplit_once('/')?;
    let (_, partition) = rest.rsplit_once('/')?;
    Some((partition.parse().ok()?, offset.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_header_reads_back_as_partition_and_offset() {
        assert_eq!(parse_source("orders.events/3/1200"), Some((3, 1200)));
        assert_eq!(parse_source("odd/name/0/7"), Some((0, 7)));
        assert_eq!(parse_source("orders.events/x/7"), None);
        assert_eq!(parse_source("7"), None);
    }
}
