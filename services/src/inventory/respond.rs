//! What a stock request comes to, decided from where the order's stock request stands alone: [`respond`].
//! Pure, so every (status, request) pair is tested below without Postgres; [`Inventory`] (run by the one
//! [`Shell`]) locks the order's status, reserves or settles, and replies.
//!
//! [`Shell`]: crate::Shell
//!
//! [`Inventory`]: super::Inventory

use domain::{InventoryRequest, OrderStockEvent, StockLine, StockRequest};

use crate::ServiceError;
use crate::shell::Decision;

/// What the service carries out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act {
    /// Reserve every line or none.
    Reserve(Vec<StockLine>),
    /// Give back what the order holds.
    Release,
    /// Remember the order as released though it holds nothing, so that a late `ReserveStock` reserves
    /// nothing.
    ReleaseUnreserved,
    /// Turn the order's reservation into a sale.
    Commit,
}

/// What `request` comes to for an order whose stock request stands at `status` (`None`: never asked).
///
/// # Errors
/// [`ServiceError::Invalid`] for a `ReserveStock` with no lines.
pub fn respond(
    status: Option<&StockRequest>,
    request: InventoryRequest,
) -> Result<Decision<Act, OrderStockEvent>, ServiceError> {
    use InventoryRequest as R;
    use StockRequest as S;
    let order_id = request.order_id();
    let repeat = |status: &StockRequest| Decision::Repeat(status.reply(order_id));
    Ok(match (request, status) {
        (R::ReserveStock { lines, .. }, _) if lines.is_empty() => {
            return Err(ServiceError::invalid(
                "lines",
                "an order reserves at least one line",
            ));
        }
        (R::ReserveStock { lines, .. }, None) => Decision::Act(Act::Reserve(lines)),
        // A repeat, or a reservation after the order's stock was released or committed: the truth.
        (R::ReserveStock { .. }, Some(status)) => repeat(status),
        (R::ReleaseStock { .. }, None) => Decision::Act(Act::ReleaseUnreserved),
        (R::ReleaseStock { .. }, Some(S::Reserved)) => Decision::Act(Act::Release),
        (R::ReleaseStock { .. }, Some(S::Committed)) => repeat(&S::Committed),
        // Rejected (nothing held) or already released.
        (R::ReleaseStock { .. }, Some(S::Released | S::Rejected { .. })) => repeat(&S::Released),
        (R::CommitStock { .. }, Some(S::Reserved)) => Decision::Act(Act::Commit),
        (R::CommitStock { .. }, Some(status @ (S::Committed | S::Released))) => repeat(status),
        (R::CommitStock { .. }, Some(S::Rejected { .. })) => Decision::NotApplicable(format!(
            "order {order_id} has no reservation to commit (its stock request was rejected)"
        )),
        (R::CommitStock { .. }, None) => {
            Decision::NotApplicable(format!("order {order_id} has no reservation to commit"))
        }
    })
}

#[cfg(test)]
mod tests {
    use domain::{OrderId, Quantity, Sku};

    use super::*;

    fn line() -> StockLine {
        StockLine {
            sku: Sku::new("MUG-RED").unwrap(),
            quantity: Quantity::new(2).unwrap(),
        }
    }

    /// What each kind of decision is called in the table.
    fn name(decision: &Decision<Act, OrderStockEvent>) -> String {
        match decision {
            Decision::Act(Act::Reserve(lines)) => format!("reserve {}", lines.len()),
            Decision::Act(act) => format!("{act:?}").to_lowercase(),
            Decision::Repeat(reply) => domain::Message::event_type(reply).to_owned(),
            Decision::NotApplicable(_) => "not applicable".to_owned(),
        }
    }

    #[test]
    fn every_status_and_request() {
        let order_id = OrderId::new();
        let rejected = StockRequest::Rejected {
            sku: Sku::new("MUG-RED").unwrap(),
            requested: Quantity::new(2).unwrap(),
            available: 1,
        };
        let reserve = InventoryRequest::ReserveStock {
            order_id,
            lines: vec![line()],
        };
        let release = InventoryRequest::ReleaseStock { order_id };
        let commit = InventoryRequest::CommitStock { order_id };
        let statuses = [
            None,
            Some(StockRequest::Reserved),
            Some(StockRequest::Released),
            Some(StockRequest::Committed),
            Some(rejected.clone()),
        ];
        // Columns: never asked, reserved, released, committed, rejected.
        let table = [
            (
                &reserve,
                [
                    "reserve 1",
                    "OrderStockReserved",
                    "OrderStockReleased",
                    "OrderStockCommitted",
                    "OrderStockRejected",
                ],
            ),
            (
                &release,
                [
                    "releaseunreserved",
                    "release",
                    "OrderStockReleased",
                    "OrderStockCommitted",
                    "OrderStockReleased",
                ],
            ),
            (
                &commit,
                [
                    "not applicable",
                    "commit",
                    "OrderStockReleased",
                    "OrderStockCommitted",
                    "not applicable",
                ],
            ),
        ];
        for (request, expected) in table {
            for (status, expected) in statuses.iter().zip(expected) {
                let decision = respond(status.as_ref(), request.clone()).unwrap();
                assert_eq!(name(&decision), expected, "{request:?} at {status:?}");
                if let Decision::Repeat(reply) = &decision {
                    assert_eq!(domain::AboutOrder::order_id(reply), order_id);
                }
            }
        }
        // A repeated reservation that was rejected is told the same rejection.
        assert_eq!(
            respond(Some(&rejected), reserve).unwrap(),
            Decision::Repeat(rejected.reply(order_id))
        );
    }

    #[test]
    fn a_reservation_of_no_lines_is_invalid_whatever_the_status() {
        let request = InventoryRequest::ReserveStock {
            order_id: OrderId::new(),
            lines: Vec::new(),
        };
        for status in [None, Some(StockRequest::Reserved)] {
            let error = respond(status.as_ref(), request.clone()).unwrap_err();
            assert!(
                matches!(&error, ServiceError::Invalid { field, .. } if field == "lines"),
                "{error:?}"
            );
        }
    }
}
