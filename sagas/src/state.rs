//! [`OrderSaga`]: the state of one order's saga, and how events evolve it.

use domain::{CancelReason, CustomerId, DeliveryId, Money, OrderId, OrderLines, PaymentId};

use crate::command::SagaCommand;
use crate::event::{SagaEvent, Trigger};
use crate::step::{Step, TimerKey};

/// The order a saga fulfils: the facts of `SagaStarted`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SagaOrder {
    /// The order, and the saga's key.
    pub order_id: OrderId,
    /// Who ordered.
    pub customer_id: CustomerId,
    /// What was ordered.
    pub lines: OrderLines,
    /// The order total: what is authorized, captured and, if need be, refunded.
    pub total: Money,
}

/// What the saga knows of the parcel while payment and stock are being settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shipment {
    /// Dispatched, no outcome yet.
    InTransit,
    /// Delivered (the saga completes once settled).
    Delivered,
    /// Failed (the saga refunds once settled).
    Failed {
        /// Why.
        reason: String,
    },
}

/// Where a retried step is: its attempt number and whether a reply is awaited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub number: u32,
    /// Awaiting the reply, or waiting out the backoff after a failure.
    pub phase: AttemptPhase,
}

impl Attempt {
    /// Attempt 1, in flight.
    #[must_use]
    pub const fn first() -> Self {
        Self {
            number: 1,
            phase: AttemptPhase::InFlight,
        }
    }
}

/// See [`Attempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptPhase {
    /// The command was sent; the reply (or the deadline) is awaited.
    InFlight,
    /// The attempt failed; the retry timer is awaited.
    BackingOff {
        /// Why the attempt failed.
        last_error: String,
    },
}

/// One compensation still to do. A saga's plan lists them in the reverse order of the
/// forward steps: delivery, then payment, then stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compensation {
    /// Cancel the delivery (it was booked, or booking timed out, and it was not dispatched).
    CancelDelivery {
        /// The delivery, unless booking timed out.
        delivery_id: Option<DeliveryId>,
    },
    /// Void the authorization (authorized, or authorization timed out; nothing captured).
    VoidPayment {
        /// The payment, unless authorization timed out.
        payment_id: Option<PaymentId>,
    },
    /// Refund the captured payment (after dispatch).
    RefundPayment {
        /// The payment.
        payment_id: PaymentId,
        /// The captured amount.
        amount: Money,
    },
    /// Release the reservation (reserved, or reservation timed out; not committed).
    ReleaseStock,
}

impl Compensation {
    /// The step that carries it out.
    #[must_use]
    pub const fn step(&self) -> Step {
        match self {
            Self::CancelDelivery { .. } => Step::CancelDelivery,
            Self::VoidPayment { .. } => Step::VoidPayment,
            Self::RefundPayment { .. } => Step::RefundPayment,
            Self::ReleaseStock => Step::ReleaseStock,
        }
    }

    /// The command that carries it out.
    #[must_use]
    pub const fn command(&self) -> SagaCommand {
        match *self {
            Self::CancelDelivery { delivery_id } => SagaCommand::CancelDelivery { delivery_id },
            Self::VoidPayment { payment_id } => SagaCommand::VoidPayment { payment_id },
            Self::RefundPayment { payment_id, amount } => {
                SagaCommand::RefundPayment { payment_id, amount }
            }
            Self::ReleaseStock => SagaCommand::ReleaseStock,
        }
    }

    /// Whether `event` records that this compensation is done.
    const fn done_by(&self, event: &SagaEvent) -> bool {
        matches!(
            (self, event),
            (Self::CancelDelivery { .. }, SagaEvent::DeliveryCancelled)
                | (Self::VoidPayment { .. }, SagaEvent::PaymentVoided)
                | (Self::RefundPayment { .. }, SagaEvent::PaymentRefunded)
                | (Self::ReleaseStock, SagaEvent::StockReleased)
        )
    }
}

/// The state of one order's fulfilment saga. See the [crate docs](crate) for the
/// diagram and the rules.
///
/// Every state but `NotStarted` and the three terminal ones waits on exactly one step,
/// guarded by exactly one timer ([`pending_timer`](Self::pending_timer)).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OrderSaga {
    /// No saga yet (the state before `SagaStarted`).
    #[default]
    NotStarted,
    /// `ReserveStock` sent.
    ReservingStock {
        /// The order.
        order: SagaOrder,
    },
    /// Stock reserved; `AuthorizePayment` sent.
    AuthorizingPayment {
        /// The order.
        order: SagaOrder,
    },
    /// Payment authorized; `ScheduleDelivery` sent.
    SchedulingDelivery {
        /// The order.
        order: SagaOrder,
        /// The authorized payment.
        payment_id: PaymentId,
    },
    /// Delivery booked; waiting for the carrier to pick the parcel up.
    AwaitingDispatch {
        /// The order.
        order: SagaOrder,
        /// The authorized payment.
        payment_id: PaymentId,
        /// The booked delivery.
        delivery_id: DeliveryId,
    },
    /// Dispatched (past the pivot); `CapturePayment` sent, retried until done or escalated.
    CapturingPayment {
        /// The order.
        order: SagaOrder,
        /// The authorized payment.
        payment_id: PaymentId,
        /// The delivery.
        delivery_id: DeliveryId,
        /// The parcel's outcome, if it came in meanwhile.
        shipment: Shipment,
        /// Where the capture is.
        attempt: Attempt,
    },
    /// Captured; `CommitStock` sent, retried until done or escalated.
    CommittingStock {
        /// The order.
        order: SagaOrder,
        /// The captured payment.
        payment_id: PaymentId,
        /// The delivery.
        delivery_id: DeliveryId,
        /// The parcel's outcome, if it came in meanwhile.
        shipment: Shipment,
        /// Where the commit is.
        attempt: Attempt,
    },
    /// Settled; waiting for the parcel to arrive.
    AwaitingDelivery {
        /// The order.
        order: SagaOrder,
        /// The captured payment.
        payment_id: PaymentId,
        /// The delivery.
        delivery_id: DeliveryId,
    },
    /// Undoing, one compensation at a time; each is retried until done or escalated.
    Compensating {
        /// The order.
        order: SagaOrder,
        /// What the order will be cancelled with.
        reason: CancelReason,
        /// The compensation in progress.
        current: Compensation,
        /// The ones after it, in order.
        rest: Vec<Compensation>,
        /// Where the current one is.
        attempt: Attempt,
    },
    /// Delivered, paid, stock committed; `CompleteOrder` sent. Terminal.
    Completed {
        /// The order.
        order: SagaOrder,
        /// The captured payment.
        payment_id: PaymentId,
        /// The delivery.
        delivery_id: DeliveryId,
    },
    /// Everything undone that could be; `CancelOrder` sent. Terminal.
    Compensated {
        /// The order.
        order: SagaOrder,
        /// Why the order was cancelled.
        reason: CancelReason,
    },
    /// A retried step ran out of attempts (or could not be done at all): a person has to
    /// look. Terminal for the machine, which sends nothing more and leaves the order as it
    /// is, until an operator retries the step ([`SagaInput::Resume`](crate::SagaInput::Resume)).
    NeedsAttention {
        /// The order.
        order: SagaOrder,
        /// The step that could not be done.
        step: Step,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last_error: String,
        /// The state the saga escalated from, to go back to when an operator retries the
        /// step; `None` when retrying cannot help (a parcel dispatched before its
        /// cancellation).
        resume: Option<Box<OrderSaga>>,
    },
}

/// Where a started, non-terminal saga is.
struct Position<'a> {
    step: Step,
    attempt: u32,
    backing_off: bool,
    order: &'a SagaOrder,
}

impl<'a> Position<'a> {
    const fn first(step: Step, order: &'a SagaOrder) -> Self {
        Self {
            step,
            attempt: 1,
            backing_off: false,
            order,
        }
    }

    const fn at(step: Step, attempt: &Attempt, order: &'a SagaOrder) -> Self {
        Self {
            step,
            attempt: attempt.number,
            backing_off: matches!(attempt.phase, AttemptPhase::BackingOff { .. }),
            order,
        }
    }
}

impl OrderSaga {
    /// Every state name, in the order of the enum.
    pub const STATE_NAMES: [&'static str; 12] = [
        "NotStarted",
        "ReservingStock",
        "AuthorizingPayment",
        "SchedulingDelivery",
        "AwaitingDispatch",
        "CapturingPayment",
        "CommittingStock",
        "AwaitingDelivery",
        "Compensating",
        "Completed",
        "Compensated",
        "NeedsAttention",
    ];

    /// The state's name, e.g. `"ReservingStock"`.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::NotStarted => "NotStarted",
            Self::ReservingStock { .. } => "ReservingStock",
            Self::AuthorizingPayment { .. } => "AuthorizingPayment",
            Self::SchedulingDelivery { .. } => "SchedulingDelivery",
            Self::AwaitingDispatch { .. } => "AwaitingDispatch",
            Self::CapturingPayment { .. } => "CapturingPayment",
            Self::CommittingStock { .. } => "CommittingStock",
            Self::AwaitingDelivery { .. } => "AwaitingDelivery",
            Self::Compensating { .. } => "Compensating",
            Self::Completed { .. } => "Completed",
            Self::Compensated { .. } => "Compensated",
            Self::NeedsAttention { .. } => "NeedsAttention",
        }
    }

    /// The order, once started.
    #[must_use]
    pub const fn order(&self) -> Option<&SagaOrder> {
        match self {
            Self::NotStarted => None,
            Self::ReservingStock { order }
            | Self::AuthorizingPayment { order }
            | Self::SchedulingDelivery { order, .. }
            | Self::AwaitingDispatch { order, .. }
            | Self::CapturingPayment { order, .. }
            | Self::CommittingStock { order, .. }
            | Self::AwaitingDelivery { order, .. }
            | Self::Compensating { order, .. }
            | Self::Completed { order, .. }
            | Self::Compensated { order, .. }
            | Self::NeedsAttention { order, .. } => Some(order),
        }
    }

    /// Whether the saga is over: completed, compensated or escalated. A terminal saga
    /// ignores every input and never sends a command, but for an operator's
    /// [`SagaInput::Resume`](crate::SagaInput::Resume) of an escalated one.
    #[must_use]
    pub const fn is_terminal(&self) -> bool {
        match self {
            Self::NotStarted
            | Self::ReservingStock { .. }
            | Self::AuthorizingPayment { .. }
            | Self::SchedulingDelivery { .. }
            | Self::AwaitingDispatch { .. }
            | Self::CapturingPayment { .. }
            | Self::CommittingStock { .. }
            | Self::AwaitingDelivery { .. }
            | Self::Compensating { .. } => false,
            Self::Completed { .. } | Self::Compensated { .. } | Self::NeedsAttention { .. } => true,
        }
    }

    fn position(&self) -> Option<Position<'_>> {
        match self {
            Self::NotStarted
            | Self::Completed { .. }
            | Self::Compensated { .. }
            | Self::NeedsAttention { .. } => None,
            Self::ReservingStock { order } => Some(Position::first(Step::ReserveStock, order)),
            Self::AuthorizingPayment { order } => {
                Some(Position::first(Step::AuthorizePayment, order))
            }
            Self::SchedulingDelivery { order, .. } => {
                Some(Position::first(Step::ScheduleDelivery, order))
            }
            Self::AwaitingDispatch { order, .. } => {
                Some(Position::first(Step::AwaitDispatch, order))
            }
            Self::CapturingPayment { order, attempt, .. } => {
                Some(Position::at(Step::CapturePayment, attempt, order))
            }
            Self::CommittingStock { order, attempt, .. } => {
                Some(Position::at(Step::CommitStock, attempt, order))
            }
            Self::AwaitingDelivery { order, .. } => {
                Some(Position::first(Step::AwaitDelivery, order))
            }
            Self::Compensating {
                order,
                current,
                attempt,
                ..
            } => Some(Position::at(current.step(), attempt, order)),
        }
    }

    /// The step the saga is on and its attempt number; `None` before the start and once
    /// terminal.
    #[must_use]
    pub fn current_step(&self) -> Option<(Step, u32)> {
        self.position().map(|at| (at.step, at.attempt))
    }

    /// The step whose reply is awaited and its attempt; `None` while backing off, before
    /// the start and once terminal.
    #[must_use]
    pub fn in_flight(&self) -> Option<(Step, u32)> {
        self.position()
            .filter(|at| !at.backing_off)
            .map(|at| (at.step, at.attempt))
    }

    /// The one timer that must be live for this state: the deadline of the step in
    /// flight, or the retry that ends a backoff. `None` exactly before the start and once
    /// terminal.
    #[must_use]
    pub fn pending_timer(&self) -> Option<TimerKey> {
        self.position().map(|at| {
            if at.backing_off {
                TimerKey::retry(at.step, at.attempt.saturating_add(1))
            } else {
                TimerKey::deadline(at.step, at.attempt)
            }
        })
    }

    /// The command of the step in flight (`None` for the waits on the carrier).
    #[must_use]
    pub fn command_in_flight(&self) -> Option<SagaCommand> {
        let at = self.position().filter(|at| !at.backing_off)?;
        let order = at.order;
        match self {
            Self::NotStarted
            | Self::AwaitingDispatch { .. }
            | Self::AwaitingDelivery { .. }
            | Self::Completed { .. }
            | Self::Compensated { .. }
            | Self::NeedsAttention { .. } => None,
            Self::ReservingStock { .. } => Some(SagaCommand::ReserveStock {
                lines: order.lines.clone(),
            }),
            Self::AuthorizingPayment { .. } => Some(SagaCommand::AuthorizePayment {
                customer_id: order.customer_id,
                amount: order.total,
            }),
            Self::SchedulingDelivery { .. } => Some(SagaCommand::ScheduleDelivery {
                customer_id: order.customer_id,
                lines: order.lines.clone(),
            }),
            Self::CapturingPayment { payment_id, .. } => Some(SagaCommand::CapturePayment {
                payment_id: *payment_id,
            }),
            Self::CommittingStock { .. } => Some(SagaCommand::CommitStock),
            Self::Compensating { current, .. } => Some(current.command()),
        }
    }

    /// The retried step's attempt, if the saga is on a retried step.
    const fn attempt_mut(&mut self) -> Option<(Step, &mut Attempt)> {
        match self {
            Self::CapturingPayment { attempt, .. } => Some((Step::CapturePayment, attempt)),
            Self::CommittingStock { attempt, .. } => Some((Step::CommitStock, attempt)),
            Self::Compensating {
                current, attempt, ..
            } => Some((current.step(), attempt)),
            Self::NotStarted
            | Self::ReservingStock { .. }
            | Self::AuthorizingPayment { .. }
            | Self::SchedulingDelivery { .. }
            | Self::AwaitingDispatch { .. }
            | Self::AwaitingDelivery { .. }
            | Self::Completed { .. }
            | Self::Compensated { .. }
            | Self::NeedsAttention { .. } => None,
        }
    }

    /// The state after `event`.
    ///
    /// Pure and total: it never fails. It trusts events as facts; an event that cannot
    /// follow the state (which [`decide`](Self::decide) never produces) leaves the state
    /// unchanged.
    #[must_use]
    pub fn evolve(self, event: &SagaEvent) -> Self {
        use OrderSaga as S;
        use SagaEvent as E;
        match (self, event) {
            (
                S::NotStarted,
                E::Started {
                    order_id,
                    customer_id,
                    lines,
                    total,
                },
            ) => S::ReservingStock {
                order: SagaOrder {
                    order_id: *order_id,
                    customer_id: *customer_id,
                    lines: lines.clone(),
                    total: *total,
                },
            },
            (S::ReservingStock { order }, E::StockReserved) => S::AuthorizingPayment { order },
            (S::AuthorizingPayment { order }, E::PaymentAuthorized { payment_id }) => {
                S::SchedulingDelivery {
                    order,
                    payment_id: *payment_id,
                }
            }
            (S::SchedulingDelivery { order, payment_id }, E::DeliveryScheduled { delivery_id }) => {
                S::AwaitingDispatch {
                    order,
                    payment_id,
                    delivery_id: *delivery_id,
                }
            }
            (
                S::AwaitingDispatch {
                    order,
                    payment_id,
                    delivery_id,
                },
                E::DeliveryDispatched,
            ) => S::CapturingPayment {
                order,
                payment_id,
                delivery_id,
                shipment: Shipment::InTransit,
                attempt: Attempt::first(),
            },
            (
                S::CapturingPayment {
                    order,
                    payment_id,
                    delivery_id,
                    shipment,
                    ..
                },
                E::PaymentCaptured,
            ) => S::CommittingStock {
                order,
                payment_id,
                delivery_id,
                shipment,
                attempt: Attempt::first(),
            },
            (
                S::CommittingStock {
                    order,
                    payment_id,
                    delivery_id,
                    shipment,
                    ..
                },
                E::StockCommitted,
            ) => match shipment {
                Shipment::InTransit => S::AwaitingDelivery {
                    order,
                    payment_id,
                    delivery_id,
                },
                Shipment::Delivered => S::Completed {
                    order,
                    payment_id,
                    delivery_id,
                },
                // Failed while settling: refund. The committed stock stays committed
                // (see the crate docs).
                Shipment::Failed { .. } => {
                    let refund = Compensation::RefundPayment {
                        payment_id,
                        amount: order.total,
                    };
                    Self::compensating(order, CancelReason::DeliveryFailed, vec![refund])
                }
            },
            (
                mut state @ (S::CapturingPayment { .. } | S::CommittingStock { .. }),
                E::DeliveryCompleted | E::DeliveryFailed { .. },
            ) => {
                if let S::CapturingPayment { shipment, .. } | S::CommittingStock { shipment, .. } =
                    &mut state
                    && *shipment == Shipment::InTransit
                {
                    *shipment = match event {
                        E::DeliveryFailed { reason } => Shipment::Failed {
                            reason: reason.clone(),
                        },
                        _ => Shipment::Delivered,
                    };
                }
                state
            }
            (
                S::AwaitingDelivery {
                    order,
                    payment_id,
                    delivery_id,
                },
                E::DeliveryCompleted,
            ) => S::Completed {
                order,
                payment_id,
                delivery_id,
            },
            (state, E::CompensationStarted { trigger }) => state.start_compensation(trigger),
            (
                S::Compensating {
                    order,
                    reason,
                    current,
                    rest,
                    ..
                },
                done @ (E::DeliveryCancelled
                | E::PaymentVoided
                | E::PaymentRefunded
                | E::StockReleased),
            ) if current.done_by(done) => Self::compensating(order, reason, rest),
            (
                mut state,
                E::StepAttemptFailed {
                    step,
                    attempt,
                    error,
                },
            ) => {
                if let Some((current, at)) = state.attempt_mut()
                    && current == *step
                    && at.number == *attempt
                    && at.phase == AttemptPhase::InFlight
                {
                    at.phase = AttemptPhase::BackingOff {
                        last_error: error.clone(),
                    };
                }
                state
            }
            (mut state, E::StepRetried { step, attempt }) => {
                if let Some((current, at)) = state.attempt_mut()
                    && current == *step
                    && at.number.checked_add(1) == Some(*attempt)
                    && at.phase != AttemptPhase::InFlight
                {
                    *at = Attempt {
                        number: *attempt,
                        phase: AttemptPhase::InFlight,
                    };
                }
                state
            }
            (
                state,
                E::Escalated {
                    step,
                    attempts,
                    last_error,
                    retryable,
                },
            ) => match state.position().map(|at| at.order.clone()) {
                Some(order) => S::NeedsAttention {
                    order,
                    step: *step,
                    attempts: *attempts,
                    last_error: last_error.clone(),
                    resume: retryable.then(|| Box::new(state)),
                },
                None => state,
            },
            (
                S::NeedsAttention {
                    resume: Some(escalated_from),
                    ..
                },
                E::Resumed { step },
            ) if escalated_from.current_step().map(|(at, _)| at) == Some(*step) => {
                let mut state = *escalated_from;
                if let Some((_, attempt)) = state.attempt_mut() {
                    *attempt = Attempt::first();
                }
                state
            }
            // Anything else cannot follow the state and leaves it unchanged. A catch-all
            // here, unlike `decide`, which lists every state: evolve is total by contract,
            // and the replay proptest checks that it agrees with every decision.
            (state, _) => state,
        }
    }

    /// Starts compensating what was done (or may have been done) so far, in reverse.
    fn start_compensation(self, trigger: &Trigger) -> Self {
        use Compensation as C;
        let maybe = trigger.step_may_have_happened();
        let (order, plan) = match self {
            Self::ReservingStock { order } => {
                (order, if maybe { vec![C::ReleaseStock] } else { vec![] })
            }
            Self::AuthorizingPayment { order } => {
                let void = maybe.then_some(C::VoidPayment { payment_id: None });
                (order, void.into_iter().chain([C::ReleaseStock]).collect())
            }
            Self::SchedulingDelivery { order, payment_id } => {
                let cancel = maybe.then_some(C::CancelDelivery { delivery_id: None });
                let void = C::VoidPayment {
                    payment_id: Some(payment_id),
                };
                (
                    order,
                    cancel.into_iter().chain([void, C::ReleaseStock]).collect(),
                )
            }
            Self::AwaitingDispatch {
                order,
                payment_id,
                delivery_id,
            } => {
                // A failed delivery cannot be cancelled; one that timed out may still be booked.
                let cancel = maybe.then_some(C::CancelDelivery {
                    delivery_id: Some(delivery_id),
                });
                let void = C::VoidPayment {
                    payment_id: Some(payment_id),
                };
                (
                    order,
                    cancel.into_iter().chain([void, C::ReleaseStock]).collect(),
                )
            }
            Self::AwaitingDelivery {
                order, payment_id, ..
            } => {
                // Past dispatch: refund; the committed stock is gone with the parcel.
                let refund = C::RefundPayment {
                    payment_id,
                    amount: order.total,
                };
                (order, vec![refund])
            }
            state @ (Self::NotStarted
            | Self::CapturingPayment { .. }
            | Self::CommittingStock { .. }
            | Self::Compensating { .. }
            | Self::Completed { .. }
            | Self::Compensated { .. }
            | Self::NeedsAttention { .. }) => return state,
        };
        Self::compensating(order, trigger.cancel_reason(), plan)
    }

    /// Compensating the first of `plan`, or compensated if nothing is left.
    fn compensating(order: SagaOrder, reason: CancelReason, plan: Vec<Compensation>) -> Self {
        let mut plan = plan.into_iter();
        match plan.next() {
            Some(current) => Self::Compensating {
                order,
                reason,
                current,
                rest: plan.collect(),
                attempt: Attempt::first(),
            },
            None => Self::Compensated { order, reason },
        }
    }
}

/// Rebuilds a saga by folding `events` over [`OrderSaga::NotStarted`].
#[must_use]
pub fn replay<'a>(events: impl IntoIterator<Item = &'a SagaEvent>) -> OrderSaga {
    events
        .into_iter()
        .fold(OrderSaga::NotStarted, OrderSaga::evolve)
}
