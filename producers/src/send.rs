//! Handing records to a producer and following each to the broker's acknowledgement: what the relay, the
//! dead-letter forwarder and the benchmarks share.

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::ToBytes;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;

/// Why a record handed to the producer was not acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum Undelivered {
    /// The broker refused it, or the producer gave up on it (see [`is_permanent`]).
    #[error("not delivered")]
    Failed(#[source] KafkaError),
    /// The producer was dropped before it knew: nothing is known of the record.
    #[error("the producer was dropped before the record was acknowledged")]
    Dropped,
}

/// Hands `record` to `producer`, waiting while the producer's queue is full, and returns its delivery to
/// await with [`acknowledged`]. Records handed over in turn are written in that order within a partition.
///
/// # Errors
/// What the producer refused the record with, other than a full queue (a record past `message.max.bytes`,
/// say, or a producer that failed fatally).
pub async fn enqueue<K, P>(
    producer: &FutureProducer,
    mut record: FutureRecord<'_, K, P>,
) -> Result<DeliveryFuture, KafkaError>
where
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    loop {
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Waits for the broker's answer about a record: its partition and offset once acknowledged.
///
/// # Errors
/// [`Undelivered`]: refused or given up, or dropped with the producer.
pub async fn acknowledged(delivery: DeliveryFuture) -> Result<(i32, i64), Undelivered> {
    match delivery.await {
        Ok(Ok(delivery)) => Ok((delivery.partition, delivery.offset)),
        Ok(Err((error, _))) => Err(Undelivered::Failed(error)),
        Err(_canceled) => Err(Undelivered::Dropped),
    }
}

/// Errors after which the same record will never be accepted: a relay quarantines such a record after its
/// tries rather than retrying it for ever.
#[must_use]
pub fn is_permanent(error: &KafkaError) -> bool {
    use RDKafkaErrorCode as Code;
    matches!(
        error.rdkafka_error_code(),
        Some(
            Code::MessageSizeTooLarge
                | Code::InvalidMessageSize
                | Code::MessageBatchTooLarge
                | Code::UnknownTopicOrPartition
                | Code::UnknownTopic
                | Code::TopicAuthorizationFailed
                | Code::InvalidRecord
                | Code::PolicyViolation
                | Code::InvalidMessage
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_and_topic_errors_are_permanent_timeouts_are_not() {
        let refused = KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);
        assert!(is_permanent(&refused));
        assert!(is_permanent(&KafkaError::MessageProduction(
            RDKafkaErrorCode::UnknownTopicOrPartition
        )));
        assert!(!is_permanent(&KafkaError::MessageProduction(
            RDKafkaErrorCode::MessageTimedOut
        )));
        assert!(!is_permanent(&KafkaError::MessageProduction(
            RDKafkaErrorCode::BrokerTransportFailure
        )));
    }
}
