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
//!         while its delivery is being cancelled --> NeedsAttention --(an operator's Resume)--> back to the step
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
//! # Resuming an escalated saga
//! Once the cause is mended (the provider answers again, a service is back), an operator
//! retries the step with [`SagaInput::Resume`] (`orderflow saga retry`, or the console): the
//! saga records [`SagaEvent::Resumed`], goes back to the state it escalated from with a
//! fresh retry budget (attempt 1), sends the step's command again and sets its deadline.
//! A saga that escalated because retrying cannot help (a parcel dispatched before its
//! cancellation: deliver or recall it is a person's call) ignores it, as does any saga
//! that is not escalated.
//!
//! # What the state machine promises
//! - **Pure and deterministic.** No I/O, no async, no clock, no randomness: the same
//!   state, input and config always give the same decision. Time enters only as fired
//!   timers ([`SagaInput::Timeout`]); durations leave only as [`Timer::due_after`].
//!   (The modules `command`, `config`, `decide`, `event`, `input`, `state`, `step` and
//!   `wire` stay that way; the I/O lives in `store`, `timers` and `orchestrator`.)
//! - **Event-sourced.** [`OrderSaga::decide`] turns an input into [`SagaEvent`]s,
//!   [`OrderSaga::evolve`] applies them, [`replay`] rebuilds a saga from its events;
//!   [`effects`] derives the commands and the timer change from the states before and
//!   after. [`OrderSaga::handle`] does all three.
//! - **Duplicates and late replies are harmless.** An input that does not answer the
//!   current step (a duplicate, a reply to a step already past, a stale timer) is
//!   [`Ignored`], not an error, and produces nothing. A terminal saga ignores everything
//!   and never sends a command, but for an operator's [`SagaInput::Resume`] of an
//!   escalated one.
//! - **Nothing is silently stuck.** Every saga ends `Completed`, `Compensated` or
//!   `NeedsAttention`, driven by its timers alone if no reply ever comes (a proptest
//!   checks it).
//!
//! # The saga store ([`SagaStore`], Postgres)
//! Tables `sagas` (one row per saga: version, state name, `started_at`, `updated_at`,
//! `ended_at`, `outcome` = `completed` | `compensated` | `needs_attention`,
//! `cancel_reason`), `saga_events` (the stream, primary key `(order_id, version)`) and
//! `saga_timers` (at most one live timer per saga).
//! - **One transaction per transition.** [`SagaStore::handle`] loads the saga (replaying
//!   its events), decides, and [`SagaStore::persist`] writes the timer change, the events,
//!   the `sagas` row and one outbox record per command, all on the caller's transaction
//!   (with the inbox row when the caller is the consumer runtime). A crash never loses a
//!   command nor sends one twice for one decision.
//! - **Optimistic concurrency.** Events are appended at the loaded version; a writer that
//!   lost the race gets [`SagaError::Conflict`] (the unique key), rolls back and handles the
//!   input again from a fresh load, where a reply already applied is [`Ignored`]. Writers
//!   lock in one order (timer row, stream, `sagas` row), so they conflict or wait, never
//!   deadlock. [`SagaStore::execute`] does the retry for callers outside the consumer.
//! - **Commands out.** Each [`SagaCommand`] becomes its service's request message of
//!   `domain` (`InventoryRequest`, `PaymentRequest`, `DeliveryRequest`, `OrderRequest`;
//!   see [`WireCommand`]) on `<service>.commands`, keyed by the
//!   order id, written with [`outbox::EventStore::publish`]: correlation id = order id,
//!   causation id = the event that caused it; the relay publishes it at least once.
//! - **Visible escalation.** A saga that gives up ends with `outcome = 'needs_attention'`,
//!   a `tracing::warn!`, and the counter `saga_escalations_total`. Also counted:
//!   `saga_transitions_total{state}`, `saga_ended_total{outcome}`,
//!   `saga_inputs_ignored_total{reason}`, `saga_timers_fired_total`. [`queries`] counts
//!   sagas by outcome and cancel reason, compensations, stuck ones (running without a
//!   timer: always 0 unless something is broken), and their start and end times.
//!
//! # Durable timers ([`run_timers`])
//! A transition that sets a timer replaces the saga's `saga_timers` row (due
//! `due_after` from the write). The poller claims due rows earliest first with
//! `FOR UPDATE SKIP LOCKED`, one transaction per timer, in bounded rounds
//! ([`TimerConfig`]): it deletes the row and feeds [`SagaInput::Timeout`] through the
//! same handle-and-persist path, which may set the next timer. Timers fire **at least
//! once, not on time**: a late poller fires late, a rolled-back fire fires again, and a
//! stale fire is ignored. Timeouts and the retry budget come from [`SagaConfig`].
//!
//! # The orchestrator ([`run_orchestrator`])
//! A [`consumers::ConsumerRuntime`] over [`subscribed_topics`] (`orders.events`,
//! `inventory.events`, `payments.events`, `delivery.events`) with the [`Orchestrator`]
//! handler, plus the timer poller, until the cancellation token fires. Records are decoded
//! with [`schemas::AvroCodec`] and mapped by [`reply_of`]: `OrderPlaced` starts a saga;
//! the inventory's order-level answers, payments' and delivery's events are replies;
//! `OrderCompleted`, `OrderCancelled` and per-SKU stock events are skipped. Records of one
//! order share a key and so a partition, so its replies arrive in order. Failures: an
//! undecodable record, an unknown type or a reply to a saga never started is poison
//! (dead-lettered); a registry or database that does not answer and a conflict are
//! transient (retried in place). Redelivered records are skipped by the inbox; duplicated
//! events are ignored by the machine.
//!
//! # What it does not do
//! - It does not order replies across orders, nor promise when a timer fires (only that it
//!   does, once its row is due and a poller runs).
//! - It does not undo what a service did without telling it: services must answer every
//!   command, repeats included (see [`SagaCommand`]).
//! - It keeps no snapshot: a saga is rebuilt from its (few) events on every input.
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

pub use command::{OutgoingCommand, SagaCommand};
pub use config::{RetryPolicy, SagaConfig, StepTimeouts};
pub use decide::{Decision, Effects, Handled, IgnoreReason, Ignored, Transition, effects};
pub use error::SagaError;
pub use event::{SagaEvent, Trigger};
pub use input::SagaInput;
pub use orchestrator::{
    DEFAULT_GROUP, Orchestrator, OrchestratorConfig, run_orchestrator, subscribed_topics,
};
pub use state::{Attempt, AttemptPhase, Compensation, OrderSaga, SagaOrder, Shipment, replay};
pub use step::{Step, Timer, TimerChange, TimerKey, TimerKind, UnknownTimerKind};
pub use store::{LoadedSaga, SagaOutcome, SagaStore, load_saga};
pub use timers::{FAILED_TIMER_DELAY, TimerConfig, run_timers};
pub use wire::{Reply, WireCommand, reply_of};

#[cfg(test)]
mod tests;
