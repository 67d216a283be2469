//! `orderflow notify ...`: subscribers, the notifications sent to them, and a worker that sends them.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use notify::{Notifier, NotifierConfig, Schedule, Subscriber};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// `orderflow notify ...`
#[derive(Debug, clap::Subcommand)]
pub enum NotifyCommand {
    /// Add a subscriber, or change its URL, secret and kinds. Its requests are signed with the secret
    /// (header orderflow-signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">).
    Subscribe {
        /// The subscriber's name, which notifications are addressed to.
        name: String,
        /// Where notifications are POSTed.
        #[arg(long)]
        url: url::Url,
        /// The shared secret (from the environment, so that it does not show in `ps`).
        #[arg(long, env = "NOTIFY_SECRET", hide_env_values = true)]
        secret: String,
        /// Kinds of notification it receives as a webhook, such as order.completed (repeat the flag).
        #[arg(long = "kind")]
        kinds: Vec<String>,
    },
    /// Notifications, newest first.
    List {
        /// Only those in this status.
        #[arg(long, value_parser = ["pending", "delivered", "given_up"])]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// One notification whole: body, attempts, last error.
    Show { id: Uuid },
    /// Send a notification that was given up (or waits for its next attempt) again now, from a fresh
    /// schedule.
    Retry { id: Uuid },
    /// Send notifications until SIGINT or SIGTERM. Several workers may run at once.
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Waits between attempts, after the first: the notification is given up after the last one.
    #[arg(long, env = "NOTIFY_SCHEDULE", default_value = "15s,1m,5m,30m,2h,6h")]
    schedule: Schedule,
    /// Notifications sent at once.
    #[arg(long, env = "NOTIFY_BATCH", default_value_t = 32,
        value_parser = clap::value_parser!(i64).range(1..=10_000))]
    batch: i64,
    /// How long a receiver may take to answer, in seconds.
    #[arg(long, env = "NOTIFY_TIMEOUT_SECS", default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=600))]
    timeout_secs: u64,
    /// Serve Prometheus metrics on this address (for example 127.0.0.1:9465).
    #[arg(long, env = "METRICS_ADDR")]
    metrics_addr: Option<SocketAddr>,
}

/// Migrates as the migrating user; operators' commands then run as it, the worker as its own role.
pub async fn run(roles: &db::RoleConfig, command: NotifyCommand) -> anyhow::Result<()> {
    let pool = db::connect(roles.admin()).await?;
    db::migrate(&pool).await?;
    match command {
        NotifyCommand::Subscribe {
            name,
            url,
            secret,
            kinds,
        } => {
            anyhow::ensure!(!secret.is_empty(), "the secret is empty");
            let subscriber = Subscriber {
                name,
                url: url.into(),
                secret,
                kinds,
            };
            notify::subscribe(&pool, &subscriber).await?;
            println!("subscribed {} at {}", subscriber.name, subscriber.url);
        }
        NotifyCommand::List { status, limit } => {
            let listed = notify::list(&pool, status.as_deref(), limit).await?;
            if listed.is_empty() {
                println!("no notifications");
            }
            for n in listed {
                println!(
                    "{}\t{}\t{}\t{}\tattempts={}\t{}",
                    n.id,
                    n.status,
                    n.subscriber,
                    n.kind,
                    n.attempts,
                    n.last_error.unwrap_or_default()
                );
            }
            let counts = notify::counts(&pool).await?;
            println!(
                "pending {}, delivered {}, given up {}",
                counts.pending, counts.delivered, counts.given_up
            );
        }
        NotifyCommand::Show { id } => {
            let notification = notify::show(&pool, id).await?;
            println!("{}", serde_json::to_string_pretty(&notification)?);
        }
        NotifyCommand::Retry { id } => {
            notify::retry(&pool, id).await?;
            println!("{id} will be sent again now");
        }
        NotifyCommand::Run(args) => {
            pool.close().await;
            let worker = db::connect_as(roles, db::Role::Notifier)
                .await
                .context("failed to connect the notifier as its role")?;
            work(worker, args).await?;
        }
    }
    Ok(())
}

async fn work(pool: sqlx::PgPool, args: RunArgs) -> anyhow::Result<()> {
    if let Some(addr) = args.metrics_addr {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .with_context(|| format!("failed to serve metrics on {addr}"))?;
    }
    let config = NotifierConfig {
        schedule: args.schedule,
        batch: args.batch,
        request_timeout: Duration::from_secs(args.timeout_secs),
        ..NotifierConfig::default()
    };
    let notifier = Notifier::new(pool, config)?;
    let shutdown = CancellationToken::new();
    tokio::spawn(crate::cancel_on_signal(shutdown.clone()));
    tracing::info!("notifier starting");
    notifier.run(shutdown).await;
    tracing::info!("notifier stopped");
    Ok(())
}
