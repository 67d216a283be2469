//! What this process's consumers are stuck on, for a health endpoint: the partitions whose current record
//! has been retried in place (a transient failure: database, broker or registry unavailable) for longer
//! than a threshold. Such a partition makes no progress, and its lag grows while the process looks alive.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A partition whose current record has been retried in place for a while.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stuck {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// How long its record has been retried.
    pub retrying_for: Duration,
    /// The last failure.
    pub reason: String,
}

struct Retrying {
    offset: i64,
    since: Instant,
    reason: String,
}

type Key = (String, String, i32);

static RETRYING: LazyLock<Mutex<HashMap<Key, Retrying>>> = LazyLock::new(Mutex::default);

/// Notes that the record at `offset` of a partition failed transiently and is retried in place; the time
/// of its first failure is kept.
pub(crate) fn retrying(group: &str, topic: &str, partition: i32, offset: i64, reason: &str) {
    let mut retrying = RETRYING.lock().unwrap_or_else(PoisonError::into_inner);
    let entry = retrying
        .entry((group.to_owned(), topic.to_owned(), partition))
        .or_insert_with(|| Retrying {
            offset,
            since: Instant::now(),
            reason: String::new(),
        });
    if entry.offset != offset {
        entry.offset = offset;
        entry.since = Instant::now();
    }
    reason.clone_into(&mut entry.reason);
}

/// Notes that a partition's record is done with (applied, dead-lettered, or left at shutdown).
pub(crate) fn done(group: &str, topic: &str, partition: i32) {
    RETRYING
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&(group.to_owned(), topic.to_owned(), partition));
}

/// The partitions whose record has been retried in place for longer than `threshold`, longest first.
pub fn stuck_longer_than(threshold: Duration) -> Vec<Stuck> {
    let now = Instant::now();
    let mut stuck: Vec<Stuck> = RETRYING
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .filter(|(_, r)| now.duration_since(r.since) > threshold)
        .map(|((group, topic, partition), r)| Stuck {
            group: group.clone(),
            topic: topic.clone(),
            partition: *partition,
            offset: r.offset,
            retrying_for: now.duration_since(r.since),
            reason: r.reason.clone(),
        })
        .collect();
    stuck.sort_by_key(|s| std::cmp::Reverse(s.retrying_for));
    stuck
}
