//! Inventory: the model the inventory service runs on ([`reservation`]), and a per-SKU aggregate.
//!
//! # Where stock is never oversold
//! The live rule is the inventory service's (`services::inventory`): each SKU's stock is a few bucket
//! rows, an order's demand per SKU ([`reservation::demand`]) is taken from buckets it has locked
//! ([`reservation::take`]) in SKU and bucket order, all lines or none, and a `CHECK (reserved <= on_hand)`
//! on every bucket refuses any transaction that would oversell. What the service decides is pure and in
//! [`reservation`]; the locking and the writes are in the service.
//!
//! # The per-SKU aggregate
//! [`InventoryState`] states the same rule for one SKU kept as an event stream ([`InventoryEvent`]s,
//! stream id and Kafka key = the SKU): a stock kept that way gets the rule from [`Aggregate::decide`].
//! The service does not keep such streams; the tests use it as an event source with no preconditions.
//!
//! Stock on hand is what is in the warehouse; a reservation sets units aside for an order until it is
//! committed (dispatched: the units leave the warehouse) or released (compensation).
//!
//! **Invariant: reserved ≤ on hand**, always, so stock is never oversold: a `Reserve`
//! for more than is available (on hand minus reserved) is
//! [`Rejection::OutOfStock`]. On hand never exceeds [`InventoryState::MAX_ON_HAND`].
//!
//! | state \ command | `Receive` | `Reserve` | `Release` | `Commit` |
//! |-----------------|-----------|-----------|-----------|----------|
//! | `NotStocked`    | received  | illegal   | no-op     | illegal  |
//! | `Stocked`       | received  | reserved; no-op if this order already holds the same quantity; illegal if it holds another quantity; rejected if not available | released; no-op if the order holds nothing | committed; illegal if the order holds nothing |
//!
//! `Release` is a no-op for an order that holds nothing because compensations may be
//! repeated. `Reserve` on a SKU that was never stocked is illegal (the aggregate does
//! not know its SKU yet). The inventory is never terminal.

pub mod reservation;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, DomainEvent, Message, illegal};
use crate::error::{DomainError, Rejection, ValidationError};
use crate::ids::OrderId;
use crate::lines::{Quantity, Sku};

/// The stock of a SKU that has been received at least once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stock {
    sku: Sku,
    on_hand: u32,
    reservations: BTreeMap<OrderId, Quantity>,
}

impl Stock {
    /// The SKU.
    #[must_use]
    pub const fn sku(&self) -> &Sku {
        &self.sku
    }

    /// Units in the warehouse, reserved or not.
    #[must_use]
    pub const fn on_hand(&self) -> u32 {
        self.on_hand
    }

    /// Units held by reservations (the sum over all orders).
    #[must_use]
    pub fn reserved(&self) -> u32 {
        let sum: u64 = self
            .reservations
            .values()
            .map(|quantity| u64::from(quantity.get()))
            .sum();
        u32::try_from(sum).unwrap_or(u32::MAX)
    }

    /// Units that can still be reserved: on hand minus reserved.
    #[must_use]
    pub fn available(&self) -> u32 {
        self.on_hand.saturating_sub(self.reserved())
    }

    /// The reservation held by `order_id`, if any.
    #[must_use]
    pub fn reservation(&self, order_id: OrderId) -> Option<Quantity> {
        self.reservations.get(&order_id).copied()
    }

    /// All reservations, by order.
    #[must_use]
    pub const fn reservations(&self) -> &BTreeMap<OrderId, Quantity> {
        &self.reservations
    }
}

/// The state of one SKU's stock.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum InventoryState {
    /// Never received (the state before the first event).
    #[default]
    NotStocked,
    /// Received at least once (possibly all gone since).
    Stocked(Stock),
}

impl InventoryState {
    /// The most units one SKU can have on hand.
    pub const MAX_ON_HAND: u32 = 1_000_000_000;

    /// The state's name, e.g. `"Stocked"`.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::NotStocked => "NotStocked",
            Self::Stocked(_) => "Stocked",
        }
    }

    /// The stock, once received.
    #[must_use]
    pub const fn stock(&self) -> Option<&Stock> {
        match self {
            Self::NotStocked => None,
            Self::Stocked(stock) => Some(stock),
        }
    }

    /// Units on hand (0 before the first receipt).
    #[must_use]
    pub fn on_hand(&self) -> u32 {
        self.stock().map_or(0, Stock::on_hand)
    }

    /// Units reserved (0 before the first receipt).
    #[must_use]
    pub fn reserved(&self) -> u32 {
        self.stock().map_or(0, Stock::reserved)
    }

    /// Units available to reserve (0 before the first receipt).
    #[must_use]
    pub fn available(&self) -> u32 {
        self.stock().map_or(0, Stock::available)
    }
}

/// What can be asked of a SKU's stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InventoryCommand {
    /// Goods arrived (a restock); the first one also names the SKU.
    Receive {
        /// The SKU (must match the stock's once stocked).
        sku: Sku,
        /// Units received, above zero (not bounded by [`Quantity::MAX`]: restocks can be
        /// large); on hand must stay within [`InventoryState::MAX_ON_HAND`].
        quantity: u32,
    },
    /// Set units aside for an order.
    #[allow(missing_docs)]
    Reserve {
        order_id: OrderId,
        /// How many units.
        quantity: Quantity,
    },
    /// Give an order's reservation back (compensation).
    #[allow(missing_docs)]
    Release { order_id: OrderId },
    /// The order was dispatched: its reserved units leave the warehouse.
    #[allow(missing_docs)]
    Commit { order_id: OrderId },
}

impl InventoryCommand {
    /// The command's name, e.g. `"Reserve"`.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Receive { .. } => "Receive",
            Self::Reserve { .. } => "Reserve",
            Self::Release { .. } => "Release",
            Self::Commit { .. } => "Commit",
        }
    }
}

/// What happened to a SKU's stock. Serialized with a `"type"` tag equal to
/// [`Message::event_type`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum InventoryEvent {
    /// `StockReceived` v1.
    #[serde(rename = "StockReceived")]
    #[allow(missing_docs)]
    Received {
        sku: Sku,
        /// Units received.
        quantity: u32,
    },
    /// `StockReserved` v1.
    #[serde(rename = "StockReserved")]
    #[allow(missing_docs)]
    Reserved {
        sku: Sku,
        /// The order holding the reservation.
        order_id: OrderId,
        /// Units reserved.
        quantity: Quantity,
    },
    /// `StockReleased` v1.
    #[serde(rename = "StockReleased")]
    #[allow(missing_docs)]
    Released {
        sku: Sku,
        /// The order that held the reservation.
        order_id: OrderId,
        /// Units given back.
        quantity: Quantity,
    },
    /// `StockCommitted` v1.
    #[serde(rename = "StockCommitted")]
    #[allow(missing_docs)]
    Committed {
        sku: Sku,
        /// The order that held the reservation.
        order_id: OrderId,
        /// Units that left the warehouse.
        quantity: Quantity,
    },
}

impl InventoryEvent {
    /// The SKU the event belongs to.
    #[must_use]
    pub const fn sku(&self) -> &Sku {
        match self {
            Self::Received { sku, .. }
            | Self::Reserved { sku, .. }
            | Self::Released { sku, .. }
            | Self::Committed { sku, .. } => sku,
        }
    }
}

impl Message for InventoryEvent {
    const EVENT_TYPES: &'static [&'static str] = &[
        "StockReceived",
        "StockReserved",
        "StockReleased",
        "StockCommitted",
    ];

    fn event_type(&self) -> &'static str {
        match self {
            Self::Received { .. } => "StockReceived",
            Self::Reserved { .. } => "StockReserved",
            Self::Released { .. } => "StockReleased",
            Self::Committed { .. } => "StockCommitted",
        }
    }
}

impl DomainEvent for InventoryEvent {
    fn aggregate_id(&self) -> String {
        self.sku().to_string()
    }
}

fn receive(on_hand: u32, sku: Sku, quantity: u32) -> Result<Vec<InventoryEvent>, DomainError> {
    if quantity == 0 {
        return Err(ValidationError::NotPositive {
            field: "received quantity",
        }
        .into());
    }
    match on_hand.checked_add(quantity) {
        Some(total) if total <= InventoryState::MAX_ON_HAND => {
            Ok(vec![InventoryEvent::Received { sku, quantity }])
        }
        _ => Err(ValidationError::StockLimit {
            on_hand,
            received: quantity,
        }
        .into()),
    }
}

impl Aggregate for InventoryState {
    type Command = InventoryCommand;
    type Event = InventoryEvent;

    const SERVICE: crate::Service = crate::Service::Inventory;

    fn decide(&self, command: InventoryCommand) -> Result<Vec<InventoryEvent>, DomainError> {
        use InventoryCommand as C;
        use InventoryState as S;
        match (self, command) {
            (S::NotStocked, C::Receive { sku, quantity }) => receive(0, sku, quantity),
            (S::Stocked(stock), C::Receive { sku, quantity }) => {
                if sku != stock.sku {
                    return Err(ValidationError::SkuMismatch {
                        expected: stock.sku.clone(),
                        found: sku,
                    }
                    .into());
                }
                receive(stock.on_hand, sku, quantity)
            }
            (S::Stocked(stock), command @ C::Reserve { order_id, quantity }) => {
                match stock.reservation(order_id) {
                    Some(held) if held == quantity => Ok(vec![]),
                    Some(_) => Err(illegal(self, command.name())),
                    None if quantity.get() > stock.available() => Err(Rejection::OutOfStock {
                        sku: stock.sku.clone(),
                        requested: quantity,
                        available: stock.available(),
                    }
                    .into()),
                    None => Ok(vec![InventoryEvent::Reserved {
                        sku: stock.sku.clone(),
                        order_id,
                        quantity,
                    }]),
                }
            }
            (S::Stocked(stock), C::Release { order_id }) => Ok(stock
                .reservation(order_id)
                .map(|quantity| InventoryEvent::Released {
                    sku: stock.sku.clone(),
                    order_id,
                    quantity,
                })
                .into_iter()
                .collect()),
            (S::Stocked(stock), command @ C::Commit { order_id }) => {
                match stock.reservation(order_id) {
                    Some(quantity) => Ok(vec![InventoryEvent::Committed {
                        sku: stock.sku.clone(),
                        order_id,
                        quantity,
                    }]),
                    None => Err(illegal(self, command.name())),
                }
            }
            // Nothing is reserved before the first receipt.
            (S::NotStocked, C::Release { .. }) => Ok(vec![]),
            (S::NotStocked, command @ (C::Reserve { .. } | C::Commit { .. })) => {
                Err(illegal(self, command.name()))
            }
        }
    }

    fn evolve(self, event: &InventoryEvent) -> Self {
        use InventoryEvent as E;
        use InventoryState as S;
        match (self, event) {
            (S::NotStocked, E::Received { sku, quantity }) => S::Stocked(Stock {
                sku: sku.clone(),
                on_hand: *quantity,
                reservations: BTreeMap::new(),
            }),
            (S::Stocked(mut stock), E::Received { quantity, .. }) => {
                stock.on_hand = stock.on_hand.saturating_add(*quantity);
                S::Stocked(stock)
            }
            (
                S::Stocked(mut stock),
                E::Reserved {
                    order_id, quantity, ..
                },
            ) => {
                stock.reservations.insert(*order_id, *quantity);
                S::Stocked(stock)
            }
            (S::Stocked(mut stock), E::Released { order_id, .. }) => {
                stock.reservations.remove(order_id);
                S::Stocked(stock)
            }
            (
                S::Stocked(mut stock),
                E::Committed {
                    order_id, quantity, ..
                },
            ) => {
                stock.reservations.remove(order_id);
                stock.on_hand = stock.on_hand.saturating_sub(quantity.get());
                S::Stocked(stock)
            }
            // Events that cannot follow the state: ignored (see `Aggregate::evolve`).
            (
                state @ S::NotStocked,
                E::Reserved { .. } | E::Released { .. } | E::Committed { .. },
            ) => state,
        }
    }

    fn is_terminal(&self) -> bool {
        match self {
            Self::NotStocked | Self::Stocked(_) => false,
        }
    }

    fn state_name(&self) -> &'static str {
        self.name()
    }
}

#[cfg(test)]
mod tests;
