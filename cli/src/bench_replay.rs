//! `orderflow bench replay`: topic-to-topic records per second of `orderflow replay --apply`, beside a copy
//! loop written with Confluent's Python client (`scripts/bench_copy_topic.py`) on the same broker and
//! records, in the same run.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, ensure};
use ops::replay::{Filters, Mode, Range, ReplaySpec, Replayer, Target};
use producers::{KafkaConfig, ProducerConfig};
use tokio_util::sync::CancellationToken;

#[derive(Debug, clap::Args)]
pub struct ReplayBenchArgs {
    /// Records in the source topic; each side copies them all.
    #[arg(long, default_value_t = 200_000)]
    records: usize,
    /// Payload size of each record, in bytes.
    #[arg(long, default_value_t = 300)]
    payload_bytes: usize,
    /// Partitions of the source and target topics.
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// Records per transaction and checkpoint of the replay.
    #[arg(long, default_value_t = ops::replay::DEFAULT_BATCH)]
    batch: usize,
    /// The Python of the baseline, with confluent-kafka (default: the venv `./dev up` installs).
    #[arg(long)]
    python: Option<PathBuf>,
}

pub async fn run(
    db_settings: &db::DbConfig,
    kafka: &KafkaConfig,
    args: &ReplayBenchArgs,
) -> anyhow::Result<()> {
    ensure!(args.records > 0, "records must be above zero");
    let python = args.python.clone().unwrap_or_else(venv_python);
    ensure!(
        python.exists(),
        "no Python at {} (run ./dev up, or give --python one with confluent-kafka)",
        python.display()
    );
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let db_name = format!("orderflow_bench_{run_id}");
    let url = db::create_database(&db_settings.url, &db_name).await?;
    let result = async {
        let pool = db::connect(&db::DbConfig::from_url(&url)).await?;
        db::migrate(&pool).await?;
        let source = format!("orderflow-bench-{run_id}");
        producers::ensure_topic(kafka, &source, args.partitions).await?;
        eprintln!(
            "bench replay: {} records of {} bytes, topic {source} ({} partitions)",
            args.records, args.payload_bytes, args.partitions
        );
        let records = crate::bench::make_records(&source, args.records, args.payload_bytes, 1000);
        crate::bench::raw_producer_rate(kafka, &ProducerConfig::default(), &records).await?;
        drop(records);

        // Two runs each, alternating, keeping the faster of each: the first read of a topic also pays for
        // cold caches, and this machine is shared.
        let (mut ours, mut theirs) = (0.0_f64, 0.0_f64);
        for round in 1..=2 {
            let target = format!("{source}-python-{round}");
            producers::ensure_topic(kafka, &target, args.partitions).await?;
            let rate = python_copy(&python, kafka, &source, &target).await?;
            println!("round {round}: python copy loop {rate:.0} records/s");
            theirs = theirs.max(rate);

            let target = format!("{source}-replay-{round}");
            producers::ensure_topic(kafka, &target, args.partitions).await?;
            let rate = replay(&pool, kafka, &source, &target, args).await?;
            println!("round {round}: orderflow replay {rate:.0} records/s");
            ours = ours.max(rate);
        }
        println!("python copy loop (confluent-kafka): {theirs:.0} records/s");
        println!("orderflow replay --apply:           {ours:.0} records/s");
        println!(
            "ratio (orderflow replay / python copy loop): {:.2}",
            ours / theirs
        );
        pool.close().await;
        anyhow::Ok(())
    }
    .await;
    db::drop_database(&db_settings.url, &db_name).await.ok();
    result
}

fn venv_python() -> PathBuf {
    std::env::var_os("ORDERFLOW_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".orderflow")))
        .unwrap_or_default()
        .join("venv/bin/python")
}

/// `orderflow replay SOURCE --to-topic TARGET --apply`, timed from the call to the last checkpoint.
async fn replay(
    pool: &sqlx::PgPool,
    kafka: &KafkaConfig,
    source: &str,
    target: &str,
    args: &ReplayBenchArgs,
) -> anyhow::Result<f64> {
    let (progress, cancel) = (indicatif::ProgressBar::hidden(), CancellationToken::new());
    let replayer = Replayer {
        pool,
        kafka,
        // The records are not Avro and a topic replay decodes nothing.
        codec: Arc::new(schemas::AvroCodec::new(
            schemas::codec::DEFAULT_REGISTRY_URL,
        )?),
        progress: &progress,
        cancel: &cancel,
        max_batch: args.batch,
    };
    let spec = ReplaySpec {
        source: source.to_owned(),
        partitions: None,
        range: Range::default(),
        filters: Filters::default(),
        target: Target::Topic(target.to_owned()),
        rate: None,
    };
    let started = Instant::now();
    let report = replayer.start(spec, Mode::Apply, "bench").await?;
    let elapsed = started.elapsed();
    ensure!(
        report.written() == i64::try_from(args.records)?,
        "the replay wrote {} records of {}",
        report.written(),
        args.records
    );
    Ok(args.records as f64 / elapsed.as_secs_f64())
}

/// Runs the Python copy loop and returns its records per second.
async fn python_copy(
    python: &std::path::Path,
    kafka: &KafkaConfig,
    source: &str,
    target: &str,
) -> anyhow::Result<f64> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/bench_copy_topic.py");
    let mut command = std::process::Command::new(python);
    command.arg(&script).args([
        "--bootstrap",
        &kafka.bootstrap,
        "--source",
        source,
        "--target",
        target,
    ]);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await?
        .context("cannot run the python copy loop")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success(),
        "{} failed: {}{}",
        script.display(),
        stdout,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("records_per_second="))
        .context("the python copy loop printed no records_per_second")?
        .parse()
        .context("records_per_second is not a number")
}
