//! The consumer runtime: one consumer in a group, records of a partition in order, partitions in parallel.
//!
//! # Ordering
//! Each assigned partition has a worker of its own that applies the partition's records one after the
//! other, in offset order; different partitions are applied in parallel. The records already buffered
//! when the worker takes the next one, up to [`ConsumerConfig::max_batch`], are applied in one transaction
//! (each claimed in the inbox and handled in order, then one commit); when any of them fails, or the commit
//! does, that transaction rolls back and the batch's records are handled one at a time as below, so a bad
//! record never blocks or loses the others. A handler's effects outside the transaction (a call to a
//! payment provider) may then happen again, as on any retry. A record is done when it was
//! applied (its transaction committed), skipped as a duplicate, sent to the retry topic or dead-lettered;
//! only then does the worker take the next one. Records wait in a bounded buffer per partition
//! ([`ConsumerConfig::partition_buffer`]); when it is full the partition is paused and its later records
//! wait, in order, until the worker catches up, while the other partitions keep flowing. Order holds per
//! partition, hence per key, except for records sent to the retry topic (below), which give way to the
//! records behind them.
//!
//! # Offsets
//! Auto-commit is on and the automatic offset store off: a record's offset is stored only after the record
//! is done (a batch's, after its commit), so a committed offset never covers a record whose effect did not
//! commit. Stored offsets are committed every [`ConsumerConfig::commit_interval`], when partitions are
//! revoked and once more on shutdown. On revocation the revoked partitions' workers are stopped between
//! records (a batch in hand rolls back) and the rebalance waits (up to 30 s, on a multi-threaded Tokio
//! runtime) for the records in hand before it commits, so the next owner starts after everything this
//! member did and no partition is applied by two members at once.
//! A partition assigned again gets a new worker, which starts from the committed offset. A crash after an
//! effect committed and before its offset was committed delivers the record again: delivery is at least
//! once.
//!
//! # Idempotence
//! With [`ConsumerConfig::inbox`] on (the default), the event id (the `event_id` header) is claimed in the
//! inbox, `(consumer group, event id)`, in the transaction handed to the [`Handler`]: the effect, the inbox
//! row and any outbox records the handler writes commit together, and a record delivered again finds its
//! row and is skipped without calling the handler ([`ConsumerStats::duplicates`]). A record without a
//! valid event id is poison.
//!
//! # Failures
//! The [`HandlerError`] a handler returns picks what happens:
//! - **Transient** (database or broker unavailable): retried in place with exponential backoff and jitter
//!   ([`ConsumerConfig::backoff`] up to [`ConsumerConfig::max_backoff`]), for as long as it takes. The
//!   partition holds meanwhile (and is paused once its buffer is full), so its order is kept; the
//!   partition shows in [`crate::health`] once it has retried for a while. A retry or dead-letter topic
//!   that cannot be written is retried the same way.
//! - **Retryable** (a business step that may pass later): sent to `<topic>.retry` with an attempt count and
//!   a not-before time, applied again after each of [`ConsumerConfig::retry_delays`] (the runtime reads
//!   the retry topics too, and a retry waits for its time holding its retry partition), then
//!   dead-lettered. The source partition moves on at once.
//! - **Poison** (cannot decode, fails validation, no event id, or the handler panicked): sent to
//!   `<topic>.dlq` with its original key, value and headers plus headers saying where it came from and why;
//!   the partition moves on.
//!
//! # Shutdown
//! Cancelling the token passed to [`ConsumerRuntime::run`] stops every worker between records: a record
//! being applied is finished and its offset stored (a batch being applied is rolled back at its next record
//! and comes again); a record waiting to be retried in place or for its retry time is left, with its offset
//! not stored; buffered records are not applied. Then the runtime
//! commits the stored offsets once more and returns, and what it left comes again to the next consumer.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::FutureExt as _;
use producers::backoff::Backoff;
use producers::headers::{self, RecordHeaders};
use producers::topics::Topics;
use producers::{KafkaConfig, ProducerConfig, RebuildingProducer};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message as _, OwnedMessage};
use rdkafka::producer::FutureRecord;
use rdkafka::{ClientContext, TopicPartitionList};
use sqlx::{PgConnection, PgPool};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::envelope::{DeadLetterEnvelope, EnvelopeError, FailureClass, RetryEnvelope};
use crate::{ConsumerError, HandlerError, inbox};

pub use crate::envelope::{dead_letter_headers, retry_headers};

/// Where a record first came from: itself, or for a retry, the record it retries.
struct Origin {
    topic: String,
    partition: i32,
    offset: i64,
    /// Retries so far (0 for a record read from its source topic).
    attempt: u32,
    first_failed_at: Option<u128>,
    not_before: u128,
    /// Why the retry envelope of a record of a retry topic does not read: the record is poison.
    unreadable: Option<EnvelopeError>,
}

impl Origin {
    /// `message`'s headers and where it first came from.
    fn read(message: &OwnedMessage) -> (RecordHeaders, Self) {
        let record_headers = message
            .headers()
            .map(headers::from_kafka)
            .unwrap_or_default();
        let origin = Self::of(message, &record_headers);
        (record_headers, origin)
    }

    fn of(message: &OwnedMessage, record_headers: &RecordHeaders) -> Self {
        let itself = |topic: &str| Self {
            topic: topic.to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            attempt: 0,
            first_failed_at: None,
            not_before: 0,
            unreadable: None,
        };
        match record_headers.get(retry_headers::SOURCE_TOPIC) {
            Some(topic) if message.topic() == Topics::retries(topic) => {
                match RetryEnvelope::from_headers(record_headers) {
                    Ok(retry) => Self {
                        topic: retry.source_topic,
                        partition: retry.source_partition,
                        offset: retry.source_offset,
                        attempt: retry.attempt,
                        first_failed_at: Some(retry.first_failed_at_ms),
                        not_before: retry.not_before_ms,
                        unreadable: None,
                    },
                    // Dead-lettered to its source topic's dead-letter topic, so a redrive sends it back
                    // there; the partition and offset are the retry record's own.
                    Err(e) => Self {
                        unreadable: Some(e),
                        ..itself(topic)
                    },
                }
            }
            _ => itself(message.topic()),
        }
    }
}

/// A record as the handler sees it.
#[derive(Clone, Debug)]
pub struct Incoming {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: RecordHeaders,
    /// From the `event_id` header; the inbox deduplicates on it.
    pub event_id: Uuid,
}

/// Applies records. The runtime opens the transaction, claims the event in the inbox, calls the handler and
/// commits: the effect, the inbox row and any outbox records the handler writes commit together.
pub trait Handler: Send + Sync + 'static {
    /// Whether records of one partition may be applied together in one transaction
    /// ([`ConsumerConfig::max_batch`]). Say `false` when the handler locks rows that the handlers of other
    /// partitions lock too (stock shared by every order, say): held across a batch, such locks deadlock.
    const BATCHES: bool = true;

    /// Applies `record` on `tx`. Return [`HandlerError`] to say how a failure is handled.
    fn handle(
        &self,
        tx: &mut PgConnection,
        record: &Incoming,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// Settings of one consumer.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    pub group_id: String,
    pub topics: Vec<String>,
    /// librdkafka `session.timeout.ms`.
    pub session_timeout: Duration,
    /// librdkafka `auto.commit.interval.ms`: how often stored offsets are committed.
    pub commit_interval: Duration,
    /// Records buffered per partition before that partition is paused (bounds memory).
    pub partition_buffer: usize,
    /// Most records of one partition applied in one transaction: those already buffered when the worker
    /// takes the next record (it never waits to fill a batch). 1 applies each record in its own transaction.
    pub max_batch: usize,
    /// First wait before retrying a transient failure; doubles, with jitter, up to `max_backoff`
    /// ([`Backoff::jittered`]).
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Producer of dead letters.
    pub producer: ProducerConfig,
    /// Waits before each retry of a retryable business failure, on `<topic>.retry`; after the last, the
    /// record goes to the dead-letter topic. Empty: retryable failures go straight to the dead-letter topic.
    pub retry_delays: Vec<Duration>,
    /// Create `<topic>.dlq` and `<topic>.retry` at start when they are missing.
    pub create_topics: bool,
    /// Inbox rows older than this are pruned (hourly). It must exceed the longest window over which an event
    /// can be delivered again (the topic's retention when operators may replay from the start): an event
    /// redelivered after its row was pruned is applied again. Default 14 days.
    pub inbox_horizon: Duration,
    /// Claim each event in the inbox before applying it. Turn off only for a handler whose effects are
    /// idempotent by themselves, or to measure what the inbox costs (`orderflow bench consumers`).
    pub inbox: bool,
}

impl ConsumerConfig {
    /// Defaults for `group_id` reading `topics`.
    pub fn new(group_id: impl Into<String>, topics: Vec<String>) -> Self {
        Self {
            group_id: group_id.into(),
            topics,
            session_timeout: Duration::from_secs(6),
            commit_interval: Duration::from_secs(5),
            partition_buffer: 256,
            max_batch: 16,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            producer: ProducerConfig::default(),
            retry_delays: vec![
                Duration::from_secs(1),
                Duration::from_secs(10),
                Duration::from_secs(60),
            ],
            create_topics: true,
            inbox_horizon: Duration::from_secs(14 * 24 * 3600),
            inbox: true,
        }
    }
}

/// Counters of one consumer.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    /// Records whose effect was applied.
    pub applied: AtomicU64,
    /// Records skipped because the group had applied their event before.
    pub duplicates: AtomicU64,
    /// Records sent to a dead-letter topic.
    pub dead_lettered: AtomicU64,
    /// Transient failures retried in place.
    pub retries: AtomicU64,
    /// Retryable failures sent to the delayed retry topic.
    pub retried_later: AtomicU64,
    /// Transactions that applied several records at once.
    pub batches: AtomicU64,
}

/// How long a revocation waits for the revoked partitions' workers to finish the records in hand.
const REVOKE_WAIT: Duration = Duration::from_secs(30);

type PartitionKey = (String, i32);

/// The partitions whose workers run here, and whether each is applying a record: shared by the rebalance
/// callback (on librdkafka's poll) and the partition workers.
#[derive(Default)]
struct Ownership {
    partitions: std::sync::Mutex<HashMap<PartitionKey, Owned>>,
    /// Notified when a worker finishes a record.
    finished: std::sync::Condvar,
}

struct Owned {
    /// Cancelled when the partition is revoked (and on shutdown): its worker stops between records.
    stop: CancellationToken,
    /// Applying a record now.
    busy: bool,
}

impl Ownership {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PartitionKey, Owned>> {
        self.partitions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn assign(&self, key: PartitionKey, stop: CancellationToken) {
        self.lock().insert(key, Owned { stop, busy: false });
    }

    /// Marks the worker of `key` busy with a record; false if the partition was revoked (or shut down).
    fn begin(&self, key: &PartitionKey) -> bool {
        let mut partitions = self.lock();
        match partitions.get_mut(key) {
            Some(owned) if !owned.stop.is_cancelled() => {
                owned.busy = true;
                true
            }
            _ => false,
        }
    }

    fn end(&self, key: &PartitionKey) {
        if let Some(owned) = self.lock().get_mut(key) {
            owned.busy = false;
        }
        self.finished.notify_all();
    }

    /// Stops the workers of `revoked` between records and waits, up to `REVOKE_WAIT`, until none is applying
    /// a record, so the commit that follows covers everything they did and the next owner starts after it.
    /// Waiting blocks the polling thread, so it only happens on a multi-threaded runtime, where the workers
    /// can run meanwhile.
    fn revoke(&self, revoked: &[PartitionKey]) {
        let mut partitions = self.lock();
        for key in revoked {
            if let Some(owned) = partitions.get(key) {
                owned.stop.cancel();
            }
        }
        let can_wait = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let deadline = std::time::Instant::now() + REVOKE_WAIT;
        while can_wait
            && revoked
                .iter()
                .any(|key| partitions.get(key).is_some_and(|owned| owned.busy))
        {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                tracing::warn!("revoked partitions still apply records; committing without them");
                break;
            }
            partitions = self
                .finished
                .wait_timeout(partitions, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        for key in revoked {
            partitions.remove(key);
        }
    }
}

/// On revocation, stops the revoked partitions' workers and commits what they finished, so the next owner
/// starts where this one stopped and no partition is applied by two members at once.
struct RebalanceContext {
    ownership: Arc<Ownership>,
}

impl ClientContext for RebalanceContext {}

impl ConsumerContext for RebalanceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            let revoked: Vec<PartitionKey> = partitions
                .elements()
                .iter()
                .map(|e| (e.topic().to_owned(), e.partition()))
                .collect();
            tracing::info!(
                partitions = revoked.len(),
                "partitions revoked; stopping their workers and committing"
            );
            self.ownership.revoke(&revoked);
            if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
                tracing::debug!(error = %e, "nothing to commit on revoke");
            }
        }
    }
}

type Consumer = StreamConsumer<RebalanceContext>;

/// A consumer in a group, applying records through a [`Handler`].
pub struct ConsumerRuntime<H> {
    kafka: KafkaConfig,
    /// What every partition worker shares.
    worker: Arc<Worker<H>>,
}

impl<H: Handler> ConsumerRuntime<H> {
    /// A consumer of `settings.topics` in `settings.group_id`, applying records with `handler` on `pool`.
    pub fn new(
        pool: PgPool,
        kafka: &KafkaConfig,
        settings: ConsumerConfig,
        handler: H,
    ) -> Result<Self, ConsumerError> {
        let mut config = kafka.client_config();
        config
            .set("group.id", &settings.group_id)
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set(
                "session.timeout.ms",
                settings.session_timeout.as_millis().to_string(),
            )
            .set(
                "auto.commit.interval.ms",
                settings.commit_interval.as_millis().to_string(),
            )
            .set("enable.partition.eof", "false");
        let ownership = Arc::new(Ownership::default());
        let consumer: Consumer = config.create_with_context(RebalanceContext {
            ownership: Arc::clone(&ownership),
        })?;
        let dead_letters = RebuildingProducer::new(kafka, &settings.producer)?;
        Ok(Self {
            kafka: kafka.clone(),
            worker: Arc::new(Worker {
                consumer,
                dead_letters,
                pool,
                handler,
                settings,
                stats: Arc::default(),
                ownership,
            }),
        })
    }

    /// The consumer's counters.
    pub fn stats(&self) -> Arc<ConsumerStats> {
        Arc::clone(&self.worker.stats)
    }

    /// Consumes until `shutdown` is cancelled; then finishes the record each partition is applying, stores
    /// its offset and commits once more.
    #[tracing::instrument(name = "consumer", skip_all, fields(group = %self.worker.settings.group_id))]
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), ConsumerError> {
        let worker = &self.worker;
        let mut topics = worker.settings.topics.clone();
        for topic in &worker.settings.topics {
            let mut needed = vec![Topics::dead_letters(topic)];
            if !worker.settings.retry_delays.is_empty() {
                needed.push(Topics::retries(topic));
                topics.push(Topics::retries(topic));
            }
            // Created when missing, so a failure never waits on a topic nobody made. A cluster that refuses
            // (no permission to create topics) is warned about, not fatal: its operators create them.
            for name in needed.into_iter().filter(|_| worker.settings.create_topics) {
                if let Err(e) = producers::ensure_topic(&self.kafka, &name, 1).await {
                    tracing::warn!(topic = %name, error = %e, "cannot create topic; create it before failures need it");
                }
            }
        }
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        worker.consumer.subscribe(&topics)?;
        let mut partitions: HashMap<PartitionKey, PartitionWorker> = HashMap::new();
        let mut workers = JoinSet::new();
        workers.spawn(report_lag(
            self.kafka.clone(),
            worker.settings.group_id.clone(),
            worker.settings.topics.clone(),
            shutdown.clone(),
        ));
        if worker.settings.inbox {
            workers.spawn(prune_inbox(
                worker.pool.clone(),
                worker.settings.group_id.clone(),
                worker.settings.inbox_horizon,
                shutdown.clone(),
            ));
        }
        // Records that a partition's full buffer could not take yet, in offset order. Their partition is
        // paused until its worker catches up, so a partition that retries in place never holds up the
        // poll loop, and with it the other partitions and the group membership.
        let mut waiting: HashMap<PartitionKey, VecDeque<OwnedMessage>> = HashMap::new();
        let mut hand_over = tokio::time::interval(HAND_OVER_INTERVAL);
        loop {
            let message = tokio::select! {
                received = worker.consumer.recv() => received,
                _ = hand_over.tick(), if !waiting.is_empty() => {
                    hand_over_waiting(&worker.consumer, &partitions, &mut waiting)?;
                    continue;
                }
                () = shutdown.cancelled() => break,
            };
            let message = match message {
                Ok(message) => message.detach(),
                Err(e) => {
                    tracing::warn!(error = %e, "consumer error; librdkafka retries");
                    continue;
                }
            };
            let key = (message.topic().to_owned(), message.partition());
            if partitions.get(&key).is_some_and(|p| p.stop.is_cancelled()) {
                // Revoked, and ours again: a new worker. What the old one had buffered or waiting comes
                // again from the committed offset.
                partitions.remove(&key);
                waiting.remove(&key);
            }
            let sender = &partitions
                .entry(key.clone())
                .or_insert_with(|| {
                    let stop = shutdown.child_token();
                    worker.ownership.assign(key.clone(), stop.clone());
                    let (sender, rx) = mpsc::channel(worker.settings.partition_buffer);
                    workers.spawn(self.partition_worker(key.clone(), rx, stop.clone()));
                    PartitionWorker { sender, stop }
                })
                .sender;
            if let Some(queue) = waiting.get_mut(&key) {
                // Fetched before the pause took effect: it waits behind the others.
                queue.push_back(message);
                continue;
            }
            match sender.try_send(message) {
                Ok(()) => {}
                Err(TrySendError::Full(message)) => {
                    set_paused(&worker.consumer, &key, true);
                    waiting.entry(key).or_default().push_back(message);
                }
                Err(TrySendError::Closed(_)) => return Err(worker_stopped(&key)),
            }
        }
        drop(partitions);
        while workers.join_next().await.is_some() {}
        match worker.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(())
            | Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => tracing::warn!(error = %e, "last commit failed"),
        }
        tracing::info!("consumer stopped");
        Ok(())
    }

    /// Applies the records of one partition in order, storing each offset once its record is done. Stops
    /// between records once `stop` is cancelled (the partition revoked, or shutdown): the buffered records
    /// are not applied and their offsets not stored, so the partition's next owner (or this consumer
    /// restarted) gets them again.
    fn partition_worker(
        &self,
        key: PartitionKey,
        mut records: mpsc::Receiver<OwnedMessage>,
        stop: CancellationToken,
    ) -> impl Future<Output = ()> + Send + 'static {
        let worker = Arc::clone(&self.worker);
        async move {
            let max_batch = if H::BATCHES {
                worker.settings.max_batch.max(1)
            } else {
                1
            };
            while let Some(first) = records.recv().await {
                // What is buffered already joins the batch; nothing waits to fill it.
                let mut batch = vec![first];
                while batch.len() < max_batch {
                    match records.try_recv() {
                        Ok(message) => batch.push(message),
                        Err(_) => break,
                    }
                }
                if !worker.ownership.begin(&key) {
                    return;
                }
                let finished = worker.process_batch(&batch, &stop).await;
                crate::health::done(&worker.settings.group_id, &key.0, key.1);
                if let Some(last) = finished.checked_sub(1).map(|n| &batch[n]) {
                    let mut offsets = TopicPartitionList::new();
                    let stored = offsets
                        .add_partition_offset(
                            &key.0,
                            key.1,
                            rdkafka::Offset::Offset(last.offset() + 1),
                        )
                        .and_then(|()| worker.consumer.store_offsets(&offsets));
                    if let Err(e) = stored {
                        // Revoked past the wait for this record; its next owner gets it again and the
                        // inbox skips it.
                        tracing::debug!(error = %e, "offset not stored");
                    }
                }
                worker.ownership.end(&key);
                if finished < batch.len() {
                    // Stopped in the middle of a retry: the offsets from there on are not stored, and those
                    // records come back.
                    return;
                }
            }
        }
    }
}

/// The channel to a partition's worker, and what stops it.
struct PartitionWorker {
    sender: mpsc::Sender<OwnedMessage>,
    stop: CancellationToken,
}

/// The consumer, the dead-letter producer, the database and the handler: shared by the partition workers.
struct Worker<H> {
    consumer: Consumer,
    /// Writes dead letters and retries; replaced after a fatal error, or every failure would be retried in
    /// place for ever.
    dead_letters: RebuildingProducer,
    pool: PgPool,
    handler: H,
    settings: ConsumerConfig,
    stats: Arc<ConsumerStats>,
    ownership: Arc<Ownership>,
}

enum Applied {
    Done,
    Duplicate,
}

/// How often records waiting for a full partition buffer are offered to it again.
const HAND_OVER_INTERVAL: Duration = Duration::from_millis(20);

/// Offers waiting records to their partitions' workers, in order, and resumes each partition whose records
/// were all taken.
fn hand_over_waiting(
    consumer: &Consumer,
    partitions: &HashMap<PartitionKey, PartitionWorker>,
    waiting: &mut HashMap<PartitionKey, VecDeque<OwnedMessage>>,
) -> Result<(), ConsumerError> {
    // A revoked partition's waiting records are its next owner's now.
    waiting.retain(|key, _| partitions.get(key).is_some_and(|p| !p.stop.is_cancelled()));
    let mut drained = Vec::new();
    for (key, queue) in waiting.iter_mut() {
        let Some(PartitionWorker { sender, .. }) = partitions.get(key) else {
            continue;
        };
        while let Some(message) = queue.pop_front() {
            match sender.try_send(message) {
                Ok(()) => {}
                Err(TrySendError::Full(message)) => {
                    queue.push_front(message);
                    break;
                }
                Err(TrySendError::Closed(_)) => return Err(worker_stopped(key)),
            }
        }
        if queue.is_empty() {
            drained.push(key.clone());
        }
    }
    for key in drained {
        waiting.remove(&key);
        set_paused(consumer, &key, false);
    }
    Ok(())
}

/// Pauses or resumes fetching one partition; a failure is logged (the partition may have been revoked).
fn set_paused(consumer: &Consumer, (topic, partition): &(String, i32), paused: bool) {
    let mut list = TopicPartitionList::new();
    list.add_partition(topic, *partition);
    let done = if paused {
        consumer.pause(&list)
    } else {
        consumer.resume(&list)
    };
    match done {
        Ok(()) => tracing::debug!(topic, partition, paused, "partition fetching changed"),
        Err(e) => {
            tracing::warn!(topic, partition, paused, error = %e, "cannot pause or resume a partition")
        }
    }
}

/// A partition's worker ended while the runtime runs: its records can no longer be applied here.
fn worker_stopped((topic, partition): &(String, i32)) -> ConsumerError {
    tracing::error!(
        topic,
        partition,
        "the worker of a partition stopped; the consumer stops"
    );
    ConsumerError::Read(format!(
        "the worker of {topic} partition {partition} stopped; its records cannot be applied"
    ))
}

/// Attempts after which a transient failure that is still retried in place is logged as a warning.
const WARN_AFTER_ATTEMPTS: u32 = 3;

impl<H: Handler> Worker<H> {
    /// Handles `batch` (records of one partition, in offset order) to its end and returns how many records,
    /// from the first, are done: all of them, unless shutdown came first. Several records are first tried in
    /// one transaction; when any of them fails (or the commit does), that transaction rolls back and each
    /// record is handled on its own, so a bad record neither blocks nor loses the others.
    async fn process_batch(&self, batch: &[OwnedMessage], shutdown: &CancellationToken) -> usize {
        if batch.len() > 1 {
            match self.apply_batch(batch, shutdown).await {
                Ok(()) => return batch.len(),
                // Rolled back: the whole batch comes again.
                Err(_) if shutdown.is_cancelled() => return 0,
                Err(reason) => {
                    metrics::counter!("consumer_batch_fallbacks_total").increment(1);
                    tracing::debug!(records = batch.len(), %reason,
                        "batch rolled back; handling its records one by one");
                }
            }
        }
        for (done, message) in batch.iter().enumerate() {
            if !self.process(message, shutdown).await {
                return done;
            }
        }
        batch.len()
    }

    /// Applies every record of `batch` in one transaction: each claimed in the inbox (a duplicate, also of an
    /// earlier record of the batch, is skipped), then handled. Err, with nothing committed, when a record is
    /// not a plain one (a delayed retry, no event id), a handler fails, the commit does, or shutdown comes
    /// before the last record.
    async fn apply_batch(
        &self,
        batch: &[OwnedMessage],
        shutdown: &CancellationToken,
    ) -> Result<(), String> {
        let mut records = Vec::with_capacity(batch.len());
        for message in batch {
            let (record_headers, origin) = Origin::read(message);
            if origin.attempt > 0 || origin.unreadable.is_some() {
                return Err("a retried record is handled on its own".into());
            }
            records.push(incoming(message, &origin, &record_headers)?);
        }
        let mut tx = self.pool.begin().await.map_err(|e| e.to_string())?;
        let (mut applied, mut duplicates) = (0, 0);
        for record in &records {
            if shutdown.is_cancelled() {
                return Err("shutting down".into());
            }
            match self.apply_on(&mut tx, record).await {
                Ok(Applied::Done) => applied += 1,
                Ok(Applied::Duplicate) => duplicates += 1,
                Err(failure) => return Err(failure.to_string()),
            }
        }
        tx.commit().await.map_err(|e| e.to_string())?;
        self.stats.applied.fetch_add(applied, Ordering::Relaxed);
        self.stats
            .duplicates
            .fetch_add(duplicates, Ordering::Relaxed);
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("consumer_applied_total").increment(applied);
        metrics::counter!("consumer_duplicates_total").increment(duplicates);
        Ok(())
    }

    /// Handles one record to its end (applied, duplicate, sent to retry or dead-lettered); false on shutdown
    /// before that.
    async fn process(&self, message: &OwnedMessage, shutdown: &CancellationToken) -> bool {
        let (record_headers, origin) = Origin::read(message);
        // A delayed retry waits for its time, holding its retry partition (retries are in time order).
        let wait = origin.not_before.saturating_sub(now_ms());
        if wait > 0 {
            let wait = Duration::from_millis(u64::try_from(wait).unwrap_or(u64::MAX));
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shutdown.cancelled() => return false,
            }
        }
        let first_failed_at = origin.first_failed_at.unwrap_or_else(now_ms);
        let mut attempts = 0u32;
        let backoff = Backoff::new(self.settings.backoff, self.settings.max_backoff);
        loop {
            attempts += 1;
            let failure = match incoming(message, &origin, &record_headers) {
                Err(reason) => HandlerError::Poison(reason.into()),
                Ok(record) => match self.apply(&record).await {
                    Ok(Applied::Done) => {
                        self.stats.applied.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("consumer_applied_total").increment(1);
                        return true;
                    }
                    Ok(Applied::Duplicate) => {
                        self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("consumer_duplicates_total").increment(1);
                        return true;
                    }
                    Err(failure) => failure,
                },
            };
            let failed = Failed {
                message,
                origin: &origin,
                headers: &record_headers,
                first_failed_at,
            };
            let outcome = match failure {
                HandlerError::Transient(e) => Err(producers::error_chain(e.as_ref())),
                HandlerError::Poison(e) => {
                    self.dead_letter(&failed, FailureClass::Poison, &e.to_string(), attempts)
                        .await
                }
                HandlerError::Retryable(e) => {
                    let retries = origin.attempt as usize;
                    match self.settings.retry_delays.get(retries) {
                        Some(&delay) => self.send_to_retry(&failed, &e.to_string(), delay).await,
                        None => {
                            let attempts = origin.attempt + attempts;
                            self.dead_letter(
                                &failed,
                                FailureClass::Retryable,
                                &e.to_string(),
                                attempts,
                            )
                            .await
                        }
                    }
                }
            };
            let Err(reason) = outcome else {
                return true;
            };
            // Transient (or the retry or dead-letter topic is unreachable): hold the partition, retry in place.
            crate::health::retrying(
                &self.settings.group_id,
                message.topic(),
                message.partition(),
                message.offset(),
                &reason,
            );
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("consumer_transient_retries_total").increment(1);
            let wait = backoff.jittered(attempts);
            // A transient failure that a retry or two cures (a provider timeout, a dropped connection) is
            // routine; one that persists holds the partition and is worth a warning.
            if attempts < WARN_AFTER_ATTEMPTS {
                tracing::info!(topic = message.topic(), partition = message.partition(),
                    offset = message.offset(), attempts, %reason, ?wait, "transient failure; retrying in place");
            } else {
                tracing::warn!(topic = message.topic(), partition = message.partition(),
                    offset = message.offset(), attempts, %reason, ?wait, "transient failure persists; retrying in place");
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shutdown.cancelled() => return false,
            }
        }
    }

    /// The effect, the inbox row and the handler's outbox records, in one transaction.
    async fn apply(&self, record: &Incoming) -> Result<Applied, HandlerError> {
        let mut tx = self.pool.begin().await.map_err(transient)?;
        let applied = self.apply_on(&mut tx, record).await?;
        if let Applied::Done = applied {
            tx.commit().await.map_err(transient)?;
        }
        Ok(applied)
    }

    /// Claims `record` in the inbox on `tx` and, unless it is a duplicate, hands it to the handler.
    async fn apply_on(
        &self,
        tx: &mut PgConnection,
        record: &Incoming,
    ) -> Result<Applied, HandlerError> {
        if self.settings.inbox {
            let fresh = inbox::claim(tx, &self.settings.group_id, record.event_id, &record.topic)
                .await
                .map_err(transient)?;
            if !fresh {
                return Ok(Applied::Duplicate);
            }
        }
        // A panic is a bug that this record sets off: it would end the partition's worker and stall the
        // partition silently, so it is treated as a poison record (the transaction rolls back when dropped).
        AssertUnwindSafe(self.handler.handle(tx, record))
            .catch_unwind()
            .await
            .map_err(|panic| {
                let what = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("a panic without a message");
                HandlerError::Poison(format!("the handler panicked: {what}").into())
            })??;
        Ok(Applied::Done)
    }

    /// Sends the record to `<source topic>.dlq` with its original key, value and headers, and headers saying
    /// where it came from and why. Err when the dead-letter topic could not be written (retried in place).
    async fn dead_letter(
        &self,
        failed: &Failed<'_>,
        class: FailureClass,
        error: &str,
        attempts: u32,
    ) -> Result<(), String> {
        let origin = failed.origin;
        let topic = Topics::dead_letters(&origin.topic);
        let mut envelope = failed.original_headers();
        envelope.extend(
            DeadLetterEnvelope {
                source_topic: origin.topic.clone(),
                source_partition: origin.partition,
                source_offset: origin.offset,
                consumer_group: self.settings.group_id.clone(),
                error_class: class,
                error_message: error.to_owned(),
                attempts,
                first_failed_at_ms: failed.first_failed_at,
                dead_lettered_at_ms: now_ms(),
            }
            .to_headers(),
        );
        let message = failed.message;
        self.forward(message, &topic, &envelope).await?;
        self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("consumer_dead_lettered_total", "class" => class.as_str()).increment(1);
        tracing::error!(
            source = message.topic(),
            partition = message.partition(),
            offset = message.offset(),
            class = class.as_str(),
            error,
            "record dead-lettered; the partition moves on"
        );
        Ok(())
    }

    /// Writes `message`'s key and value to `topic` with `envelope` as its headers.
    async fn forward(
        &self,
        message: &OwnedMessage,
        topic: &str,
        envelope: &RecordHeaders,
    ) -> Result<(), String> {
        let mut record = FutureRecord::to(topic).headers(headers::to_kafka(envelope));
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        let sent = self
            .dead_letters
            .current()
            .send(record, Duration::from_secs(30))
            .await;
        sent.map(drop).map_err(|(e, _)| {
            // A producer that failed fatally fails every record: the retry in place gets a new one.
            if self.dead_letters.rebuild_if_fatal().is_some() {
                metrics::counter!("consumer_producer_rebuilds_total").increment(1);
            }
            format!("cannot write to {topic}: {e}")
        })
    }

    /// Sends the record to `<source topic>.retry`, to be applied again after `delay`; the partition moves on.
    async fn send_to_retry(
        &self,
        failed: &Failed<'_>,
        error: &str,
        delay: Duration,
    ) -> Result<(), String> {
        let origin = failed.origin;
        let topic = Topics::retries(&origin.topic);
        let attempt = origin.attempt + 1;
        let mut envelope = failed.original_headers();
        envelope.extend(
            RetryEnvelope {
                source_topic: origin.topic.clone(),
                source_partition: origin.partition,
                source_offset: origin.offset,
                attempt,
                not_before_ms: now_ms() + delay.as_millis(),
                first_failed_at_ms: failed.first_failed_at,
                last_error: error.to_owned(),
            }
            .to_headers(),
        );
        self.forward(failed.message, &topic, &envelope).await?;
        self.stats.retried_later.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("consumer_delayed_retries_total").increment(1);
        tracing::warn!(source = %origin.topic, attempt, ?delay, error, "retryable failure; retried later");
        Ok(())
    }
}

/// Reports the group's lag as gauges every 15 s until shutdown.
async fn report_lag(
    kafka: KafkaConfig,
    group: String,
    topics: Vec<String>,
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval(Duration::from_secs(15));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = shutdown.cancelled() => return,
        }
        if let Err(e) = crate::lag::group_lag(&kafka, &group, &topics).await {
            tracing::debug!(error = %e, "cannot read the group's lag");
        }
    }
}

/// Prunes the group's inbox rows older than `horizon` every hour until shutdown.
async fn prune_inbox(pool: PgPool, group: String, horizon: Duration, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = shutdown.cancelled() => return,
        }
        match inbox::prune(&pool, &group, horizon).await {
            Ok(pruned) => tracing::debug!(pruned, "inbox pruned"),
            Err(e) => tracing::warn!(error = %e, "cannot prune the inbox; retrying in an hour"),
        }
    }
}

/// A record whose handling failed, and where it first came from.
struct Failed<'a> {
    message: &'a OwnedMessage,
    origin: &'a Origin,
    headers: &'a RecordHeaders,
    first_failed_at: u128,
}

impl Failed<'_> {
    /// The record's headers without those a retry added.
    fn original_headers(&self) -> RecordHeaders {
        RetryEnvelope::strip(self.headers)
    }
}

/// The record as the handler sees it (a retry as its original), or why it cannot be handled at all.
fn incoming(
    message: &OwnedMessage,
    origin: &Origin,
    record_headers: &RecordHeaders,
) -> Result<Incoming, String> {
    if let Some(e) = &origin.unreadable {
        return Err(format!(
            "the retry envelope of {}/{}/{} does not read: {e}",
            message.topic(),
            message.partition(),
            message.offset()
        ));
    }
    let event_id = record_headers
        .get(headers::EVENT_ID)
        .ok_or_else(|| format!("no {} header", headers::EVENT_ID))?
        .parse::<Uuid>()
        .map_err(|e| format!("{} header is not a UUID: {e}", headers::EVENT_ID))?;
    Ok(Incoming {
        topic: origin.topic.clone(),
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(<[u8]>::to_vec),
        payload: message.payload().unwrap_or_default().to_vec(),
        headers: record_headers.clone(),
        event_id,
    })
}

fn transient(error: sqlx::Error) -> HandlerError {
    HandlerError::Transient(error.into())
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}
