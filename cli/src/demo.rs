//! `orderflow demo`: the whole pipeline on the local environment, a realistic mix of orders through it,
//! and a summary with consistency checks. Exits non-zero when a check fails.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use indicatif::ProgressBar;
use pipeline::report::{Report, wait_until_ended};
use pipeline::workload::{Placed, Workload};
use pipeline::{Pipeline, PipelineConfig, RegistrySetting};
use producers::KafkaConfig;
use producers::topics::Topics;

/// Settings of `orderflow demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Orders to place.
    #[arg(long, default_value_t = 2000)]
    pub(crate) orders: usize,
    /// Order submissions in flight at once.
    #[arg(long, default_value_t = 32)]
    pub(crate) concurrency: usize,
    /// Share of deliveries the simulated carrier fails before dispatch, from 0 to 1.
    #[arg(long, default_value_t = 0.05, value_parser = crate::provider_args::parse_share)]
    delivery_failure_rate: f64,
    /// Units of the flash-sale SKU; a quarter of the orders want one.
    #[arg(long, default_value_t = 100)]
    flash_sale_units: u32,
    /// Give up waiting for the sagas after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub(crate) timeout_secs: u64,
    /// Use the registry at SCHEMA_REGISTRY_URL instead of serving one in this process.
    #[arg(long)]
    external_registry: bool,
    /// Append the log here; the terminal shows only progress and the summary. Default:
    /// $ORDERFLOW_HOME/logs/demo-<time>.log, with ORDERFLOW_HOME defaulting to ~/.orderflow.
    #[arg(long, env = "DEMO_LOG_FILE", value_name = "FILE")]
    pub(crate) log_file: Option<PathBuf>,
    /// The orders HTTP API the demo serves while it runs (try `curl` on it).
    #[command(flatten, next_help_heading = "Orders API")]
    pub(crate) api: crate::api_args::ApiArgs,
    /// Serve the operator console over the demo's pipeline at this address while the demo runs (for
    /// example 127.0.0.1:8090), on this run's topics and consumer groups. One region only.
    #[arg(long, value_name = "ADDR")]
    console: Option<SocketAddr>,
    /// The console's access token (with --console): its actions need it; without one it only shows.
    #[arg(
        long,
        env = "CONSOLE_TOKEN",
        hide_env_values = true,
        requires = "console"
    )]
    console_token: Option<String>,
    /// The simulated payment provider's faults.
    #[command(flatten, next_help_heading = "Payment provider")]
    provider: crate::provider_args::ProviderKnobs,
    /// The regions: 2 runs east and west at once, each with the whole pipeline on its own cluster and
    /// database, --orders split between them; MirrorMaker 2 (`./dev up`) replicates their events, and
    /// the summary compares both regions' global views and shows the replication lag.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub regions: u8,
    /// With --regions 2, region west's cluster (region east's is --kafka-bootstrap).
    #[arg(long, env = "KAFKA_BOOTSTRAP_WEST", default_value = "127.0.0.1:9094")]
    pub west_bootstrap: String,
    /// With --regions 2, region west's database on the server of DATABASE_URL, created when missing
    /// (region east's is DATABASE_URL's).
    #[arg(long, default_value = "orderflow_west", value_parser = parse_database_name)]
    pub west_database: String,
}

/// A database name the demo may create: lowercase ASCII letters, digits and `_`.
fn parse_database_name(name: &str) -> Result<String, String> {
    if !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "{name:?} is not a database name the demo creates: use lowercase letters, digits and _"
        ))
    }
}

impl DemoArgs {
    /// Where the demo's log goes, once [`DemoArgs::pin_log_file`] has chosen.
    pub fn log_file(&self) -> Option<&std::path::Path> {
        self.log_file.as_deref()
    }

    /// Where the demo's log goes: the path given, else a new one under $ORDERFLOW_HOME/logs, kept for the
    /// rest of the run.
    pub fn pin_log_file(&mut self) -> PathBuf {
        self.log_file
            .get_or_insert_with(|| {
                let home = std::env::var_os("ORDERFLOW_HOME")
                    .map(PathBuf::from)
                    .or_else(|| {
                        std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".orderflow"))
                    })
                    .unwrap_or_else(std::env::temp_dir);
                let started = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
                home.join("logs").join(format!("demo-{started}.log"))
            })
            .clone()
    }
}

/// Runs the demo; every part runs in this process, on topics and consumer groups of this run only.
pub async fn run(
    roles: &db::RoleConfig,
    kafka: &KafkaConfig,
    registry_url: &str,
    args: &DemoArgs,
) -> anyhow::Result<()> {
    if args.regions == 2 {
        if args.console.is_some() {
            anyhow::bail!(crate::replay::BadInput(
                "--console serves one region's pipeline; it cannot go with --regions 2".into()
            ));
        }
        return crate::demo_regions::run(roles, kafka, registry_url, args).await;
    }
    if let Some(addr) = args.console {
        orderflow_console::check_listen(addr, args.console_token.as_deref())
            .map_err(crate::replay::BadInput)?;
    }
    // The workload's order submissions and the report run as the migrating user (they stand for the orders
    // API's clients and an operator): a connection per submission in flight, and a few more.
    let submissions = u32::try_from(args.concurrency).unwrap_or(u32::MAX);
    let pool = db::connect(&db::DbConfig {
        max_connections: submissions.saturating_add(4).min(60),
        acquire_timeout: Duration::from_secs(120),
        ..roles.admin().clone()
    })
    .await?;
    let mut workload = Workload::demo(args.orders);
    workload.concurrency = args.concurrency;
    workload.flash_sale_units = args.flash_sale_units;
    let mut config = demo_config(
        kafka,
        &format!("demo-{}", workload.run_id),
        args,
        registry_url,
    );
    // Each part on its own role: a connection per partition worker (6 partitions), plus its timers or
    // carrier and the inbox pruning; about 50 for the six parts, within Postgres's default 100.
    config.roles = Some(roles.clone().with_limits(8, Duration::from_secs(120)));
    println!(
        "demo run {}: {} orders, {} flash-sale units for about {} buyers, topics {}*",
        workload.run_id,
        args.orders,
        args.flash_sale_units,
        (args.orders as f64 * workload.flash_sale_share).round(),
        config.services.topics.prefix(),
    );
    if let Some(log_file) = &args.log_file {
        println!("log: {}", log_file.display());
    }
    config.http = Some(args.api.config());
    let pipeline = Pipeline::start(pool.clone(), config).await?;
    if let Some(addr) = pipeline.http_addr() {
        println!("orders API: http://{addr}/orders (GET /orders/<id>, GET /openapi.json)");
    }
    let console = match args.console {
        Some(addr) => Some(serve_console(&pipeline, addr, args.console_token.clone()).await?),
        None => None,
    };
    let outcome = drive(&pipeline, &workload, args).await;
    if let Some(console) = console {
        console.cancel();
    }
    let stopped = pipeline.stop().await;
    let (_, report) = outcome?;
    stopped?;
    print!("{}", report.render());
    anyhow::ensure!(report.passed(), "a consistency check failed");
    Ok(())
}

/// Serves the operator console over `pipeline` at `addr` until the returned token is cancelled.
async fn serve_console(
    pipeline: &Pipeline,
    addr: SocketAddr,
    token: Option<String>,
) -> anyhow::Result<tokio_util::sync::CancellationToken> {
    let shared = pipeline.shared();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("failed to listen on {addr} for the console"))?;
    println!("console: http://{}/", listener.local_addr()?);
    let services = &shared.config.services;
    let console = orderflow_console::Console::new(
        shared.pool.clone(),
        shared.config.kafka.clone(),
        orderflow_console::ConsoleConfig {
            topics: services.topics.clone(),
            group_prefix: services.group_prefix.clone(),
            regions: Vec::new(),
            replication_every: Duration::from_secs(15),
            token,
            reads_need_token: !addr.ip().is_loopback(),
            codec: Some(std::sync::Arc::clone(&shared.codec)),
            region: services.region.clone(),
        },
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let serving = console.serve(listener, stop.clone());
    tokio::spawn(async move {
        if let Err(e) = serving.await {
            tracing::error!(error = %e, "the demo's console stopped serving");
        }
    });
    Ok(stop)
}

/// Stocks, places the workload's orders, waits for their sagas, repairs and checks: what was placed, and
/// the run's report.
pub async fn drive(
    pipeline: &Pipeline,
    workload: &Workload,
    args: &DemoArgs,
) -> anyhow::Result<(Placed, Report)> {
    let shared = pipeline.shared();
    workload
        .stock(shared)
        .await
        .context("failed to put the stock in place")?;
    let progress = ProgressBar::new(0);
    let placed = workload.place(shared, &progress).await?;
    let open = wait_until_ended(
        &shared.pool,
        &placed,
        Duration::from_secs(args.timeout_secs),
        &progress,
        || pipeline.check(),
    )
    .await?;
    if open > 0 {
        eprintln!("{open} orders still open after {} s", args.timeout_secs);
    }
    // Finance's job at the end of the day: repair what the faults left, then check the books agree.
    let repairer = shared.repairer()?;
    let report = Report::gather(
        &shared.pool,
        &placed,
        &workload.flash_sku(),
        workload.flash_sale_units,
        Some(&repairer),
    )
    .await?;
    Ok((placed, report))
}

/// The demo's pipeline on `kafka`, its topics named `<name>.<service>.<kind>` and its groups `<name>-<part>`.
pub fn demo_config(
    kafka: &KafkaConfig,
    name: &str,
    args: &DemoArgs,
    registry_url: &str,
) -> PipelineConfig {
    let mut config = PipelineConfig::new(kafka.clone());
    config.services.topics = Topics::with_prefix(format!("{name}."));
    config.services.group_prefix = format!("{name}-");
    config.services.carrier.failure_rate = args.delivery_failure_rate;
    args.provider.apply(&mut config.provider);
    if args.external_registry {
        config.registry = RegistrySetting::Url(registry_url.to_owned());
    }
    config
}
