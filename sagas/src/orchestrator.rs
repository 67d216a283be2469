//! The orchestrator runtime: the services' events in (a [`consumers::Handler`]), saga commands out (the
//! outbox), and the timer poller, until cancelled.

use std::sync::Arc;

use consumers::{ConsumerConfig, ConsumerRuntime, Handler, HandlerError, Incoming};
use domain::Service;
use outbox::Metadata;
use producers::KafkaConfig;
use producers::headers::TRACEPARENT;
use producers::topics::Topics;
use schemas::AvroCodec;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::config::SagaConfig;
use crate::error::SagaError;
use crate::store::SagaStore;
use crate::timers::{TimerConfig, run_timers};
use crate::wire::reply_of;

/// The consumer group of the orchestrator.
pub const DEFAULT_GROUP: &str = "orderflow-orchestrator";

/// The topics the orchestrator reads: `orders.events`, `inventory.events`, `payments.events` and
/// `delivery.events` of `topics`.
#[must_use]
pub fn subscribed_topics(topics: &Topics) -> Vec<String> {
    Service::ALL
        .into_iter()
        .map(|service| topics.events(service))
        .collect()
}

/// Settings of [`run_orchestrator`] besides the saga's own [`SagaConfig`].
#[derive(Debug, Clone)]
pub struct OrchestratorConfig {
    /// The region written into the commands' `origin_region` header.
    pub region: String,
    /// The consumer of the services' events; its `topics` should be [`subscribed_topics`].
    pub consumer: ConsumerConfig,
    /// The timer poller.
    pub timers: TimerConfig,
}

impl OrchestratorConfig {
    /// Defaults for `topics`: group [`DEFAULT_GROUP`], region `local`, default consumer and timer settings.
    #[must_use]
    pub fn new(topics: &Topics) -> Self {
        Self {
            region: "local".to_owned(),
            consumer: ConsumerConfig::new(DEFAULT_GROUP, subscribed_topics(topics)),
            timers: TimerConfig::default(),
        }
    }
}

/// The orchestrator's [`Handler`]: decodes a record of the services' events, routes it to the saga of its
/// order and handles it there ([`SagaStore::handle`]) in the runtime's transaction, so the saga's events,
/// its commands, its timer and the inbox row commit together.
///
/// Failure classes: an undecodable record, an event type the orchestrator does not read, or a reply to a
/// saga that was never started is [`HandlerError::Poison`] (dead-lettered, the partition moves on), and so
/// is a command whose schema the registry refuses (409 incompatible); a registry or database that does not
/// answer, and a [`SagaError::Conflict`], are [`HandlerError::Transient`] (retried in place: reload and
/// decide again). Schema errors are classified as for the services ([`schemas::SchemaError::is_transient`]).
#[derive(Debug)]
pub struct Orchestrator<C = AvroCodec> {
    store: Arc<SagaStore<Arc<C>>>,
    codec: Arc<C>,
}

impl<C> Clone for Orchestrator<C> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            codec: Arc::clone(&self.codec),
        }
    }
}

impl Orchestrator<AvroCodec> {
    /// An orchestrator writing commands to the commands topics of `topics` on `pool`, encoded and decoded
    /// with `codec`, marked as written in `region`.
    pub fn new(
        pool: PgPool,
        codec: Arc<AvroCodec>,
        topics: Topics,
        region: impl Into<String>,
        config: SagaConfig,
    ) -> Self {
        let store = SagaStore::new(pool, Arc::clone(&codec), topics, region, config);
        Self {
            store: Arc::new(store),
            codec,
        }
    }

    /// The saga store it writes to.
    pub fn store(&self) -> &Arc<SagaStore<Arc<AvroCodec>>> {
        &self.store
    }
}

impl Handler for Orchestrator<AvroCodec> {
    async fn handle(&self, tx: &mut PgConnection, record: &Incoming) -> Result<(), HandlerError> {
        let decoded = self.codec.decode(&record.payload).await.map_err(|e| {
            if e.is_transient() {
                HandlerError::Transient(e.into())
            } else {
                HandlerError::Poison(e.into())
            }
        })?;
        let reply = reply_of(&decoded.event_type, decoded.event)
            .map_err(|e| HandlerError::Poison(SagaError::Decode(e).into()))?;
        let Some(reply) = reply else {
            return Ok(());
        };
        let metadata = Metadata {
            correlation_id: reply.order_id.into(),
            causation_id: Some(record.event_id),
            traceparent: record.headers.get(TRACEPARENT).cloned(),
        };
        self.store
            .handle(tx, reply.order_id, reply.input, &metadata)
            .await
            .map(drop)
            .map_err(classify)
    }
}

/// How the consumer runtime handles a failure of the saga store ([`SagaError::is_transient`]).
fn classify(error: SagaError) -> HandlerError {
    if error.is_transient() {
        HandlerError::Transient(error.into())
    } else {
        HandlerError::Poison(error.into())
    }
}

/// Runs the orchestrator until `cancel` is cancelled: a consumer of [`subscribed_topics`] applying the
/// services' events to their sagas ([`Orchestrator`]), and the timer poller ([`run_timers`]). On
/// cancellation the consumer finishes the record each partition is applying and commits its offsets, and
/// the poller stops between timers. Returns when both have stopped; an error of the consumer stops the
/// poller too.
///
/// # Errors
/// [`SagaError::Consumer`] when the consumer cannot be created or fails.
pub async fn run_orchestrator(
    pool: PgPool,
    kafka: KafkaConfig,
    codec: impl Into<Arc<AvroCodec>>,
    topics: Topics,
    config: SagaConfig,
    settings: OrchestratorConfig,
    cancel: CancellationToken,
) -> Result<(), SagaError> {
    let orchestrator = Orchestrator::new(
        pool.clone(),
        codec.into(),
        topics,
        settings.region.clone(),
        config,
    );
    let store = Arc::clone(orchestrator.store());
    let consumer = ConsumerRuntime::new(pool, &kafka, settings.consumer, orchestrator)?;
    let stop = cancel.child_token();
    let timers = tokio::spawn(run_timers(store, settings.timers, stop.clone()));
    tracing::info!("orchestrator running");
    let result = consumer.run(stop.clone()).await;
    stop.cancel();
    if let Err(e) = timers.await {
        tracing::error!(error = %e, "saga timer poller panicked");
    }
    tracing::info!("orchestrator stopped");
    result.map_err(SagaError::from)
}
