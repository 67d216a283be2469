//! `orderflow relay` and `orderflow outbox ...`: run the relay, and what operators do about the outbox.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use ops::audit::Via;
use ops::quarantine::Decision;
use outbox::{Relay, RelayConfig, quarantine};
use producers::{KafkaConfig, ProducerConfig};
use tokio_util::sync::CancellationToken;

/// The relay's settings, shared by `orderflow relay` and `orderflow serve relay`. Their defaults are
/// [`RelayConfig::default`]'s.
#[derive(Debug, clap::Args)]
pub struct RelayConfigArgs {
    /// Records read from the outbox at once, from 1 to 100,000.
    #[arg(long, env = "RELAY_BATCH_SIZE", default_value_t = defaults().batch_size as u32,
        value_parser = clap::value_parser!(u32).range(1..=100_000))]
    batch_size: u32,
    /// Records the relay holds at most, read and not yet deleted (in flight to the broker, or waiting
    /// behind their key's record in flight), from 1 to 1,000,000.
    #[arg(long, env = "RELAY_MAX_PENDING", default_value_t = defaults().max_pending as u32,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    max_pending: u32,
    /// Poll the outbox this often when no notification arrives, in milliseconds, from 10 to 3,600,000.
    #[arg(long, env = "RELAY_POLL_INTERVAL_MS",
        default_value_t = defaults().poll_interval.as_millis() as u64,
        value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    poll_interval_ms: u64,
    /// Tries of a record the broker refuses for good (too large, topic missing) before it is quarantined,
    /// from 1 to 1,000.
    #[arg(long, env = "RELAY_MAX_ATTEMPTS", default_value_t = defaults().max_attempts,
        value_parser = clap::value_parser!(i32).range(1..=1000))]
    max_attempts: i32,
    /// Producer linger, in milliseconds: how long a batch waits for more records, up to 10,000.
    #[arg(long, env = "RELAY_LINGER_MS",
        default_value_t = defaults().producer.linger.as_millis() as u64,
        value_parser = clap::value_parser!(u64).range(0..=10_000))]
    linger_ms: u64,
    /// Largest record the relay sends, in bytes (librdkafka message.max.bytes, 1,000 to 1,000,000,000);
    /// keep it at or below the broker's limit so oversized records are refused before they are sent.
    #[arg(long, env = "RELAY_MAX_MESSAGE_BYTES",
        default_value_t = defaults().producer.max_message_bytes,
        value_parser = clap::value_parser!(u32).range(1000..=1_000_000_000))]
    max_message_bytes: u32,
}

/// The one place the relay's defaults come from.
fn defaults() -> RelayConfig {
    RelayConfig::default()
}

impl RelayConfigArgs {
    /// The relay configuration these settings give.
    pub fn config(&self) -> RelayConfig {
        let defaults = defaults();
        RelayConfig {
            batch_size: self.batch_size as usize,
            max_pending: self.max_pending as usize,
            poll_interval: Duration::from_millis(self.poll_interval_ms),
            max_attempts: self.max_attempts,
            producer: ProducerConfig {
                linger: Duration::from_millis(self.linger_ms),
                max_message_bytes: self.max_message_bytes,
                ..defaults.producer.clone()
            },
            ..defaults
        }
    }
}

/// Settings of `orderflow relay`.
#[derive(Debug, clap::Args)]
pub struct RelayArgs {
    #[command(flatten)]
    settings: RelayConfigArgs,
    /// Serve Prometheus metrics on this address (for example 127.0.0.1:9464).
    #[arg(long, env = "METRICS_ADDR")]
    metrics_addr: Option<SocketAddr>,
}

/// Migrates as the migrating user, then runs the relay as its own role until SIGINT or SIGTERM, reporting the
/// backlog every few seconds.
pub async fn run(
    roles: &db::RoleConfig,
    kafka: &KafkaConfig,
    args: &RelayArgs,
) -> anyhow::Result<()> {
    if let Some(addr) = args.metrics_addr {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .with_context(|| format!("failed to serve metrics on {addr}"))?;
        tracing::info!(%addr, "serving Prometheus metrics");
    }
    let admin = db::connect(roles.admin()).await?;
    db::migrate(&admin).await?;
    admin.close().await;
    let pool = db::connect_as(roles, db::Role::Relay)
        .await
        .context("failed to connect the relay as its role")?;
    let relay = Relay::new(pool.clone(), kafka, args.settings.config())
        .context("failed to create the relay")?;
    let shutdown = CancellationToken::new();
    tokio::spawn(crate::cancel_on_signal(shutdown.clone()));
    let reporter = tokio::spawn(report_backlog(pool, shutdown.clone()));
    tracing::info!(bootstrap = %kafka.bootstrap, "relay starting");
    let result = relay.run(shutdown.clone()).await;
    shutdown.cancel();
    reporter.await.ok();
    result.context("relay failed")
}

async fn report_backlog(pool: sqlx::PgPool, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = shutdown.cancelled() => return,
        }
        match quarantine::backlog(&pool).await {
            Ok(backlog) => tracing::info!(
                backlog = backlog.records,
                oldest_age = ?backlog.oldest_age,
                quarantined = backlog.quarantined,
                "outbox"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot read the outbox backlog"),
        }
    }
}

/// `orderflow outbox ...`
#[derive(Debug, clap::Subcommand)]
pub enum OutboxCommand {
    /// Backlog, age of the oldest unpublished record, and quarantined records.
    Status,
    /// Records the broker refused for good; later records of their key wait behind them.
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
}

/// `orderflow outbox quarantine ...`
#[derive(Debug, clap::Subcommand)]
pub enum QuarantineCommand {
    /// List quarantined records with their reasons.
    List,
    /// Put a quarantined record back in the outbox, ahead of the records waiting behind it.
    Retry { id: i64 },
    /// Delete a quarantined record for good; the records waiting behind it are published.
    Discard { id: i64 },
}

/// Retries or discards quarantined record `id`, as a row of operator_actions.
async fn decide(pool: &sqlx::PgPool, id: i64, decision: Decision) -> anyhow::Result<()> {
    ops::quarantine::decide(pool, id, decision, Via::Cli, &crate::replay::run_by())
        .await
        .map_err(|e| match e {
            ops::OperatorError::NotFound(why) => {
                crate::replay::BadInput(format!("{why} (see `orderflow outbox quarantine list`)"))
                    .into()
            }
            other => other.into(),
        })
}

pub async fn outbox_command(db: &db::DbConfig, command: &OutboxCommand) -> anyhow::Result<()> {
    let pool = db::connect(db).await?;
    db::require_migrated(&pool).await?;
    match command {
        OutboxCommand::Status => {
            let backlog = quarantine::backlog(&pool).await?;
            println!("unpublished records: {}", backlog.records);
            match backlog.oldest_age {
                Some(age) => println!("oldest unpublished: {:.1?} ago", age),
                None => println!("oldest unpublished: -"),
            }
            println!("quarantined records: {}", backlog.quarantined);
        }
        OutboxCommand::Quarantine { command } => match command {
            QuarantineCommand::List => {
                let records = quarantine::list(&pool).await?;
                if records.is_empty() {
                    println!("no quarantined records");
                }
                for r in records {
                    println!(
                        "{id}\t{topic}\tkey={key}\t{size} bytes\tattempts={attempts}\twaiting={waiting}\tquarantined {at}\n\treason: {reason}",
                        id = r.id,
                        topic = r.topic,
                        key = r.key,
                        size = r.size,
                        attempts = r.attempts,
                        waiting = r.waiting,
                        at = r.quarantined_at.format("%Y-%m-%d %H:%M:%S UTC"),
                        reason = r.reason,
                    );
                }
            }
            QuarantineCommand::Retry { id } => {
                decide(&pool, *id, Decision::Retry).await?;
                println!("record {id} is back in the outbox");
            }
            QuarantineCommand::Discard { id } => {
                decide(&pool, *id, Decision::Discard).await?;
                println!("record {id} discarded");
            }
        },
    }
    Ok(())
}
