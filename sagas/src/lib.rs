//! Order-fulfilment saga: the pure state machine that drives one order to a consistent
//! end state, with compensation.
//!
//! ```text
//! Start -> ReservingStock -> AuthorizingPayment -> SchedulingDelivery -> AwaitingDispatch
//!              |                   |                     |                  |   (pivot: dispatched)
//!              |                   |                     |                  v
//!              |                   |                     |          CapturingPayment -> CommittingStock -> AwaitingDelivery -> Completed
//!              v                   v                     v                  v                                  |
//!         (rejected, declined, failed, timed out) --> Compensating --> Compensated          (failed, lost) --> Compensating (refund)
//!                                                         |
//!         capture, commit or a compensation out of retries, or a parcel dispatched
//!         while its delivery is being cancelled --> NeedsAttention
//! ```
//!
//! # The happy path
//! `ReserveStock` → `AuthorizePayment` → `ScheduleDelivery` → wait for the carrier's
//! dispatch → `CapturePayment` → `CommitStock` → wait for delivery → `CompleteOrder`.
//! One step at a time: the saga never has two commands in flight, so no compensation
//! can race the command it undoes.
//!
//! # Compensation
//! In reverse order of what was done: cancel the delivery (only before dispatch), void
//! the authorization (or refund after capture), release the stock, then `CancelOrder`
//! with a [`CancelReason`](domain::CancelReason): `OutOfStock`, `PaymentDeclined`,
//! `DeliveryFailed` or `Timeout` (also used for a step that reports a technical
//! failure). When a forward step timed out its effect is unknown, so its undo is part of
//! the plan too (`VoidPayment { payment_id: None }`, ...); services answer an undo of
//! nothing with the usual success reply (see [`SagaCommand`]).
//!
//! **Dispatch is the pivot.** After it, capture and commit are retried until done (or
//! escalated), never compensated. A delivery that fails after dispatch, or does not
//! arrive within [`StepTimeouts::delivery`], is refunded once payment and stock are
//! settled, and the order is cancelled (`DeliveryFailed`, or `Timeout` for a parcel
//! presumed lost). **Its committed stock is not released**: the units left the warehouse
//! with the parcel (shipped or lost); a parcel that comes back is a restock
//! (`InventoryCommand::Receive`), not the saga's business.
//!
//! # Timers and retries
//! Every state between the start and a terminal state waits on exactly one step, guarded
//! by exactly one durable timer ([`OrderSaga::pending_timer`]): a deadline, or the end of
//! a backoff. A deadline of a forward step before dispatch starts compensation (reason
//! `Timeout`). A deadline or a failure report ([`SagaInput::StepFailed`]) of a retried
//! step (compensations, capture, commit) is retried after a doubling backoff with the
//! same command and a higher attempt number, up to [`RetryPolicy::max_attempts`]; then the
//! saga records [`SagaEvent::Escalated`] and stops in `NeedsAttention`, visible to
//! operators, sending nothing more.
//!
//! # What this crate promises
//! - **Pure and deterministic.** No I/O, no async, no clock, no randomness: the same
//!   state, input and config always give the same decision. Time enters only as fired
//!   timers ([`SagaInput::Timeout`]); durations leave only as [`Timer::due_after`].
//! - **Event-sourced.** [`OrderSaga::decide`] turns an input into [`SagaEvent`]s,
//!   [`OrderSaga::evolve`] applies them, [`replay`] rebuilds a saga from its events;
//!   [`effects`] derives the commands and the timer change from the states before and
//!   after. [`OrderSaga::handle`] does all three.
//! - **Duplicates and late replies are harmless.** An input that does not answer the
//!   current step (a duplicate, a reply to a step already past, a stale timer) is
//!   [`Ignored`], not an error, and produces nothing. A terminal saga ignores everything
//!   and never sends a command.
//! - **Nothing is silently stuck.** Every saga ends `Completed`, `Compensated` or
//!   `NeedsAttention`, driven by its timers alone if no reply ever comes (a proptest
//!   checks it).
//!
//! # What it does not do (the caller's part)
//! - **Persistence.** The caller appends a transition's events to the saga's stream, puts
//!   its commands into the outbox and applies its timer change, **in one transaction**,
//!   with optimistic concurrency on the stream version, so that a crash never loses a
//!   command nor sends one twice for one decision.
//! - **Timers.** They are durable rows in the caller's store (one per saga;
//!   [`TimerChange::Set`] replaces it), fired as [`SagaInput::Timeout`] once due. Jitter,
//!   if any, is the store's. A stale fire is ignored, so firing at least once is enough.
//! - **Routing and dedup.** Replies are matched to a saga by order id by the caller; the
//!   consumers' inbox dedups redelivered records (the saga would ignore them anyway).
//!
//! # Example
//! ```
//! use domain::{Currency, CustomerId, Money, OrderId, OrderLine, OrderLines, Quantity, Sku};
//! use sagas::{Handled, OrderSaga, SagaCommand, SagaConfig, SagaInput, TimerChange, replay};
//!
//! let config = SagaConfig::default();
//! let lines = OrderLines::new(vec![OrderLine {
//!     sku: Sku::new("MUG-RED")?,
//!     quantity: Quantity::new(2)?,
//!     unit_price: Money::new(1250, Currency::EUR)?,
//! }])?;
//! let start = SagaInput::Start { order_id: OrderId::new(), customer_id: CustomerId::new(), lines };
//!
//! let saga = OrderSaga::NotStarted;
//! let Handled::Applied(step) = saga.handle(start.clone(), &config)? else { unreachable!() };
//! assert_eq!(step.state.name(), "ReservingStock");
//! assert!(matches!(step.commands[0].command, SagaCommand::ReserveStock { .. }));
//! assert!(matches!(step.timer, TimerChange::Set(_)));
//! assert_eq!(replay(&step.events), step.state);
//!
//! // The same start again changes nothing.
//! assert!(matches!(step.state.handle(start, &config)?, Handled::Ignored(_)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod command;
mod config;
mod decide;
mod error;
mod event;
mod input;
mod orchestrator;
pub mod queries;
mod state;
mod step;
mod store;
mod timers;
mod wire;

pub use command::{OutgoingCommand, Participant, SagaCommand};
pub use config::{RetryPolicy, SagaConfig, StepTimeouts};
pub use decide::{Decision, Effects, Handled, IgnoreReason, Ignored, Transition, effects};
pub use error::SagaError;
pub use event::{SagaEvent, Trigger};
pub use input::SagaInput;
pub use orchestrator::{
    DEFAULT_GROUP, Orchestrator, OrchestratorSettings, SharedCodec, run_orchestrator,
    subscribed_topics,
};
pub use state::{Attempt, AttemptPhase, Compensation, OrderSaga, SagaOrder, Shipment, replay};
pub use step::{Step, Timer, TimerChange, TimerKey, TimerKind};
pub use store::{LoadedSaga, SagaOutcome, SagaStore};
pub use timers::{TimerSettings, run_timers};
pub use wire::{Reply, WireCommand, reply_of};

#[cfg(test)]
mod tests;
