//! The records a leading relay holds between reading them and settling them: in flight to the broker, or
//! queued behind the record of their key that is.

use std::collections::{HashMap, HashSet, VecDeque};

use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use producers::send::{self, Undelivered};
use rdkafka::producer::{DeliveryFuture, FutureProducer};

use super::sql::Row;

/// A record's topic and key: the unit of ordering.
pub(super) type Key = (String, String);

/// A record handed to the producer (or refused before it was).
pub(super) struct Sent {
    pub id: i64,
    pub key: Key,
    pub attempts: i32,
}

impl From<Row> for Sent {
    fn from(row: Row) -> Self {
        Self {
            id: row.id,
            key: (row.topic, row.key),
            attempts: row.attempts,
        }
    }
}

/// A sent record and the broker's answer about it.
pub(super) type Delivered = (Sent, Result<(i32, i64), Undelivered>);

/// The records between the outbox and the broker, on one leader session and one producer.
///
/// A key has at most one record in flight; its later records wait here, in id order, until the broker
/// acknowledged that one ([`Flight::next_of`]). Every record read and not settled is *held*: the next read
/// leaves out held ids, so nothing is read twice, and nothing else is left out (no cursor).
pub(super) struct Flight {
    producer: FutureProducer,
    held: HashSet<i64>,
    /// Keys with a record in flight, by topic, and their records waiting behind it.
    busy: HashMap<String, HashMap<String, VecDeque<Row>>>,
    deliveries: FuturesUnordered<BoxFuture<'static, Delivered>>,
    stopped: bool,
}

impl Flight {
    /// A flight sending with `producer`, which must not change until the flight has landed.
    pub fn new(producer: FutureProducer) -> Self {
        Self {
            producer,
            held: HashSet::new(),
            busy: HashMap::new(),
            deliveries: FuturesUnordered::new(),
            stopped: false,
        }
    }

    pub fn producer(&self) -> &FutureProducer {
        &self.producer
    }

    /// Records read and not settled yet.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Their ids, for the next read to leave out.
    pub fn held_ids(&self) -> Vec<i64> {
        self.held.iter().copied().collect()
    }

    /// Records handed to the producer whose answer has not been taken yet.
    pub fn in_flight(&self) -> usize {
        self.deliveries.len()
    }

    /// Whether the flight takes no more records: it only lands the ones in flight.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Takes in a record just read. Returns it when it can be sent now; keeps it while a record of its key is
    /// in flight. A stopped flight takes nothing.
    pub fn admit(&mut self, row: Row) -> Option<Row> {
        if self.stopped {
            return None;
        }
        self.held.insert(row.id);
        match self.waiting(&row.topic, &row.key) {
            Some(waiting) => {
                waiting.push_back(row);
                None
            }
            None => Some(row),
        }
    }

    /// Follows `row`, just handed to the producer, to the broker's answer; its key is busy until then.
    pub fn sent(&mut self, row: Row, delivery: DeliveryFuture) {
        if self.waiting(&row.topic, &row.key).is_none() {
            let keys = self.busy.entry(row.topic.clone()).or_default();
            keys.insert(row.key.clone(), VecDeque::new());
        }
        let sent = Sent::from(row);
        self.deliveries.push(
            send::acknowledged(delivery)
                .map(|answer| (sent, answer))
                .boxed(),
        );
    }

    /// The next answer from the broker; `None` when nothing is in flight.
    pub async fn delivered(&mut self) -> Option<Delivered> {
        self.deliveries.next().await
    }

    /// The answers that have already arrived, without waiting.
    pub fn ready(&mut self) -> Vec<Delivered> {
        let mut ready = Vec::new();
        while let Some(Some(delivered)) = self.deliveries.next().now_or_never() {
            ready.push(delivered);
        }
        ready
    }

    /// The record of `key` to send now that its record in flight was acknowledged; `None` frees the key.
    pub fn next_of(&mut self, (topic, key): &Key) -> Option<Row> {
        let next = self.waiting(topic, key)?.pop_front();
        if next.is_none() {
            self.free(topic, key);
        }
        next
    }

    /// Lets go of `key`'s waiting records (they stay in the outbox, to be read again) and frees the key.
    pub fn release(&mut self, (topic, key): &Key) {
        for row in self.free(topic, key).into_iter().flatten() {
            self.held.remove(&row.id);
        }
    }

    /// Takes no more records and lets go of every waiting one; the records in flight still land.
    pub fn stop(&mut self) {
        self.stopped = true;
        for waiting in self.busy.values_mut().flat_map(HashMap::values_mut) {
            for row in waiting.drain(..) {
                self.held.remove(&row.id);
            }
        }
    }

    /// The records waiting behind `key`'s record in flight; `None` when it has none in flight.
    fn waiting(&mut self, topic: &str, key: &str) -> Option<&mut VecDeque<Row>> {
        self.busy.get_mut(topic)?.get_mut(key)
    }

    /// Marks `key` as having no record in flight; returns the records that were waiting behind it.
    fn free(&mut self, topic: &str, key: &str) -> Option<VecDeque<Row>> {
        let keys = self.busy.get_mut(topic)?;
        let waiting = keys.remove(key);
        if keys.is_empty() {
            self.busy.remove(topic);
        }
        waiting
    }

    /// Forgets records whose outcome is written to the outbox: read again if they are still there.
    pub fn settled(&mut self, ids: impl IntoIterator<Item = i64>) {
        for id in ids {
            self.held.remove(&id);
        }
    }
}
