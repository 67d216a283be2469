//! `orderflow replay ...` and `orderflow group reset ...`: operators' replays and consumer group offsets.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use ops::groups::{self, ResetTo};
use ops::replay::{self, Filters, Mode, Range, ReplaySpec, Replayer, Report, Target};
use producers::KafkaConfig;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// `orderflow replay`: a new replay, or `resume` / `history`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ReplayArgs {
    #[command(subcommand)]
    command: Option<ReplayCommand>,
    #[command(flatten)]
    spec: SpecArgs,
}

#[derive(Debug, clap::Subcommand)]
enum ReplayCommand {
    /// Continue a replay that was stopped, killed or failed, from its checkpoints. Records it wrote after
    /// its last checkpoint are found on the target by their replay.id header and not written again.
    Resume { id: Uuid },
    /// The latest replays: who ran them, when, with what arguments, the counts and the outcome.
    History {
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
}

/// What to replay and where.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["to_topic", "to_group"])))]
struct SpecArgs {
    /// The topic to read, e.g. orders.events.
    #[arg(required = true)]
    source: Option<String>,
    /// Read only these partitions (repeat, or comma-separate); default every one.
    #[arg(long = "partition", value_delimiter = ',')]
    partitions: Vec<i32>,
    /// First offset to replay, on each partition read (default its first).
    #[arg(long, conflicts_with_all = ["from_time", "to_time"])]
    from_offset: Option<i64>,
    /// Offset to stop before, on each partition read (default its high watermark when the replay starts).
    #[arg(long, conflicts_with_all = ["from_time", "to_time"])]
    to_offset: Option<i64>,
    /// Replay records with a timestamp at or after this time, RFC 3339 (2026-12-01T03:00:00Z).
    #[arg(long)]
    from_time: Option<DateTime<Utc>>,
    /// Replay records with a timestamp before this time, RFC 3339.
    #[arg(long)]
    to_time: Option<DateTime<Utc>>,
    /// Only records with this event_type header (repeat for several).
    #[arg(long = "event-type")]
    event_types: Vec<String>,
    /// Only records with this key, as text (repeat for several).
    #[arg(long = "key")]
    keys: Vec<String>,
    /// Only records with this header, NAME=VALUE (repeat: every one must match).
    #[arg(long = "header", value_parser = replay::parse_header)]
    headers: Vec<(String, String)>,
    /// Copy the records to this topic (it must exist), with their headers and replay.id, replay.source
    /// and replay.at added.
    #[arg(long)]
    to_topic: Option<String>,
    /// Run the records through this consumer group's handlers instead (projections only: orders-view,
    /// orders-global).
    #[arg(long)]
    to_group: Option<String>,
    /// With --to-group: rebuild the projection in a fresh inbox scope, compare it with the live one, list
    /// the differences and restore the live one from the events.
    #[arg(long, requires = "to_group")]
    rebuild: bool,
    /// Records per second at most (default: as fast as the target takes them).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    rate: Option<u32>,
    /// Write. Without it, a dry run: what would be replayed, and nothing written.
    #[arg(long)]
    apply: bool,
    /// Records per Kafka transaction and checkpoint.
    #[arg(long, default_value_t = replay::DEFAULT_BATCH as u64, value_parser = clap::value_parser!(u64).range(1..=200_000))]
    batch: u64,
}

impl SpecArgs {
    fn spec(&self) -> anyhow::Result<ReplaySpec> {
        let source = self.source.clone().context("a source topic is required")?;
        let range = if self.from_time.is_some() || self.to_time.is_some() {
            if let (Some(from), Some(to)) = (self.from_time, self.to_time) {
                anyhow::ensure!(
                    from < to,
                    BadInput(format!("--from-time {from} is not before --to-time {to}"))
                );
            }
            Range::Times {
                from: self.from_time,
                to: self.to_time,
            }
        } else {
            Range::Offsets {
                from: self.from_offset,
                to: self.to_offset,
            }
        };
        let target = match (&self.to_topic, &self.to_group) {
            (Some(topic), _) => Target::Topic(topic.clone()),
            (None, Some(group)) => Target::Group {
                group: group.clone(),
                rebuild: self.rebuild,
            },
            (None, None) => anyhow::bail!(BadInput("--to-topic or --to-group is required".into())),
        };
        Ok(ReplaySpec {
            source,
            partitions: (!self.partitions.is_empty()).then(|| self.partitions.clone()),
            range,
            filters: Filters {
                event_types: self.event_types.clone(),
                keys: self.keys.clone(),
                headers: self.headers.clone(),
            },
            target,
            rate: self.rate,
        })
    }
}

/// Input the command cannot carry out; the process exits 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// Whether `error` is bad input (exit 2) rather than a failure (exit 1).
pub fn is_bad_input(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.is::<BadInput>()
            || cause
                .downcast_ref::<ops::OperatorError>()
                .is_some_and(ops::OperatorError::is_refusal)
    })
}

/// Who runs an operator command, for its audit row: `$USER`.
pub fn run_by() -> String {
    std::env::var("USER").unwrap_or_else(|_| "unknown".into())
}

pub async fn run(
    db: &db::DbConfig,
    kafka: &KafkaConfig,
    registry_url: &str,
    args: ReplayArgs,
) -> anyhow::Result<()> {
    let pool = db::connect(db).await?;
    db::migrate(&pool).await?;
    if let Some(ReplayCommand::History { limit }) = args.command {
        print!("{}", render_history(&replay::history(&pool, limit).await?));
        return Ok(());
    }
    let cancel = CancellationToken::new();
    tokio::spawn(crate::cancel_on_signal(cancel.clone()));
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} replay: {msg} [{bar:30}] {pos}/{len} offsets ({per_sec}, eta {eta})",
    )?;
    let progress = indicatif::ProgressBar::new(0).with_style(style);
    progress.enable_steady_tick(Duration::from_millis(200));
    let replayer = Replayer {
        pool: &pool,
        kafka,
        codec: Arc::new(schemas::AvroCodec::new(registry_url).context("bad registry URL")?),
        progress: &progress,
        cancel: &cancel,
        max_batch: usize::try_from(args.spec.batch).unwrap_or(replay::DEFAULT_BATCH),
    };
    let report = match args.command {
        Some(ReplayCommand::Resume { id }) => {
            progress.set_message(format!("resuming {id}"));
            replayer.resume(id).await
        }
        _ => {
            let spec = args.spec.spec()?;
            let mode = if args.spec.apply {
                Mode::Apply
            } else {
                Mode::DryRun
            };
            progress.set_message(format!("{} to {}", spec.source, spec.target));
            replayer.start(spec, mode, &run_by()).await
        }
    };
    progress.finish_and_clear();
    let report = report.context("replay failed")?;
    print!("{}", render_report(&report));
    Ok(())
}

fn at(time: Option<DateTime<Utc>>) -> String {
    time.map_or_else(
        || "-".into(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    )
}

/// What a replay did, for a terminal.
fn render_report(report: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let spec = &report.spec;
    let mode = match report.mode {
        Mode::DryRun => "dry run",
        Mode::Apply => "applied",
    };
    let _ = writeln!(
        out,
        "replay {} ({mode}): {} -> {}, {}",
        report.id,
        spec.source,
        spec.target,
        spec.describe()
    );
    let _ = writeln!(
        out,
        "{:>9}  {:>10}  {:>10}  {:>8}  {:>8}  {:>8}  {:<24}  {:<24}",
        "partition", "from", "to", "read", "matched", "written", "first matched", "last matched"
    );
    for cursor in &report.cursors {
        let seen = report
            .tally
            .partitions
            .get(&cursor.range.partition)
            .copied()
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:>9}  {:>10}  {:>10}  {:>8}  {:>8}  {:>8}  {:<24}  {:<24}",
            cursor.range.partition,
            cursor.range.start,
            cursor.range.end,
            seen.read,
            seen.matched,
            cursor.written,
            at(seen.first_at),
            at(seen.last_at)
        );
    }
    if !report.tally.by_type.is_empty() {
        let _ = writeln!(out, "matched by event type:");
        for (event_type, n) in &report.tally.by_type {
            let _ = writeln!(out, "  {event_type:<28} {n:>10}");
        }
    }
    for sample in &report.samples {
        let event = match &sample.event {
            Ok(json) => json.to_string(),
            Err(why) => format!("(does not decode: {why})"),
        };
        let _ = writeln!(
            out,
            "sample {}/{} key={} at {}: {event}",
            sample.partition,
            sample.offset,
            sample.key.as_deref().unwrap_or("(none)"),
            at(sample.timestamp)
        );
    }
    if report.found_on_resume > 0 {
        let _ = writeln!(
            out,
            "found {} records written after the last checkpoint; not written again",
            report.found_on_resume
        );
    }
    if let Some(d) = &report.differences {
        let _ = writeln!(
            out,
            "rebuilt {} orders: {} missing from the view, {} differing ({} where the view is ahead, left), \
             {} only in the view; {} rows restored",
            d.rebuilt, d.missing, d.differing, d.view_ahead, d.only_in_view, d.restored
        );
        for example in &d.examples {
            let _ = writeln!(out, "  {example}");
        }
    }
    match (report.mode, report.stopped) {
        (Mode::DryRun, _) => {
            let _ = writeln!(
                out,
                "dry run: nothing written; add --apply to replay {} records",
                report.tally.counts.matched
            );
        }
        (Mode::Apply, true) => {
            let _ = writeln!(
                out,
                "stopped after {} records; continue with `orderflow replay resume {}`",
                report.written(),
                report.id
            );
        }
        (Mode::Apply, false) => {
            let _ = writeln!(
                out,
                "done: {} records written to {}",
                report.written(),
                spec.target
            );
        }
    }
    out
}

fn render_history(rows: &[replay::ReplayRow]) -> String {
    use std::fmt::Write as _;
    if rows.is_empty() {
        return "no replays yet\n".into();
    }
    let mut out = String::new();
    for row in rows {
        let arguments = serde_json::from_value::<ReplaySpec>(row.arguments.clone()).map_or_else(
            |e| format!("(arguments do not read: {e})"),
            |spec| spec.describe(),
        );
        let _ = writeln!(
            out,
            "{}  {}  by {}  {}  {} -> {}, {arguments}  read {} matched {} written {}  {}{}",
            row.id,
            at(Some(row.started_at)),
            row.run_by,
            row.mode,
            row.source_topic,
            row.target,
            row.read,
            row.matched,
            row.written,
            row.outcome,
            row.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
    }
    out
}

/// `orderflow group ...`
#[derive(Debug, clap::Subcommand)]
pub enum GroupCommand {
    /// Move a consumer group's committed offsets on a topic. Dry run by default (each partition's offset
    /// before and after); --apply commits them. Refused while the group has active members. The group's
    /// inbox skips events it applied already, so a rewind re-delivers without re-applying.
    Reset(GroupResetArgs),
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("to").required(true).args(["to_time", "to_offset", "to_earliest", "to_latest", "shift_by"])))]
pub struct GroupResetArgs {
    group: String,
    #[arg(long)]
    topic: String,
    /// The first record at or after this time, RFC 3339.
    #[arg(long)]
    to_time: Option<DateTime<Utc>>,
    /// This offset on every partition.
    #[arg(long)]
    to_offset: Option<i64>,
    #[arg(long)]
    to_earliest: bool,
    #[arg(long)]
    to_latest: bool,
    /// Move by N records from the committed offset (negative to go back), within the partition.
    #[arg(long, allow_hyphen_values = true)]
    shift_by: Option<i64>,
    /// Commit the new offsets. Without it, a dry run.
    #[arg(long)]
    apply: bool,
}

pub async fn group(
    db: &db::DbConfig,
    kafka: &KafkaConfig,
    command: GroupCommand,
) -> anyhow::Result<()> {
    let GroupCommand::Reset(args) = command;
    let to = match (args.to_time, args.to_offset, args.shift_by) {
        (Some(time), _, _) => ResetTo::Time(time),
        (_, Some(offset), _) => ResetTo::Offset(offset),
        (_, _, Some(by)) => ResetTo::ShiftBy(by),
        _ if args.to_earliest => ResetTo::Earliest,
        _ => ResetTo::Latest,
    };
    let pool = db::connect(db).await?;
    db::migrate(&pool).await?;
    let moved = groups::reset(
        &pool,
        kafka,
        &args.group,
        &args.topic,
        to,
        args.apply,
        &run_by(),
    )
    .await
    .with_context(|| format!("cannot reset group {}", args.group))?;
    println!("{:>9}  {:>10}  {:>10}", "partition", "before", "after");
    for m in &moved {
        let before = m.before.map_or_else(|| "-".into(), |b| b.to_string());
        println!("{:>9}  {before:>10}  {:>10}", m.partition, m.after);
    }
    if args.apply {
        println!(
            "group {} now reads {} from the offsets after",
            args.group, args.topic
        );
    } else {
        println!("dry run: nothing changed; add --apply to commit these offsets");
    }
    Ok(())
}
