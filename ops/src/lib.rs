//! Operator and finance jobs.
//!
//! - [`reconcile`]: finance's reconciliation of the provider's statement against our payments, orders and
//!   notifications, for a window; differences classified with the money at stake, every run recorded.
//!   [`reconcile::apply`] re-sends given-up notifications and leaves money differences to a person (the
//!   money repairs are not built yet).
//!
//! Topic replay and region failover are planned for this crate and do not exist in any form yet.

pub mod reconcile;
