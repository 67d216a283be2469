//! Operators' replays of a range of a Kafka topic: `orderflow replay`.
//!
//! A replay reads a range of a source topic (some or all partitions, by offsets or by time, resolved once
//! when it starts: [`resolve`]), keeps the records its [`Filters`] match, and
//! - in a **dry run** (the default) writes nothing: it reports per partition the offsets and timestamps it
//!   would cover, the count per event type, and the first record of each type decoded through the schema
//!   registry;
//! - with **a topic target** copies them there with their key, value and headers (the `event_id` among
//!   them), adding `replay.id`, `replay.source` (`topic/partition/offset`) and `replay.at`, exactly once per
//!   source record even across a crash and `resume` ([`topic`] says how);
//! - with **a group target** re-runs a projection's handler over them ([`projection`]): in the group's own
//!   inbox scope, or with `rebuild` in a fresh one, then compares the rebuilt read model with the live one
//!   and restores it.
//!
//! Every replay is a row of `replays` (who, when, arguments, counts, outcome) and its checkpoints rows of
//! `replay_partitions`, saved after the target has the records ([`history`] lists them). A replay stopped by a signal,
//! killed, or failed continues with [`Replayer::resume`]. Two replays with the same arguments are two
//! replays: into a topic, the second writes every record again (with its own `replay.id`), and consumers of
//! that topic apply each event once because the `event_id` is the same.

mod filter;
mod plan;
pub mod projection;
mod run;
mod store;
pub mod topic;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use indicatif::ProgressBar;
use producers::KafkaConfig;
use rdkafka::message::{Message as _, OwnedMessage};
use schemas::codec::AvroCodec;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::OperatorError;

pub use filter::{Filters, parse_header};
pub use plan::{PartitionRange, Range, resolve};
pub use projection::{Differences, Projection};
pub use run::{Seen, Tally};
pub use store::{Counts, Cursor, ReplayRow, history, row};

use projection::ProjectionSink;
use run::{DryRun, Reading};
use store::Ending;
use topic::TopicSink;

/// Header of a replayed record: the replay's id.
pub const REPLAY_ID: &str = "replay.id";
/// Header of a replayed record: where it was read, `topic/partition/offset`.
pub const REPLAY_SOURCE: &str = "replay.source";
/// Header of a replayed record: when it was written, RFC 3339 in UTC.
pub const REPLAY_AT: &str = "replay.at";

/// Records per landing (a Kafka transaction and a checkpoint) unless told otherwise. Each landing stops the
/// reading for a commit's round trips (about 30 ms here): `orderflow bench replay` took 4.1 s for 200,000
/// records with 10,000 and 2.5 s with 50,000.
pub const DEFAULT_BATCH: usize = 50_000;

/// Records a dry run decodes and shows: the first of each event type, of this many types at most.
pub const SAMPLES: usize = 5;

/// Whether a replay writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    DryRun,
    Apply,
}

impl Mode {
    const fn as_str(self) -> &'static str {
        match self {
            Self::DryRun => "dry_run",
            Self::Apply => "apply",
        }
    }
}

/// Where replayed records go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    /// Another topic.
    Topic(String),
    /// A projection's handler, in its group's inbox scope, or rebuilt in a fresh one.
    Group { group: String, rebuild: bool },
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Topic(topic) => write!(f, "topic:{topic}"),
            Self::Group {
                group,
                rebuild: false,
            } => write!(f, "group:{group}"),
            Self::Group {
                group,
                rebuild: true,
            } => write!(f, "group:{group}+rebuild"),
        }
    }
}

/// What to replay, as the command's arguments say; stored with the replay so that a resume continues it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplaySpec {
    pub source: String,
    /// The partitions to read; every one when `None`.
    pub partitions: Option<Vec<i32>>,
    pub range: Range,
    pub filters: Filters,
    pub target: Target,
    /// Records written per second at most.
    pub rate: Option<u32>,
}

impl ReplaySpec {
    /// The range and filters in one line, e.g. `times [.., ..), partitions 0,2, event types OrderPlaced`.
    #[must_use]
    pub fn describe(&self) -> String {
        let mut parts = vec![self.range.to_string()];
        let list = |values: &[String]| values.join(",");
        if let Some(partitions) = &self.partitions {
            let partitions: Vec<String> = partitions.iter().map(ToString::to_string).collect();
            parts.push(format!("partitions {}", list(&partitions)));
        }
        let filters = &self.filters;
        if !filters.event_types.is_empty() {
            parts.push(format!("event types {}", list(&filters.event_types)));
        }
        if !filters.keys.is_empty() {
            parts.push(format!("keys {}", list(&filters.keys)));
        }
        for (name, value) in &filters.headers {
            parts.push(format!("header {name}={value}"));
        }
        if let Some(rate) = self.rate {
            parts.push(format!("at most {rate}/s"));
        }
        parts.join(", ")
    }
}

/// A decoded record of a dry run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sample {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub timestamp: Option<DateTime<Utc>>,
    /// The value decoded through the schema registry, or why it does not decode.
    pub event: Result<serde_json::Value, String>,
}

/// What a replay did (or, in a dry run, would do).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub id: Uuid,
    pub mode: Mode,
    pub spec: ReplaySpec,
    /// Every partition's range and where the replay got to.
    pub cursors: Vec<Cursor>,
    /// Records read and matched by this run, per partition and event type.
    #[serde(skip)]
    pub tally: Tally,
    pub samples: Vec<Sample>,
    /// Records a resume found already on the target past the last checkpoint.
    pub found_on_resume: i64,
    /// Whether a signal stopped it before the end (`replay resume` continues it).
    pub stopped: bool,
    /// A rebuild's comparison with the live projection.
    pub differences: Option<Differences>,
}

impl Report {
    /// Records on the target from this replay, over all its runs.
    #[must_use]
    pub fn written(&self) -> i64 {
        self.cursors.iter().map(|c| c.written).sum()
    }
}

/// Runs replays against one database and cluster.
pub struct Replayer<'a> {
    pub pool: &'a PgPool,
    pub kafka: &'a KafkaConfig,
    /// Decodes dry-run samples and a projection's events.
    pub codec: Arc<AvroCodec>,
    pub progress: &'a ProgressBar,
    /// Cancelled on SIGINT or SIGTERM: the batch in hand lands, then the replay stops.
    pub cancel: &'a CancellationToken,
    /// Records per landing (a Kafka transaction and a checkpoint).
    pub max_batch: usize,
}

impl Replayer<'_> {
    /// Records and runs a new replay of `spec`, as `run_by`.
    ///
    /// # Errors
    /// [`OperatorError::BadInput`] for input it cannot carry out (nothing written), else what failed; a
    /// replay that failed after it started is recorded as failed and can be resumed.
    pub async fn start(
        &self,
        spec: ReplaySpec,
        mode: Mode,
        run_by: &str,
    ) -> Result<Report, OperatorError> {
        let target_marks = self.check_target(&spec).await?;
        let ranges = resolve(
            self.kafka,
            &spec.source,
            spec.partitions.as_deref(),
            &spec.range,
        )
        .await?;
        let id = Uuid::now_v7();
        store::insert(self.pool, id, run_by, mode, &spec, &ranges).await?;
        let cursors = ranges
            .into_iter()
            .map(|range| Cursor {
                range,
                next: range.start,
                written: 0,
            })
            .collect();
        // A resume reads the target from here for records written after the last checkpoint.
        let marks = target_marks.filter(|_| mode == Mode::Apply);
        if let Some(marks) = &marks {
            let mut conn = self.pool.acquire().await?;
            store::checkpoint(&mut conn, id, &[], Counts::default(), Some(marks)).await?;
        }
        self.finish(id, spec, mode, cursors, marks.unwrap_or_default(), false)
            .await
    }

    /// Continues replay `id` from its checkpoints.
    ///
    /// # Errors
    /// [`OperatorError::NotFound`] for an unknown replay; [`OperatorError::BadInput`] for a dry run or a
    /// finished replay; else as [`start`](Self::start).
    pub async fn resume(&self, id: Uuid) -> Result<Report, OperatorError> {
        let (row, cursors, marks) = store::load(self.pool, id).await?;
        if row.mode != Mode::Apply.as_str() {
            return Err(OperatorError::BadInput(format!(
                "replay {id} was a dry run, which writes nothing to resume; run the command again"
            )));
        }
        if row.outcome == "finished" {
            return Err(OperatorError::BadInput(format!(
                "replay {id} finished at {}; nothing to resume",
                row.finished_at
                    .map_or_else(|| "an unknown time".into(), |t| t.to_rfc3339())
            )));
        }
        let spec: ReplaySpec = serde_json::from_value(row.arguments).map_err(|e| {
            OperatorError::Failed(format!("replay {id}'s recorded arguments do not read: {e}"))
        })?;
        store::reopen(self.pool, id).await?;
        self.finish(id, spec, Mode::Apply, cursors, marks, true)
            .await
    }

    /// Checks that `spec`'s target can take records; for a topic, returns its partitions' high watermarks.
    async fn check_target(
        &self,
        spec: &ReplaySpec,
    ) -> Result<Option<BTreeMap<i32, i64>>, OperatorError> {
        match &spec.target {
            Target::Topic(target) if *target == spec.source => {
                Err(OperatorError::BadInput(format!(
                    "the target topic is the source topic {target}: to make consumers read records again, use \
                 `orderflow group reset`"
                )))
            }
            Target::Topic(target) => topic::current_marks(self.kafka, target)
                .await
                .map(Some)
                .map_err(|e| match e {
                    OperatorError::BadInput(why) => {
                        OperatorError::BadInput(format!("target {why}; create it first"))
                    }
                    other => other,
                }),
            Target::Group { group, .. } => {
                let projection = Projection::for_group(group).map_err(OperatorError::BadInput)?;
                projection
                    .check_source(&spec.source)
                    .map_err(OperatorError::BadInput)?;
                Ok(None)
            }
        }
    }

    /// Runs the replay and records how it ended.
    async fn finish(
        &self,
        id: Uuid,
        spec: ReplaySpec,
        mode: Mode,
        cursors: Vec<Cursor>,
        marks: BTreeMap<i32, i64>,
        resuming: bool,
    ) -> Result<Report, OperatorError> {
        match self.execute(id, spec, mode, cursors, marks, resuming).await {
            Ok(report) => {
                let (matched,): (i64,) =
                    sqlx::query_as("SELECT matched FROM replays WHERE id = $1")
                        .bind(id)
                        .fetch_one(self.pool)
                        .await?;
                let nothing = !report.stopped
                    && matched == 0
                    && report.tally.counts.matched == 0
                    && report.found_on_resume == 0;
                if nothing {
                    let why = format!(
                        "the filters match none of the {} records read from {}",
                        report.tally.counts.read, report.spec.source
                    );
                    store::finish(self.pool, id, Ending::Failed, Some(&why), None).await?;
                    return Err(OperatorError::BadInput(why));
                }
                let ending = if report.stopped {
                    Ending::Stopped
                } else {
                    Ending::Finished
                };
                let differences = report
                    .differences
                    .as_ref()
                    .and_then(|d| serde_json::to_value(d).ok());
                store::finish(self.pool, id, ending, None, differences.as_ref()).await?;
                Ok(report)
            }
            Err(e) => {
                store::finish(self.pool, id, Ending::Failed, Some(&e.to_string()), None).await?;
                Err(e)
            }
        }
    }

    async fn execute(
        &self,
        id: Uuid,
        spec: ReplaySpec,
        mode: Mode,
        mut cursors: Vec<Cursor>,
        marks: BTreeMap<i32, i64>,
        resuming: bool,
    ) -> Result<Report, OperatorError> {
        let reading = Reading {
            kafka: self.kafka,
            topic: &spec.source,
            filters: &spec.filters,
            rate: spec.rate,
            max_batch: self.max_batch.max(1),
            max_batch_time: std::time::Duration::from_secs(1),
            progress: self.progress,
            cancel: self.cancel,
        };
        let mut report = Report {
            id,
            mode,
            spec: spec.clone(),
            cursors: Vec::new(),
            tally: Tally::default(),
            samples: Vec::new(),
            found_on_resume: 0,
            stopped: false,
            differences: None,
        };
        let (tally, stopped) = match (mode, &spec.target) {
            (Mode::DryRun, _) => {
                self.show_length(&cursors);
                let mut sink = DryRun {
                    keep: SAMPLES,
                    samples: Vec::new(),
                    types: std::collections::BTreeSet::new(),
                };
                let seen = run::drive(&reading, &mut cursors, &mut sink).await?;
                let mut conn = self.pool.acquire().await?;
                let counts = Counts {
                    written: 0,
                    ..seen.0.counts
                };
                // The dry run's counts, on its row; its cursors stay at the start.
                store::checkpoint(&mut conn, id, &[], counts, None).await?;
                report.samples = self.decode(&sink.samples).await;
                seen
            }
            (Mode::Apply, Target::Topic(target)) => {
                let mut sink = TopicSink::new(
                    self.pool,
                    self.kafka,
                    id,
                    &spec.source,
                    target,
                    marks.clone(),
                )
                .await?;
                if resuming {
                    report.found_on_resume =
                        self.catch_up(id, target, &marks, &mut cursors).await?;
                }
                self.show_length(&cursors);
                run::drive(&reading, &mut cursors, &mut sink).await?
            }
            (Mode::Apply, Target::Group { group, rebuild }) => {
                let projection = Projection::for_group(group).map_err(OperatorError::BadInput)?;
                let scope = if *rebuild {
                    format!("{group}/rebuild/{id}")
                } else {
                    group.clone()
                };
                let mut sink = ProjectionSink {
                    pool: self.pool.clone(),
                    codec: Arc::clone(&self.codec),
                    replay_id: id,
                    projection,
                    scope: scope.clone(),
                    into: if *rebuild {
                        projection::Destination::Rebuild(id)
                    } else {
                        projection::Destination::Live
                    },
                    batch: Vec::new(),
                    skipped: 0,
                };
                self.show_length(&cursors);
                let seen = run::drive(&reading, &mut cursors, &mut sink).await?;
                if *rebuild && !seen.1 {
                    self.progress.set_message("comparing with the live view");
                    report.differences = Some(
                        projection::compare_and_restore(self.pool, projection, id, &scope, true)
                            .await?,
                    );
                }
                seen
            }
        };
        report.cursors = cursors;
        report.tally = tally;
        report.stopped = stopped;
        Ok(report)
    }

    fn show_length(&self, cursors: &[Cursor]) {
        let left: i64 = cursors.iter().map(|c| c.range.end - c.next).sum();
        self.progress.set_length(u64::try_from(left).unwrap_or(0));
        self.progress.set_position(0);
    }

    /// After fencing the last producer: moves `cursors` past what the killed run committed after its last
    /// checkpoint, saves that, and returns how many records it found.
    async fn catch_up(
        &self,
        id: Uuid,
        target: &str,
        marks: &BTreeMap<i32, i64>,
        cursors: &mut [Cursor],
    ) -> Result<i64, OperatorError> {
        let found = topic::written_after(self.kafka, target, id, marks).await?;
        let mut moved = Vec::new();
        for cursor in cursors.iter_mut() {
            let p = cursor.range.partition;
            if let (Some(&last), Some(&records)) = (found.last.get(&p), found.records.get(&p)) {
                cursor.next = cursor.next.max(last + 1).min(cursor.range.end);
                cursor.written += records;
                moved.push(*cursor);
            }
        }
        let total: i64 = found.records.values().sum();
        let counts = Counts {
            written: total,
            ..Counts::default()
        };
        let mut conn = self.pool.acquire().await?;
        store::checkpoint(&mut conn, id, &moved, counts, Some(&found.marks)).await?;
        Ok(total)
    }

    async fn decode(&self, samples: &[OwnedMessage]) -> Vec<Sample> {
        let mut decoded = Vec::with_capacity(samples.len());
        for message in samples {
            let event = match message.payload() {
                None => Err("no value".to_owned()),
                Some(bytes) => self
                    .codec
                    .decode(bytes)
                    .await
                    .map(|d| d.event)
                    .map_err(|e| e.to_string()),
            };
            decoded.push(Sample {
                partition: message.partition(),
                offset: message.offset(),
                key: message
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned()),
                timestamp: message
                    .timestamp()
                    .to_millis()
                    .and_then(DateTime::from_timestamp_millis),
                event,
            });
        }
        decoded
    }
}
