//! `orderflow`: one binary for every part of the pipeline.
//!
//! Each subcommand is a part: later issues add `relay`, `registry`, `dlq`, `serve`, `demo` and `bench`.
//! Settings come from flags or, for each flag that names one, the environment variable of the same meaning.

mod smoke;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// The event-sourced order pipeline: services, relays, orchestrator, operator and finance jobs.
#[derive(Debug, Parser)]
#[command(name = "orderflow", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    connections: Connections,
    #[command(subcommand)]
    command: Command,
}

/// Where the database and the broker are.
#[derive(Debug, clap::Args)]
struct Connections {
    /// Postgres URL.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres",
        global = true,
        hide_env_values = true
    )]
    database_url: String,
    /// Kafka bootstrap servers, comma-separated host:port.
    #[arg(long, env = "KAFKA_BOOTSTRAP", default_value = producers::DEFAULT_BOOTSTRAP, global = true)]
    kafka_bootstrap: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the environment: apply migrations, round-trip a row through Postgres and one record through Kafka.
    Smoke,
    /// Apply the database migrations that have not been applied yet.
    Migrate,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let db_settings = db::DbSettings::from_url(&cli.connections.database_url);
    let kafka = producers::KafkaSettings::new(&cli.connections.kafka_bootstrap);
    match cli.command {
        Command::Smoke => smoke::run(&db_settings, &kafka).await,
        Command::Migrate => {
            let pool = db::connect(&db_settings).await?;
            db::migrate(&pool).await?;
            println!("migrations applied: {}", db::MIGRATOR.iter().count());
            Ok(())
        }
    }
}
