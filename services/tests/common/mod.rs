//! Helpers shared by the services' integration tests: a registry, a codec, direct handler calls, and a
//! pipeline (service + relay) on the real broker.
#![allow(dead_code, reason = "each test binary uses part of the helpers")]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use consumers::{Handler, HandlerError, Incoming};
use domain::{AboutOrder, Message};
use outbox::{Relay, RelayConfig};
use producers::KafkaConfig;
use producers::headers::{self, RecordHeaders};
use producers::topics::Topics;
use rdkafka::producer::{FutureProducer, FutureRecord};
use schemas::{AvroCodec, Decoded};
use services::{Context, ServicesConfig};
use testkit::TestDb;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The registry server on a fresh database and an ephemeral port, stopped on drop.
pub struct Registry {
    pub url: String,
    _server: schemas::registry::LocalRegistry,
    _db: TestDb,
}

impl Registry {
    pub async fn start() -> Self {
        let db = TestDb::new().await;
        let server = schemas::registry::LocalRegistry::start(db.pool().clone())
            .await
            .unwrap();
        Registry {
            url: server.url().to_owned(),
            _server: server,
            _db: db,
        }
    }

    pub fn codec(&self) -> Arc<AvroCodec> {
        Arc::new(AvroCodec::new(&self.url).unwrap())
    }
}

/// A database, a registry and a handler context on topics no other test uses.
pub struct Env {
    pub db: TestDb,
    pub registry: Registry,
    pub codec: Arc<AvroCodec>,
    pub config: ServicesConfig,
}

impl Env {
    pub async fn new() -> Self {
        let db = TestDb::new().await;
        let registry = Registry::start().await;
        let codec = registry.codec();
        let prefix = testkit::unique_name("svc");
        let mut config = ServicesConfig {
            topics: Topics::with_prefix(format!("{prefix}-")),
            group_prefix: format!("{prefix}-"),
            command_partitions: 1,
            ..ServicesConfig::default()
        };
        config.consumer.backoff = Duration::from_millis(20);
        config.consumer.retry_delays = vec![Duration::from_millis(200)];
        Env {
            db,
            registry,
            codec,
            config,
        }
    }

    pub fn context(&self) -> Context {
        Context::new(
            self.db.pool().clone(),
            Arc::clone(&self.codec),
            self.config.topics.clone(),
            "test",
        )
    }

    /// `request` as the consumer runtime would hand it to a handler, with a fresh event id.
    pub async fn incoming<M: Message + AboutOrder>(&self, topic: &str, request: &M) -> Incoming {
        let json = serde_json::to_value(request).unwrap();
        let (payload, _) = self
            .codec
            .encode(topic, request.event_type(), &json)
            .await
            .unwrap();
        let event_id = Uuid::now_v7();
        Incoming {
            topic: topic.to_owned(),
            partition: 0,
            offset: 0,
            key: Some(request.order_id().to_string().into_bytes()),
            payload,
            headers: RecordHeaders::from([(headers::EVENT_ID.to_owned(), event_id.to_string())]),
            event_id,
        }
    }

    /// Applies `record` with `handler` in one transaction, as the runtime does (without the inbox).
    pub async fn apply<H: Handler>(
        &self,
        handler: &H,
        record: &Incoming,
    ) -> Result<(), HandlerError> {
        let mut tx = self.db.pool().begin().await.unwrap();
        handler.handle(&mut tx, record).await?;
        tx.commit().await.unwrap();
        Ok(())
    }

    /// The outbox records of `topic` not yet published, decoded, in write order.
    pub async fn outbox(&self, topic: &str) -> Vec<(String, Decoded)> {
        let rows: Vec<(String, Vec<u8>)> =
            sqlx::query_as("SELECT key, payload FROM outbox WHERE topic = $1 ORDER BY id")
                .bind(topic)
                .fetch_all(self.db.pool())
                .await
                .unwrap();
        let mut out = Vec::new();
        for (key, payload) in rows {
            out.push((key, self.codec.decode(&payload).await.unwrap()));
        }
        out
    }

    /// Runs `service` (one of the `services::run_*` functions) and the relay until the returned token fires.
    pub async fn start_pipeline<F, Fut>(&self, service: F) -> Pipeline
    where
        F: FnOnce(
            sqlx::PgPool,
            KafkaConfig,
            Arc<AvroCodec>,
            ServicesConfig,
            CancellationToken,
        ) -> Fut,
        Fut: Future<Output = Result<(), services::ServiceError>> + Send + 'static,
    {
        let kafka = testkit::kafka();
        for topic in self.config.topics.all() {
            producers::ensure_topic(&kafka, &topic, 1).await.unwrap();
        }
        let stop = CancellationToken::new();
        let relay = Relay::new(
            self.db.pool().clone(),
            &kafka,
            RelayConfig {
                poll_interval: Duration::from_millis(50),
                ..RelayConfig::default()
            },
        )
        .unwrap();
        let relay = tokio::spawn(relay.run(stop.clone()));
        let service = tokio::spawn(service(
            self.db.pool().clone(),
            kafka.clone(),
            Arc::clone(&self.codec),
            self.config.clone(),
            stop.clone(),
        ));
        Pipeline {
            kafka,
            stop,
            relay,
            service,
        }
    }
}

pub struct Pipeline {
    pub kafka: KafkaConfig,
    pub stop: CancellationToken,
    relay: tokio::task::JoinHandle<Result<(), outbox::OutboxError>>,
    service: tokio::task::JoinHandle<Result<(), services::ServiceError>>,
}

impl Pipeline {
    /// Produces `request` to `topic` in the wire format, keyed by its order id, with a fresh event id.
    pub async fn send<M: Message + AboutOrder>(
        &self,
        codec: &AvroCodec,
        topic: &str,
        request: &M,
    ) -> Uuid {
        let json = serde_json::to_value(request).unwrap();
        let (payload, schema_id) = codec
            .encode(topic, request.event_type(), &json)
            .await
            .unwrap();
        let event_id = Uuid::now_v7();
        let record_headers = RecordHeaders::from([
            (headers::EVENT_ID.to_owned(), event_id.to_string()),
            (
                headers::EVENT_TYPE.to_owned(),
                request.event_type().to_owned(),
            ),
            (headers::SCHEMA_ID.to_owned(), schema_id.to_string()),
        ]);
        let producer: FutureProducer = self.kafka.client_config().create().unwrap();
        let key = request.order_id().to_string();
        producer
            .send(
                FutureRecord::to(topic)
                    .key(&key)
                    .payload(&payload)
                    .headers(headers::to_kafka(&record_headers)),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
        event_id
    }

    /// Waits until `topic` holds `count` records, and returns them decoded with their keys and headers.
    pub async fn replies(
        &self,
        codec: &AvroCodec,
        topic: &str,
        count: i64,
    ) -> Vec<(String, RecordHeaders, Decoded)> {
        testkit::wait_for_records(&self.kafka, topic, count, Duration::from_secs(90)).await;
        let mut out = Vec::new();
        for record in testkit::read_topic(&self.kafka, topic).await {
            let decoded = codec.decode(&record.payload).await.unwrap();
            out.push((record.key.unwrap_or_default(), record.headers, decoded));
        }
        out
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.service.await.unwrap().unwrap();
        self.relay.await.unwrap().unwrap();
    }
}
