//! Dead letters: what operators list, inspect and redrive.
//!
//! A dead letter is the original record (key, value, headers) with `dlq.*` headers added by the runtime
//! (see [`crate::runtime::dead_letter_headers`]). Redrive publishes the original record back to its source
//! topic with its original headers, so its `event_id` is unchanged: a consumer group that already applied it
//! skips it in its inbox, and redriving twice never doubles an effect.

use std::time::Duration;

use producers::headers::{self, RecordHeaders};
use producers::{KafkaSettings, ProducerSettings};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::ConsumerError;
use crate::reader::{self, Record};
use crate::runtime::dead_letter_headers as dlq;

/// Header added to a redriven record: the dead letter it came from, as `<dlq topic>/<partition>/<offset>`.
pub const REDRIVEN_FROM: &str = "dlq.redriven_from";

/// A record of a dead-letter topic, with its envelope read out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    pub record: Record,
    pub source_topic: String,
    pub source_partition: String,
    pub source_offset: String,
    pub error_class: String,
    pub error_message: String,
    pub attempts: String,
    pub dead_lettered_at_ms: String,
}

impl DeadLetter {
    fn from_record(record: Record) -> Self {
        let header = |name: &str| {
            record
                .headers
                .get(name)
                .cloned()
                .unwrap_or_else(|| "?".into())
        };
        Self {
            source_topic: header(dlq::SOURCE_TOPIC),
            source_partition: header(dlq::SOURCE_PARTITION),
            source_offset: header(dlq::SOURCE_OFFSET),
            error_class: header(dlq::ERROR_CLASS),
            error_message: header(dlq::ERROR_MESSAGE),
            attempts: header(dlq::ATTEMPTS),
            dead_lettered_at_ms: header(dlq::DEAD_LETTERED_AT),
            record,
        }
    }

    /// The headers the record had before it was dead-lettered.
    pub fn original_headers(&self) -> RecordHeaders {
        self.record
            .headers
            .iter()
            .filter(|(name, _)| !name.starts_with("dlq."))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect()
    }
}

/// Every dead letter in `dlq_topic`, in offset order per partition.
pub async fn list(
    kafka: &KafkaSettings,
    dlq_topic: &str,
) -> Result<Vec<DeadLetter>, ConsumerError> {
    Ok(reader::read_to_end(kafka, dlq_topic)
        .await?
        .into_iter()
        .map(DeadLetter::from_record)
        .collect())
}

/// Publishes `letters` back to their source topics, in order, and returns how many.
pub async fn redrive(
    kafka: &KafkaSettings,
    dlq_topic: &str,
    letters: &[DeadLetter],
) -> Result<usize, ConsumerError> {
    let producer: FutureProducer = kafka
        .producer_config(&ProducerSettings::default())
        .create()?;
    for letter in letters {
        if letter.source_topic == "?" {
            return Err(ConsumerError::Read(format!(
                "{dlq_topic}/{}/{} has no {} header; it is not a dead letter of this runtime",
                letter.record.partition,
                letter.record.offset,
                dlq::SOURCE_TOPIC
            )));
        }
        let mut original = letter.original_headers();
        original.insert(
            REDRIVEN_FROM.to_owned(),
            format!(
                "{dlq_topic}/{}/{}",
                letter.record.partition, letter.record.offset
            ),
        );
        let mut record = FutureRecord::to(&letter.source_topic)
            .payload(&letter.record.payload)
            .headers(headers::to_kafka(&original));
        if let Some(key) = &letter.record.key {
            record = record.key(key);
        }
        producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| e)?;
    }
    Ok(letters.len())
}
