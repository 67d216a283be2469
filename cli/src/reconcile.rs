//! `orderflow reconcile`: finance's reconciliation of a window, and the history of runs.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use ops::reconcile::{self, Repairer, Window};
use producers::topics::Topics;
use services::payments::{ProviderClient, Recorder};

/// `orderflow reconcile ...`
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ReconcileArgs {
    #[command(subcommand)]
    command: Option<ReconcileCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, clap::Subcommand)]
enum ReconcileCommand {
    /// The latest runs: who, when, window, mode, what each found.
    History {
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Start of the window, RFC 3339 (2026-11-30T00:00:00Z) or a UTC date (2026-11-30). Default: yesterday.
    #[arg(long, value_parser = reconcile::parse_time)]
    from: Option<DateTime<Utc>>,
    /// End of the window, excluded. Default: a day after --from.
    #[arg(long, value_parser = reconcile::parse_time, requires = "from")]
    to: Option<DateTime<Utc>>,
    /// How to print the report: a table per class, JSON (summary and differences) or CSV (differences).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Repair what can be repaired safely, through the provider and the payments service: record a capture
    /// the provider made, refund money held for a cancelled order or captured twice, void a dangling
    /// authorization, send a given-up notification again. The rest is marked as needing attention, with
    /// the reason. Each difference once, however often this runs or wherever it was killed.
    #[arg(long)]
    apply: bool,
    /// The payment provider's API, which --apply asks for refunds, voids and the results it records.
    #[arg(long, env = "PROVIDER_URL", default_value = services::payments::DEFAULT_PROVIDER_URL)]
    provider_url: String,
    /// Prefix of the topics the payments service writes to (its recorded results reply there).
    #[arg(long, env = "TOPIC_PREFIX", default_value = "")]
    topic_prefix: String,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Format {
    Table,
    Json,
    Csv,
}

/// Runs a reconciliation and prints its report; fails (exit 1) when differences remain, for cron and
/// alerting.
pub async fn run(
    db_settings: &db::DbConfig,
    registry_url: &str,
    region: &str,
    args: ReconcileArgs,
) -> anyhow::Result<()> {
    let pool = db::connect(db_settings).await?;
    db::migrate(&pool).await?;
    if let Some(ReconcileCommand::History { limit }) = args.command {
        for run in reconcile::history(&pool, limit).await? {
            println!(
                "{}\t{}\t{}\t{} to {}\t{}\t{}\t{}",
                run.id,
                run.started_at,
                run.run_by,
                run.window_from,
                run.window_to,
                run.mode,
                run.outcome.unwrap_or_else(|| "running".into()),
                run.found.map(|f| f.to_string()).unwrap_or_default()
            );
        }
        return Ok(());
    }
    let args = args.run;
    let codec = Arc::new(schemas::AvroCodec::new(registry_url).context("bad registry URL")?);
    let context = services::Context::new(
        pool.clone(),
        codec,
        Topics::with_prefix(args.topic_prefix.clone()),
        region.to_owned(),
    );
    let provider = ProviderClient::new(&args.provider_url, Duration::from_secs(10))?;
    let repairer = Repairer::new(provider, Recorder::new(context));
    let mode = if args.apply {
        reconcile::Mode::Apply(&repairer)
    } else {
        reconcile::Mode::DryRun
    };
    let window = Window::asked(args.from, args.to, Utc::now()).map_err(anyhow::Error::msg)?;
    let run_by = crate::replay::run_by();
    eprintln!("reconcile: {} to {}", window.from, window.to);
    // On a terminal only: cron and pipes get the report alone.
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} reconcile: {msg} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})",
    )?;
    let progress = indicatif::ProgressBar::new(0).with_style(style);
    progress.enable_steady_tick(Duration::from_millis(200));
    let report = reconcile::reconcile(&pool, window, &run_by, mode, &progress)
        .await
        .context("reconciliation failed")?;
    match args.format {
        Format::Table => print!("{}", reconcile::render_table(&report)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Csv => print!("{}", reconcile::render_csv(&report)),
    }
    let repaired = report
        .repairs
        .as_ref()
        .map_or(0, reconcile::Repairs::repaired);
    let remaining = report.summary.total() - repaired;
    anyhow::ensure!(
        remaining == 0,
        "{remaining} differences remain (run {})",
        report.run_id
    );
    Ok(())
}
