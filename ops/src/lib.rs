//! Operator and finance jobs.
//!
//! This crate will own `reconcile` (find and repair mismatches between orders, payments and the provider
//! ledger, with retry-notify, never double-refunding or double-capturing), `replay` of topics and
//! `replicate` between regions (MirrorMaker 2 naming, `<region>.<topic>`).
//!
//! Not built yet: later issues.
