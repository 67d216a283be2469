//! What a delivery request comes to, decided from the delivery's state alone: [`respond`]. Pure, so every
//! (state, request) pair is tested below without Postgres; [`Delivery`] (run by the one
//! [`Shell`]) locks the delivery's row, loads the stream, records and replies.
//!
//! [`Delivery`]: super::Delivery
//! [`Shell`]: crate::Shell

use domain::{
    DeliveryCommand, DeliveryEvent, DeliveryId, DeliveryRequest, DeliveryState, DomainError,
};

/// What the service does about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Record `command` on the delivery's stream (its events are the reply), and bring the `deliveries` row
    /// along as `row` says.
    Record { command: DeliveryCommand, row: Row },
    /// Answer with this reply and change nothing: a repeat, or an undo of what never happened.
    Repeat(DeliveryEvent),
}

/// What becomes of the `deliveries` row (the carrier's work queue) with a recorded command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    /// A new row, due for dispatch after the carrier's delay.
    Schedule(DeliveryId),
    /// The row is cancelled: the carrier skips it.
    Cancel,
    /// No row: nothing was ever scheduled.
    Untouched,
}

/// What `request` comes to for a delivery in `state`. `fresh` is the id a new delivery gets; `dispatched`
/// says whether the carrier had dispatched the parcel (a delivery that failed may have failed before or
/// after).
///
/// # Errors
/// When the order id cannot be a delivery id (a cancellation of nothing is recorded under it).
pub fn respond(
    state: &DeliveryState,
    request: &DeliveryRequest,
    fresh: DeliveryId,
    dispatched: bool,
) -> Result<Response, DomainError> {
    use DeliveryRequest as R;
    use DeliveryState as S;
    let order_id = request.order_id();
    Ok(match (request, state) {
        (R::ScheduleDelivery { .. }, S::NotScheduled) => Response::Record {
            command: DeliveryCommand::Schedule {
                delivery_id: fresh,
                order_id,
            },
            row: Row::Schedule(fresh),
        },
        // Cancelled before it was scheduled, or before dispatch: nothing is shipped for the order.
        (R::ScheduleDelivery { .. }, S::Cancelled { delivery_id, .. }) => {
            Response::Repeat(DeliveryEvent::Cancelled {
                delivery_id: *delivery_id,
                order_id,
            })
        }
        (
            R::ScheduleDelivery { .. },
            S::Scheduled { delivery_id, .. }
            | S::Dispatched { delivery_id, .. }
            | S::Delivered { delivery_id, .. }
            | S::Failed { delivery_id, .. },
        ) => Response::Repeat(DeliveryEvent::Scheduled {
            delivery_id: *delivery_id,
            order_id,
        }),
        (R::CancelDelivery { .. }, S::Scheduled { .. }) => Response::Record {
            command: DeliveryCommand::Cancel,
            row: Row::Cancel,
        },
        // Recorded, so that a `ScheduleDelivery` handled later (redriven from the dead letters, say) finds
        // the delivery cancelled.
        (R::CancelDelivery { .. }, S::NotScheduled) => Response::Record {
            command: DeliveryCommand::CancelUnscheduled {
                delivery_id: DeliveryId::from_uuid(order_id.as_uuid())
                    .map_err(DomainError::Invalid)?,
                order_id,
            },
            row: Row::Untouched,
        },
        (R::CancelDelivery { .. }, S::Cancelled { delivery_id, .. }) => {
            Response::Repeat(DeliveryEvent::Cancelled {
                delivery_id: *delivery_id,
                order_id,
            })
        }
        (
            R::CancelDelivery { .. },
            S::Failed {
                delivery_id,
                reason,
                ..
            },
        ) => Response::Repeat(if dispatched {
            DeliveryEvent::Failed {
                delivery_id: *delivery_id,
                order_id,
                reason: reason.clone(),
            }
        } else {
            // Failed before dispatch: nothing is on its way, which is what a cancellation wants.
            DeliveryEvent::Cancelled {
                delivery_id: *delivery_id,
                order_id,
            }
        }),
        (R::CancelDelivery { .. }, S::Dispatched { delivery_id, .. }) => {
            Response::Repeat(DeliveryEvent::Dispatched {
                delivery_id: *delivery_id,
                order_id,
            })
        }
        (R::CancelDelivery { .. }, S::Delivered { delivery_id, .. }) => {
            Response::Repeat(DeliveryEvent::Completed {
                delivery_id: *delivery_id,
                order_id,
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use domain::{Aggregate as _, Message as _, OrderId};

    use super::*;

    fn states(order_id: OrderId) -> Vec<(&'static str, DeliveryState)> {
        let run = |commands: Vec<DeliveryCommand>| {
            commands
                .into_iter()
                .fold(DeliveryState::NotScheduled, |state, command| {
                    state.execute(command).unwrap().0
                })
        };
        let schedule = || DeliveryCommand::Schedule {
            delivery_id: DeliveryId::new(),
            order_id,
        };
        let fail = || DeliveryCommand::Fail {
            reason: "van broke down".into(),
        };
        vec![
            ("not scheduled", DeliveryState::NotScheduled),
            ("scheduled", run(vec![schedule()])),
            (
                "dispatched",
                run(vec![schedule(), DeliveryCommand::Dispatch]),
            ),
            (
                "delivered",
                run(vec![
                    schedule(),
                    DeliveryCommand::Dispatch,
                    DeliveryCommand::Deliver,
                ]),
            ),
            ("failed", run(vec![schedule(), fail()])),
            ("cancelled", run(vec![schedule(), DeliveryCommand::Cancel])),
        ]
    }

    fn summary(response: &Response) -> String {
        match response {
            Response::Record { command, row } => {
                let name = match command {
                    DeliveryCommand::Schedule { .. } => "Schedule",
                    DeliveryCommand::Cancel => "Cancel",
                    DeliveryCommand::CancelUnscheduled { .. } => "CancelUnscheduled",
                    other => panic!("no request records {other:?}"),
                };
                format!("record {name} ({row:?})")
            }
            Response::Repeat(reply) => format!("reply {}", reply.event_type()),
        }
    }

    /// The whole reply contract of the delivery service: every state x request, a failure before and after
    /// dispatch.
    #[test]
    fn every_state_and_request_has_its_response() {
        let order_id = OrderId::new();
        let schedule = DeliveryRequest::ScheduleDelivery { order_id };
        let cancel = DeliveryRequest::CancelDelivery { order_id };
        let expected = [
            (
                "not scheduled",
                "record Schedule",
                "record CancelUnscheduled (Untouched)",
            ),
            (
                "scheduled",
                "reply DeliveryScheduled",
                "record Cancel (Cancel)",
            ),
            (
                "dispatched",
                "reply DeliveryScheduled",
                "reply DeliveryDispatched",
            ),
            (
                "delivered",
                "reply DeliveryScheduled",
                "reply DeliveryCompleted",
            ),
            (
                "failed",
                "reply DeliveryScheduled",
                "reply DeliveryCancelled",
            ),
            (
                "cancelled",
                "reply DeliveryCancelled",
                "reply DeliveryCancelled",
            ),
        ];
        let fresh = DeliveryId::new();
        for ((name, state), (expected_name, on_schedule, on_cancel)) in
            states(order_id).iter().zip(expected)
        {
            assert_eq!(*name, expected_name);
            let got = summary(&respond(state, &schedule, fresh, false).unwrap());
            assert!(got.starts_with(on_schedule), "schedule on {name}: {got}");
            let got = summary(&respond(state, &cancel, fresh, false).unwrap());
            assert_eq!(got, on_cancel, "cancel on {name}");
        }
        // A delivery that failed after dispatch answers a cancellation with its failure.
        let failed = &states(order_id)[4].1;
        let got = summary(&respond(failed, &cancel, fresh, true).unwrap());
        assert_eq!(got, "reply DeliveryFailed");
        // A new delivery is scheduled under the fresh id, and its row with it.
        assert_eq!(
            respond(&DeliveryState::NotScheduled, &schedule, fresh, false).unwrap(),
            Response::Record {
                command: DeliveryCommand::Schedule {
                    delivery_id: fresh,
                    order_id
                },
                row: Row::Schedule(fresh),
            }
        );
    }
}
