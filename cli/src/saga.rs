//! `orderflow saga ...`: operators' actions on sagas.

use std::sync::Arc;

use anyhow::Context as _;
use ops::audit::Via;
use producers::topics::Topics;

/// `orderflow saga ...`
#[derive(Debug, clap::Subcommand)]
pub enum SagaCommand {
    /// Retry the step an escalated saga (needs_attention) gave up on, once its cause is mended: the saga
    /// goes back to that step with a fresh retry budget and sends its command again, through the outbox.
    /// Refused (exit 2, nothing changed) for an order without a saga, a saga that does not need attention,
    /// or one that retrying cannot help (a parcel dispatched before its cancellation). Each retry is a row of
    /// operator_actions. The console's "Sagas needing attention" page lists them and retries them too.
    Retry {
        /// The order whose saga to retry.
        order_id: domain::OrderId,
        /// Prefix of the pipeline's topic names (as `serve` was given it).
        #[arg(long, env = "TOPIC_PREFIX", default_value = "")]
        topic_prefix: String,
    },
}

pub async fn run(
    db: &db::DbConfig,
    registry_url: &str,
    region: &str,
    command: &SagaCommand,
) -> anyhow::Result<()> {
    let SagaCommand::Retry {
        order_id,
        topic_prefix,
    } = command;
    let pool = db::connect(db).await?;
    db::require_migrated(&pool).await?;
    let codec = schemas::AvroCodec::new(registry_url).context("bad schema registry URL")?;
    let store = sagas::SagaStore::new(
        pool,
        Arc::new(codec),
        Topics::with_prefix(topic_prefix.clone()),
        region,
        sagas::SagaConfig::default(),
    );
    let step = ops::sagas::retry(&store, *order_id, Via::Cli, &crate::replay::run_by())
        .await
        .with_context(|| format!("cannot retry the saga of order {order_id}"))?;
    println!("order {order_id}: the saga is retrying {step}");
    Ok(())
}
