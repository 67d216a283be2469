//! The relay: publishes outbox records to Kafka, in id order, and deletes what the broker acknowledged.
//!
//! # How it keeps its promises
//! - **Nothing is skipped.** Every scan reads the lowest ids left in the table; there is no cursor, so a
//!   transaction that commits late, or stays open for minutes, is published as soon as it commits.
//! - **Per-key order is commit order**, provided writers of one key are serialized: the relay cannot
//!   check it, and two transactions writing one key at once may commit in the other order than their ids.
//!   The event store's version check serializes an aggregate's writers, a saga store's its commands; other
//!   writers (of [`crate::EventStore::publish`] or [`crate::records::enqueue`]) must do it themselves (a
//!   row lock, a version check). With that, ids of one key grow in commit order; the relay hands records
//!   to an idempotent producer in id order, and a batch is acknowledged and deleted before the next is read.
//!   Within a batch a key has at most one record in flight: the broker may refuse a record and still append
//!   the requests sent after it, so a key's next record is sent only once the one before was acknowledged
//!   (keys are sent in waves; most keys have one record per batch).
//! - **A producer that failed fatally is replaced.** An idempotent producer out of step with the broker
//!   fails every record from then on; the relay counts that round as a transient failure and builds a new
//!   producer.
//! - **One relay publishes at a time.** Relays elect a leader with a session advisory lock held on the
//!   connection that also reads and deletes the records; the others wait as hot standbys and take over when the
//!   leader's session ends (a `kill -9` included). If the leader's connection drops, its next query fails and
//!   it stops publishing; at most the batch in flight is published twice.
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

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use producers::backoff::Backoff;
use producers::headers::{self, RecordHeaders};
use producers::send::{self, Undelivered};
use producers::{KafkaConfig, ProducerConfig, RebuildingProducer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};
use rdkafka::types::RDKafkaErrorCode;
use sqlx::postgres::PgListener;
use sqlx::{Connection as _, PgConnection, PgPool};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use crate::OutboxError;

/// The channel the outbox trigger notifies on commit.
pub const NOTIFY_CHANNEL: &str = "orderflow_outbox";

/// Advisory lock key of the relay leader (any number no other component uses).
pub const DEFAULT_LEADER_LOCK: i64 = 0x6f72_6465_7266_6c77; // "orderflw"

/// Relay settings.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Records read, published and deleted per round.
    pub batch_size: usize,
    /// Fallback poll when no notification arrives.
    pub poll_interval: Duration,
    /// Tries of a record the broker refuses for good, before it is quarantined. A transient failure (no
    /// acknowledgement within the delivery timeout) does not use one up.
    pub max_attempts: i32,
    /// First wait before retrying a refused record or after a failed round; doubles up to `max_backoff`
    /// ([`RelayConfig::retry_backoff`]; without jitter, as the relays of an outbox are a handful, not a crowd).
    pub backoff: Duration,
    /// Upper bound of the backoff.
    pub max_backoff: Duration,
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
    /// The wait before retrying a refused record or after a failed round.
    #[must_use]
    pub fn retry_backoff(&self) -> Backoff {
        Backoff::new(self.backoff, self.max_backoff)
    }
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch_size: 2000,
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
    pub batches: AtomicU64,
    pub leader: AtomicBool,
}

/// A record the broker acknowledged, reported to an observer (benchmarks, tests).
#[derive(Clone, Debug)]
pub struct Acked {
    pub id: i64,
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
    held_back: HashMap<(String, String), Instant>,
}

/// One row of the outbox, as the relay reads it.
#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    topic: String,
    key: String,
    payload: Vec<u8>,
    headers: sqlx::types::Json<RecordHeaders>,
    attempts: i32,
}

/// What became of a row in a round.
enum Outcome {
    Acked(i64),
    /// Refused for good by the broker or before sending; counts as an attempt.
    Refused {
        id: i64,
        key: (String, String),
        attempts: i32,
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
        })
    }

    /// The relay's counters.
    pub fn stats(&self) -> Arc<RelayStats> {
        Arc::clone(&self.stats)
    }

    /// Reports every acknowledged record's id and time on the returned channel.
    pub fn observe_acks(&mut self) -> mpsc::UnboundedReceiver<Acked> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.observer = Some(tx);
        rx
    }

    /// Runs until `shutdown` is cancelled: waits for leadership, then publishes. Database and broker failures
    /// are retried with backoff; the relay only returns on shutdown, after finishing the round in flight.
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
                    tracing::warn!(error = %producers::error_chain(&e), ?backoff, "relay round failed; retrying");
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
        timeout(within, configure_session(&mut conn, within))
            .await
            .map_err(unresponsive(within))??;
        while !timeout(within, try_lock(&mut conn, self.config.leader_lock))
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

    async fn publish_until_shutdown(
        &mut self,
        conn: &mut PgConnection,
        listener: &mut PgListener,
        shutdown: &CancellationToken,
    ) -> Result<(), OutboxError> {
        let within = self.config.session_timeout;
        while !shutdown.is_cancelled() {
            let rows = timeout(within, fetch_batch(conn, self.config.batch_size as i64))
                .await
                .map_err(unresponsive(within))??;
            let progressed = if rows.is_empty() {
                false
            } else {
                let outcomes = self.publish(&rows).await;
                timeout(within, self.settle(conn, outcomes))
                    .await
                    .map_err(unresponsive(within))??
            };
            // Nothing to do, or every record waits behind a held-back key: wait instead of spinning.
            if !progressed && !wait_for_work(listener, self.config.poll_interval, shutdown).await {
                break;
            }
        }
        Ok(())
    }

    /// Hands `rows` to the producer in id order and waits for every acknowledgement, in waves that hold at
    /// most one record of each key: a record's successor is sent only once the broker acknowledged it, so
    /// a record refused by the broker (or failed) is never overtaken by a later one of its key, and its key
    /// waits for the rest of the round. Keys with one record in the round (the usual case) go in one wave.
    async fn publish(&mut self, rows: &[Row]) -> Vec<Outcome> {
        let now = Instant::now();
        self.held_back.retain(|_, until| *until > now);
        let mut outcomes = Vec::with_capacity(rows.len());
        // Keys with a refused, failed or held-back record in this round: their later records wait.
        let mut blocked: HashSet<(String, String)> = self.held_back.keys().cloned().collect();
        // Topics whose metadata could not be read in this round: not asked again (each try can take 10 s).
        let mut unreadable_topics = HashSet::new();
        let mut wave: Vec<&Row> = rows.iter().collect();
        while !wave.is_empty() {
            let mut in_wave = HashSet::new();
            let mut next_wave = Vec::new();
            let mut in_flight = Vec::new();
            // The producer of this wave: it is only replaced between waves.
            let producer = self.producer.current();
            for row in wave {
                let key = (row.topic.clone(), row.key.clone());
                if blocked.contains(&key) {
                    continue;
                }
                if in_wave.contains(&key) {
                    next_wave.push(row);
                    continue;
                }
                in_wave.insert(key.clone());
                if let Some(reason) = self
                    .refusal_before_sending(row, &mut unreadable_topics)
                    .await
                {
                    blocked.insert(key.clone());
                    outcomes.push(Outcome::Refused {
                        id: row.id,
                        key,
                        attempts: row.attempts,
                        reason,
                    });
                    continue;
                }
                match send(&producer, row).await {
                    Ok(delivery) => in_flight.push((row, key, delivery)),
                    Err(e) => {
                        blocked.insert(key.clone());
                        outcomes.push(self.failed(row, key, &e));
                    }
                }
            }
            for (row, key, delivery) in in_flight {
                let outcome = match send::acknowledged(delivery).await {
                    Ok(_) => Outcome::Acked(row.id),
                    Err(Undelivered::Failed(e)) => {
                        blocked.insert(key.clone());
                        self.failed(row, key, &e)
                    }
                    Err(Undelivered::Dropped) => {
                        blocked.insert(key);
                        Outcome::Transient {
                            id: row.id,
                            reason: "producer dropped the record".into(),
                        }
                    }
                };
                outcomes.push(outcome);
            }
            if self.rebuild_after_fatal_error() {
                break;
            }
            wave = next_wave;
        }
        outcomes
    }

    /// The outcome of `row` failing with `error`: refused for good, or transient (an error that may pass,
    /// or any error of a producer that failed fatally, which is no fault of the record).
    fn failed(&self, row: &Row, key: (String, String), error: &KafkaError) -> Outcome {
        if send::is_permanent(error) && self.producer.fatal_error().is_none() {
            Outcome::Refused {
                id: row.id,
                key,
                attempts: row.attempts,
                reason: error.to_string(),
            }
        } else {
            Outcome::Transient {
                id: row.id,
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

    /// Deletes acknowledged rows, counts attempts of refused ones and quarantines those out of tries.
    /// Returns whether any row was acknowledged or quarantined.
    async fn settle(
        &mut self,
        conn: &mut PgConnection,
        outcomes: Vec<Outcome>,
    ) -> Result<bool, OutboxError> {
        let mut acked = Vec::with_capacity(outcomes.len());
        let mut quarantined = 0;
        let mut transient = false;
        for outcome in outcomes {
            match outcome {
                Outcome::Acked(id) => acked.push(id),
                Outcome::Refused {
                    id,
                    key,
                    attempts,
                    reason,
                } => {
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("outbox_relay_errors_total", "class" => "refused")
                        .increment(1);
                    let attempts = attempts + 1;
                    if attempts >= self.config.max_attempts {
                        quarantine(conn, id, attempts, &reason).await?;
                        quarantined += 1;
                        tracing::error!(id, topic = %key.0, key = %key.1, %reason, attempts,
                            "record quarantined; later records of its key wait for an operator");
                    } else {
                        record_failure(conn, id, &reason).await?;
                        let wait = self
                            .config
                            .retry_backoff()
                            .after(u32::try_from(attempts).unwrap_or(0));
                        tracing::warn!(id, topic = %key.0, key = %key.1, %reason, attempts, ?wait,
                            "broker refused record; retrying later");
                        self.held_back.insert(key, Instant::now() + wait);
                    }
                }
                Outcome::Transient { id, reason } => {
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("outbox_relay_errors_total", "class" => "transient")
                        .increment(1);
                    // Not a refusal: the record keeps its attempts, which only refusals use up.
                    note_transient_failure(conn, id, &reason).await?;
                    transient = true;
                }
            }
        }
        if !acked.is_empty() {
            sqlx::query("DELETE FROM outbox WHERE id = ANY($1)")
                .bind(&acked)
                .execute(&mut *conn)
                .await?;
            if let Some(observer) = &self.observer {
                let at = Instant::now();
                for &id in &acked {
                    observer.send(Acked { id, at }).ok();
                }
            }
        }
        self.stats
            .published
            .fetch_add(acked.len() as u64, Ordering::Relaxed);
        self.stats
            .quarantined
            .fetch_add(quarantined, Ordering::Relaxed);
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("outbox_relay_published_total").increment(acked.len() as u64);
        if transient {
            // The broker is unreachable past the delivery timeout: the round is retried from the lowest id.
            return Err(OutboxError::Kafka(KafkaError::MessageProduction(
                RDKafkaErrorCode::MessageTimedOut,
            )));
        }
        Ok(!acked.is_empty() || quarantined > 0)
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

/// The oldest records that are not waiting behind a quarantined record of their key.
async fn fetch_batch(conn: &mut PgConnection, limit: i64) -> Result<Vec<Row>, OutboxError> {
    let rows = sqlx::query_as::<_, Row>(
        "SELECT o.id, o.topic, o.key, o.payload, o.headers, o.attempts
         FROM outbox o
         WHERE NOT EXISTS (SELECT 1 FROM outbox_quarantine q WHERE q.topic = o.topic AND q.key = o.key)
         ORDER BY o.id
         LIMIT $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows)
}

/// Has the server end the leader's session if the relay's host stops answering (TCP keepalives; the
/// defaults wait two hours), and bounds its statements.
async fn configure_session(conn: &mut PgConnection, within: Duration) -> Result<(), OutboxError> {
    let seconds = within.as_secs().max(3);
    let probe_every = seconds / 3;
    let probe_every = probe_every.to_string();
    let (names, values): (Vec<&str>, Vec<String>) = [
        ("tcp_keepalives_idle", probe_every.clone()),
        ("tcp_keepalives_interval", probe_every),
        ("tcp_keepalives_count", "3".to_owned()),
        ("statement_timeout", within.as_millis().to_string()),
    ]
    .into_iter()
    .unzip();
    sqlx::query("SELECT set_config(name, value, false) FROM unnest($1::text[], $2::text[]) AS s(name, value)")
        .bind(names)
        .bind(values)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The error of a query on the leader's session that took longer than `within`.
fn unresponsive(within: Duration) -> impl FnOnce(tokio::time::error::Elapsed) -> OutboxError {
    move |_| OutboxError::SessionUnresponsive(within)
}

async fn try_lock(conn: &mut PgConnection, key: i64) -> Result<bool, OutboxError> {
    Ok(sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(key)
        .fetch_one(conn)
        .await?)
}

async fn note_transient_failure(
    conn: &mut PgConnection,
    id: i64,
    reason: &str,
) -> Result<(), OutboxError> {
    sqlx::query("UPDATE outbox SET last_error = $2 WHERE id = $1")
        .bind(id)
        .bind(reason)
        .execute(conn)
        .await?;
    Ok(())
}

async fn record_failure(conn: &mut PgConnection, id: i64, reason: &str) -> Result<(), OutboxError> {
    sqlx::query("UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1")
        .bind(id)
        .bind(reason)
        .execute(conn)
        .await?;
    Ok(())
}

async fn quarantine(
    conn: &mut PgConnection,
    id: i64,
    attempts: i32,
    reason: &str,
) -> Result<(), OutboxError> {
    sqlx::query(
        "WITH moved AS (DELETE FROM outbox WHERE id = $1 RETURNING *)
         INSERT INTO outbox_quarantine (id, topic, key, payload, headers, created_at, attempts, reason)
         SELECT id, topic, key, payload, headers, created_at, $2, $3 FROM moved",
    )
    .bind(id)
    .bind(attempts)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
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
            // One round reads everything that committed; earlier notifications add nothing.
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
