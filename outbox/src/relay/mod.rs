//! The relay: publishes outbox records to Kafka, in id order, and deletes what the broker acknowledged.
//!
//! # How it keeps its promises
//! - **Nothing is skipped.** Every scan reads the lowest ids left in the table; there is no cursor, so a
//!   transaction that commits late, or stays open for minutes, is published as soon as it commits.
//! - **Per-key order is commit order**, provided writers of one key are serialized: the relay cannot
//!   check it, and two transactions writing one key at once may commit in the other order than their ids.
//!   The event store's version check serializes an aggregate's writers, a saga store's its commands; other
//!   writers (of [`crate::EventStore::publish`] or [`crate::records::enqueue`]) must do it themselves (a
//!   row lock, a version check). With that, ids of one key grow in commit order, and the relay hands a key's
//!   records to an idempotent producer in id order, one at a time: the broker may refuse a record and still
//!   append the requests sent after it, so a key's next record is sent only once the one before was
//!   acknowledged. Other keys do not wait: most keys have one record in flight and none behind it.
//! - **Pipelined.** The relay reads and sends while earlier records wait for their acknowledgement, and
//!   deletes records as their acknowledgements arrive: a record committed now goes out now, not after the
//!   batch in flight. What it holds (read, not yet deleted) is bounded by `max_pending`, and every read
//!   leaves out the ids it holds; it never reads from a position, so nothing committed late is passed over.
//! - **A producer that failed fatally is replaced.** An idempotent producer out of step with the broker
//!   fails every record from then on; the relay lands what is in flight, counts it as a transient failure
//!   and builds a new producer.
//! - **One relay publishes at a time.** Relays elect a leader with a session advisory lock held on the
//!   connection that also reads and deletes the records; the others wait as hot standbys and take over when the
//!   leader's session ends (a `kill -9` included). If the leader's connection drops, its next query fails and
//!   it stops publishing; at most the records in flight are published twice.
//! - **At least once.** A record is deleted only after the broker acknowledged it, so a crash between the
//!   acknowledgement and the delete publishes it again. Consumers deduplicate on the `event_id` header.
//! - **Poison records do not block the rest.** A record the broker refuses for good (too large, topic
//!   missing) is retried with backoff; after `max_attempts` it moves to `outbox_quarantine` with its reason.
//!   Later records of the same topic and key wait behind it until an operator retries or discards it (see
//!   [`crate::quarantine`]): skipping it would break per-key order, which consumers rely on. Other keys flow.
//!   Both failures are detected before the record is handed to the producer where possible (its size,
//!   headers included, against the producer's limit; topic metadata); a refusal from the broker itself
//!   holds the key back the same way.
//! - **Wakes on commit.** A trigger notifies `orderflow_outbox` at commit; the relay listens, and polls every
//!   `poll_interval` in case a notification is missed.

mod flight;
mod sql;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use producers::backoff::Backoff;
use producers::headers;
use producers::send::{self, Undelivered};
use producers::{KafkaConfig, ProducerConfig, RebuildingProducer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};
use rdkafka::types::RDKafkaErrorCode;
use sqlx::postgres::PgListener;
use sqlx::{Connection as _, PgConnection, PgPool};
use tokio::sync::mpsc;
use tokio::time::{MissedTickBehavior, timeout};
use tokio_util::sync::CancellationToken;

use self::flight::{Delivered, Flight, Key, Sent};
use self::sql::Row;
use crate::OutboxError;

/// The channel the outbox trigger notifies on commit.
pub const NOTIFY_CHANNEL: &str = "orderflow_outbox";

/// Advisory lock key of the relay leader (any number no other component uses).
pub const DEFAULT_LEADER_LOCK: i64 = 0x6f72_6465_7266_6c77; // "orderflw"

/// Relay settings.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Records read from the outbox at once.
    pub batch_size: usize,
    /// Records held at most: read and not yet deleted (in flight, or waiting behind their key's record in
    /// flight). Past it the relay reads no more until acknowledgements arrive.
    pub max_pending: usize,
    /// Fallback poll when no notification arrives.
    pub poll_interval: Duration,
    /// Tries of a record the broker refuses for good, before it is quarantined. A transient failure (no
    /// acknowledgement within the delivery timeout) does not use one up.
    pub max_attempts: i32,
    /// First wait before retrying a refused record or after a transient failure; doubles up to `max_backoff`
    /// ([`RelayConfig::retry_backoff`]; without jitter, as the relays of an outbox are a handful, not a crowd).
    pub backoff: Duration,
    /// Upper bound of the backoff.
    pub max_backoff: Duration,
    /// Records deleted after which the relay vacuums the outbox (in the background, on a connection of the
    /// pool). Every read walks the primary key from its lowest entry, dead ones included until a vacuum
    /// removes them: after a backlog of 200,000 records is drained, each read walks hundreds of pages, and
    /// autovacuum may not come for a minute. Only the table's owner may vacuum it: under the relay's own
    /// role, autovacuum does it alone, with the outbox's thresholds (10,000 dead rows). 0 leaves it to
    /// autovacuum.
    pub vacuum_after: u64,
    /// The advisory lock relays elect their leader with; relays of one outbox must share it.
    pub leader_lock: i64,
    /// How long a query on the leader's session may take. Past it the relay takes the session for dead (a
    /// half-open connection to a database it can no longer reach) and gives up leadership. The server ends
    /// such a session (and frees the lock for a standby) after as long again, from TCP keepalives.
    pub session_timeout: Duration,
    /// The producer's knobs.
    pub producer: ProducerConfig,
}

impl RelayConfig {
    /// The wait before retrying a refused record or after a transient failure.
    #[must_use]
    pub fn retry_backoff(&self) -> Backoff {
        Backoff::new(self.backoff, self.max_backoff)
    }
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch_size: 2000,
            max_pending: 10_000,
            vacuum_after: 50_000,
            poll_interval: Duration::from_millis(500),
            max_attempts: 5,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            leader_lock: DEFAULT_LEADER_LOCK,
            session_timeout: Duration::from_secs(30),
            producer: ProducerConfig::default(),
        }
    }
}

/// Counters of one relay, readable while it runs.
#[derive(Debug, Default)]
pub struct RelayStats {
    pub published: AtomicU64,
    pub failed: AtomicU64,
    pub quarantined: AtomicU64,
    /// Reads of the outbox.
    pub batches: AtomicU64,
    pub leader: AtomicBool,
}

/// Records the broker acknowledged, reported to an observer (benchmarks, tests) as the relay takes their
/// acknowledgements.
#[derive(Clone, Debug)]
pub struct Acked {
    pub ids: Vec<i64>,
    pub at: Instant,
}

/// Publishes the outbox. See the module documentation for its guarantees, and for the precondition they
/// rest on: writers of one key are serialized.
pub struct Relay {
    pool: PgPool,
    producer: RebuildingProducer,
    config: RelayConfig,
    stats: Arc<RelayStats>,
    observer: Option<mpsc::UnboundedSender<Acked>>,
    known_topics: HashMap<String, Instant>,
    /// Keys whose refused record waits out its backoff; their records are not read until then.
    held_back: HashMap<Key, Instant>,
    vacuum: Vacuum,
}

/// What became of a record.
enum Outcome {
    Acked(i64),
    /// Refused for good by the broker or before sending; counts as an attempt.
    Refused {
        sent: Sent,
        reason: String,
    },
    /// Failed for a reason that may pass (broker unavailable past the delivery timeout).
    Transient {
        id: i64,
        reason: String,
    },
}

impl Relay {
    /// A relay over `pool` publishing to the cluster of `kafka`.
    pub fn new(
        pool: PgPool,
        kafka: &KafkaConfig,
        config: RelayConfig,
    ) -> Result<Self, OutboxError> {
        let producer = RebuildingProducer::new(kafka, &config.producer)?;
        Ok(Self {
            pool,
            producer,
            config,
            stats: Arc::default(),
            observer: None,
            known_topics: HashMap::new(),
            held_back: HashMap::new(),
            vacuum: Vacuum::default(),
        })
    }

    /// The relay's counters.
    pub fn stats(&self) -> Arc<RelayStats> {
        Arc::clone(&self.stats)
    }

    /// Reports the acknowledged records' ids and the time on the returned channel.
    pub fn observe_acks(&mut self) -> mpsc::UnboundedReceiver<Acked> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.observer = Some(tx);
        rx
    }

    /// Runs until `shutdown` is cancelled: waits for leadership, then publishes. Database and broker failures
    /// are retried with backoff; the relay only returns on shutdown, after the records in flight landed.
    #[tracing::instrument(name = "relay", skip_all)]
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), OutboxError> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        let mut failures = 0u32;
        while !shutdown.is_cancelled() {
            match self.lead(&mut listener, &shutdown).await {
                Ok(()) => failures = 0,
                Err(e) => {
                    self.stats.leader.store(false, Ordering::Relaxed);
                    failures = failures.saturating_add(1);
                    let backoff = self.config.retry_backoff().after(failures);
                    tracing::warn!(error = %producers::error_chain(&e), ?backoff, "relay failed; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = shutdown.cancelled() => {}
                    }
                }
            }
        }
        self.producer.current().flush(Duration::from_secs(10))?;
        tracing::info!("relay stopped");
        Ok(())
    }

    /// Takes leadership on a connection of its own and publishes until shutdown or a failure.
    async fn lead(
        &mut self,
        listener: &mut PgListener,
        shutdown: &CancellationToken,
    ) -> Result<(), OutboxError> {
        let mut conn = self.pool.acquire().await?.detach();
        let within = self.config.session_timeout;
        timeout(within, sql::configure_session(&mut conn, within))
            .await
            .map_err(unresponsive(within))??;
        while !timeout(within, sql::try_lock(&mut conn, self.config.leader_lock))
            .await
            .map_err(unresponsive(within))??
        {
            if !wait_for_work(listener, self.config.poll_interval, shutdown).await {
                return Ok(());
            }
        }
        self.stats.leader.store(true, Ordering::Relaxed);
        tracing::info!("leading: this relay publishes the outbox");
        let result = self
            .publish_until_shutdown(&mut conn, listener, shutdown)
            .await;
        self.stats.leader.store(false, Ordering::Relaxed);
        // Closing the session releases the advisory lock for a standby.
        conn.close().await.ok();
        result
    }

    /// Reads records and hands them to the producer while earlier ones wait for their acknowledgement,
    /// deleting each batch of acknowledged ones as it arrives, until shutdown or a transient failure; then
    /// lands what is in flight.
    async fn publish_until_shutdown(
        &mut self,
        conn: &mut PgConnection,
        listener: &mut PgListener,
        shutdown: &CancellationToken,
    ) -> Result<(), OutboxError> {
        let within = self.config.session_timeout;
        let mut flight = Flight::new(self.producer.current());
        let mut poll = tokio::time::interval(self.config.poll_interval);
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // Whether records may be waiting in the outbox: after a full read, a notification or a poll tick.
        let mut unread = true;
        let mut listening = true;
        let mut failed = false;
        loop {
            let room = self.config.max_pending.saturating_sub(flight.held());
            if unread && room > 0 && !flight.is_stopped() {
                let limit = room.min(self.config.batch_size);
                let held_back = self.held_back_keys();
                let rows = timeout(
                    within,
                    sql::fetch(conn, &flight.held_ids(), &held_back, limit),
                )
                .await
                .map_err(unresponsive(within))??;
                self.stats.batches.fetch_add(1, Ordering::Relaxed);
                unread = rows.len() == limit;
                let outcomes = self.take_in(&mut flight, rows).await;
                failed |= timeout(within, self.settle(conn, &mut flight, outcomes))
                    .await
                    .map_err(unresponsive(within))??;
                continue;
            }
            if flight.is_stopped() && flight.in_flight() == 0 {
                break;
            }
            tokio::select! {
                Some(first) = flight.delivered(), if flight.in_flight() > 0 => {
                    let outcomes = self.on_delivered(&mut flight, first).await;
                    failed |= timeout(within, self.settle(conn, &mut flight, outcomes))
                        .await
                        .map_err(unresponsive(within))??;
                }
                notified = listener.recv(), if listening && !flight.is_stopped() => {
                    if let Err(e) = notified {
                        // It reconnects on the next call; until the next poll tick the relay polls only.
                        tracing::debug!(error = %e, "outbox listener lost its connection");
                        listening = false;
                    }
                    // One read takes everything that committed; the notifications buffered add nothing.
                    while listener.next_buffered().is_some() {}
                    unread = true;
                }
                _ = poll.tick(), if !flight.is_stopped() => {
                    unread = true;
                    listening = true;
                }
                () = shutdown.cancelled(), if !flight.is_stopped() => flight.stop(),
            }
        }
        if failed {
            self.rebuild_after_fatal_error();
            // The broker was unreachable past the delivery timeout: the leader starts again from the
            // lowest id, after a backoff.
            return Err(OutboxError::Kafka(KafkaError::MessageProduction(
                RDKafkaErrorCode::MessageTimedOut,
            )));
        }
        Ok(())
    }

    /// Takes in the records just read, in id order: sends each one whose key has no record in flight.
    async fn take_in(&mut self, flight: &mut Flight, rows: Vec<Row>) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        let mut unreadable_topics = HashSet::new();
        for row in rows {
            if !self.held_back.is_empty() && self.held_back.contains_key(&row.key()) {
                // Its key's record was refused earlier in this batch.
                continue;
            }
            if let Some(row) = flight.admit(row) {
                self.launch(flight, row, &mut unreadable_topics, &mut outcomes)
                    .await;
            }
        }
        outcomes
    }

    /// Takes the broker's answers that have arrived, `first` and those after it, and sends the next record
    /// of each acknowledged key.
    async fn on_delivered(&mut self, flight: &mut Flight, first: Delivered) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        let mut unreadable_topics = HashSet::new();
        for (sent, answer) in std::iter::once(first).chain(flight.ready()) {
            match answer {
                Ok(_) => {
                    if let Some(next) = flight.next_of(&sent.key) {
                        self.launch(flight, next, &mut unreadable_topics, &mut outcomes)
                            .await;
                    }
                    outcomes.push(Outcome::Acked(sent.id));
                }
                Err(Undelivered::Failed(e)) => {
                    let outcome = self.failed(sent, &e);
                    self.note_failure(flight, outcome, &mut outcomes);
                }
                Err(Undelivered::Dropped) => {
                    let outcome = Outcome::Transient {
                        id: sent.id,
                        reason: "producer dropped the record".into(),
                    };
                    self.note_failure(flight, outcome, &mut outcomes);
                }
            }
        }
        outcomes
    }

    /// Hands `row` to the producer, unless it is refused before it is sent.
    async fn launch(
        &mut self,
        flight: &mut Flight,
        row: Row,
        unreadable_topics: &mut HashSet<String>,
        outcomes: &mut Vec<Outcome>,
    ) {
        if let Some(reason) = self.refusal_before_sending(&row, unreadable_topics).await {
            let refused = Outcome::Refused {
                sent: row.into(),
                reason,
            };
            self.note_failure(flight, refused, outcomes);
            return;
        }
        match send(flight.producer(), &row).await {
            Ok(delivery) => flight.sent(row, delivery),
            Err(e) => {
                let outcome = self.failed(row.into(), &e);
                self.note_failure(flight, outcome, outcomes);
            }
        }
    }

    /// What a failure means at once, before it is written: a refused record's key is held back and lets go
    /// of its waiting records (read again after the backoff, behind it); a transient failure stops the flight.
    fn note_failure(&mut self, flight: &mut Flight, outcome: Outcome, outcomes: &mut Vec<Outcome>) {
        match &outcome {
            Outcome::Refused { sent, .. } => {
                let wait = self
                    .config
                    .retry_backoff()
                    .after(u32::try_from(sent.attempts + 1).unwrap_or(0));
                self.held_back
                    .insert(sent.key.clone(), Instant::now() + wait);
                flight.release(&sent.key);
            }
            Outcome::Transient { .. } => flight.stop(),
            Outcome::Acked(_) => {}
        }
        outcomes.push(outcome);
    }

    /// The keys whose refused record waits out its backoff.
    fn held_back_keys(&mut self) -> Vec<Key> {
        let now = Instant::now();
        self.held_back.retain(|_, until| *until > now);
        self.held_back.keys().cloned().collect()
    }

    /// The outcome of `sent` failing with `error`: refused for good, or transient (an error that may pass,
    /// or any error of a producer that failed fatally, which is no fault of the record).
    fn failed(&self, sent: Sent, error: &KafkaError) -> Outcome {
        if send::is_permanent(error) && self.producer.fatal_error().is_none() {
            Outcome::Refused {
                sent,
                reason: error.to_string(),
            }
        } else {
            Outcome::Transient {
                id: sent.id,
                reason: error.to_string(),
            }
        }
    }

    /// After a fatal error (an idempotent producer out of step with the broker, say) the producer fails
    /// every record for good: replaces it with a new one. Returns whether it did.
    fn rebuild_after_fatal_error(&self) -> bool {
        let rebuilt = self.producer.rebuild_if_fatal().is_some();
        if rebuilt {
            metrics::counter!("outbox_relay_producer_rebuilds_total").increment(1);
        }
        rebuilt
    }

    /// Why `row` cannot be published, found before it is sent: too large, or its topic does not exist.
    async fn refusal_before_sending(
        &mut self,
        row: &Row,
        unreadable_topics: &mut HashSet<String>,
    ) -> Option<String> {
        let size = record_size(row);
        let limit = self.config.producer.max_message_bytes as usize;
        if size > limit {
            return Some(format!(
                "record of {size} bytes exceeds the {limit}-byte limit (message.max.bytes)"
            ));
        }
        if unreadable_topics.contains(&row.topic) {
            return None;
        }
        match self.topic_exists(&row.topic).await {
            Ok(true) => None,
            Ok(false) => Some(format!("topic {} does not exist", row.topic)),
            // Unknown is not refused: the producer will try, and a failure there is classified then.
            Err(e) => {
                tracing::warn!(topic = %row.topic, error = %e, "cannot read topic metadata");
                unreadable_topics.insert(row.topic.clone());
                None
            }
        }
    }

    /// Whether `topic` exists, from a cache refreshed every minute.
    async fn topic_exists(&mut self, topic: &str) -> Result<bool, KafkaError> {
        const FRESH_FOR: Duration = Duration::from_secs(60);
        if self
            .known_topics
            .get(topic)
            .is_some_and(|seen| seen.elapsed() < FRESH_FOR)
        {
            return Ok(true);
        }
        let client = self.producer.current();
        let name = topic.to_owned();
        let exists = tokio::task::spawn_blocking(move || {
            let metadata = client
                .client()
                .fetch_metadata(Some(&name), Duration::from_secs(10))?;
            let Some(found) = metadata.topics().iter().find(|t| t.name() == name) else {
                return Ok(false);
            };
            match found.error().map(RDKafkaErrorCode::from) {
                None => Ok(!found.partitions().is_empty()),
                Some(
                    RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic,
                ) => Ok(false),
                // The topic is there but unwell (no leader yet, say): not known to be missing.
                Some(code) => Err(KafkaError::MetadataFetch(code)),
            }
        })
        .await
        .map_err(|_| KafkaError::Canceled)??;
        if exists {
            self.known_topics.insert(topic.to_owned(), Instant::now());
        }
        Ok(exists)
    }

    /// Writes what became of records: deletes the acknowledged ones, counts refusals and quarantines the
    /// records out of tries, notes transient failures. Returns whether there was a transient failure.
    async fn settle(
        &mut self,
        conn: &mut PgConnection,
        flight: &mut Flight,
        outcomes: Vec<Outcome>,
    ) -> Result<bool, OutboxError> {
        let at = Instant::now();
        let mut acked = Vec::with_capacity(outcomes.len());
        let mut transient = false;
        for outcome in outcomes {
            match outcome {
                Outcome::Acked(id) => acked.push(id),
                Outcome::Refused { sent, reason } => {
                    self.refused(conn, &sent, &reason).await?;
                    flight.settled([sent.id]);
                }
                Outcome::Transient { id, reason } => {
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("outbox_relay_errors_total", "class" => "transient")
                        .increment(1);
                    // Not a refusal: the record keeps its attempts, which only refusals use up.
                    sql::note_transient_failure(conn, id, &reason).await?;
                    flight.settled([id]);
                    transient = true;
                }
            }
        }
        if !acked.is_empty() {
            sql::delete(conn, &acked).await?;
            flight.settled(acked.iter().copied());
            self.vacuum
                .after_deleting(acked.len() as u64, self.config.vacuum_after, &self.pool);
            self.stats
                .published
                .fetch_add(acked.len() as u64, Ordering::Relaxed);
            metrics::counter!("outbox_relay_published_total").increment(acked.len() as u64);
            if let Some(observer) = &self.observer {
                observer.send(Acked { ids: acked, at }).ok();
            }
        }
        Ok(transient)
    }

    /// Counts a refusal of `sent`, and quarantines it when it is out of tries.
    async fn refused(
        &mut self,
        conn: &mut PgConnection,
        sent: &Sent,
        reason: &str,
    ) -> Result<(), OutboxError> {
        let (id, (topic, key)) = (sent.id, &sent.key);
        self.stats.failed.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("outbox_relay_errors_total", "class" => "refused").increment(1);
        let attempts = sent.attempts + 1;
        if attempts >= self.config.max_attempts {
            sql::quarantine(conn, id, attempts, reason).await?;
            self.stats.quarantined.fetch_add(1, Ordering::Relaxed);
            tracing::error!(id, %topic, %key, %reason, attempts,
                "record quarantined; later records of its key wait for an operator");
        } else {
            sql::record_failure(conn, id, reason).await?;
            tracing::warn!(id, %topic, %key, %reason, attempts,
                "broker refused record; retrying after a backoff");
        }
        Ok(())
    }
}

/// Vacuums the outbox in the background once enough records were deleted since the last time.
#[derive(Default)]
struct Vacuum {
    deleted: u64,
    running: Option<tokio::task::JoinHandle<()>>,
}

impl Vacuum {
    fn after_deleting(&mut self, count: u64, threshold: u64, pool: &PgPool) {
        self.deleted += count;
        let idle = self
            .running
            .as_ref()
            .is_none_or(tokio::task::JoinHandle::is_finished);
        if threshold == 0 || self.deleted < threshold || !idle {
            return;
        }
        self.deleted = 0;
        let pool = pool.clone();
        self.running = Some(tokio::spawn(async move {
            // Only the table's owner may vacuum it; another role gets a warning and nothing is done.
            if let Err(e) = sqlx::query("VACUUM outbox").execute(&pool).await {
                tracing::warn!(error = %e, "could not vacuum the outbox; autovacuum will");
            }
        }));
    }
}

/// Hands `row` to the producer, waiting while its queue is full.
async fn send(producer: &FutureProducer, row: &Row) -> Result<DeliveryFuture, KafkaError> {
    let record = FutureRecord::to(&row.topic)
        .key(&row.key)
        .payload(&row.payload)
        .headers(headers::to_kafka(&row.headers));
    send::enqueue(producer, record).await
}

/// The error of a query on the leader's session that took longer than `within`.
fn unresponsive(within: Duration) -> impl FnOnce(tokio::time::error::Elapsed) -> OutboxError {
    move |_| OutboxError::SessionUnresponsive(within)
}

/// Waits for a notification, the poll interval or shutdown; false on shutdown.
async fn wait_for_work(
    listener: &mut PgListener,
    poll: Duration,
    shutdown: &CancellationToken,
) -> bool {
    tokio::select! {
        notified = listener.recv() => {
            if let Err(e) = notified {
                tracing::debug!(error = %e, "outbox listener lost its connection; it reconnects");
                tokio::time::sleep(poll).await;
            }
            // One read takes everything that committed; earlier notifications add nothing.
            while listener.next_buffered().is_some() {}
            true
        }
        () = tokio::time::sleep(poll) => true,
        () = shutdown.cancelled() => false,
    }
}

/// The bytes `row` takes in a record batch before compression, over-estimated by giving every varint its
/// widest form: key, value, each header's name and value, and the fields around them.
fn record_size(row: &Row) -> usize {
    const VARINT: usize = 5;
    const VARLONG: usize = 10;
    // Length, attributes, timestamp delta, offset delta, key length, value length, header count.
    const FIXED: usize = VARINT + 1 + VARLONG + 4 * VARINT;
    let headers: usize = row
        .headers
        .iter()
        .map(|(name, value)| VARINT + name.len() + VARINT + value.len())
        .sum();
    FIXED + row.key.len() + row.payload.len() + headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_bound() {
        let config = RelayConfig {
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(1),
            ..RelayConfig::default()
        };
        let backoff = config.retry_backoff();
        assert_eq!(backoff.after(1), config.backoff);
        assert_eq!(backoff.after(2), Duration::from_millis(400));
        assert_eq!(backoff.after(3), Duration::from_millis(800));
        assert_eq!(backoff.after(4), config.max_backoff);
        assert_eq!(backoff.after(1000), config.max_backoff);
    }
}
