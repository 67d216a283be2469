//! Consumer runtime.
//!
//! This crate will own the consumer runtime over rdkafka: offsets stored only after the handler's
//! transaction committed, inbox dedup by `(consumer group, event id)` in that same transaction, transient
//! retries that hold the partition, delayed retry topics, dead letters with a full envelope, rebalance
//! handling and graceful shutdown.
//!
//! Not built yet: see the consumers issue.
