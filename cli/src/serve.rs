//! `orderflow serve <part>`: one part of the pipeline as its own process, with health and Prometheus
//! metrics endpoints, so the pipeline can run as separate processes (one relay, one orchestrator, each
//! service) as it would in production.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use pipeline::{ApiTask, Part, PipelineConfig, Shared};
use producers::KafkaConfig;
use producers::topics::Service;
use tokio_util::sync::CancellationToken;

/// The parts `serve` can run, each with its description in `--help`.
fn part_parser() -> impl clap::builder::TypedValueParser<Value = Part> {
    use clap::builder::TypedValueParser as _;
    let values = Part::ALL
        .map(|part| clap::builder::PossibleValue::new(part.name()).help(part.description()));
    clap::builder::PossibleValuesParser::new(values).map(|name| {
        name.parse::<Part>()
            .expect("clap admits only the names of Part::ALL")
    })
}

/// Settings of `orderflow serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Which part to run. The schema registry runs with `orderflow registry`.
    #[arg(value_parser = part_parser())]
    part: Part,
    /// Serve GET /health (200 while the part runs; 503 once it stopped, or while a partition has retried
    /// its record in place for longer than --stuck-after-secs) and GET /metrics (Prometheus) here.
    #[arg(long, env = "HEALTH_ADDR", default_value = "127.0.0.1:9464")]
    health_addr: SocketAddr,
    /// Seconds a partition may retry one record in place (database, broker or registry unavailable)
    /// before /health reports the part stuck.
    #[arg(long, env = "STUCK_AFTER_SECS", default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..=86_400))]
    stuck_after_secs: u64,
    /// Prefix of every topic name, to keep several pipelines apart on one cluster.
    #[arg(long, env = "TOPIC_PREFIX", default_value = "")]
    topic_prefix: String,
    /// Consumer groups are named <prefix><part>, e.g. orderflow-payments; every process of one part shares
    /// its group.
    #[arg(long, env = "GROUP_PREFIX", default_value = "orderflow-")]
    group_prefix: String,
    /// The other regions whose replicated orders events (<region>.orders.events, MirrorMaker 2's naming)
    /// the global view reads besides this region's (`serve orders-global`), comma-separated.
    #[arg(long, env = "REMOTE_REGIONS", value_delimiter = ',')]
    remote_regions: Vec<String>,
    /// The relay's settings (`serve relay` only).
    #[command(flatten, next_help_heading = "Relay (serve relay)")]
    relay: crate::relay::RelayConfigArgs,
    /// The orders HTTP API (`serve orders` only).
    #[command(flatten, next_help_heading = "Orders API (serve orders)")]
    api: crate::api_args::ApiArgs,
    /// The payments service's link to the provider (`serve payments` only).
    #[command(flatten, next_help_heading = "Payments (serve payments)")]
    payments: crate::provider_args::PaymentsArgs,
    /// The simulated payment provider (`serve provider` only).
    #[command(flatten, next_help_heading = "Payment provider (serve provider)")]
    provider: crate::provider_args::ProviderArgs,
    #[command(flatten, next_help_heading = "Payments and provider")]
    secret: crate::provider_args::CallbackSecretArg,
}

/// Runs the part until SIGINT or SIGTERM.
pub async fn run(
    roles: &db::RoleConfig,
    kafka: &KafkaConfig,
    registry_url: &str,
    region: &str,
    args: &ServeArgs,
) -> anyhow::Result<()> {
    let part = args.part;
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .context("failed to install the metrics recorder")?;
    let admin = db::connect(roles.admin()).await?;
    db::migrate(&admin).await?;
    admin.close().await;
    // Least privilege: the part runs as its own role, which reaches only its tables, the outbox and inbox.
    let pool = db::connect_as(roles, part.role())
        .await
        .with_context(|| format!("failed to connect the {part} part as its role"))?;
    let mut config = PipelineConfig::new(kafka.clone());
    config.services.topics = producers::topics::Topics::with_prefix(args.topic_prefix.clone());
    region.clone_into(&mut config.services.region);
    config
        .services
        .remote_regions
        .clone_from(&args.remote_regions);
    config.services.group_prefix.clone_from(&args.group_prefix);
    config.relay = args.relay.config();
    let payments = &mut config.services.payments;
    payments
        .provider_url
        .clone_from(&args.payments.provider_url);
    payments.callback.listen = args.payments.callback_listen;
    payments
        .callback
        .secret
        .clone_from(&args.secret.callback_secret);
    args.provider.knobs.apply(&mut config.provider);
    config.provider_listen = args.provider.provider_listen;
    config.provider.callback.url = Some(args.provider.callback_url.clone());
    config
        .provider
        .callback
        .secret
        .clone_from(&args.secret.callback_secret);
    config.ensure_topics().await?;
    let shared = Shared::new(pool, config, registry_url.to_owned())?;
    let shutdown = CancellationToken::new();
    tokio::spawn(crate::cancel_on_signal(shutdown.clone()));
    let alive = Arc::new(AtomicBool::new(true));
    let listener = tokio::net::TcpListener::bind(args.health_addr)
        .await
        .with_context(|| format!("failed to listen on {}", args.health_addr))?;
    let endpoints = tokio::spawn(serve_endpoints(
        listener,
        metrics,
        alive.clone(),
        Duration::from_secs(args.stuck_after_secs),
        shutdown.clone(),
    ));
    let orders_api = if part == Part::Service(Service::Orders) {
        Some(ApiTask::start(&shared, &args.api.config()).await?)
    } else {
        None
    };
    tracing::info!(%part, health = %args.health_addr, api = ?orders_api.as_ref().map(ApiTask::addr),
        "serving");
    let result = pipeline::run_part(part, shared, shutdown.clone()).await;
    alive.store(false, Ordering::Relaxed);
    shutdown.cancel();
    // The API stops taking orders before the process ends; those in flight finish.
    let api_stopped = match orders_api {
        Some(orders_api) => orders_api.stop().await,
        None => Ok(()),
    };
    endpoints.await.ok();
    result
        .with_context(|| format!("the {part} part failed"))
        .and(api_stopped)
}

/// 200 "ok" while the part runs and moves; 503 naming what is wrong otherwise.
fn health(alive: bool, stuck_after: Duration) -> (StatusCode, String) {
    if !alive {
        return (StatusCode::SERVICE_UNAVAILABLE, "stopped\n".to_owned());
    }
    let stuck = consumers::health::stuck_longer_than(stuck_after);
    if stuck.is_empty() {
        return (StatusCode::OK, "ok\n".to_owned());
    }
    let lines: String = stuck
        .iter()
        .map(|s| {
            format!(
                "stuck: group {} {}[{}] offset {} retried in place for {} s: {}\n",
                s.group,
                s.topic,
                s.partition,
                s.offset,
                s.retrying_for.as_secs(),
                s.reason
            )
        })
        .collect();
    (StatusCode::SERVICE_UNAVAILABLE, lines)
}

async fn serve_endpoints(
    listener: tokio::net::TcpListener,
    metrics: PrometheusHandle,
    alive: Arc<AtomicBool>,
    stuck_after: Duration,
    shutdown: CancellationToken,
) {
    let app = Router::new()
        .route(
            "/health",
            get(move || std::future::ready(health(alive.load(Ordering::Relaxed), stuck_after))),
        )
        .route(
            "/metrics",
            get(move || std::future::ready(metrics.render())),
        );
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(e) = served {
        tracing::warn!(error = %e, "health endpoint failed");
    }
}
