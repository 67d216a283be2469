//! Operator and finance jobs.
//!
//! - [`reconcile`]: finance's reconciliation of the provider's statement against our payments, orders and
//!   notifications, for a window; differences classified with the money at stake, every run recorded.
//!   [`reconcile::apply`] repairs what it safely can through the provider and leaves the rest to a person.
//! - [`replay`]: operators' replays of a range of a topic into another topic or through a projection's
//!   handler (a rebuild), dry run by default, resumable, each recorded.
//! - [`groups`]: consumer group offsets moved by operators (`orderflow group reset`).
//! - [`region`]: the replication between regions as operators see it (`orderflow region status`), and a
//!   consumer group's failover to another region's copies at MirrorMaker 2's translated offsets.
//! - [`sagas`]: an escalated saga's step retried by an operator (`orderflow saga retry`, the console).
//!
//! Every command's refusals and failures are an [`OperatorError`].

pub mod audit;
pub mod dead_letters;
mod error;
pub mod groups;
pub mod quarantine;
pub mod reconcile;
pub mod region;
pub mod replay;
pub mod sagas;

pub use error::OperatorError;
