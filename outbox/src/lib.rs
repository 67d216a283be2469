//! Event store, transactional outbox and relay.
//!
//! This crate will own the Postgres event store (append with an expected version, typed `Conflict` on a
//! concurrent writer), the outbox rows written in the same transaction as the events, and the relay that
//! publishes them to Kafka with an idempotent producer, keeping per-aggregate order and never skipping a
//! committed record.
//!
//! Not built yet: see the outbox issue.
