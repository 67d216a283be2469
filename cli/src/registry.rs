//! `orderflow registry`: the Confluent-compatible schema registry, stored in Postgres.

use std::net::SocketAddr;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

/// Settings of `orderflow registry`.
#[derive(Debug, clap::Args)]
pub struct RegistryArgs {
    /// Listen on this address; 127.0.0.1:8081 is Confluent's default. Use 0.0.0.0:8081 to serve other
    /// machines (reads and registrations are open to them; see --admin-token and --no-deletes).
    #[arg(long, env = "REGISTRY_LISTEN", default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// Deletes and configuration changes (DELETE, PUT /config) need `Authorization: Bearer <token>` with
    /// this token, and are answered 401 without it. Reads and registrations stay open.
    #[arg(long, env = "REGISTRY_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Refuse every delete of a subject or a version (403), whoever asks.
    #[arg(long, env = "REGISTRY_NO_DELETES")]
    no_deletes: bool,
    /// Seconds a request may take, waiting for the database included; past them the client gets 503 and
    /// retries.
    #[arg(long, env = "REGISTRY_REQUEST_TIMEOUT_SECS", default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..=3600))]
    request_timeout_secs: u64,
    /// Requests handled at once; one more gets 503 at once, and Confluent's clients retry it.
    #[arg(long, env = "REGISTRY_MAX_CONCURRENT_REQUESTS", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    max_concurrent_requests: u32,
}

impl RegistryArgs {
    fn settings(&self) -> schemas::registry::RegistryConfig {
        schemas::registry::RegistryConfig {
            admin_token: self.admin_token.clone().filter(|token| !token.is_empty()),
            no_deletes: self.no_deletes,
            request_timeout: std::time::Duration::from_secs(self.request_timeout_secs),
            max_concurrent_requests: self.max_concurrent_requests as usize,
        }
    }
}

/// Migrates as the migrating user, then serves the registry as its own role until SIGINT or SIGTERM.
pub async fn run(roles: &db::RoleConfig, args: &RegistryArgs) -> anyhow::Result<()> {
    let admin = db::connect(roles.admin()).await?;
    db::migrate(&admin).await?;
    admin.close().await;
    let pool = db::connect_as(roles, db::Role::Registry)
        .await
        .context("failed to connect the registry as its role")?;
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
    let settings = args.settings();
    if settings.admin_token.is_none() && !args.listen.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "schema registry serves other machines without --admin-token: anyone who reaches it can delete schemas and change compatibility levels"
        );
    }
    schemas::registry::serve_with(listener, pool, settings, shutdown.cancelled_owned())
        .await
        .context("schema registry failed")?;
    tracing::info!("schema registry stopped");
    Ok(())
}
