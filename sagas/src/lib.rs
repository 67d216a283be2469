//! Order-fulfilment saga orchestrator.
//!
//! This crate will own the pure saga state machine (reserve stock, authorize payment, schedule delivery,
//! capture on dispatch, complete; compensations in reverse), its Postgres store with optimistic concurrency
//! and the durable per-step timers. Every saga ends completed, compensated or escalated to
//! `needs_attention`; none is silently stuck.
//!
//! Not built yet: see the services and saga issue.
