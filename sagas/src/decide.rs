//! [`OrderSaga::decide`], the effects of a transition, and [`OrderSaga::handle`] that
//! puts both together.

use domain::{CustomerId, MAX_TEXT_LEN, OrderId, OrderLines};

use crate::command::{OutgoingCommand, SagaCommand};
use crate::config::SagaConfig;
use crate::error::SagaError;
use crate::event::{SagaEvent, Trigger};
use crate::input::SagaInput;
use crate::state::{Compensation, OrderSaga, Shipment};
use crate::step::{Step, TimerChange, TimerKey, TimerKind};

/// What [`OrderSaga::decide`] made of an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Record these events (at least one) and evolve the saga with them.
    Apply(Vec<SagaEvent>),
    /// Nothing to do: a duplicate, late or out-of-turn input.
    Ignore(Ignored),
}

/// An input that changed nothing, and why. Not an error: at-least-once delivery and
/// timers that race replies make these normal. Worth a debug log and a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ignored {
    /// The saga's state name.
    pub state: &'static str,
    /// The input's name.
    pub input: &'static str,
    /// Why.
    pub reason: IgnoreReason,
}

/// Why an input was [`Ignored`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IgnoreReason {
    /// A start for the saga's own order, again.
    AlreadyStarted,
    /// The saga is terminal.
    Finished,
    /// A reply that does not answer the current step: a duplicate, a late reply to a
    /// step already decided, or one out of turn.
    NotExpected,
    /// A timer that is not the saga's pending one: its step or attempt is past.
    StaleTimer,
}

/// The commands and the timer change a transition implies; see [`effects`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effects {
    /// Commands to put into the outbox, in order (at most one per transition).
    pub commands: Vec<OutgoingCommand>,
    /// What to do with the saga's timer.
    pub timer: TimerChange,
}

/// What [`OrderSaga::handle`] made of an input.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per input, moved straight into the caller's transaction; boxing would only add an allocation"
)]
pub enum Handled {
    /// The saga moved: persist `events`, `commands` and `timer` in one transaction.
    Applied(Transition),
    /// Nothing to persist or send.
    Ignored(Ignored),
}

/// One applied input: the events, the state they lead to, and their effects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The events to append to the saga's stream.
    pub events: Vec<SagaEvent>,
    /// The saga after them.
    pub state: OrderSaga,
    /// Commands to put into the outbox.
    pub commands: Vec<OutgoingCommand>,
    /// What to do with the saga's timer.
    pub timer: TimerChange,
}

/// The commands and timer change implied by moving from `before` to `after`; a function
/// of the two states only, so replaying events never re-derives them by accident.
///
/// - A command when the step in flight changes (a new step, or a new attempt of the same
///   step) and the new step has one; `CompleteOrder` / `CancelOrder` on entering
///   `Completed` / `Compensated`. Nothing on entering `NeedsAttention`.
/// - The timer: [`TimerChange::Set`] when the [pending timer](OrderSaga::pending_timer)
///   changes, [`TimerChange::Clear`] when there is none any more, else
///   [`TimerChange::Keep`].
#[must_use]
pub fn effects(before: &OrderSaga, after: &OrderSaga, config: &SagaConfig) -> Effects {
    let mut commands = Vec::new();
    if let Some(order) = after.order() {
        let send = |attempt, command| OutgoingCommand {
            order_id: order.order_id,
            attempt,
            command,
        };
        let in_flight = after.in_flight();
        if in_flight != before.in_flight()
            && let Some((_, attempt)) = in_flight
            && let Some(command) = after.command_in_flight()
        {
            commands.push(send(attempt, command));
        }
        if !before.is_terminal() {
            match after {
                OrderSaga::Completed { .. } => commands.push(send(1, SagaCommand::CompleteOrder)),
                OrderSaga::Compensated { reason, .. } => {
                    commands.push(send(1, SagaCommand::CancelOrder { reason: *reason }));
                }
                OrderSaga::NotStarted
                | OrderSaga::ReservingStock { .. }
                | OrderSaga::AuthorizingPayment { .. }
                | OrderSaga::SchedulingDelivery { .. }
                | OrderSaga::AwaitingDispatch { .. }
                | OrderSaga::CapturingPayment { .. }
                | OrderSaga::CommittingStock { .. }
                | OrderSaga::AwaitingDelivery { .. }
                | OrderSaga::Compensating { .. }
                | OrderSaga::NeedsAttention { .. } => {}
            }
        }
    }
    let timer = match (before.pending_timer(), after.pending_timer()) {
        (was, now) if was == now => TimerChange::Keep,
        (_, Some(key)) => TimerChange::Set(config.timer(key)),
        (_, None) => TimerChange::Clear,
    };
    Effects { commands, timer }
}

fn apply(event: SagaEvent) -> Result<Decision, SagaError> {
    Ok(Decision::Apply(vec![event]))
}

/// Free text from a service, bounded like the domain's: never blank, at most
/// [`MAX_TEXT_LEN`] characters (longer text is cut), so an event never carries a huge
/// payload along.
fn bounded(text: String) -> String {
    if text.trim().is_empty() {
        return "(no reason given)".to_owned();
    }
    match text.char_indices().nth(MAX_TEXT_LEN) {
        Some((cut, _)) => text[..cut].to_owned(),
        None => text,
    }
}

/// While payment and stock are settled after dispatch, the parcel's outcome is recorded
/// and acted on once settled, so that no refund races the capture in flight.
fn record_shipment(shipment: &Shipment, reply: SagaInput) -> Option<Result<Decision, SagaError>> {
    match reply {
        SagaInput::DeliveryCompleted if *shipment == Shipment::InTransit => {
            Some(apply(SagaEvent::DeliveryCompleted))
        }
        SagaInput::DeliveryFailed { reason } if *shipment == Shipment::InTransit => {
            Some(apply(SagaEvent::DeliveryFailed {
                reason: bounded(reason),
            }))
        }
        _ => None,
    }
}

impl OrderSaga {
    /// Decides what `input` does to the saga.
    ///
    /// Pure and deterministic. A duplicate, late or out-of-turn input is
    /// [`Decision::Ignore`]d; a terminal saga ignores everything but an operator's
    /// [`SagaInput::Resume`] of an escalated one.
    ///
    /// # Errors
    /// [`SagaError::NotStarted`] for anything but a start before the saga started;
    /// [`SagaError::OrderMismatch`] for a start of another order.
    pub fn decide(&self, input: SagaInput, config: &SagaConfig) -> Result<Decision, SagaError> {
        let name = input.name();
        let ignore = |reason| {
            Ok(Decision::Ignore(Ignored {
                state: self.name(),
                input: name,
                reason,
            }))
        };
        match input {
            SagaInput::Start {
                order_id,
                customer_id,
                lines,
            } => return self.decide_start(order_id, customer_id, lines),
            _ if matches!(self, Self::NotStarted) => {
                return Err(SagaError::NotStarted { input: name });
            }
            SagaInput::Resume => {
                return match self {
                    Self::NeedsAttention {
                        step,
                        resume: Some(_),
                        ..
                    } => apply(SagaEvent::Resumed { step: *step }),
                    _ if self.is_terminal() => ignore(IgnoreReason::Finished),
                    _ => ignore(IgnoreReason::NotExpected),
                };
            }
            _ if self.is_terminal() => return ignore(IgnoreReason::Finished),
            SagaInput::Timeout(key) => {
                if self.pending_timer() != Some(key) {
                    return ignore(IgnoreReason::StaleTimer);
                }
                return match key.kind {
                    TimerKind::Retry => apply(SagaEvent::StepRetried {
                        step: key.step,
                        attempt: key.attempt,
                    }),
                    TimerKind::Deadline => self.fail(
                        key,
                        format!("no reply within {:?}", config.timeouts.of(key.step)),
                        Trigger::TimedOut {
                            step: key.step,
                            attempt: key.attempt,
                        },
                        config,
                    ),
                };
            }
            SagaInput::StepFailed { step, error } => {
                return match self.in_flight() {
                    Some((current, attempt)) if current == step => {
                        let error = bounded(error);
                        let trigger = Trigger::StepFailed {
                            step,
                            error: error.clone(),
                        };
                        self.fail(TimerKey::deadline(step, attempt), error, trigger, config)
                    }
                    Some(_) | None => ignore(IgnoreReason::NotExpected),
                };
            }
            _ => {}
        }
        self.decide_reply(input)
            .unwrap_or_else(|| ignore(IgnoreReason::NotExpected))
    }

    fn decide_start(
        &self,
        order_id: OrderId,
        customer_id: CustomerId,
        lines: OrderLines,
    ) -> Result<Decision, SagaError> {
        match self.order() {
            None => apply(SagaEvent::Started {
                order_id,
                customer_id,
                total: lines.total(),
                lines,
            }),
            Some(order) if order.order_id == order_id => Ok(Decision::Ignore(Ignored {
                state: self.name(),
                input: "Start",
                reason: IgnoreReason::AlreadyStarted,
            })),
            Some(order) => Err(SagaError::OrderMismatch {
                saga: order.order_id,
                input: order_id,
            }),
        }
    }

    /// The attempt `at` of the current step failed (or timed out) with `error`: retry,
    /// escalate when the budget is spent, or, for a step that is not retried, compensate.
    fn fail(
        &self,
        at: TimerKey,
        error: String,
        trigger: Trigger,
        config: &SagaConfig,
    ) -> Result<Decision, SagaError> {
        let (step, attempt) = (at.step, at.attempt);
        if !step.is_retried() {
            return apply(SagaEvent::CompensationStarted { trigger });
        }
        if attempt >= config.retry.attempts() {
            apply(SagaEvent::Escalated {
                step,
                attempts: attempt,
                last_error: error,
                retryable: true,
            })
        } else {
            apply(SagaEvent::StepAttemptFailed {
                step,
                attempt,
                error,
            })
        }
    }

    /// A service's reply (not a start, timer or failure report); `None` if it does not
    /// answer the current step.
    fn decide_reply(&self, reply: SagaInput) -> Option<Result<Decision, SagaError>> {
        use SagaInput as I;
        let compensate = |trigger| Some(apply(SagaEvent::CompensationStarted { trigger }));
        match self {
            Self::NotStarted
            | Self::Completed { .. }
            | Self::Compensated { .. }
            | Self::NeedsAttention { .. } => None,
            Self::ReservingStock { .. } => match reply {
                I::StockReserved => Some(apply(SagaEvent::StockReserved)),
                I::StockRejected {
                    sku,
                    requested,
                    available,
                } => compensate(Trigger::StockRejected {
                    sku,
                    requested,
                    available,
                }),
                _ => None,
            },
            Self::AuthorizingPayment { .. } => match reply {
                I::PaymentAuthorized { payment_id } => {
                    Some(apply(SagaEvent::PaymentAuthorized { payment_id }))
                }
                I::PaymentDeclined { reason } => compensate(Trigger::PaymentDeclined {
                    reason: bounded(reason),
                }),
                _ => None,
            },
            Self::SchedulingDelivery { .. } => match reply {
                I::DeliveryScheduled { delivery_id } => {
                    Some(apply(SagaEvent::DeliveryScheduled { delivery_id }))
                }
                I::DeliveryFailed { reason } => compensate(Trigger::DeliveryFailed {
                    reason: bounded(reason),
                }),
                _ => None,
            },
            // A `DeliveryCompleted` without `DeliveryDispatched` cannot come from the
            // delivery stream (one key, kept in order), so it is not taken as a dispatch.
            Self::AwaitingDispatch { .. } => match reply {
                I::DeliveryDispatched => Some(apply(SagaEvent::DeliveryDispatched)),
                I::DeliveryFailed { reason } => compensate(Trigger::DeliveryFailed {
                    reason: bounded(reason),
                }),
                _ => None,
            },
            // A late success of an attempt already counted as failed is a success.
            Self::CapturingPayment { shipment, .. } => match reply {
                I::PaymentCaptured => Some(apply(SagaEvent::PaymentCaptured)),
                other => record_shipment(shipment, other),
            },
            Self::CommittingStock { shipment, .. } => match reply {
                I::StockCommitted => Some(apply(SagaEvent::StockCommitted)),
                other => record_shipment(shipment, other),
            },
            Self::AwaitingDelivery { .. } => match reply {
                I::DeliveryCompleted => Some(apply(SagaEvent::DeliveryCompleted)),
                I::DeliveryFailed { reason } => compensate(Trigger::DeliveryFailed {
                    reason: bounded(reason),
                }),
                _ => None,
            },
            Self::Compensating {
                current, attempt, ..
            } => match (current, reply) {
                (Compensation::CancelDelivery { .. }, I::DeliveryCancelled) => {
                    Some(apply(SagaEvent::DeliveryCancelled))
                }
                (Compensation::VoidPayment { .. }, I::PaymentVoided) => {
                    Some(apply(SagaEvent::PaymentVoided))
                }
                (Compensation::RefundPayment { .. }, I::PaymentRefunded) => {
                    Some(apply(SagaEvent::PaymentRefunded))
                }
                (Compensation::ReleaseStock, I::StockReleased) => {
                    Some(apply(SagaEvent::StockReleased))
                }
                // The carrier took the parcel before the cancellation arrived: no retry
                // can cancel it now, and whether to deliver or recall it is a person's call.
                (Compensation::CancelDelivery { .. }, I::DeliveryDispatched) => {
                    Some(apply(SagaEvent::Escalated {
                        step: Step::CancelDelivery,
                        attempts: attempt.number,
                        last_error: "the parcel was dispatched before the delivery could be \
                                     cancelled"
                            .to_owned(),
                        retryable: false,
                    }))
                }
                _ => None,
            },
        }
    }

    /// Decides `input`, evolves a copy of the saga with the events, and derives the
    /// commands and the timer change ([`effects`]). What an orchestrator calls.
    ///
    /// # Errors
    /// As [`decide`](Self::decide).
    pub fn handle(&self, input: SagaInput, config: &SagaConfig) -> Result<Handled, SagaError> {
        match self.decide(input, config)? {
            Decision::Ignore(ignored) => Ok(Handled::Ignored(ignored)),
            Decision::Apply(events) => {
                let state = events.iter().fold(self.clone(), Self::evolve);
                let Effects { commands, timer } = effects(self, &state, config);
                Ok(Handled::Applied(Transition {
                    events,
                    state,
                    commands,
                    timer,
                }))
            }
        }
    }
}
