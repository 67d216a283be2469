//! `orderflow registry`: the Confluent-compatible schema registry, stored in Postgres.

use std::net::SocketAddr;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

/// Settings of `orderflow registry`.
#[derive(Debug, clap::Args)]
pub struct RegistryArgs {
    /// Listen on this address; 127.0.0.1:8081 is Confluent's default. Use 0.0.0.0:8081 to serve other
    /// machines (there is no authentication).
    #[arg(long, env = "REGISTRY_LISTEN", default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
}

/// Migrates, then serves the registry until SIGINT or SIGTERM.
pub async fn run(db: &db::DbSettings, args: &RegistryArgs) -> anyhow::Result<()> {
    let pool = db::connect(db).await?;
    db::migrate(&pool).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("failed to listen on {}", args.listen))?;
    let addr = listener
        .local_addr()
        .context("failed to read the listening address")?;
    let shutdown = CancellationToken::new();
    tokio::spawn(crate::cancel_on_signal(shutdown.clone()));
    tracing::info!(
        %addr,
        "schema registry listening; clients use SCHEMA_REGISTRY_URL=http://{addr}"
    );
    schemas::registry::serve(listener, pool, shutdown.cancelled_owned())
        .await
        .context("schema registry failed")?;
    tracing::info!("schema registry stopped");
    Ok(())
}
