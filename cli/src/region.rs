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
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The regions, NAME=BOOTSTRAP comma-separated; the names are MirrorMaker 2's cluster aliases (the
    /// prefixes of the copies).
    #[arg(
        long,
        env = "ORDERFLOW_REGIONS",
        value_delimiter = ',',
        default_value = "east=127.0.0.1:9092,west=127.0.0.1:9094",
        value_parser = parse_region
    )]
    regions: Vec<(String, String)>,
    /// Exit 1 when a partition lags by more records than this.
    #[arg(long, default_value_t = 1000)]
    max_lag_records: i64,
    /// Exit 1 when a partition lags by more seconds than this.
    #[arg(long, default_value_t = 30.0)]
    max_lag_seconds: f64,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn parse_region(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, bootstrap)) if !name.trim().is_empty() && !bootstrap.trim().is_empty() => {
            Ok((name.trim().to_owned(), bootstrap.trim().to_owned()))
        }
        _ => Err(format!("expected NAME=BOOTSTRAP, got {text:?}")),
    }
}

pub async fn run(kafka: &KafkaConfig, command: &RegionCommand) -> anyhow::Result<()> {
    let RegionCommand::Status(args) = command;
    anyhow::ensure!(
        args.regions.len() >= 2,
        crate::replay::BadInput("--regions needs two regions or more".into())
    );
    let regions: Vec<Region> = args
        .regions
        .iter()
        .map(|(name, bootstrap)| {
            let mut cluster = KafkaConfig::new(bootstrap);
            // -X properties (security settings) apply to every region's clients.
            cluster.properties.clone_from(&kafka.properties);
            Region {
                name: name.clone(),
                kafka: cluster,
            }
        })
        .collect();
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
