//! Consumer runtime: idempotent handling, retries in place, dead letters, graceful shutdown.
//!
//! [`ConsumerRuntime`] reads a consumer group's topics with rdkafka and hands each record to a [`Handler`].
//!
//! What it promises:
//! - **One effect per event id.** The effect, the inbox row `(consumer group, event id)` and any outbox records
//!   the handler writes commit in one transaction; a redelivered event finds its inbox row and is acknowledged
//!   and counted as a duplicate, without a second effect. This holds across crashes, rebalances and replays
//!   within the inbox horizon ([`inbox::prune`]).
//! - **At least once.** Offsets are stored only after the record's transaction committed (auto-commit on,
//!   auto offset store off), committed on partition revoke and once more on shutdown. A crash between the
//!   commit of the effect and the offset commit redelivers the record, and the inbox skips it.
//! - **Order per partition, parallel across partitions.** Each partition's records are applied one after the
//!   other by a worker of its own; a bounded buffer per partition bounds memory. When a partition's buffer
//!   is full (its worker is retrying in place, say), that partition is paused and the others keep flowing.
//!   A handler that panics is treated as a poison record.
//! - **Failures by class**, chosen by the handler's [`HandlerError`]: transient failures (database or broker
//!   unavailable) are retried in place with exponential backoff and jitter, holding the partition so per-key
//!   order is kept; retryable business failures (the payment provider timed out) go to `<topic>.retry` with
//!   an attempt count and a not-before time, are applied again after each of `retry_delays`, then
//!   dead-lettered, and the partition moves on meanwhile (so per-key order gives way for them); poison
//!   records (no event id, cannot decode, fails validation) go straight to `<topic>.dlq` with the original
//!   key, value and headers plus `dlq.*` headers (source topic, partition, offset, group, error class and
//!   message, attempts, times: [`envelope::DeadLetterEnvelope`]), and the partition moves on. A record of a
//!   retry topic whose `retry.*` headers ([`envelope::RetryEnvelope`]) do not read is poison too,
//!   dead-lettered to its source topic's `<topic>.dlq`.
//! - **Operators** list, inspect and redrive dead letters ([`dlq`], `orderflow dlq`); redrive keeps the event
//!   id, so it never doubles an effect. [`lag`] reports each partition's lag (gauge `consumer_lag`, and
//!   `orderflow status --group`). The inbox is pruned hourly past `inbox_horizon` ([`inbox::prune`]).
//!
//! Each record is its own transaction, so throughput is bounded by Postgres commit latency times the number of
//! partitions. The runtime creates `<topic>.dlq` and `<topic>.retry` (one partition) when they are missing.
//! [`runtime`] states its ordering, offset and shutdown rules in full.
//!
//! A handler applies one record on the transaction it is given; the runtime claims the event in the inbox,
//! commits, stores the offset and handles failures by the error's class. `examples/consume.rs` is a whole
//! service (`cargo run -p consumers --example consume`).
//!
//! ```no_run
//! use consumers::{ConsumerRuntime, ConsumerConfig, Handler, HandlerError, Incoming};
//!
//! struct Audit;
//!
//! impl Handler for Audit {
//!     async fn handle(&self, tx: &mut sqlx::PgConnection, record: &Incoming) -> Result<(), HandlerError> {
//!         sqlx::query("INSERT INTO audit (event_id, topic) VALUES ($1, $2)")
//!             .bind(record.event_id)
//!             .bind(&record.topic)
//!             .execute(tx)
//!             .await
//!             .map_err(|e| HandlerError::Transient(e.into()))?;
//!         Ok(())
//!     }
//! }
//!
//! # async fn run(pool: sqlx::PgPool) -> Result<(), consumers::ConsumerError> {
//! let kafka = producers::KafkaConfig::new(producers::DEFAULT_BOOTSTRAP);
//! let settings = ConsumerConfig::new("audit", vec!["orders.events".into()]);
//! let shutdown = tokio_util::sync::CancellationToken::new(); // cancel it to stop between records
//! ConsumerRuntime::new(pool, &kafka, settings, Audit)?.run(shutdown).await
//! # }
//! ```

pub mod dlq;
pub mod envelope;
mod error;
pub mod health;
pub mod inbox;
pub mod lag;
pub mod reader;
pub mod runtime;

pub use error::{ConsumerError, HandlerError};
pub use runtime::{ConsumerConfig, ConsumerRuntime, ConsumerStats, Handler, Incoming};
