//! The four services.
//!
//! This crate will own the handlers of the orders, payments (with a simulated provider and its ledger),
//! inventory (no oversell, bucketed hot SKUs) and delivery services, each on the consumer runtime with its
//! own tables.
//!
//! Not built yet: see the services and saga issue.
