//! Kafka clients: the one place where they are configured.
//!
//! [`KafkaConfig`] carries the bootstrap servers and any librdkafka property to pass through unchanged
//! (SASL and TLS settings of a real cluster, for example), and builds the `ClientConfig` of every producer,
//! consumer and admin client of the pipeline. [`ensure_topic`] creates a topic and treats "already exists" as
//! success, so start-up can call it every time.
//!
//! [`ProducerConfig`] holds the producer knobs (idempotence, `acks=all`, compression, linger, batch size,
//! delivery timeout) with defaults fit for the relay; [`headers`] names the headers every record carries and
//! [`topics`] is the one place topic names are made. [`backoff`] is the one retry wait of the relay, the
//! consumer runtime and the sagas. [`send`] hands records over and follows them to the broker's
//! acknowledgement, and [`RebuildingProducer`] replaces a producer that failed fatally: the producing side
//! the relay, the dead-letter forwarder and the benchmarks share.
//!
//! Guarantees come from librdkafka's idempotent producer: with `enable.idempotence=true` records of one
//! partition are written once and in the order they were handed over, across retries. Nothing here uses Kafka
//! transactions: correctness rests on the outbox and on event-id dedup in consumers.
//!
//! ```no_run
//! # async fn run() -> Result<(), producers::KafkaAdminError> {
//! use producers::{KafkaConfig, ProducerConfig};
//!
//! let mut kafka = KafkaConfig::new("broker-1:9093,broker-2:9093");
//! kafka.properties.insert("security.protocol".into(), "SSL".into());
//! producers::ensure_topic(&kafka, "orders.events", 6).await?;
//! let config = kafka.producer_config(&ProducerConfig::default()); // idempotent, acks=all
//! # let _ = config;
//! # Ok(()) }
//! ```

pub mod backoff;
pub mod headers;
mod rebuilding;
pub mod send;
pub mod topics;

pub use rebuilding::RebuildingProducer;

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// An error and its causes on one line, `error: cause: cause`: the reason stored with a quarantined or
/// dead-lettered record, and what logs and test failures show.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Bootstrap servers used when `KAFKA_BOOTSTRAP` is not set: the local broker of `./dev up`.
pub const DEFAULT_BOOTSTRAP: &str = "127.0.0.1:9092";

/// How to reach the cluster.
#[derive(Clone, Debug)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list.
    pub bootstrap: String,
    /// librdkafka properties applied to every client after the defaults, e.g.
    /// `security.protocol=SASL_SSL`, `sasl.mechanism=SCRAM-SHA-512`.
    pub properties: BTreeMap<String, String>,
}

impl KafkaConfig {
    /// Settings for the given bootstrap servers and no extra properties.
    pub fn new(bootstrap: impl Into<String>) -> Self {
        Self {
            bootstrap: bootstrap.into(),
            properties: BTreeMap::new(),
        }
    }

    /// The configuration every client starts from: bootstrap servers plus the pass-through properties.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}

/// Producer knobs. The defaults suit the relay: idempotent, `acks=all`, lz4, 5 ms linger.
#[derive(Clone, Debug)]
pub struct ProducerConfig {
    /// librdkafka `linger.ms`: how long to wait for more records before sending a batch.
    pub linger: Duration,
    /// librdkafka `batch.size` in bytes.
    pub batch_bytes: u32,
    /// librdkafka `compression.type`: none, gzip, snappy, lz4 or zstd.
    pub compression: String,
    /// librdkafka `message.timeout.ms`: how long a record may wait for an acknowledgement before it fails.
    pub delivery_timeout: Duration,
    /// librdkafka `message.max.bytes`: larger records are refused before they are sent.
    pub max_message_bytes: u32,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            linger: Duration::from_millis(5),
            batch_bytes: 1_000_000,
            compression: "lz4".into(),
            delivery_timeout: Duration::from_secs(300),
            max_message_bytes: 1_000_000,
        }
    }
}

impl KafkaConfig {
    /// The configuration of an idempotent producer (`acks=all`, in-order retries) with `producer`'s knobs.
    /// Pass-through properties are applied last, so an operator can override any of them.
    pub fn producer_config(&self, producer: &ProducerConfig) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", producer.linger.as_millis().to_string())
            .set("batch.size", producer.batch_bytes.to_string())
            .set("compression.type", &producer.compression)
            .set(
                "message.timeout.ms",
                producer.delivery_timeout.as_millis().to_string(),
            )
            .set("message.max.bytes", producer.max_message_bytes.to_string())
            .set("queue.buffering.max.messages", "500000");
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}

/// What can go wrong while talking to the cluster.
#[derive(Debug, thiserror::Error)]
pub enum KafkaAdminError {
    /// The client could not be created (a bad property, for example).
    #[error("cannot create a Kafka client for {bootstrap}")]
    Client {
        bootstrap: String,
        #[source]
        source: KafkaError,
    },
    /// The broker refused to create the topic.
    #[error("cannot create topic {topic}")]
    CreateTopic {
        topic: String,
        #[source]
        source: KafkaError,
    },
}

/// The partitions of `topic` on `client`'s cluster, in order; none when the topic does not exist.
///
/// # Errors
/// When the cluster does not answer within `timeout`.
pub fn partitions<C: rdkafka::client::ClientContext>(
    client: &rdkafka::client::Client<C>,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<i32>, KafkaError> {
    let metadata = client.fetch_metadata(Some(topic), timeout)?;
    let mut partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    partitions.sort_unstable();
    Ok(partitions)
}

/// Creates `topic` with `partitions` partitions and replication factor 1 when it does not exist yet.
///
/// An existing topic is left as it is, whatever its partition count.
pub async fn ensure_topic(
    settings: &KafkaConfig,
    topic: &str,
    partitions: i32,
) -> Result<(), KafkaAdminError> {
    let admin: AdminClient<DefaultClientContext> =
        settings
            .client_config()
            .create()
            .map_err(|source| KafkaAdminError::Client {
                bootstrap: settings.bootstrap.clone(),
                source,
            })?;
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let create_error = |source| KafkaAdminError::CreateTopic {
        topic: topic.to_owned(),
        source,
    };
    let results = admin
        .create_topics([&new_topic], &options)
        .await
        .map_err(create_error)?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(create_error(KafkaError::AdminOp(code))),
        }
    }
    Ok(())
}
