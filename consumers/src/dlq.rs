//! Dead letters: what operators list, inspect and redrive.
//!
//! A dead letter is the original record (key, value, headers) with `dlq.*` headers added by the runtime
//! (a [`DeadLetterEnvelope`]). Redrive publishes the original record back to its source
//! topic with its original headers, so its `event_id` is unchanged: a consumer group that already applied it
//! skips it in its inbox, and redriving twice never doubles an effect.

use std::time::Duration;

use producers::headers::{self, RecordHeaders};
use producers::{KafkaConfig, ProducerConfig};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::ConsumerError;
use crate::envelope::{DeadLetterEnvelope, EnvelopeError};
use crate::reader::{self, Record};

/// Header added to a redriven record: the dead letter it came from, as `<dlq topic>/<partition>/<offset>`.
pub const REDRIVEN_FROM: &str = "dlq.redriven_from";

/// A record of a dead-letter topic, with its envelope read out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    pub record: Record,
    /// The `dlq.*` headers, or why they do not read (a record this runtime did not dead-letter).
    pub envelope: Result<DeadLetterEnvelope, EnvelopeError>,
}

impl DeadLetter {
    fn from_record(record: Record) -> Self {
        Self {
            envelope: DeadLetterEnvelope::from_headers(&record.headers),
            record,
        }
    }

    /// The headers the record had before it was dead-lettered.
    pub fn original_headers(&self) -> RecordHeaders {
        DeadLetterEnvelope::strip(&self.record.headers)
    }
}

/// Every dead letter in `dlq_topic`, in offset order per partition.
pub async fn list(kafka: &KafkaConfig, dlq_topic: &str) -> Result<Vec<DeadLetter>, ConsumerError> {
    Ok(reader::read_to_end(kafka, dlq_topic)
        .await?
        .into_iter()
        .map(DeadLetter::from_record)
        .collect())
}

/// Publishes `letters` back to their source topics, in order, and returns how many.
pub async fn redrive(
    kafka: &KafkaConfig,
    dlq_topic: &str,
    letters: &[DeadLetter],
) -> Result<usize, ConsumerError> {
    let producer: FutureProducer = kafka.producer_config(&ProducerConfig::default()).create()?;
    for letter in letters {
        let envelope = letter.envelope.as_ref().map_err(|e| {
            ConsumerError::Read(format!(
                "{dlq_topic}/{}/{} is not a dead letter of this runtime: {e}",
                letter.record.partition, letter.record.offset
            ))
        })?;
        let mut original = letter.original_headers();
        original.insert(
            REDRIVEN_FROM.to_owned(),
            format!(
                "{dlq_topic}/{}/{}",
                letter.record.partition, letter.record.offset
            ),
        );
        let mut record = FutureRecord::to(&envelope.source_topic)
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
