//! `orderflow`: one binary for every part of the pipeline.
//!
//! Long-running parts, each until SIGINT or SIGTERM: `relay`, `registry` and `serve <part>` (the relay, a
//! service or the orchestrator, one per process). Operators' commands: `migrate`, `smoke`, `status`,
//! `outbox` (backlog, quarantine), `dlq` (list, show, redrive), `replay` (topics, projections) and `group
//! reset`. `demo` runs the whole pipeline on the
//! local environment and `bench` measures parts of it. Settings come from flags or, for each flag that names
//! one, the environment variable of the same meaning, or a `--config` file; `orderflow --help` lists them.

// Doc comments of the clap types are the text of `--help`, shown as written: `<time>` there is a
// placeholder, not an HTML tag.
#![allow(rustdoc::invalid_html_tags)]

mod api_args;
mod bench;
mod bench_open_loop;
mod bench_pipeline;
mod bench_reconcile;
mod bench_replay;
mod bench_replication;
mod config_file;
mod console;
mod demo;
mod demo_regions;
mod dlq;
mod notify;
mod provider_args;
mod reconcile;
mod region;
mod registry;
mod relay;
mod replay;
mod saga;
mod serve;
mod smoke;
mod status;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// glibc's allocator spent a fifth of the relay's time in `malloc` and `malloc_consolidate` (perf, release
/// build, `bench outbox` drain): rows, records and headers are many small blocks freed in bulk.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The event-sourced order pipeline: services, relays, orchestrator, operator and finance jobs.
#[derive(Debug, Parser)]
#[command(name = "orderflow", version, about, long_about = None)]
struct Cli {
    /// Read settings from this file: NAME=value lines with the environment variable names shown here.
    /// Flags and the environment take precedence over it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    #[command(flatten)]
    connections: Connections,
    #[command(subcommand)]
    command: Command,
}

/// Where the database and the broker are.
#[derive(Debug, clap::Args)]
struct Connections {
    /// Postgres URL of the user that migrates and owns the tables; operator and finance commands use it,
    /// the parts their own roles (see Database roles). Default: postgres://postgres@127.0.0.1:5432/postgres,
    /// or with a REGION named in --region-clusters, the database orderflow_<region> on that server, which
    /// the commands that migrate create when it is missing.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
    /// Kafka bootstrap servers, comma-separated host:port. Default: 127.0.0.1:9092, or with a REGION named
    /// in --region-clusters, that region's.
    #[arg(long, env = "KAFKA_BOOTSTRAP", global = true)]
    kafka_bootstrap: Option<String>,
    /// This process's region: every record it writes carries it as `origin_region`; when
    /// --region-clusters names it, it also selects the region's cluster and database (see --kafka-bootstrap
    /// and --database-url; either given explicitly wins).
    #[arg(long, env = "REGION", default_value = "local", global = true)]
    region: String,
    #[command(flatten)]
    regions: region::RegionsArg,
    /// A librdkafka property for every Kafka client, as key=value; repeat it for several, e.g.
    /// -X security.protocol=SASL_SSL -X sasl.mechanism=SCRAM-SHA-512. In the environment, separate them
    /// with ';'.
    #[arg(
        short = 'X',
        value_name = "KEY=VALUE",
        env = "KAFKA_PROPERTIES",
        value_delimiter = ';',
        value_parser = parse_property,
        global = true,
        hide_env_values = true
    )]
    kafka_property: Vec<(String, String)>,
    /// Schema registry URL (Confluent's REST API: `orderflow registry`, Confluent Schema Registry, Apicurio,
    /// Redpanda). Records are Avro in the Confluent wire format.
    #[arg(long, env = "SCHEMA_REGISTRY_URL", default_value = schemas::codec::DEFAULT_REGISTRY_URL, global = true)]
    schema_registry_url: String,
    #[command(flatten)]
    part_urls: PartUrls,
}

/// Least privilege: `serve`, `relay`, `registry` and `demo` migrate with DATABASE_URL, then connect each
/// part as its own role (orderflow_<part>, created by the migrations), by default on DATABASE_URL with that
/// user and no password. These give a part a URL of its own instead, e.g. with its role's password.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Database roles")]
struct PartUrls {
    /// Postgres URL of the orders service. Default: DATABASE_URL as orderflow_orders, no password.
    #[arg(
        long,
        env = "ORDERFLOW_ORDERS_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    orders_database_url: Option<String>,
    /// Postgres URL of the payments service. Default: DATABASE_URL as orderflow_payments, no password.
    #[arg(
        long,
        env = "ORDERFLOW_PAYMENTS_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    payments_database_url: Option<String>,
    /// Postgres URL of the inventory service. Default: DATABASE_URL as orderflow_inventory, no password.
    #[arg(
        long,
        env = "ORDERFLOW_INVENTORY_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    inventory_database_url: Option<String>,
    /// Postgres URL of the delivery service. Default: DATABASE_URL as orderflow_delivery, no password.
    #[arg(
        long,
        env = "ORDERFLOW_DELIVERY_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    delivery_database_url: Option<String>,
    /// Postgres URL of the saga orchestrator. Default: DATABASE_URL as orderflow_orchestrator, no password.
    #[arg(
        long,
        env = "ORDERFLOW_ORCHESTRATOR_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    orchestrator_database_url: Option<String>,
    /// Postgres URL of the outbox relay. Default: DATABASE_URL as orderflow_relay, no password.
    #[arg(
        long,
        env = "ORDERFLOW_RELAY_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    relay_database_url: Option<String>,
    /// Postgres URL of the schema registry. Default: DATABASE_URL as orderflow_registry, no password.
    #[arg(
        long,
        env = "ORDERFLOW_REGISTRY_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    registry_database_url: Option<String>,
    /// Postgres URL of the notification worker. Default: DATABASE_URL as orderflow_notifier, no password.
    #[arg(
        long,
        env = "ORDERFLOW_NOTIFIER_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    notifier_database_url: Option<String>,
    /// Postgres URL of the simulated payment provider. Default: DATABASE_URL as orderflow_provider, no
    /// password.
    #[arg(
        long,
        env = "ORDERFLOW_PROVIDER_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    provider_database_url: Option<String>,
}

impl PartUrls {
    /// Where each part connects, given the migrating user's settings.
    fn roles(&self, admin: &db::DbConfig) -> db::RoleConfig {
        let given = [
            (db::Role::Orders, &self.orders_database_url),
            (db::Role::Payments, &self.payments_database_url),
            (db::Role::Inventory, &self.inventory_database_url),
            (db::Role::Delivery, &self.delivery_database_url),
            (db::Role::Orchestrator, &self.orchestrator_database_url),
            (db::Role::Relay, &self.relay_database_url),
            (db::Role::Registry, &self.registry_database_url),
            (db::Role::Notifier, &self.notifier_database_url),
            (db::Role::Provider, &self.provider_database_url),
        ];
        given
            .into_iter()
            .filter_map(|(role, url)| Some((role, url.as_ref()?)))
            .fold(db::RoleConfig::new(admin.clone()), |roles, (role, url)| {
                roles.with_url(role, url)
            })
    }
}

/// Parses `key=value`, refusing an empty key.
fn parse_property(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the environment: apply migrations, round-trip a row through Postgres and one record through Kafka.
    Smoke,
    /// Apply the database migrations that have not been applied yet.
    Migrate,
    /// Publish the transactional outbox to Kafka until SIGINT or SIGTERM. Several relays may run at once:
    /// one leads, the others stand by and take over when it stops.
    Relay(relay::RelayArgs),
    /// Serve the Confluent-compatible schema registry (default 127.0.0.1:8081; clients use
    /// SCHEMA_REGISTRY_URL) until SIGINT or SIGTERM.
    ///
    /// A small schema registry that answers Confluent Schema Registry's REST API, with its schemas,
    /// versions and compatibility levels stored in the Postgres of DATABASE_URL. It stands in for Confluent
    /// Schema Registry, Apicurio or Redpanda's registry where none runs. Clients (schema_registry_converter,
    /// Confluent's Java and Python clients) find it through SCHEMA_REGISTRY_URL, for example
    /// SCHEMA_REGISTRY_URL=http://127.0.0.1:8081. It applies the database migrations first. Only AVRO
    /// schemas, without schema references. Reads and registrations are open to whoever reaches it; deletes
    /// and configuration changes need --admin-token when one is set, and --no-deletes refuses deletes.
    Registry(registry::RegistryArgs),
    /// Inspect the outbox, and retry or discard records the broker refused for good.
    Outbox {
        #[command(subcommand)]
        command: relay::OutboxCommand,
    },
    /// The outbox backlog and, with --group, consumer groups' lag per partition.
    Status(status::StatusArgs),
    /// Dead letters: list them, show one, redrive them to their source topics.
    Dlq {
        #[command(subcommand)]
        command: dlq::DlqCommand,
    },
    /// Max-effort notifications: subscribers, what was sent to them, retries, and the worker that sends.
    Notify {
        #[command(subcommand)]
        command: notify::NotifyCommand,
    },
    /// Finance's reconciliation of a window (default: yesterday, UTC): the provider's statement against our
    /// payments, orders and notifications; a table per class of difference with counts and amounts. Every
    /// run is recorded (`reconcile history`); --apply repairs what it safely can. Exit 0 when clean, 1 when
    /// differences remain.
    Reconcile(reconcile::ReconcileArgs),
    /// Replay a range of a topic (by offsets or time, filtered by event type, key or header) into another
    /// topic or through a projection's handlers; --rebuild rebuilds a projection and restores it. Dry run by
    /// default; resumable (`replay resume ID`); every replay recorded (`replay history`). Exit 2 for input
    /// it cannot carry out, with nothing written.
    Replay(replay::ReplayArgs),
    /// Serve the operator console, web pages and their JSON API under /api (default
    /// http://127.0.0.1:8090), until SIGINT or SIGTERM.
    ///
    /// Pages: the overview (orders of the last hour by state, sagas in flight and needing attention, outbox
    /// backlog, consumer lag, dead letters, replication lag, given-up notifications, and charts; it reloads
    /// itself); an order by id or idempotency key, with its saga's timeline, the services' events and its
    /// payment; the sagas needing attention, with a retry of the step each gave up on; dead letters, decoded,
    /// with redrive; the outbox's quarantine, with retry and discard; the history of replays and
    /// reconciliation runs, with dry runs of both (applying stays a CLI command, which the page shows).
    ///
    /// Actions need --token (CONSOLE_TOKEN), as `Authorization: Bearer` or through /login, and are refused
    /// from other sites; each is a row of the audit trail, by `console@<client address>`. On an address
    /// other than loopback the token is required and reading needs it too. For example:
    /// CONSOLE_TOKEN=$(openssl rand -hex 16) orderflow console --listen 0.0.0.0:8090
    Console(console::ConsoleArgs),
    /// Replication between regions (MirrorMaker 2): lag per replicated partition, heartbeats, checkpoints.
    Region {
        #[command(subcommand)]
        command: region::RegionCommand,
    },
    /// Sagas: retry the step of one that escalated (`saga retry ORDER_ID`).
    Saga {
        #[command(subcommand)]
        command: saga::SagaCommand,
    },
    /// Consumer groups: move a group's offsets (`group reset`), dry run by default.
    Group {
        #[command(subcommand)]
        command: replay::GroupCommand,
    },
    /// The whole pipeline on the local environment: a realistic mix of orders (declines, out of stock,
    /// delivery failures, double submits, a flash sale), a progress bar, and a summary with consistency
    /// checks; exits non-zero when a check fails.
    Demo(demo::DemoArgs),
    /// Run one part of the pipeline as its own process, with /health and /metrics endpoints.
    Serve(Box<serve::ServeArgs>),
    /// Benchmarks; each prints its figures and, last, the ratio to a baseline measured in the same run.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut cli = match parse() {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("error: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    // The demo's terminal shows its progress and summary; its log goes to a file.
    let log_file = match &mut cli.command {
        Command::Demo(args) => Some(args.pin_log_file()),
        _ => None,
    };
    if let Err(e) = init_tracing(log_file.as_deref()) {
        eprintln!("error: {e:#}");
        return std::process::ExitCode::FAILURE;
    }
    // Before anything decodes Avro: the limit is the first one set.
    schemas::codec::limit_decode_allocations();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The cause chain, one line, without a backtrace: this is for operators.
            eprintln!("error: {e:#}");
            if replay::is_bad_input(&e) {
                std::process::ExitCode::from(2)
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}

/// Logs to stderr, or to the end of `file` (created with its folder when missing). `RUST_LOG` filters.
fn init_tracing(file: Option<&std::path::Path>) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let subscriber = tracing_subscriber::fmt().with_env_filter(
        EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn".into()),
    );
    match file {
        None => subscriber.with_writer(std::io::stderr).init(),
        Some(path) => {
            if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(folder)
                    .with_context(|| format!("failed to create {}", folder.display()))?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("failed to open the log file {}", path.display()))?;
            subscriber
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file))
                .init();
        }
    }
    Ok(())
}

/// Parses the command line, with a config file's values as defaults when one is given.
fn parse() -> anyhow::Result<Cli> {
    use clap::{CommandFactory as _, FromArgMatches as _};
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut command = Cli::command();
    if let Some(path) = config_file::path(&args) {
        command = config_file::apply(command, &config_file::read(&path)?)?;
    }
    let matches = command.get_matches_from(args);
    Ok(Cli::from_arg_matches(&matches)?)
}

/// The local Postgres server, and the URL of its database when neither DATABASE_URL nor REGION says
/// otherwise.
const LOCAL_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";
const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Where this process's database and cluster are.
#[derive(Debug, PartialEq)]
struct Target {
    database_url: String,
    kafka_bootstrap: String,
    /// The region's own database, when REGION chose it: the commands that migrate create it if missing.
    region_database: Option<String>,
}

/// DATABASE_URL and KAFKA_BOOTSTRAP as given; what is not given is `region`'s when it has a cluster
/// (`region_bootstrap`: --region-clusters names it), with the database orderflow_<region> of the local
/// server, else the local defaults.
fn target(
    database_url: Option<&str>,
    kafka_bootstrap: Option<&str>,
    region: &str,
    region_bootstrap: Option<&str>,
) -> Target {
    let (database_url, region_database) = match (database_url, region_bootstrap) {
        (Some(url), _) => (url.to_owned(), None),
        (None, Some(_)) => {
            let name = format!("orderflow_{region}");
            (format!("{LOCAL_POSTGRES}/{name}"), Some(name))
        }
        (None, None) => (DEFAULT_DATABASE_URL.to_owned(), None),
    };
    Target {
        database_url,
        kafka_bootstrap: kafka_bootstrap
            .or(region_bootstrap)
            .unwrap_or(producers::DEFAULT_BOOTSTRAP)
            .to_owned(),
        region_database,
    }
}

/// Whether `command` applies the migrations (and so may create the region's database first).
fn migrates(command: &Command) -> bool {
    matches!(
        command,
        Command::Smoke
            | Command::Migrate
            | Command::Relay(_)
            | Command::Registry(_)
            | Command::Serve(_)
            | Command::Demo(_)
            | Command::Reconcile(_)
            | Command::Replay(_)
            | Command::Group { .. }
            | Command::Dlq {
                command: dlq::DlqCommand::Redrive { .. }
            }
            | Command::Notify { .. }
            | Command::Region {
                command: region::RegionCommand::Failover(_)
            }
    )
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let connections = &cli.connections;
    let target = target(
        connections.database_url.as_deref(),
        connections.kafka_bootstrap.as_deref(),
        &connections.region,
        connections.regions.bootstrap(&connections.region),
    );
    if let Some(name) = target
        .region_database
        .as_deref()
        .filter(|_| migrates(&cli.command))
    {
        db::ensure_database(DEFAULT_DATABASE_URL, name)
            .await
            .with_context(|| {
                format!("failed to create region {}'s database", connections.region)
            })?;
    }
    let connections_region_known = connections.regions.bootstrap(&connections.region).is_some();
    let db_settings = db::DbConfig::from_url(&target.database_url);
    let roles = cli.connections.part_urls.roles(&db_settings);
    let mut kafka = producers::KafkaConfig::new(&target.kafka_bootstrap);
    kafka.properties.extend(cli.connections.kafka_property);
    match cli.command {
        Command::Smoke => smoke::run(&db_settings, &kafka).await,
        Command::Relay(args) => relay::run(&roles, &kafka, &args).await,
        Command::Registry(args) => registry::run(&roles, &args).await,
        Command::Outbox { command } => relay::outbox_command(&db_settings, &command).await,
        Command::Status(args) => status::run(&db_settings, &kafka, &args).await,
        Command::Dlq { command } => dlq::run(&db_settings, &kafka, &command).await,
        Command::Saga { command } => {
            saga::run(
                &db_settings,
                &cli.connections.schema_registry_url,
                &cli.connections.region,
                &command,
            )
            .await
        }
        Command::Notify { command } => notify::run(&roles, command).await,
        Command::Reconcile(args) => {
            reconcile::run(
                &db_settings,
                &cli.connections.schema_registry_url,
                &cli.connections.region,
                args,
            )
            .await
        }
        Command::Replay(args) => {
            replay::run(
                &db_settings,
                &kafka,
                &cli.connections.schema_registry_url,
                args,
            )
            .await
        }
        Command::Group { command } => replay::group(&db_settings, &kafka, command).await,
        Command::Region { command } => {
            region::run(&db_settings, &kafka, &cli.connections.regions, &command).await
        }
        Command::Console(args) => {
            let regions = if connections_region_known {
                cli.connections.regions.regions(&kafka)
            } else {
                Vec::new()
            };
            console::run(
                &db_settings,
                &kafka,
                &cli.connections.schema_registry_url,
                (&cli.connections.region, regions),
                &args,
            )
            .await
        }
        Command::Demo(args) => {
            demo::run(&roles, &kafka, &cli.connections.schema_registry_url, &args).await
        }
        Command::Serve(args) => {
            serve::run(
                &roles,
                &kafka,
                &cli.connections.schema_registry_url,
                &cli.connections.region,
                &args,
            )
            .await
        }
        Command::Bench { command } => bench::run(&db_settings, &kafka, &command).await,
        Command::Migrate => {
            let pool = db::connect(&db_settings).await?;
            db::migrate(&pool).await?;
            println!("migrations applied: {}", db::MIGRATOR.iter().count());
            Ok(())
        }
    }
}

/// Cancels `token` on SIGINT (Ctrl-C) or SIGTERM.
async fn cancel_on_signal(token: tokio_util::sync::CancellationToken) {
    let mut terminate = match tokio::signal::unix::signal(
        tokio::signal::unix::SignalKind::terminate(),
    ) {
        Ok(signal) => signal,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops this process");
            tokio::signal::ctrl_c().await.ok();
            token.cancel();
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
    }
    token.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }

    #[test]
    fn a_region_with_a_cluster_selects_it_and_its_own_database() {
        assert_eq!(
            target(None, None, "west", Some("127.0.0.1:9094")),
            Target {
                database_url: "postgres://postgres@127.0.0.1:5432/orderflow_west".into(),
                kafka_bootstrap: "127.0.0.1:9094".into(),
                region_database: Some("orderflow_west".into()),
            }
        );
    }

    #[test]
    fn settings_given_explicitly_win_over_the_regions() {
        let given = target(
            Some("postgres://app@db:5432/orders"),
            Some("kafka:9092"),
            "west",
            Some("127.0.0.1:9094"),
        );
        assert_eq!(given.database_url, "postgres://app@db:5432/orders");
        assert_eq!(given.kafka_bootstrap, "kafka:9092");
        assert_eq!(given.region_database, None);
        let database_only = target(
            Some("postgres://app@db:5432/orders"),
            None,
            "west",
            Some("b:1"),
        );
        assert_eq!(database_only.kafka_bootstrap, "b:1");
    }

    #[test]
    fn a_region_without_a_cluster_keeps_the_local_defaults() {
        assert_eq!(
            target(None, None, "local", None),
            Target {
                database_url: DEFAULT_DATABASE_URL.into(),
                kafka_bootstrap: producers::DEFAULT_BOOTSTRAP.into(),
                region_database: None,
            }
        );
    }
}
