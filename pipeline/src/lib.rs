//! The whole pipeline in one process, for `orderflow demo`, `orderflow bench pipeline` and the end-to-end
//! tests: the schema registry (unless one is given), the outbox relay, the four services and the saga
//! orchestrator, each a task under one cancellation token.
//!
//! [`Pipeline::start`] creates the topics and starts every part;
//! [`Pipeline::stop`] cancels them and waits, and reports the first part that failed. A part that ends on
//! its own while the pipeline runs is an error the caller sees from [`Pipeline::check`].
//!
//! `orderflow serve <part>` runs the same parts one per process ([`Part`]).
//!
//! Least privilege: with [`PipelineConfig::roles`] set, each part (and the in-process registry) connects as
//! its own database role ([`db::Role`]), which can touch only that part's tables, the outbox and the inbox;
//! the pool given to [`Pipeline::start`] migrates and serves the caller (the demo's workload and report).
//! Without it every part shares that pool, as on a database where the roles cannot be used.
//!
//! ```no_run
//! # async fn run(pool: sqlx::PgPool) -> anyhow::Result<()> {
//! use pipeline::{Pipeline, PipelineConfig};
//!
//! let config = PipelineConfig::new(producers::KafkaConfig::new(producers::DEFAULT_BOOTSTRAP));
//! let pipeline = Pipeline::start(pool, config).await?;
//! // ... place orders through the orders service, then:
//! pipeline.check()?; // no part ended on its own
//! pipeline.stop().await
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

pub mod report;
pub mod workload;

use anyhow::Context as _;
use outbox::{EventStore, Relay, RelayConfig};
use producers::KafkaConfig;
use producers::topics::{Service, Topics};
use schemas::AvroCodec;
use schemas::registry::LocalRegistry;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// One part of the pipeline; each can also run as its own process (`orderflow serve <part>`). The schema
/// registry is not a part: [`Pipeline`] serves one itself, or the parts use `SCHEMA_REGISTRY_URL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    /// Publishes the outbox.
    Relay,
    /// One of the four services.
    Service(Service),
    /// Drives each order's saga.
    Orchestrator,
    /// Sends notifications (order-status webhooks) until their receivers acknowledge them.
    Notifier,
    /// The simulated payment provider, a separate party: its HTTP API, its books, and its results sent to
    /// the payments service by a notifier worker of its own.
    Provider,
    /// `orders_global`: this region's orders and the other regions' replicated ones
    /// (`services::orders::global`).
    GlobalView,
}

impl Part {
    /// Every part, in start order.
    pub const ALL: [Self; 9] = [
        Self::Relay,
        Self::Provider,
        Self::Service(Service::Orders),
        Self::Service(Service::Payments),
        Self::Service(Service::Inventory),
        Self::Service(Service::Delivery),
        Self::Orchestrator,
        Self::Notifier,
        Self::GlobalView,
    ];

    /// The part's name on the command line: `relay`, a service's name, or `orchestrator`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Relay => "relay",
            Self::Service(service) => service.name(),
            Self::Orchestrator => "orchestrator",
            Self::Notifier => "notifier",
            Self::Provider => "provider",
            Self::GlobalView => "orders-global",
        }
    }

    /// What the part does, in a line (for `--help`).
    #[must_use]
    pub const fn description(self) -> &'static str {
        match self {
            Self::Relay => "The outbox relay (also `orderflow relay`)",
            Self::Service(Service::Orders) => "The orders service and its read model",
            Self::Service(Service::Payments) => {
                "The payments service, and the endpoint the provider's results come in at"
            }
            Self::Service(Service::Inventory) => "The inventory service: stock per SKU in buckets",
            Self::Service(Service::Delivery) => "The delivery service and its carrier simulation",
            Self::Orchestrator => "The order saga orchestrator, with durable timers",
            Self::Notifier => {
                "Sends notifications until acknowledged (also `orderflow notify run`)"
            }
            Self::Provider => "The simulated payment provider: its HTTP API, books and results",
            Self::GlobalView => {
                "The global view of orders: this region's and the other regions' replicated ones"
            }
        }
    }

    /// The database role the part connects as when [`PipelineConfig::roles`] is set.
    #[must_use]
    pub const fn role(self) -> db::Role {
        match self {
            Self::Relay => db::Role::Relay,
            Self::Service(Service::Orders) => db::Role::Orders,
            Self::Service(Service::Payments) => db::Role::Payments,
            Self::Service(Service::Inventory) => db::Role::Inventory,
            Self::Service(Service::Delivery) => db::Role::Delivery,
            Self::Orchestrator => db::Role::Orchestrator,
            Self::Notifier => db::Role::Notifier,
            Self::Provider => db::Role::Provider,
            Self::GlobalView => db::Role::Orders,
        }
    }

    /// The topics the part reads (besides the `.retry` topics of its consumer group).
    #[must_use]
    pub fn consumes(self, topics: &Topics) -> Vec<String> {
        match self {
            // The outbox table, not a topic; the notifications table; HTTP requests.
            Self::Relay | Self::Notifier | Self::Provider => Vec::new(),
            Self::Service(service) => vec![topics.commands(service)],
            Self::Orchestrator => Service::ALL.map(|s| topics.events(s)).to_vec(),
            // And the other regions' replicated copies, when there are other regions.
            Self::GlobalView => vec![topics.events(Service::Orders)],
        }
    }

    /// The topics the part writes to, through the outbox (besides the `.retry` and `.dlq` topics of its
    /// consumer group). The relay publishes whatever the outbox holds: every one of them.
    #[must_use]
    pub fn produces(self, topics: &Topics) -> Vec<String> {
        match self {
            Self::Relay => topics.all(),
            Self::Service(service) => vec![topics.events(service)],
            Self::Orchestrator => Service::ALL.map(|s| topics.commands(s)).to_vec(),
            Self::Notifier | Self::Provider | Self::GlobalView => Vec::new(),
        }
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Part {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|part| part.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|p| p.name()).collect();
                format!(
                    "unknown part {name:?}: expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// Which part reads and writes which topic, as a Markdown table (the README shows it).
#[must_use]
pub fn topology(topics: &Topics) -> String {
    let mut table = String::from("| part | reads | writes (through the outbox) |\n|---|---|---|\n");
    for part in Part::ALL {
        let list = |names: Vec<String>| {
            if names.is_empty() {
                "the outbox table".to_owned()
            } else {
                names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let (reads, writes) = match part {
            Part::Relay => (
                list(part.consumes(topics)),
                format!("publishes {}", list(part.produces(topics))),
            ),
            Part::Notifier => (
                "the notifications table".to_owned(),
                "POSTs to subscribers".to_owned(),
            ),
            Part::Provider => (
                "the payments service's HTTP requests".to_owned(),
                "its books; results POSTed to the payments service".to_owned(),
            ),
            Part::GlobalView => (
                format!(
                    "{} and the other regions' replicated copies (`<region>.orders.events`)",
                    list(part.consumes(topics))
                ),
                "the `orders_global` table".to_owned(),
            ),
            _ => (list(part.consumes(topics)), list(part.produces(topics))),
        };
        table.push_str(&format!("| {part} | {reads} | {writes} |\n"));
    }
    table
}

/// Where the registry is.
#[derive(Clone, Debug)]
pub enum RegistrySetting {
    /// Serve one in this process on an ephemeral port of 127.0.0.1, on the pipeline's database.
    InProcess,
    /// Use the registry at this URL (`SCHEMA_REGISTRY_URL`).
    Url(String),
}

/// How the pipeline runs.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    pub kafka: KafkaConfig,
    pub registry: RegistrySetting,
    /// Partitions of each topic the pipeline creates.
    pub partitions: i32,
    pub relay: RelayConfig,
    /// The services, and what every part shares with them: topic names (a prefix isolates one run from
    /// another on a shared broker), the region written on every record, consumer group names and settings.
    pub services: services::ServicesConfig,
    pub saga: sagas::SagaConfig,
    pub notifier: notify::NotifierConfig,
    /// The simulated payment provider. Its callback URL and secret are the payments service's
    /// ([`PipelineConfig::resolve_addresses`]).
    pub provider: provider::ProviderConfig,
    /// Where the provider's API listens; port 0 picks a free one.
    pub provider_listen: SocketAddr,
    /// Each part connects as its own role with these settings (their pool limits are per part); `None`: every
    /// part uses the pool given to [`Pipeline::start`].
    pub roles: Option<db::RoleConfig>,
    /// Serve the orders HTTP API ([`api`]) here, on the orders part's pool; `None`: no API.
    pub http: Option<HttpConfig>,
}

/// Where and how the orders HTTP API is served.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// The address to listen on; port 0 picks a free one ([`Pipeline::http_addr`] says which).
    pub listen: SocketAddr,
    pub api: api::ApiConfig,
}

impl PipelineConfig {
    /// Defaults for a local run on `kafka`: consumers with a 6 s session timeout (groups form faster), a
    /// relay that polls every 100 ms besides its notifications.
    #[must_use]
    pub fn new(kafka: KafkaConfig) -> Self {
        let mut services = services::ServicesConfig::default();
        services.consumer.session_timeout = Duration::from_secs(6);
        // Free ports, picked at start: pipelines of several tests run side by side.
        services.payments.callback.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            kafka,
            registry: RegistrySetting::InProcess,
            partitions: 6,
            relay: RelayConfig {
                poll_interval: Duration::from_millis(100),
                ..RelayConfig::default()
            },
            services,
            saga: sagas::SagaConfig::default(),
            notifier: notify::NotifierConfig::default(),
            provider: provider::ProviderConfig::default(),
            provider_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            roles: None,
            http: None,
        }
    }

    /// Every topic the pipeline writes or reads.
    #[must_use]
    pub fn all_topics(&self) -> Vec<String> {
        self.services.topics.all()
    }
}

impl PipelineConfig {
    /// Gives the provider's API and the payments service's callback endpoint a free port each where they
    /// have port 0, and points each at the other: the payments service at the provider's API, the provider's
    /// results at the callback endpoint, signed with the endpoint's secret. Parts restarted later keep the
    /// ports.
    ///
    /// # Errors
    /// When no free port can be had.
    pub fn resolve_addresses(&mut self) -> anyhow::Result<()> {
        let payments = &mut self.services.payments;
        payments.callback.listen = with_free_port(payments.callback.listen)?;
        self.provider_listen = with_free_port(self.provider_listen)?;
        payments.provider_url = format!("http://{}", self.provider_listen);
        self.provider.callback.url = Some(format!(
            "http://{}{}",
            payments.callback.listen,
            services::payments::CALLBACK_PATH
        ));
        self.provider
            .callback
            .secret
            .clone_from(&payments.callback.secret);
        Ok(())
    }

    /// Creates every topic of [`all_topics`](Self::all_topics) that does not exist yet, with
    /// [`partitions`](Self::partitions) partitions. Clusters that do not create topics on first use (most
    /// production ones, and `./dev up`'s) need this before the relay publishes anything.
    ///
    /// # Errors
    /// When the cluster refuses to create one of them.
    pub async fn ensure_topics(&self) -> anyhow::Result<()> {
        for topic in self.all_topics() {
            producers::ensure_topic(&self.kafka, &topic, self.partitions)
                .await
                .with_context(|| format!("failed to create topic {topic}"))?;
        }
        Ok(())
    }
}

/// `addr`, or when its port is 0 the same host with a port free now.
fn with_free_port(addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    if addr.port() != 0 {
        return Ok(addr);
    }
    let probe = std::net::TcpListener::bind(addr)
        .with_context(|| format!("failed to find a free port on {}", addr.ip()))?;
    Ok(probe.local_addr()?)
}

/// What every part shares.
#[derive(Clone)]
pub struct Shared {
    /// The pool given to [`Pipeline::start`], and the pool of every part that has none of its own.
    pub pool: PgPool,
    /// Each part's pool on its own role, when [`PipelineConfig::roles`] is set.
    part_pools: HashMap<Part, PgPool>,
    pub config: PipelineConfig,
    pub registry_url: String,
    pub codec: Arc<AvroCodec>,
    pub store: EventStore<Arc<AvroCodec>>,
}

impl Shared {
    /// The shared state of parts on `pool`, encoding through the registry at `registry_url`.
    ///
    /// # Errors
    /// When the registry client cannot be built.
    pub fn new(pool: PgPool, config: PipelineConfig, registry_url: String) -> anyhow::Result<Self> {
        let codec =
            Arc::new(AvroCodec::new(&registry_url).context("failed to create the Avro codec")?);
        let store = EventStore::new(
            pool.clone(),
            codec.clone(),
            config.services.topics.clone(),
            config.services.region.clone(),
        );
        Ok(Self {
            pool,
            part_pools: HashMap::new(),
            config,
            registry_url,
            codec,
            store,
        })
    }

    /// What finance's `reconcile --apply` repairs through on this pipeline: its provider's API, and the
    /// payments service's recorder on the shared pool.
    ///
    /// # Errors
    /// When the provider's client cannot be built.
    pub fn repairer(&self) -> anyhow::Result<ops::reconcile::Repairer> {
        let services = &self.config.services;
        let provider = services::payments::ProviderClient::new(
            &services.payments.provider_url,
            services.payments.request_timeout,
        )?;
        let context = services::Context::new(
            self.pool.clone(),
            Arc::clone(&self.codec),
            services.topics.clone(),
            services.region.clone(),
        );
        Ok(ops::reconcile::Repairer::new(
            provider,
            services::payments::Recorder::new(context),
        ))
    }

    /// The pool `part` runs on: its own role's, or the shared one.
    #[must_use]
    pub fn pool_of(&self, part: Part) -> &PgPool {
        self.part_pools.get(&part).unwrap_or(&self.pool)
    }
}

/// The running pipeline.
pub struct Pipeline {
    shared: Shared,
    cancel: CancellationToken,
    parts: Vec<Running>,
    /// The registry this process serves, when [`RegistrySetting::InProcess`].
    registry: Option<LocalRegistry>,
    /// The orders HTTP API, when [`PipelineConfig::http`] is set.
    http: Option<ApiTask>,
}

/// The orders HTTP API ([`api`]) running in this process, on the orders part's pool.
pub struct ApiTask {
    addr: SocketAddr,
    cancel: CancellationToken,
    handle: JoinHandle<std::io::Result<()>>,
}

impl ApiTask {
    /// Listens on `http.listen` and serves the API, placing orders as the orders part (its role's pool).
    ///
    /// # Errors
    /// When the address cannot be listened on.
    pub async fn start(shared: &Shared, http: &HttpConfig) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(http.listen)
            .await
            .with_context(|| format!("failed to listen on {} for the orders API", http.listen))?;
        let addr = listener.local_addr()?;
        let store = EventStore::new(
            shared.pool_of(Part::Service(Service::Orders)).clone(),
            shared.codec.clone(),
            shared.config.services.topics.clone(),
            shared.config.services.region.clone(),
        );
        let cancel = CancellationToken::new();
        let api = api::Api::new(store, http.api.clone());
        let handle = tokio::spawn(api::serve(listener, api, cancel.clone()));
        tracing::info!(%addr, "orders API listening");
        Ok(Self {
            addr,
            cancel,
            handle,
        })
    }

    /// Where it listens.
    #[must_use]
    pub const fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether it stopped.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Closes the listener and waits for the requests in flight.
    ///
    /// # Errors
    /// When serving failed or panicked.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.cancel.cancel();
        match self.handle.await {
            Ok(served) => served.context("the orders API failed"),
            Err(e) => Err(anyhow::anyhow!("the orders API panicked: {e}")),
        }
    }
}

/// A part's task, stopped by its own token (a child of the pipeline's).
struct Running {
    part: Part,
    cancel: CancellationToken,
    handle: JoinHandle<anyhow::Result<()>>,
}

impl Pipeline {
    /// Migrates, creates the topics and starts every part (each on its own role with
    /// [`PipelineConfig::roles`]).
    ///
    /// # Errors
    /// When the database or the broker cannot be reached, a part cannot connect as its role, or a part
    /// cannot start.
    pub async fn start(pool: PgPool, config: PipelineConfig) -> anyhow::Result<Self> {
        Self::start_parts(pool, config, &Part::ALL).await
    }

    /// Like [`start`](Self::start), with only `parts` (and the registry, when
    /// [`RegistrySetting::InProcess`]).
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub async fn start_parts(
        pool: PgPool,
        mut config: PipelineConfig,
        parts: &[Part],
    ) -> anyhow::Result<Self> {
        config.resolve_addresses()?;
        db::migrate(&pool)
            .await
            .context("failed to migrate the database")?;
        config.ensure_topics().await?;
        let mut registry = None;
        let registry_url = match &config.registry {
            RegistrySetting::Url(url) => url.clone(),
            RegistrySetting::InProcess => {
                // A pool of its own: writers encode inside their transactions and may wait on the registry,
                // which must never wait for one of their connections.
                let registry_pool = match &config.roles {
                    Some(roles) => {
                        let timeout = roles.admin().acquire_timeout;
                        let roles = roles.clone().with_limits(4, timeout);
                        db::connect_as(&roles, db::Role::Registry)
                            .await
                            .context("failed to connect the registry as its role")?
                    }
                    None => sqlx::postgres::PgPoolOptions::new()
                        .max_connections(4)
                        .connect_with((*pool.connect_options()).clone())
                        .await
                        .context("failed to connect the registry to the database")?,
                };
                let local = LocalRegistry::start(registry_pool)
                    .await
                    .context("failed to start the registry")?;
                let url = local.url().to_owned();
                registry = Some(local);
                url
            }
        };
        let mut part_pools = HashMap::new();
        if let Some(roles) = &config.roles {
            // Every part, not only those started: restart() may start any of them later.
            for part in Part::ALL {
                let pool = db::connect_as(roles, part.role())
                    .await
                    .with_context(|| format!("failed to connect the {part} part as its role"))?;
                part_pools.insert(part, pool);
            }
        }
        let shared = Shared {
            part_pools,
            ..Shared::new(pool, config, registry_url)?
        };
        let http = match &shared.config.http {
            Some(http) => Some(ApiTask::start(&shared, http).await?),
            None => None,
        };
        let mut pipeline = Self {
            shared,
            cancel: CancellationToken::new(),
            parts: Vec::new(),
            registry,
            http,
        };
        for &part in parts {
            pipeline.spawn(part);
        }
        Ok(pipeline)
    }

    /// Where the orders HTTP API listens, when [`PipelineConfig::http`] is set.
    #[must_use]
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(ApiTask::addr)
    }

    fn spawn(&mut self, part: Part) {
        let cancel = self.cancel.child_token();
        let handle = tokio::spawn(run_part(part, self.shared.clone(), cancel.clone()));
        self.parts.push(Running {
            part,
            cancel,
            handle,
        });
    }

    /// Stops `part` (as SIGTERM would: it finishes what it is applying and commits) and starts it again, as a
    /// redeploy does; starts it when it was not running.
    ///
    /// # Errors
    /// When the stopped part had failed.
    pub async fn restart(&mut self, part: Part) -> anyhow::Result<()> {
        if let Some(index) = self.parts.iter().position(|r| r.part == part) {
            let running = self.parts.remove(index);
            running.cancel.cancel();
            running.handle.await.context("the part panicked")??;
        }
        self.spawn(part);
        Ok(())
    }

    /// What the parts share: the pool, the event store (Avro through the registry), the config.
    #[must_use]
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// An error naming the first part that ended while the pipeline should be running.
    ///
    /// # Errors
    /// When a part has ended, with its reason.
    pub fn check(&self) -> anyhow::Result<()> {
        if self
            .registry
            .as_ref()
            .is_some_and(LocalRegistry::is_finished)
        {
            anyhow::bail!("the registry stopped while the pipeline was running");
        }
        if self
            .http
            .as_ref()
            .is_some_and(|http| http.handle.is_finished())
        {
            anyhow::bail!("the orders API stopped while the pipeline was running");
        }
        match self.parts.iter().find(|r| r.handle.is_finished()) {
            Some(r) => anyhow::bail!("the {} part stopped while the pipeline was running", r.part),
            None => Ok(()),
        }
    }

    /// Cancels every part and waits for them; the first failure is returned, naming its part.
    ///
    /// # Errors
    /// The first part that failed or panicked.
    pub async fn stop(self) -> anyhow::Result<()> {
        let mut first = Ok(());
        // First the API: no new order is accepted while the parts stop, and those in flight finish.
        if let Some(http) = self.http {
            first = http.stop().await;
        }
        self.cancel.cancel();
        for Running { part, handle, .. } in self.parts {
            let outcome = match handle.await {
                Ok(result) => result.with_context(|| format!("the {part} part failed")),
                Err(e) => Err(anyhow::anyhow!("the {part} part panicked: {e}")),
            };
            if let Err(e) = outcome {
                tracing::error!(%part, error = format!("{e:#}"), "part failed");
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        // Last: the parts encode until they stop.
        if let Some(registry) = self.registry {
            let stopped = registry.stop().await.context("the registry failed");
            first = first.and(stopped);
        }
        first
    }
}

/// Runs one part until `cancel`.
///
/// # Errors
/// When the part fails.
pub async fn run_part(part: Part, shared: Shared, cancel: CancellationToken) -> anyhow::Result<()> {
    let pool = shared.pool_of(part).clone();
    let Shared { config, codec, .. } = shared;
    let kafka = &config.kafka;
    let services = &config.services;
    match part {
        Part::Relay => {
            let relay = Relay::new(pool, kafka, config.relay.clone())
                .context("failed to create the relay")?;
            Ok(relay.run(cancel).await?)
        }
        Part::Service(service) => {
            Ok(services::run(service, pool, kafka, codec, services, cancel).await?)
        }
        Part::Notifier => {
            // The provider sends its results with a worker of its own.
            let settings = notify::NotifierConfig {
                scope: notify::Scope::AllBut(vec![config.provider.callback.subscriber.clone()]),
                ..config.notifier.clone()
            };
            let notifier =
                notify::Notifier::new(pool, settings).context("failed to create the notifier")?;
            notifier.run(cancel).await;
            Ok(())
        }
        Part::Provider => {
            let listener = tokio::net::TcpListener::bind(config.provider_listen)
                .await
                .with_context(|| {
                    format!(
                        "failed to listen on {} for the provider",
                        config.provider_listen
                    )
                })?;
            Ok(provider::run(pool, config.provider.clone(), listener, cancel).await?)
        }
        Part::GlobalView => Ok(services::orders::global::run(
            pool,
            kafka,
            codec,
            services,
            config.partitions,
            cancel,
        )
        .await?),
        Part::Orchestrator => {
            let mut settings = sagas::OrchestratorConfig::new(&services.topics);
            settings.region.clone_from(&services.region);
            settings.consumer = consumers::ConsumerConfig {
                group_id: format!("{}orchestrator", services.group_prefix),
                topics: sagas::subscribed_topics(&services.topics),
                ..services.consumer.clone()
            };
            let topics = services.topics.clone();
            Ok(sagas::run_orchestrator(
                pool,
                kafka.clone(),
                codec,
                topics,
                config.saga.clone(),
                settings,
                cancel,
            )
            .await?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_parse_by_name_and_a_stranger_is_refused() {
        for part in Part::ALL {
            assert_eq!(part.name().parse::<Part>(), Ok(part));
        }
        let refused = "shipping".parse::<Part>().unwrap_err();
        assert!(refused.contains("relay, provider, orders"), "{refused}");
    }

    #[test]
    fn every_topic_is_written_by_a_service_or_the_orchestrator_and_read_by_another_part() {
        let topics = Topics::default();
        for topic in topics.all() {
            let writers: Vec<Part> = Part::ALL
                .into_iter()
                .filter(|p| *p != Part::Relay && p.produces(&topics).contains(&topic))
                .collect();
            // Besides the global view, which reads every region's orders events as a projection.
            let readers: Vec<Part> = Part::ALL
                .into_iter()
                .filter(|p| *p != Part::GlobalView && p.consumes(&topics).contains(&topic))
                .collect();
            assert_eq!(writers.len(), 1, "{topic} written by {writers:?}");
            assert_eq!(readers.len(), 1, "{topic} read by {readers:?}");
            assert_ne!(writers, readers, "{topic}");
        }
    }

    #[test]
    fn the_readme_shows_the_topology_as_the_code_has_it() {
        let readme = include_str!("../../README.md");
        let table = topology(&Topics::default());
        assert!(
            readme.contains(&table),
            "README.md's topic table differs from pipeline::topology; paste this:\n{table}"
        );
    }
}
