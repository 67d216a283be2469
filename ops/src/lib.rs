//! Operator and finance jobs: empty until the reconciliation work lands.
//!
//! Nothing here can be used yet. Reconciliation (finding and repairing mismatches between orders, payments
//! and the provider's ledger), topic replay and region failover are planned for this crate and do not exist
//! in any form. What operators have today is in the `orderflow` binary: `status`, `outbox` (backlog and
//! quarantine) and `dlq` (list, show, redrive); payments keeps every provider operation with its reference
//! (`payment_operations`) for the reconciliation to come.
