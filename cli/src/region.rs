//! `orderflow region ...`: the replication between regions.

use anyhow::Context as _;
use ops::region::{self, Region};
use producers::KafkaConfig;

/// `orderflow region ...`
#[derive(Debug, clap::Subcommand)]
pub enum RegionCommand {
    /// Per replicated topic and partition: the source's end offset, its copy's, and the lag in records and
    /// seconds (by the records' timestamps, which MirrorMaker 2 keeps); the age of MirrorMaker 2's newest
    /// heartbeat per flow and of its newest checkpoint per consumer group. Exit 1 when a partition lags
    /// past a limit.
    Status(StatusArgs),
    /// Move a consumer group that read a region's topics there to read their copies in another region, at
    /// the offsets MirrorMaker 2 translated (its newest checkpoints). Dry run by default, showing each
    /// partition's offset before and after; refused while the group has active members in the target
    /// region. What the group read after its last checkpoint is read again, and its inbox skips it. Every
    /// failover, dry runs and refusals included, is a row of region_failovers in DATABASE_URL's database.
    Failover(FailoverArgs),
}

/// Where the regions' clusters are.
#[derive(Debug, clap::Args)]
pub struct RegionsArg {
    /// The regions' clusters, NAME=BOOTSTRAP comma-separated; the names are MirrorMaker 2's cluster
    /// aliases (the prefixes of the copies), lowercase letters, digits and _.
    #[arg(
        long = "region-clusters",
        value_name = "NAME=BOOTSTRAP",
        env = "ORDERFLOW_REGIONS",
        value_delimiter = ',',
        default_value = "east=127.0.0.1:9092,west=127.0.0.1:9094",
        value_parser = parse_region,
        global = true
    )]
    clusters: Vec<(String, String)>,
}

impl RegionsArg {
    /// The bootstrap servers of region `name`, when it is one of them.
    pub fn bootstrap(&self, name: &str) -> Option<&str> {
        self.clusters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, bootstrap)| bootstrap.as_str())
    }

    /// The regions, with the -X properties (security settings) of every client.
    pub fn regions(&self, kafka: &KafkaConfig) -> Vec<Region> {
        self.clusters
            .iter()
            .map(|(name, bootstrap)| {
                let mut cluster = KafkaConfig::new(bootstrap);
                cluster.properties.clone_from(&kafka.properties);
                Region {
                    name: name.clone(),
                    kafka: cluster,
                }
            })
            .collect()
    }

    fn find(&self, kafka: &KafkaConfig, name: &str) -> anyhow::Result<Region> {
        let known: Vec<&str> = self.clusters.iter().map(|(n, _)| n.as_str()).collect();
        self.regions(kafka)
            .into_iter()
            .find(|r| r.name == name)
            .ok_or_else(|| {
                crate::replay::BadInput(format!(
                    "unknown region {name} (--region-clusters names {})",
                    known.join(", ")
                ))
                .into()
            })
    }
}

#[derive(Debug, clap::Args)]
pub struct FailoverArgs {
    group: String,
    /// The region the group read in, e.g. east.
    #[arg(long)]
    from: String,
    /// The region whose copies it reads from now, e.g. west.
    #[arg(long)]
    to: String,
    /// Commit the translated offsets. Without it, a dry run.
    #[arg(long)]
    apply: bool,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Exit 1 when a partition lags by more records than this.
    #[arg(long, default_value_t = 1000)]
    max_lag_records: i64,
    /// Exit 1 when a partition lags by more seconds than this.
    #[arg(long, default_value_t = 30.0)]
    max_lag_seconds: f64,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Instead of printing once, serve the same figures as Prometheus gauges on GET http://ADDR/metrics,
    /// read again every --every seconds, until SIGINT or SIGTERM (e.g. 127.0.0.1:9465; port 0 picks one
    /// and prints it): replication_lag_records and _lag_seconds per flow, topic and partition,
    /// _heartbeat_age_seconds per flow, _checkpoint_age_seconds per flow and group, and
    /// replication_status_up (0 while the clusters cannot be read).
    #[arg(long, value_name = "ADDR", conflicts_with = "json")]
    serve: Option<std::net::SocketAddr>,
    /// With --serve, seconds between two readings.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    every: u64,
}

fn parse_region(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, bootstrap)) if !name.trim().is_empty() && !bootstrap.trim().is_empty() => {
            let name = name.trim();
            if !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(format!(
                    "region name {name:?}: use lowercase letters, digits and _ (it names the region's \
                     database and its copies' prefix)"
                ));
            }
            Ok((name.to_owned(), bootstrap.trim().to_owned()))
        }
        _ => Err(format!("expected NAME=BOOTSTRAP, got {text:?}")),
    }
}

pub async fn run(
    db: &db::DbConfig,
    kafka: &KafkaConfig,
    regions: &RegionsArg,
    command: &RegionCommand,
) -> anyhow::Result<()> {
    match command {
        RegionCommand::Status(args) => status(kafka, regions, args).await,
        RegionCommand::Failover(args) => failover(db, kafka, regions, args).await,
    }
}

async fn failover(
    db: &db::DbConfig,
    kafka: &KafkaConfig,
    regions: &RegionsArg,
    args: &FailoverArgs,
) -> anyhow::Result<()> {
    let (from, to) = (
        regions.find(kafka, &args.from)?,
        regions.find(kafka, &args.to)?,
    );
    anyhow::ensure!(
        from.name != to.name,
        crate::replay::BadInput("--from and --to name the same region".into())
    );
    // Every failover, dry runs and refusals included, is a row of region_failovers.
    let pool = db::connect(db).await?;
    db::migrate(&pool).await?;
    let moved = region::failover(
        &pool,
        &args.group,
        &from,
        &to,
        args.apply,
        &crate::replay::run_by(),
    )
    .await
    .with_context(|| format!("cannot fail group {} over", args.group))?;
    println!(
        "{:<40}  {:>9}  {:>10}  {:>10}  {:>14}",
        "topic",
        "partition",
        "before",
        "after",
        format!("({} offset)", from.name)
    );
    for m in &moved {
        let before = m.before.map_or_else(|| "-".into(), |b| b.to_string());
        println!(
            "{:<40}  {:>9}  {before:>10}  {:>10}  {:>14}",
            m.topic, m.partition, m.after, m.upstream
        );
    }
    if args.apply {
        println!(
            "group {} now reads {}'s copies in {} from the offsets after",
            args.group, from.name, to.name
        );
    } else {
        println!(
            "dry run: nothing changed; add --apply to commit these offsets in {}",
            to.name
        );
    }
    Ok(())
}

async fn status(
    kafka: &KafkaConfig,
    regions: &RegionsArg,
    args: &StatusArgs,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        regions.clusters.len() >= 2,
        crate::replay::BadInput("--region-clusters needs two regions or more".into())
    );
    let regions = regions.regions(kafka);
    if let Some(addr) = args.serve {
        return serve(&regions, addr, std::time::Duration::from_secs(args.every)).await;
    }
    let status = region::status(&regions)
        .await
        .map_err(anyhow::Error::msg)
        .context("cannot read the replication's state")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        println!(
            "{:<12}  {:<32}  {:>9}  {:>12}  {:>12}  {:>8}  {:>9}",
            "flow", "topic", "partition", "source end", "copy end", "lag", "lag (s)"
        );
        for p in &status.partitions {
            println!(
                "{:<12}  {:<32}  {:>9}  {:>12}  {:>12}  {:>8}  {:>9.1}",
                p.flow,
                p.topic,
                p.partition,
                p.source_end,
                p.replicated_end,
                p.lag_records,
                p.lag_seconds
            );
        }
        for flow in &status.flows {
            let heartbeat = flow
                .heartbeat_age_seconds
                .map_or_else(|| "none yet".to_owned(), |age| format!("{age:.1} s ago"));
            println!("{}: newest heartbeat {heartbeat}", flow.flow);
            for (group, age) in &flow.checkpoint_age_seconds {
                println!("  checkpoint of group {group}: {age:.1} s ago");
            }
        }
    }
    let lagging: Vec<String> = status
        .lagging(args.max_lag_records, args.max_lag_seconds)
        .map(|p| {
            format!(
                "{} {}/{} ({} records, {:.1} s)",
                p.flow, p.topic, p.partition, p.lag_records, p.lag_seconds
            )
        })
        .collect();
    anyhow::ensure!(
        lagging.is_empty(),
        "{} partition(s) lag past {} records or {} s: {}",
        lagging.len(),
        args.max_lag_records,
        args.max_lag_seconds,
        lagging.join(", ")
    );
    Ok(())
}

/// Serves the replication's figures as Prometheus gauges on `addr`, reading them every `every`, until SIGINT
/// or SIGTERM.
async fn serve(
    regions: &[Region],
    addr: std::net::SocketAddr,
    every: std::time::Duration,
) -> anyhow::Result<()> {
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("failed to install the metrics recorder")?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("failed to listen on {addr}"))?;
    println!(
        "replication metrics: http://{}/metrics, read every {} s",
        listener.local_addr()?,
        every.as_secs()
    );
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(crate::cancel_on_signal(shutdown.clone()));
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || std::future::ready(metrics.render())),
    );
    let server = tokio::spawn(web::serve(
        listener,
        app,
        shutdown.clone().cancelled_owned(),
    ));
    while !shutdown.is_cancelled() {
        let up = match region::status(regions).await {
            Ok(status) => {
                status.publish();
                1.0
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the replication's state");
                0.0
            }
        };
        metrics::gauge!("replication_status_up").set(up);
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = tokio::time::sleep(every) => {}
        }
    }
    server.await?.context("the metrics endpoint failed")?;
    Ok(())
}
