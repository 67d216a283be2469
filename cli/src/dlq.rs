//! `orderflow dlq ...`: list, inspect and redrive dead letters.

use anyhow::Context as _;
use consumers::dlq::{self, DeadLetter};
use ops::audit::Via;
use ops::dead_letters::{self, Selection};
use producers::KafkaConfig;

/// `orderflow dlq ...`
#[derive(Debug, clap::Subcommand)]
pub enum DlqCommand {
    /// List the dead letters of a dead-letter topic (for example orders.events.dlq).
    List { topic: String },
    /// Show one dead letter whole: envelope, original headers, key and value.
    Show {
        topic: String,
        partition: i32,
        offset: i64,
    },
    /// Publish dead letters back to their source topics with their original headers. Idempotent: the event
    /// id is unchanged, so consumers that applied it already skip it. Without --offset, every dead letter.
    /// Each redrive is a row of operator_actions in DATABASE_URL's database.
    Redrive {
        topic: String,
        /// Only the dead letter at this partition and offset.
        #[arg(long, requires = "offset")]
        partition: Option<i32>,
        #[arg(long, requires = "partition")]
        offset: Option<i64>,
    },
}

pub async fn run(
    db: &db::DbConfig,
    kafka: &KafkaConfig,
    command: &DlqCommand,
) -> anyhow::Result<()> {
    match command {
        DlqCommand::List { topic } => {
            let letters = dlq::list(kafka, topic)
                .await
                .with_context(|| format!("failed to read {topic}"))?;
            if letters.is_empty() {
                println!("{topic}: no dead letters");
            }
            for l in &letters {
                let (partition, offset) = (l.record.partition, l.record.offset);
                match &l.envelope {
                    Ok(e) => println!(
                        "{partition}/{offset}\tfrom {}/{}/{}\t{}\tattempts={}\t{}",
                        e.source_topic,
                        e.source_partition,
                        e.source_offset,
                        e.error_class,
                        e.attempts,
                        e.error_message
                    ),
                    Err(e) => println!("{partition}/{offset}\tunreadable envelope: {e}"),
                }
            }
        }
        DlqCommand::Show {
            topic,
            partition,
            offset,
        } => {
            let letter = find(kafka, topic, *partition, *offset).await?;
            let r = &letter.record;
            println!("dead letter {topic}/{partition}/{offset}");
            for (name, value) in &r.headers {
                println!("  {name}: {value}");
            }
            let key = r.key.as_deref().map(String::from_utf8_lossy);
            println!("key: {}", key.as_deref().unwrap_or("(none)"));
            println!(
                "value ({} bytes): {}",
                r.payload.len(),
                String::from_utf8_lossy(&r.payload)
            );
        }
        DlqCommand::Redrive {
            topic,
            partition,
            offset,
        } => {
            let selection = match (partition, offset) {
                (Some(p), Some(o)) => Selection::Only(vec![(*p, *o)]),
                _ => Selection::All,
            };
            // The redrive is a row of operator_actions, refused or not.
            let pool = db::connect(db).await?;
            db::migrate(&pool).await?;
            let sent = dead_letters::redrive(
                &pool,
                kafka,
                topic,
                &selection,
                Via::Cli,
                &crate::replay::run_by(),
            )
            .await
            .with_context(|| format!("cannot redrive from {topic}"))?;
            println!("redriven {sent} dead letter(s) from {topic}");
        }
    }
    Ok(())
}

async fn find(
    kafka: &KafkaConfig,
    topic: &str,
    partition: i32,
    offset: i64,
) -> anyhow::Result<DeadLetter> {
    let letters = dlq::list(kafka, topic)
        .await
        .with_context(|| format!("failed to read {topic}"))?;
    letters
        .into_iter()
        .find(|l| l.record.partition == partition && l.record.offset == offset)
        .with_context(|| {
            format!(
                "no dead letter at {topic}/{partition}/{offset} (see `orderflow dlq list {topic}`)"
            )
        })
}
