//! The inventory service's model: one stock request per order, reserved all or nothing from bucketed stock.
//!
//! The service keeps each SKU's stock in a few buckets (rows), so that concurrent orders of one hot SKU lock
//! different rows. What it decides is pure and lives here: how many units of each SKU an order asks for
//! ([`demand`]), which buckets to take them from ([`take`]), and the reply a repeated request gets from where
//! the order's request stands ([`StockRequest::reply`]). The locking and the writes are the service's
//! (`services::inventory`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::ids::OrderId;
use crate::lines::{Quantity, Sku};
use crate::messages::{OrderStockEvent, StockLine};

/// Where an order's stock request stands: what the service remembers of it, and what a repeat is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StockRequest {
    /// Every line is held for the order.
    Reserved,
    /// Given back, or nothing was ever held (an undo that came first is remembered, so a late reservation
    /// reserves nothing).
    Released,
    /// The order's units left the warehouse.
    Committed,
    /// A line could not be reserved; nothing was.
    #[allow(missing_docs)]
    Rejected {
        sku: Sku,
        requested: Quantity,
        available: u32,
    },
}

impl StockRequest {
    /// The name the service stores, e.g. `"reserved"`.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Reserved => "reserved",
            Self::Released => "released",
            Self::Committed => "committed",
            Self::Rejected { .. } => "rejected",
        }
    }

    /// The reply that tells the truth about the request now: what a repeated `ReserveStock` is answered.
    #[must_use]
    pub fn reply(&self, order_id: OrderId) -> OrderStockEvent {
        match self {
            Self::Reserved => OrderStockEvent::OrderStockReserved { order_id },
            Self::Released => OrderStockEvent::OrderStockReleased { order_id },
            Self::Committed => OrderStockEvent::OrderStockCommitted { order_id },
            Self::Rejected {
                sku,
                requested,
                available,
            } => OrderStockEvent::OrderStockRejected {
                order_id,
                sku: sku.clone(),
                requested: *requested,
                available: *available,
            },
        }
    }
}

impl fmt::Display for StockRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many units of one SKU an order asks for, its lines of that SKU summed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demand {
    #[allow(missing_docs)]
    pub sku: Sku,
    #[allow(missing_docs)]
    pub units: u64,
    /// What a rejection says was asked: `units`, or the SKU's first line when the sum is past
    /// [`Quantity::MAX`].
    pub requested: Quantity,
}

/// The order's demand per SKU, in SKU order: the order in which the service locks stock, so that two orders
/// never wait for each other.
#[must_use]
pub fn demand(lines: &[StockLine]) -> Vec<Demand> {
    let mut merged: BTreeMap<&Sku, (u64, Quantity)> = BTreeMap::new();
    for line in lines {
        let entry = merged.entry(&line.sku).or_insert((0, line.quantity));
        entry.0 += u64::from(line.quantity.get());
    }
    merged
        .into_iter()
        .map(|(sku, (units, first_line))| Demand {
            sku: sku.clone(),
            units,
            requested: u32::try_from(units)
                .ok()
                .and_then(|units| Quantity::new(units).ok())
                .unwrap_or(first_line),
        })
        .collect()
}

/// How much to take from each bucket, given `(bucket, free units)` in bucket order, so that `units` are taken
/// in all: the first buckets first, none taken from a bucket with nothing free. `Err` holds the free units of
/// all buckets when they do not cover `units`: then nothing is taken.
///
/// # Errors
/// The free units, when fewer than `units`.
pub fn take(buckets: &[(i32, i64)], units: i64) -> Result<Vec<(i32, i64)>, i64> {
    let free: i64 = buckets.iter().map(|(_, free)| (*free).max(0)).sum();
    if free < units {
        return Err(free);
    }
    let mut left = units;
    let mut taken = Vec::new();
    for &(bucket, free) in buckets {
        if left == 0 {
            break;
        }
        let share = free.min(left);
        if share > 0 {
            taken.push((bucket, share));
            left -= share;
        }
    }
    Ok(taken)
}

/// A stored stock request name that is not one of [`StockRequest`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown stock request status {0:?} (reserved, released, committed or rejected)")]
pub struct UnknownStatus(pub String);

/// Parses what [`StockRequest::as_str`] wrote, except `"rejected"`, which needs its details: use
/// [`StockRequest::Rejected`] for it.
impl FromStr for StockRequest {
    type Err = UnknownStatus;

    fn from_str(status: &str) -> Result<Self, Self::Err> {
        match status {
            "reserved" => Ok(Self::Reserved),
            "released" => Ok(Self::Released),
            "committed" => Ok(Self::Committed),
            other => Err(UnknownStatus(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::Message;

    fn sku(s: &str) -> Sku {
        Sku::new(s).unwrap()
    }

    fn line(s: &str, quantity: u32) -> StockLine {
        StockLine {
            sku: sku(s),
            quantity: Quantity::new(quantity).unwrap(),
        }
    }

    #[test]
    fn demand_sums_the_lines_of_a_sku_and_lists_skus_in_lock_order() {
        let demand = demand(&[line("B-1", 2), line("A-1", 1), line("B-1", 3)]);
        let got: Vec<_> = demand
            .iter()
            .map(|d| (d.sku.as_str(), d.units, d.requested.get()))
            .collect();
        assert_eq!(got, [("A-1", 1, 1), ("B-1", 5, 5)]);
    }

    #[test]
    fn a_sum_past_the_largest_quantity_is_requested_as_its_first_line() {
        let demand = demand(&[line("A-1", Quantity::MAX), line("A-1", 7)]);
        assert_eq!(demand[0].units, u64::from(Quantity::MAX) + 7);
        assert_eq!(demand[0].requested.get(), Quantity::MAX);
    }

    #[test]
    fn take_fills_the_first_buckets_and_skips_empty_ones() {
        let buckets = [(0, 1), (1, 0), (2, -1), (3, 5), (4, 9)];
        assert_eq!(take(&buckets, 4), Ok(vec![(0, 1), (3, 3)]));
        assert_eq!(take(&buckets, 15), Ok(vec![(0, 1), (3, 5), (4, 9)]));
        assert_eq!(take(&buckets, 0), Ok(vec![]));
    }

    #[test]
    fn take_refuses_more_than_is_free_and_says_how_much_is() {
        // An over-reserved bucket (negative free) counts as nothing free, not as a debt.
        assert_eq!(take(&[(0, 2), (1, -3), (2, 1)], 4), Err(3));
        assert_eq!(take(&[], 1), Err(0));
    }

    #[test]
    fn every_status_replies_what_it_is_and_round_trips_its_name() {
        let order_id = OrderId::new();
        let rejected = StockRequest::Rejected {
            sku: sku("A-1"),
            requested: Quantity::new(3).unwrap(),
            available: 1,
        };
        let cases = [
            (StockRequest::Reserved, "OrderStockReserved"),
            (StockRequest::Released, "OrderStockReleased"),
            (StockRequest::Committed, "OrderStockCommitted"),
            (rejected.clone(), "OrderStockRejected"),
        ];
        for (status, reply) in &cases {
            assert_eq!(status.reply(order_id).event_type(), *reply);
            assert_eq!(status.reply(order_id).order_id(), order_id);
            if !matches!(status, StockRequest::Rejected { .. }) {
                assert_eq!(status.as_str().parse::<StockRequest>().as_ref(), Ok(status));
            }
        }
        assert_eq!(
            rejected.reply(order_id),
            OrderStockEvent::OrderStockRejected {
                order_id,
                sku: sku("A-1"),
                requested: Quantity::new(3).unwrap(),
                available: 1,
            }
        );
        assert_eq!(
            "rejected".parse::<StockRequest>(),
            Err(UnknownStatus("rejected".into()))
        );
        assert!("lost".parse::<StockRequest>().is_err());
    }
}
