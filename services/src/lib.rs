//! The four services: orders, payments, inventory and delivery.
//!
//! Each service is a [`Responder`]: it loads what a request applies to, decides from that alone (a pure
//! `respond` function per service, table-tested for every state and request) and carries out what it
//! decided. One [`Shell`] runs any of them as a [`consumers::Handler`] on the consumer runtime, reading the
//! service's commands topic (`<service>.commands`, Avro in the Confluent wire format) and writing its
//! replies through the outbox in the same transaction as its effect and the inbox row. Every reply is keyed
//! by the order id. Run one with [`run`] until a cancellation token fires.
//!
//! # What each service promises
//! - **orders** ([`orders`]): [`orders::place_order`] validates the input with clear errors and is idempotent
//!   on the client's idempotency key (a double submit returns the same order id and writes one order). It
//!   appends `OrderPlaced` to the order's stream and updates the read model `orders_view` in one transaction.
//!   `CompleteOrder` / `CancelOrder` end the order. [`orders::get_order`] queries the read model.
//! - **payments** ([`payments`]): authorize, capture, void and refund through the payment provider, a
//!   separate party reached over HTTP ([`payments::ProviderClient`]), idempotent per (order, operation) (per
//!   request for refunds), so a retried call never charges twice. The provider's results come back as signed
//!   notifications to the service's callback endpoint ([`payments::callback`]) and are recorded once each,
//!   however often they come. A provider timeout is transient (retried in place). The payment is
//!   event-sourced (`domain::PaymentState`, stream id = order id) with a projection `payments`.
//! - **inventory** ([`inventory`]): reserves every line of an order or none; never oversells under any
//!   concurrency (row locks in (SKU, bucket) order, `FOR UPDATE SKIP LOCKED` bucket picking with a locking
//!   fallback, and a CHECK as the last line of defence); never rejects while stock is available.
//! - **delivery** ([`delivery`]): schedules and cancels deliveries; a carrier simulation
//!   ([`delivery::run_carrier`]) dispatches, delivers or fails them on its own after configured delays.
//!
//! # The reply contract (what the saga relies on)
//! Every handled request gets exactly one reply event:
//! - a request that already took effect gets the reply it got the first time (same ids and amounts);
//! - an undo of nothing gets its success reply: `ReleaseStock` with no reservation → `OrderStockReleased`;
//!   `VoidPayment` with no authorization → `PaymentVoided` with a zero amount (payment id = the order id's
//!   UUID, currency [`PaymentsConfig::void_currency`], when no payment exists at all; such a void is also
//!   sent to the provider under the order's key and recorded, so a later `AuthorizePayment` gets
//!   `PaymentDeclined` and charges nothing); `CancelDelivery` with
//!   nothing scheduled, or a delivery that failed before dispatch → `DeliveryCancelled` (delivery id = the
//!   order id's UUID when none exists); `RefundPayment` of a payment never captured → `PaymentRefunded`
//!   with zero amounts;
//! - a request that arrives after the entity moved past it gets the event of the current state, which tells
//!   the truth: `CancelDelivery` after dispatch → `DeliveryDispatched` (or `DeliveryCompleted` /
//!   `DeliveryFailed`); `VoidPayment` after capture → `PaymentCaptured`; `ReleaseStock` after commit →
//!   `OrderStockCommitted`; `ReserveStock` after a release or a commit → `OrderStockReleased` /
//!   `OrderStockCommitted`; `CommitStock` after a release → `OrderStockReleased`; `CompleteOrder` on a
//!   cancelled order → `OrderCancelled` and the other way round;
//! - a declined payment → `PaymentDeclined`; an order short of stock → `OrderStockRejected` with the first
//!   SKU short, what was asked and what was available.
//!
//! # What they do not do
//! - A forward request that cannot apply (capture without an authorization, commit without a reservation,
//!   complete an order never placed), an undecodable record or an unknown type is **poison**: dead-lettered
//!   with the reason, no reply. The saga's timers see to it.
//! - Ordering between requests of one order rests on the key (one partition) and the runtime handling a
//!   partition in order. A `VoidPayment` handled before its `AuthorizePayment` (redriven from the dead
//!   letters, say) is remembered and wins, and so is a `CancelDelivery` handled before its
//!   `ScheduleDelivery`.
//! - The payments handler waits for the provider's answer (not its result) inside the consumer's
//!   transaction.
//! - Provider timeouts are retried in place (they hold the partition), never sent to the delayed retry topic,
//!   so they do not reorder requests.
//! - The carrier is a simulation: its decisions (delivery failure) are a deterministic function of the seed
//!   and the order id (`domain::simulation::draw`), as the provider's declines are.
//!
//! ```no_run
//! # async fn run(pool: sqlx::PgPool, codec: std::sync::Arc<schemas::AvroCodec>) -> Result<(), services::ServiceError> {
//! use domain::Service;
//! use services::ServicesConfig;
//! let cancel = tokio_util::sync::CancellationToken::new();
//! let kafka = producers::KafkaConfig::new("127.0.0.1:9092");
//! services::run(Service::Inventory, pool, &kafka, codec, &ServicesConfig::default(), cancel).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod delivery;
mod error;
pub mod inventory;
pub mod orders;
pub mod payments;
pub mod shell;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use consumers::{ConsumerConfig, ConsumerRuntime, HandlerError, Incoming};
use domain::{AboutOrder, Currency, Message, OrderId, Service};
use outbox::{EventStore, Metadata};
use producers::KafkaConfig;
use producers::topics::Topics;
use schemas::AvroCodec;
use serde::de::DeserializeOwned;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

pub use delivery::CarrierConfig;
pub use error::ServiceError;
pub use payments::PaymentsConfig;
pub use shell::{Decision, Responder, Shell};

/// Configuration of the four services, with defaults fit for the local demo.
#[derive(Clone, Debug)]
pub struct ServicesConfig {
    /// Topic names (a prefix keeps environments apart).
    pub topics: Topics,
    /// The region written into every record's `origin_region` header.
    pub region: String,
    /// The other regions whose orders events MirrorMaker 2 replicates into this region's cluster
    /// (`<region>.orders.events`): the global view ([`orders::global`]) reads them too.
    pub remote_regions: Vec<String>,
    /// Consumer groups are `<group_prefix><service>`, e.g. `orderflow-inventory`.
    pub group_prefix: String,
    /// Partitions of a commands topic created at start when missing (an existing topic is left as it is).
    pub command_partitions: i32,
    /// Template of every service's consumer settings; `group_id` and `topics` are replaced per service.
    pub consumer: ConsumerConfig,
    /// The payments service: where the provider is, where its results come in.
    pub payments: PaymentsConfig,
    /// The delivery service's carrier simulation.
    pub carrier: CarrierConfig,
}

impl Default for ServicesConfig {
    fn default() -> Self {
        Self {
            topics: Topics::default(),
            region: "local".into(),
            remote_regions: Vec::new(),
            group_prefix: "orderflow-".into(),
            command_partitions: 4,
            consumer: ConsumerConfig::new("", Vec::new()),
            payments: PaymentsConfig::default(),
            carrier: CarrierConfig::default(),
        }
    }
}

impl ServicesConfig {
    /// The consumer settings of `service`: its group, reading its commands topic.
    pub fn consumer_settings(&self, service: Service) -> ConsumerConfig {
        ConsumerConfig {
            group_id: format!("{}{service}", self.group_prefix),
            topics: vec![self.topics.commands(service)],
            ..self.consumer.clone()
        }
    }
}

/// What every handler needs: the event store (writing Avro), the codec to decode requests, the topics.
#[derive(Clone, Debug)]
pub struct Context {
    pub store: EventStore<Arc<AvroCodec>>,
    pub codec: Arc<AvroCodec>,
    pub topics: Topics,
}

impl Context {
    /// A context writing with `codec` to `topics`, marked as written in `region`.
    pub fn new(
        pool: PgPool,
        codec: Arc<AvroCodec>,
        topics: Topics,
        region: impl Into<String>,
    ) -> Self {
        Self {
            store: EventStore::new(pool, Arc::clone(&codec), topics.clone(), region),
            codec,
            topics,
        }
    }

    fn from_config(pool: PgPool, codec: Arc<AvroCodec>, config: &ServicesConfig) -> Self {
        Self::new(pool, codec, config.topics.clone(), config.region.clone())
    }

    /// Decodes a request of type `T`: an unknown type or undecodable record is poison, a registry that does
    /// not answer is transient.
    async fn decode<T: DeserializeOwned>(&self, record: &Incoming) -> Result<T, HandlerError> {
        self.codec
            .decode_as::<T>(&record.payload)
            .await
            .map_err(|e| ServiceError::Schema(e).into())
    }

    /// Publishes `reply` (not a stream event) to the events topic of `service`, keyed by its order id so
    /// that it reaches the order's partition.
    async fn reply<E: Message + AboutOrder>(
        &self,
        conn: &mut PgConnection,
        service: Service,
        reply: E,
        metadata: &Metadata,
    ) -> Result<(), ServiceError> {
        let topic = self.topics.events(service);
        metrics::counter!("service_repeated_replies_total", "type" => reply.event_type())
            .increment(1);
        let key = reply.order_id().to_string();
        self.store
            .publish(conn, &topic, &key, &[reply], metadata)
            .await?;
        Ok(())
    }
}

/// The metadata of a write caused by `record` about `order_id`.
fn caused_by(order_id: OrderId, record: &Incoming) -> Metadata {
    let mut metadata = Metadata::new(order_id.as_uuid()).caused_by(record.event_id);
    metadata.traceparent = record.headers.get(producers::headers::TRACEPARENT).cloned();
    metadata
}

/// The default currency of replies that have no payment to take one from.
fn default_currency() -> Currency {
    Currency::EUR
}

/// Runs `responder` in the [`Shell`] on its service's commands topic until `cancel` fires.
async fn run_responder<R: Responder>(
    pool: PgPool,
    kafka: &KafkaConfig,
    config: &ServicesConfig,
    responder: R,
    cancel: CancellationToken,
) -> Result<(), ServiceError> {
    let settings = config.consumer_settings(R::SERVICE);
    for topic in &settings.topics {
        producers::ensure_topic(kafka, topic, config.command_partitions).await?;
    }
    tracing::info!(service = %R::SERVICE, group = %settings.group_id, "service starting");
    let runtime = ConsumerRuntime::new(pool, kafka, settings, Shell::from(responder))?;
    runtime.run(cancel).await?;
    Ok(())
}

/// Runs `service` on its commands topic (`<service>.commands`) until `cancel` fires. Payments also serves
/// the provider's results; delivery runs its carrier simulation; either returns when both stopped, with the
/// first error.
///
/// # Errors
/// When the service cannot start, or its consumer fails.
pub async fn run(
    service: Service,
    pool: PgPool,
    kafka: &KafkaConfig,
    codec: Arc<AvroCodec>,
    config: &ServicesConfig,
    cancel: CancellationToken,
) -> Result<(), ServiceError> {
    let context = Context::from_config(pool.clone(), codec, config);
    match service {
        Service::Orders => {
            let orders = orders::Orders::new(context);
            run_responder(pool, kafka, config, orders, cancel).await
        }
        Service::Payments => run_payments(pool, kafka, context, config, cancel).await,
        Service::Inventory => {
            let inventory = inventory::Inventory::new(context);
            run_responder(pool, kafka, config, inventory, cancel).await
        }
        Service::Delivery => run_delivery(pool, kafka, context, config, cancel).await,
    }
}

/// The payments service: the consumer of its commands, and the endpoint the provider's results come in at,
/// which it listens on before it consumes anything.
async fn run_payments(
    pool: PgPool,
    kafka: &KafkaConfig,
    context: Context,
    config: &ServicesConfig,
    cancel: CancellationToken,
) -> Result<(), ServiceError> {
    let settings = &config.payments;
    let listener = tokio::net::TcpListener::bind(settings.callback.listen)
        .await
        .map_err(|e| {
            ServiceError::Task(format!(
                "cannot listen on {} for the provider's results: {e}",
                settings.callback.listen
            ))
        })?;
    let provider = payments::ProviderClient::new(&settings.provider_url, settings.request_timeout)?;
    let service = payments::Payments::new(context, provider, settings.clone());
    let endpoint = payments::callback::router(
        pool.clone(),
        service.recorder().clone(),
        settings.callback.secret.clone(),
    );
    tracing::info!(addr = %settings.callback.listen, "payments listening for the provider's results");
    let serve = |cancel: CancellationToken| async move {
        web::serve(listener, endpoint, cancel.cancelled_owned())
            .await
            .map_err(|e| ServiceError::Task(format!("callback endpoint: {e}")))
    };
    run_beside(pool, kafka, config, service, serve, cancel).await
}

/// The delivery service and its carrier simulation, until `cancel` fires or either fails.
async fn run_delivery(
    pool: PgPool,
    kafka: &KafkaConfig,
    context: Context,
    config: &ServicesConfig,
    cancel: CancellationToken,
) -> Result<(), ServiceError> {
    let carrier = {
        let (context, carrier) = (context.clone(), config.carrier.clone());
        move |cancel| delivery::run_carrier(context, carrier, cancel)
    };
    let delivery = delivery::Delivery::new(context, config.carrier.clone());
    run_beside(pool, kafka, config, delivery, carrier, cancel).await
}

/// Runs `responder`'s consumer and `companion` (what the service runs beside it: the carrier, the callback
/// endpoint) until `cancel` fires or either ends; returns the first error.
async fn run_beside<R, C, F>(
    pool: PgPool,
    kafka: &KafkaConfig,
    config: &ServicesConfig,
    responder: R,
    companion: C,
    cancel: CancellationToken,
) -> Result<(), ServiceError>
where
    R: Responder,
    C: FnOnce(CancellationToken) -> F,
    F: Future<Output = Result<(), ServiceError>> + Send + 'static,
{
    // A token of our own, so that a consumer that fails stops its companion and not the caller's other parts.
    let cancel = cancel.child_token();
    let companion = tokio::spawn(companion(cancel.clone()));
    let consumed = run_responder(pool, kafka, config, responder, cancel.clone()).await;
    // Whatever ended the consumer ends the companion too.
    cancel.cancel();
    let companion = companion
        .await
        .unwrap_or_else(|e| Err(ServiceError::Task(format!("{} companion: {e}", R::SERVICE))));
    consumed.and(companion)
}

/// Poll intervals and batch sizes must be positive; used by the carrier.
fn at_least(duration: Duration, floor: Duration) -> Duration {
    duration.max(floor)
}
