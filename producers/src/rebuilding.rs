//! [`RebuildingProducer`]: a producer that replaces itself after a fatal error.
//!
//! An idempotent producer that fails fatally (out of step with the broker: an out-of-order sequence number,
//! a producer id it cannot get) fails every record from then on, and librdkafka never recovers it. The
//! relay and the consumer runtime's dead-letter forwarder both recover the same way: on a failure they ask
//! [`rebuild_if_fatal`](RebuildingProducer::rebuild_if_fatal), which puts a new producer in its place.

use std::sync::{PoisonError, RwLock};

use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, Producer as _};
use rdkafka::types::RDKafkaErrorCode;

use crate::{KafkaConfig, ProducerConfig};

/// A producer of `producer_config(config)` on `kafka`, replaced by a new one after a fatal error.
pub struct RebuildingProducer {
    kafka: KafkaConfig,
    config: ProducerConfig,
    current: RwLock<FutureProducer>,
}

impl RebuildingProducer {
    /// A new producer with `config`'s knobs on `kafka`'s cluster.
    ///
    /// # Errors
    /// When librdkafka refuses the configuration.
    pub fn new(kafka: &KafkaConfig, config: &ProducerConfig) -> Result<Self, KafkaError> {
        let producer = kafka.producer_config(config).create()?;
        Ok(Self {
            kafka: kafka.clone(),
            config: config.clone(),
            current: RwLock::new(producer),
        })
    }

    /// The producer to send with now (a handle: cheap to clone, shares the one client).
    pub fn current(&self) -> FutureProducer {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The fatal error of the current producer, if it has one.
    pub fn fatal_error(&self) -> Option<(RDKafkaErrorCode, String)> {
        self.current().client().fatal_error()
    }

    /// Replaces the producer when it failed fatally and returns its fatal error; `None` when it did not
    /// fail. When a new producer cannot be created, the old one stays (and the next call tries again).
    pub fn rebuild_if_fatal(&self) -> Option<(RDKafkaErrorCode, String)> {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let fatal = current.client().fatal_error()?;
        match self.kafka.producer_config(&self.config).create() {
            Ok(producer) => {
                tracing::error!(code = ?fatal.0, reason = %fatal.1,
                    "the producer failed fatally; replaced it with a new one");
                *current = producer;
            }
            Err(e) => tracing::error!(code = ?fatal.0, reason = %fatal.1, error = %e,
                "the producer failed fatally and a new one cannot be created"),
        }
        Some(fatal)
    }
}
