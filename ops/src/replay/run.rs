//! The read loop of a replay and the sinks it feeds: a topic, a projection, or nothing (a dry run).
//!
//! The loop reads the range with a consumer of no group (partitions assigned at their checkpoints), takes the
//! records the filters match to the sink, and every `max_batch` records or `max_batch_time` lands the batch:
//! the sink writes it to its target and saves the checkpoint ([`Sink::land`]). A cancel lands the batch in
//! hand and stops.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use indicatif::ProgressBar;
use producers::KafkaConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers as _, Message as _};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::filter::Filters;
use super::store::{Counts, Cursor};
use crate::OperatorError;

/// A consumer of no group for look-ups (metadata, watermarks, offsets for times) and reads.
pub(super) fn plain_consumer(kafka: &KafkaConfig) -> Result<BaseConsumer<Quiet>, OperatorError> {
    Ok(reading_config(kafka).create_with_context(Quiet)?)
}

/// A consumer context that logs librdkafka's errors as the default one does, except a partition's end:
/// librdkafka now and then reports it on the client's queue instead of the partition's, as a "global
/// error", which it is not. The loops below do not depend on seeing it ([`is_read`]).
pub(super) struct Quiet;

impl rdkafka::ClientContext for Quiet {
    fn error(&self, error: KafkaError, reason: &str) {
        match error {
            KafkaError::Global(RDKafkaErrorCode::PartitionEOF) => {
                tracing::debug!(reason, "end of a partition, reported as a global error");
            }
            error => tracing::error!(%error, reason, "librdkafka"),
        }
    }
}

impl rdkafka::consumer::ConsumerContext for Quiet {}

/// Whether `consumer` has read partition `partition` of `topic` up to `end`: its position is there (past any
/// transaction markers at the end, which no record shows).
pub(super) fn is_read<C: rdkafka::consumer::ConsumerContext>(
    consumer: &impl rdkafka::consumer::Consumer<C>,
    topic: &str,
    partition: i32,
    end: i64,
) -> bool {
    consumer.position().ok().is_some_and(|positions| {
        matches!(
            positions.find_partition(topic, partition).map(|e| e.offset()),
            Some(Offset::Offset(at)) if at >= end
        )
    })
}

/// Settings of a consumer that reads assigned partitions and commits nothing.
fn reading_config(kafka: &KafkaConfig) -> rdkafka::ClientConfig {
    let mut config = kafka.client_config();
    // librdkafka wants a group id even for assigned partitions; nothing is committed to it.
    config
        .set(
            "group.id",
            format!("orderflow-replay-{}", uuid::Uuid::now_v7().simple()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        // A checkpoint whose records were deleted meanwhile is an error to report, not a jump.
        .set("auto.offset.reset", "error")
        .set("isolation.level", "read_committed");
    config
}

/// The value of header `name` of `message`, the last one when it is there twice.
pub(super) fn header<'m>(message: &'m BorrowedMessage<'_>, name: &str) -> Option<&'m [u8]> {
    let headers = message.headers()?;
    (0..headers.count())
        .rev()
        .filter_map(|i| headers.try_get(i))
        .find(|h| h.key == name)
        .and_then(|h| h.value)
}

/// Where records go. [`land`](Sink::land) writes the records taken since the last landing and saves the
/// checkpoint so that a record is on the target once when the checkpoint says it is.
pub(super) trait Sink {
    /// Whether taken records count as written (not for a dry run).
    const WRITES: bool;

    /// Takes a record the filters matched.
    async fn take(&mut self, message: &BorrowedMessage<'_>) -> Result<(), OperatorError>;

    /// Records taken and not landed yet.
    fn pending(&self) -> usize;

    /// Lands what was taken and saves `moved` (the partitions whose cursors moved) and `counts`.
    async fn land(&mut self, moved: &[Cursor], counts: Counts) -> Result<(), OperatorError>;
}

/// What a run saw, per partition and per event type.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Records read and matched in this run.
    pub counts: Counts,
    /// Matched records per `event_type` header (`(none)` for records without one).
    pub by_type: BTreeMap<String, u64>,
    /// Per partition: records read, matched, and the first and last matched record's timestamps.
    pub partitions: BTreeMap<i32, Seen>,
}

/// One partition in a [`Tally`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    pub read: u64,
    pub matched: u64,
    pub first_at: Option<DateTime<Utc>>,
    pub last_at: Option<DateTime<Utc>>,
}

impl Tally {
    fn count(&mut self, message: &BorrowedMessage<'_>, matched: bool) {
        let seen = self.partitions.entry(message.partition()).or_default();
        seen.read += 1;
        self.counts.read += 1;
        if !matched {
            return;
        }
        seen.matched += 1;
        self.counts.matched += 1;
        if let Some(at) = message
            .timestamp()
            .to_millis()
            .and_then(DateTime::from_timestamp_millis)
        {
            seen.first_at.get_or_insert(at);
            seen.last_at = Some(at);
        }
        let event_type = header(message, producers::headers::EVENT_TYPE)
            .and_then(|v| std::str::from_utf8(v).ok())
            .unwrap_or("(none)");
        match self.by_type.get_mut(event_type) {
            Some(n) => *n += 1,
            None => {
                self.by_type.insert(event_type.to_owned(), 1);
            }
        }
    }
}

/// How a loop reads and paces.
pub(super) struct Reading<'a> {
    pub kafka: &'a KafkaConfig,
    pub topic: &'a str,
    pub filters: &'a Filters,
    /// Matched records per second at most.
    pub rate: Option<u32>,
    pub max_batch: usize,
    pub max_batch_time: Duration,
    pub progress: &'a ProgressBar,
    pub cancel: &'a CancellationToken,
}

/// Reads `cursors`' partitions from their checkpoints to their ends into `sink`. Returns what it saw and
/// whether it was cancelled before the end.
pub(super) async fn drive<S: Sink>(
    reading: &Reading<'_>,
    cursors: &mut [Cursor],
    sink: &mut S,
) -> Result<(Tally, bool), OperatorError> {
    let mut tally = Tally::default();
    let consumer: StreamConsumer<Quiet> =
        reading_config(reading.kafka).create_with_context(Quiet)?;
    let mut assignment = TopicPartitionList::new();
    for cursor in cursors.iter().filter(|c| !c.is_done()) {
        assignment.add_partition_offset(
            reading.topic,
            cursor.range.partition,
            Offset::Offset(cursor.next),
        )?;
    }
    if assignment.count() == 0 {
        return Ok((tally, false));
    }
    consumer.assign(&assignment)?;
    let index: HashMap<i32, usize> = cursors
        .iter()
        .enumerate()
        .map(|(i, c)| (c.range.partition, i))
        .collect();
    let mut pacer = Pacer::new(reading.rate);
    let mut stopped = false;
    // A read that fell off the start of a partition: records were deleted before this replay read them.
    let mut fell_off = None;
    loop {
        let mut moved = BTreeSet::new();
        let before = tally.counts;
        let deadline = Instant::now() + reading.max_batch_time;
        while sink.pending() < reading.max_batch && !cursors.iter().all(Cursor::is_done) {
            let received = tokio::select! {
                biased;
                () = reading.cancel.cancelled() => { stopped = true; break }
                () = tokio::time::sleep_until(deadline) => break,
                received = consumer.recv() => received,
            };
            let message = match received {
                Ok(message) => message,
                Err(KafkaError::PartitionEOF(partition)) => {
                    // Everything up to the high watermark is read, and the range ends at or before it.
                    if let Some(&i) = index.get(&partition) {
                        cursors[i].next = cursors[i].range.end;
                        moved.insert(i);
                    }
                    continue;
                }
                Err(e) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::AutoOffsetReset) => {
                    fell_off = Some(e);
                    break;
                }
                Err(e) => return Err(e.into()),
            };
            let Some(&i) = index.get(&message.partition()) else {
                continue;
            };
            let cursor = &mut cursors[i];
            if cursor.is_done() || message.offset() < cursor.next {
                continue;
            }
            moved.insert(i);
            if message.offset() >= cursor.range.end {
                // Past the range, which ends before the high watermark: stop fetching what is not wanted.
                cursor.next = cursor.range.end;
                pause(&consumer, reading.topic, message.partition());
                continue;
            }
            cursor.next = message.offset() + 1;
            let matched = reading
                .filters
                .matches(message.key(), |name| header(&message, name));
            tally.count(&message, matched);
            if matched {
                pacer.wait().await;
                sink.take(&message).await?;
                if S::WRITES {
                    cursor.written += 1;
                }
            }
            reading.progress.inc(1);
        }
        let batch = Counts {
            read: tally.counts.read - before.read,
            matched: tally.counts.matched - before.matched,
            written: if S::WRITES {
                tally.counts.matched - before.matched
            } else {
                0
            },
        };
        if tally.counts.read == before.read {
            // A quiet batch: a partition whose last offsets are transaction markers shows its end only by
            // the consumer's position.
            for (i, cursor) in cursors.iter_mut().enumerate() {
                if !cursor.is_done()
                    && is_read(
                        &consumer,
                        reading.topic,
                        cursor.range.partition,
                        cursor.range.end,
                    )
                {
                    cursor.next = cursor.range.end;
                    moved.insert(i);
                }
            }
        }
        let moved: Vec<Cursor> = moved.into_iter().map(|i| cursors[i]).collect();
        if !moved.is_empty() || sink.pending() > 0 {
            sink.land(&moved, batch).await?;
        }
        if let Some(e) = fell_off {
            // What was read before is landed; the rest is gone, and reading on from the partition's new start
            // would skip it without a word.
            return Err(deleted_unread(reading, cursors).await?.unwrap_or(e.into()));
        }
        if stopped || cursors.iter().all(Cursor::is_done) {
            return Ok((tally, stopped));
        }
    }
}

/// The error for records deleted (by retention or delete-records) before this replay read them: which
/// partitions of the source now start past their cursors. `None` when none does.
async fn deleted_unread(
    reading: &Reading<'_>,
    cursors: &[Cursor],
) -> Result<Option<OperatorError>, OperatorError> {
    let (kafka, topic) = (reading.kafka.clone(), reading.topic.to_owned());
    let unread: Vec<(i32, i64)> = cursors
        .iter()
        .filter(|c| !c.is_done())
        .map(|c| (c.range.partition, c.next))
        .collect();
    tokio::task::spawn_blocking(move || {
        let consumer = plain_consumer(&kafka)?;
        let partitions: Vec<i32> = unread.iter().map(|&(p, _)| p).collect();
        let watermarks = super::plan::watermarks(&consumer, &topic, &partitions)?;
        let lost: Vec<String> = unread
            .iter()
            .filter_map(|&(p, next)| {
                let &(low, _) = watermarks.get(&p)?;
                (next < low).then(|| format!("{topic}/{p} starts at offset {low}, past offset {next}"))
            })
            .collect();
        Ok((!lost.is_empty()).then(|| {
            OperatorError::Failed(format!(
                "records this replay had yet to read were deleted (by retention or delete-records): {}. \
                 What it read before is on the target; replay what is left with a new `orderflow replay` \
                 from the partitions' new start",
                lost.join("; ")
            ))
        }))
    })
    .await
    .map_err(|e| OperatorError::Failed(format!("watermark thread failed: {e}")))?
}

fn pause(consumer: &StreamConsumer<Quiet>, topic: &str, partition: i32) {
    let mut done = TopicPartitionList::new();
    done.add_partition(topic, partition);
    if let Err(e) = consumer.pause(&done) {
        tracing::debug!(error = %e, partition, "could not pause a partition read to its end");
    }
}

/// Spaces matched records `1/rate` apart on average from the first one, catching up after a slow stretch.
struct Pacer {
    interval: Option<Duration>,
    started: Option<Instant>,
    sent: u32,
}

impl Pacer {
    fn new(rate: Option<u32>) -> Self {
        Self {
            interval: rate.map(|r| Duration::from_secs(1) / r.max(1)),
            started: None,
            sent: 0,
        }
    }

    async fn wait(&mut self) {
        let Some(interval) = self.interval else {
            return;
        };
        let due = *self.started.get_or_insert_with(Instant::now) + interval * self.sent;
        self.sent = self.sent.saturating_add(1);
        // Sleeping shorter than the timer's resolution would only slow a high rate down.
        if due > Instant::now() + Duration::from_millis(2) {
            tokio::time::sleep_until(due).await;
        }
    }
}

/// The sink of a dry run: keeps the first matched record of each event type, up to `keep`, and writes
/// nothing.
pub(super) struct DryRun {
    pub keep: usize,
    pub samples: Vec<rdkafka::message::OwnedMessage>,
    pub types: BTreeSet<Vec<u8>>,
}

impl Sink for DryRun {
    const WRITES: bool = false;

    async fn take(&mut self, message: &BorrowedMessage<'_>) -> Result<(), OperatorError> {
        if self.samples.len() < self.keep {
            let event_type = header(message, producers::headers::EVENT_TYPE).unwrap_or_default();
            if !self.types.contains(event_type) {
                self.types.insert(event_type.to_vec());
                self.samples.push(message.detach());
            }
        }
        Ok(())
    }

    fn pending(&self) -> usize {
        0
    }

    async fn land(&mut self, _moved: &[Cursor], _counts: Counts) -> Result<(), OperatorError> {
        Ok(())
    }
}
