//! The delivery aggregate: getting one order's parcel to the customer.
//!
//! ```text
//! NotScheduled --Schedule--> Scheduled --Dispatch--> Dispatched --Deliver--> Delivered
//!                              |    |                    |
//!                              |    +------Fail----------+-------> Failed
//!  |                           +--Cancel--> Cancelled
//!  +--CancelUnscheduled--> Cancelled
//! ```
//!
//! | state \ command | `Schedule` | `Dispatch` | `Deliver` | `Fail`  | `Cancel` | `CancelUnscheduled` |
//! |-----------------|------------|------------|-----------|---------|----------|---------------------|
//! | `NotScheduled`  | scheduled  | illegal    | illegal   | illegal | illegal  | cancelled |
//! | `Scheduled`     | illegal    | dispatched | illegal   | failed  | cancelled | illegal  |
//! | `Dispatched`    | illegal    | no-op      | completed | failed  | illegal  | illegal   |
//! | `Delivered`     | illegal    | illegal    | no-op     | illegal | illegal  | illegal   |
//! | `Failed`        | illegal    | illegal    | illegal   | no-op   | illegal  | illegal   |
//! | `Cancelled`     | illegal    | illegal    | illegal   | illegal | no-op    | no-op     |
//!
//! A delivery can be cancelled only before dispatch. Repeating the command that led to
//! the current state succeeds with no events (carrier webhooks and saga commands are
//! delivered at least once), except `Schedule`: scheduling twice is illegal, as the
//! delivery id must be fresh. `Deliver` records the `DeliveryCompleted` event, after
//! which the state is `Delivered`. Terminal states: `Delivered`, `Failed`, `Cancelled`.
//! `CancelUnscheduled` cancels a delivery that was never scheduled (the saga undoes a
//! `ScheduleDelivery` that got no answer), so that a schedule asked for later finds it
//! cancelled instead of shipping a parcel for a cancelled order.

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, DomainEvent, Message, illegal};
use crate::error::DomainError;
use crate::ids::{DeliveryId, OrderId};
use crate::text::check_text;

/// The state of one delivery.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DeliveryState {
    /// Nothing yet (the state before the first event).
    #[default]
    NotScheduled,
    /// Booked with the carrier.
    #[allow(missing_docs)]
    Scheduled {
        delivery_id: DeliveryId,
        /// The order delivered.
        order_id: OrderId,
    },
    /// Handed to the carrier.
    #[allow(missing_docs)]
    Dispatched {
        delivery_id: DeliveryId,
        /// The order delivered.
        order_id: OrderId,
    },
    /// At the customer. Terminal.
    #[allow(missing_docs)]
    Delivered {
        delivery_id: DeliveryId,
        /// The order delivered.
        order_id: OrderId,
    },
    /// Could not be delivered. Terminal.
    #[allow(missing_docs)]
    Failed {
        delivery_id: DeliveryId,
        order_id: OrderId,
        /// What went wrong.
        reason: String,
    },
    /// Called off before dispatch. Terminal.
    #[allow(missing_docs)]
    Cancelled {
        delivery_id: DeliveryId,
        order_id: OrderId,
    },
}

impl DeliveryState {
    /// The state's name, e.g. `"Dispatched"`.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::NotScheduled => "NotScheduled",
            Self::Scheduled { .. } => "Scheduled",
            Self::Dispatched { .. } => "Dispatched",
            Self::Delivered { .. } => "Delivered",
            Self::Failed { .. } => "Failed",
            Self::Cancelled { .. } => "Cancelled",
        }
    }

    /// The delivery id and order id, once scheduled.
    #[must_use]
    pub const fn ids(&self) -> Option<(DeliveryId, OrderId)> {
        match self {
            Self::NotScheduled => None,
            Self::Scheduled {
                delivery_id,
                order_id,
            }
            | Self::Dispatched {
                delivery_id,
                order_id,
            }
            | Self::Delivered {
                delivery_id,
                order_id,
            }
            | Self::Failed {
                delivery_id,
                order_id,
                ..
            }
            | Self::Cancelled {
                delivery_id,
                order_id,
            } => Some((*delivery_id, *order_id)),
        }
    }
}

/// What can be asked of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryCommand {
    /// Book the delivery.
    Schedule {
        /// A fresh delivery id.
        delivery_id: DeliveryId,
        /// The order to deliver.
        order_id: OrderId,
    },
    /// The parcel left the warehouse.
    Dispatch,
    /// The parcel reached the customer.
    Deliver,
    /// The delivery failed (from `Scheduled` or `Dispatched`).
    Fail {
        /// What went wrong (not blank, at most [`crate::MAX_TEXT_LEN`] characters).
        reason: String,
    },
    /// Call the delivery off (only before dispatch).
    Cancel,
    /// Call off a delivery that was never scheduled.
    CancelUnscheduled {
        /// The delivery id the cancellation is recorded under.
        delivery_id: DeliveryId,
        /// The order whose delivery it is.
        order_id: OrderId,
    },
}

impl DeliveryCommand {
    /// The command's name, e.g. `"Dispatch"`.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Schedule { .. } => "Schedule",
            Self::Dispatch => "Dispatch",
            Self::Deliver => "Deliver",
            Self::Fail { .. } => "Fail",
            Self::Cancel => "Cancel",
            Self::CancelUnscheduled { .. } => "CancelUnscheduled",
        }
    }
}

/// What happened to a delivery. Serialized with a `"type"` tag equal to
/// [`Message::event_type`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum DeliveryEvent {
    /// `DeliveryScheduled` v1.
    #[serde(rename = "DeliveryScheduled")]
    #[allow(missing_docs)]
    Scheduled {
        delivery_id: DeliveryId,
        order_id: OrderId,
    },
    /// `DeliveryDispatched` v1.
    #[serde(rename = "DeliveryDispatched")]
    #[allow(missing_docs)]
    Dispatched {
        delivery_id: DeliveryId,
        order_id: OrderId,
    },
    /// `DeliveryCompleted` v1: the parcel reached the customer.
    #[serde(rename = "DeliveryCompleted")]
    #[allow(missing_docs)]
    Completed {
        delivery_id: DeliveryId,
        order_id: OrderId,
    },
    /// `DeliveryFailed` v1.
    #[serde(rename = "DeliveryFailed")]
    #[allow(missing_docs)]
    Failed {
        delivery_id: DeliveryId,
        order_id: OrderId,
        /// What went wrong.
        reason: String,
    },
    /// `DeliveryCancelled` v1.
    #[serde(rename = "DeliveryCancelled")]
    #[allow(missing_docs)]
    Cancelled {
        delivery_id: DeliveryId,
        order_id: OrderId,
    },
}

impl DeliveryEvent {
    /// The delivery and the order the event belongs to.
    #[must_use]
    pub const fn ids(&self) -> (DeliveryId, OrderId) {
        match self {
            Self::Scheduled {
                delivery_id,
                order_id,
            }
            | Self::Dispatched {
                delivery_id,
                order_id,
            }
            | Self::Completed {
                delivery_id,
                order_id,
            }
            | Self::Failed {
                delivery_id,
                order_id,
                ..
            }
            | Self::Cancelled {
                delivery_id,
                order_id,
            } => (*delivery_id, *order_id),
        }
    }
}

impl Message for DeliveryEvent {
    const EVENT_TYPES: &'static [&'static str] = &[
        "DeliveryScheduled",
        "DeliveryDispatched",
        "DeliveryCompleted",
        "DeliveryFailed",
        "DeliveryCancelled",
    ];

    fn event_type(&self) -> &'static str {
        match self {
            Self::Scheduled { .. } => "DeliveryScheduled",
            Self::Dispatched { .. } => "DeliveryDispatched",
            Self::Completed { .. } => "DeliveryCompleted",
            Self::Failed { .. } => "DeliveryFailed",
            Self::Cancelled { .. } => "DeliveryCancelled",
        }
    }
}

impl crate::AboutOrder for DeliveryEvent {
    fn order_id(&self) -> OrderId {
        self.ids().1
    }
}

impl DomainEvent for DeliveryEvent {
    fn aggregate_id(&self) -> String {
        self.ids().0.to_string()
    }
}

impl Aggregate for DeliveryState {
    type Command = DeliveryCommand;
    type Event = DeliveryEvent;

    const SERVICE: crate::Service = crate::Service::Delivery;

    fn decide(&self, command: DeliveryCommand) -> Result<Vec<DeliveryEvent>, DomainError> {
        use DeliveryCommand as C;
        use DeliveryState as S;
        match (self, command) {
            (
                S::NotScheduled,
                C::Schedule {
                    delivery_id,
                    order_id,
                },
            ) => Ok(vec![DeliveryEvent::Scheduled {
                delivery_id,
                order_id,
            }]),
            (
                S::Scheduled {
                    delivery_id,
                    order_id,
                },
                C::Dispatch,
            ) => Ok(vec![DeliveryEvent::Dispatched {
                delivery_id: *delivery_id,
                order_id: *order_id,
            }]),
            (
                S::Dispatched {
                    delivery_id,
                    order_id,
                },
                C::Deliver,
            ) => Ok(vec![DeliveryEvent::Completed {
                delivery_id: *delivery_id,
                order_id: *order_id,
            }]),
            (
                S::Scheduled {
                    delivery_id,
                    order_id,
                }
                | S::Dispatched {
                    delivery_id,
                    order_id,
                },
                C::Fail { reason },
            ) => {
                check_text("failure reason", &reason)?;
                Ok(vec![DeliveryEvent::Failed {
                    delivery_id: *delivery_id,
                    order_id: *order_id,
                    reason,
                }])
            }
            (
                S::Scheduled {
                    delivery_id,
                    order_id,
                },
                C::Cancel,
            ) => Ok(vec![DeliveryEvent::Cancelled {
                delivery_id: *delivery_id,
                order_id: *order_id,
            }]),
            (
                S::NotScheduled,
                C::CancelUnscheduled {
                    delivery_id,
                    order_id,
                },
            ) => Ok(vec![DeliveryEvent::Cancelled {
                delivery_id,
                order_id,
            }]),
            // Harmless repeats.
            (S::Dispatched { .. }, C::Dispatch)
            | (S::Delivered { .. }, C::Deliver)
            | (S::Failed { .. }, C::Fail { .. })
            | (S::Cancelled { .. }, C::Cancel | C::CancelUnscheduled { .. }) => Ok(vec![]),
            (
                S::NotScheduled,
                command @ (C::Dispatch | C::Deliver | C::Fail { .. } | C::Cancel),
            )
            | (
                S::Scheduled { .. },
                command @ (C::Schedule { .. } | C::Deliver | C::CancelUnscheduled { .. }),
            )
            | (
                S::Dispatched { .. },
                command @ (C::Schedule { .. } | C::Cancel | C::CancelUnscheduled { .. }),
            )
            | (
                S::Delivered { .. },
                command @ (C::Schedule { .. }
                | C::Dispatch
                | C::Fail { .. }
                | C::Cancel
                | C::CancelUnscheduled { .. }),
            )
            | (
                S::Failed { .. },
                command @ (C::Schedule { .. }
                | C::Dispatch
                | C::Deliver
                | C::Cancel
                | C::CancelUnscheduled { .. }),
            )
            | (
                S::Cancelled { .. },
                command @ (C::Schedule { .. } | C::Dispatch | C::Deliver | C::Fail { .. }),
            ) => Err(illegal(self, command.name())),
        }
    }

    fn evolve(self, event: &DeliveryEvent) -> Self {
        use DeliveryEvent as E;
        use DeliveryState as S;
        match (self, event) {
            (
                S::NotScheduled,
                E::Scheduled {
                    delivery_id,
                    order_id,
                },
            ) => S::Scheduled {
                delivery_id: *delivery_id,
                order_id: *order_id,
            },
            (
                S::Scheduled {
                    delivery_id,
                    order_id,
                },
                E::Dispatched { .. },
            ) => S::Dispatched {
                delivery_id,
                order_id,
            },
            (
                S::Dispatched {
                    delivery_id,
                    order_id,
                },
                E::Completed { .. },
            ) => S::Delivered {
                delivery_id,
                order_id,
            },
            (
                S::Scheduled {
                    delivery_id,
                    order_id,
                }
                | S::Dispatched {
                    delivery_id,
                    order_id,
                },
                E::Failed { reason, .. },
            ) => S::Failed {
                delivery_id,
                order_id,
                reason: reason.clone(),
            },
            (
                S::Scheduled {
                    delivery_id,
                    order_id,
                },
                E::Cancelled { .. },
            ) => S::Cancelled {
                delivery_id,
                order_id,
            },
            (
                S::NotScheduled,
                E::Cancelled {
                    delivery_id,
                    order_id,
                },
            ) => S::Cancelled {
                delivery_id: *delivery_id,
                order_id: *order_id,
            },
            // Events that cannot follow the state: ignored (see `Aggregate::evolve`).
            (
                state @ S::NotScheduled,
                E::Dispatched { .. } | E::Completed { .. } | E::Failed { .. },
            )
            | (state @ S::Scheduled { .. }, E::Scheduled { .. } | E::Completed { .. })
            | (
                state @ S::Dispatched { .. },
                E::Scheduled { .. } | E::Dispatched { .. } | E::Cancelled { .. },
            )
            | (state @ (S::Delivered { .. } | S::Failed { .. } | S::Cancelled { .. }), _) => state,
        }
    }

    fn is_terminal(&self) -> bool {
        match self {
            Self::NotScheduled | Self::Scheduled { .. } | Self::Dispatched { .. } => false,
            Self::Delivered { .. } | Self::Failed { .. } | Self::Cancelled { .. } => true,
        }
    }

    fn state_name(&self) -> &'static str {
        self.name()
    }
}

#[cfg(test)]
mod tests;
