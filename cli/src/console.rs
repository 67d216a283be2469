//! `orderflow console`: the operator console's pages and JSON API, until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use orderflow_console::{Console, ConsoleConfig};
use producers::KafkaConfig;
use producers::topics::Topics;

/// Settings of `orderflow console`.
#[derive(Debug, clap::Args)]
pub struct ConsoleArgs {
    /// Serve here. An address other than loopback needs --token, and then reading needs it too.
    #[arg(long, env = "CONSOLE_ADDR", default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// The console's access token: its actions (redriving dead letters, retrying sagas, ...) need it, as
    /// `Authorization: Bearer` or through the /login page; required to listen on an address other than
    /// loopback.
    #[arg(long, env = "CONSOLE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Prefix of the pipeline's topic names (as `serve` was given it).
    #[arg(long, env = "TOPIC_PREFIX", default_value = "")]
    topic_prefix: String,
    /// Prefix of the pipeline's consumer groups (as `serve` was given it).
    #[arg(long, env = "GROUP_PREFIX", default_value = "orderflow-")]
    group_prefix: String,
    /// Seconds between two readings of the replication between the regions (when REGION is one of
    /// --region-clusters, the overview shows it).
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    replication_every: u64,
}

pub async fn run(
    db: &db::DbConfig,
    kafka: &KafkaConfig,
    registry_url: &str,
    (region, regions): (&str, Vec<ops::region::Region>),
    args: &ConsoleArgs,
) -> anyhow::Result<()> {
    orderflow_console::check_listen(args.listen, args.token.as_deref())
        .map_err(crate::replay::BadInput)?;
    let pool = db::connect(db).await?;
    db::require_migrated(&pool).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("failed to listen on {}", args.listen))?;
    println!("orderflow console: http://{}/", listener.local_addr()?);
    let console = Console::new(
        pool,
        kafka.clone(),
        ConsoleConfig {
            topics: Topics::with_prefix(args.topic_prefix.clone()),
            group_prefix: args.group_prefix.clone(),
            regions,
            replication_every: Duration::from_secs(args.replication_every),
            token: args.token.clone(),
            reads_need_token: !args.listen.ip().is_loopback(),
            codec: Some(std::sync::Arc::new(
                schemas::AvroCodec::new(registry_url).context("bad schema registry URL")?,
            )),
            region: region.to_owned(),
        },
    );
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(crate::cancel_on_signal(shutdown.clone()));
    console
        .serve(listener, shutdown)
        .await
        .context("the console failed")
}
