//! The inventory service: stock per SKU split over buckets, reservations per order, never an oversell.
//!
//! # How a reservation is made
//! [`reserve`] takes an order's lines, merged per SKU and sorted by SKU, and for each SKU:
//! 1. picks one bucket with enough free units with `FOR UPDATE SKIP LOCKED` (in random order, so concurrent
//!    buyers of a hot SKU spread over its buckets instead of queueing on one row);
//! 2. when none is free to take (all busy or each too small), locks all the SKU's buckets in bucket order
//!    and takes from them greedily, or, when their free units together do not cover the line, rejects the
//!    order with what was available at that moment.
//!
//! Only then are the buckets updated, so a rejected order changes nothing. Every wait for a lock is for a
//! (SKU, bucket) greater than every lock the transaction holds, so reservations cannot deadlock one another;
//! release and commit lock in the same order. Step 2 waits for the locks held by step 1 of others, so it
//! sees every committed reservation: an order is rejected only when the stock really is short. The CHECK
//! `reserved <= on_hand` on each bucket is the last line of defence.
//!
//! # What it does not do
//! It does not restock or move units between buckets; [`set_stock`] sets a SKU's stock when nothing of it
//! is reserved.

use std::collections::BTreeMap;

use consumers::{Handler, HandlerError, Incoming};
use domain::{
    InventoryRequest, Message as _, OrderId, OrderStockEvent, Quantity, Service, Sku, StockLine,
};
use sqlx::{PgConnection, PgPool};

use crate::{Context, ServiceError, caused_by};

/// Sets `sku`'s stock to `units`, spread evenly over `buckets` rows (at least one). Refused while any unit
/// of the SKU is reserved.
///
/// # Errors
/// [`ServiceError::StockInUse`] while units are reserved; [`ServiceError::Invalid`] for zero buckets.
pub async fn set_stock(
    pool: &PgPool,
    sku: &Sku,
    units: u32,
    buckets: u16,
) -> Result<(), ServiceError> {
    if buckets == 0 {
        return Err(ServiceError::invalid("buckets", "must be at least 1"));
    }
    let mut tx = pool.begin().await?;
    let reserved: Vec<i64> = sqlx::query_scalar(
        "SELECT reserved FROM stock_buckets WHERE sku = $1 ORDER BY bucket FOR UPDATE",
    )
    .bind(sku.as_str())
    .fetch_all(&mut *tx)
    .await?;
    let reserved: i64 = reserved.iter().sum();
    if reserved > 0 {
        return Err(ServiceError::StockInUse {
            sku: sku.to_string(),
            reserved,
        });
    }
    sqlx::query("DELETE FROM stock_buckets WHERE sku = $1 AND bucket >= $2")
        .bind(sku.as_str())
        .bind(i32::from(buckets))
        .execute(&mut *tx)
        .await?;
    let per_bucket = units / u32::from(buckets);
    let rest = units % u32::from(buckets);
    for bucket in 0..buckets {
        let on_hand = per_bucket + u32::from(u32::from(bucket) < rest);
        sqlx::query(
            "INSERT INTO stock_buckets (sku, bucket, on_hand, reserved) VALUES ($1, $2, $3, 0)
             ON CONFLICT (sku, bucket) DO UPDATE SET on_hand = EXCLUDED.on_hand, reserved = 0",
        )
        .bind(sku.as_str())
        .bind(i32::from(bucket))
        .bind(i64::from(on_hand))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A SKU's stock summed over its buckets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StockLevel {
    pub on_hand: i64,
    pub reserved: i64,
    pub buckets: i64,
}

/// `sku`'s stock now.
pub async fn stock_level(pool: &PgPool, sku: &Sku) -> Result<StockLevel, ServiceError> {
    let (on_hand, reserved, buckets): (Option<i64>, Option<i64>, i64) = sqlx::query_as(
        "SELECT sum(on_hand)::bigint, sum(reserved)::bigint, count(*) FROM stock_buckets WHERE sku = $1",
    )
    .bind(sku.as_str())
    .fetch_one(pool)
    .await?;
    Ok(StockLevel {
        on_hand: on_hand.unwrap_or(0),
        reserved: reserved.unwrap_or(0),
        buckets,
    })
}

/// What `order_id` holds or held: `(sku, status, units)` rows, by SKU and reservation status.
pub async fn reserved_by_order(
    pool: &PgPool,
    order_id: OrderId,
) -> Result<Vec<(String, String, i64)>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT sku, status, sum(quantity)::bigint FROM stock_reservations WHERE order_id = $1
         GROUP BY sku, status ORDER BY sku, status",
    )
    .bind(order_id.as_uuid())
    .fetch_all(pool)
    .await?)
}

/// Reserves every line of `order_id` or none, on `conn` (inside the caller's transaction), and returns the
/// reply: `OrderStockReserved`, or `OrderStockRejected` with the first SKU short. A repeat returns the
/// answer of the order's current status (see the crate's reply contract).
///
/// # Errors
/// [`ServiceError::Invalid`] for an order with no lines; database errors (transient).
pub async fn reserve(
    conn: &mut PgConnection,
    order_id: OrderId,
    lines: &[StockLine],
) -> Result<OrderStockEvent, ServiceError> {
    if lines.is_empty() {
        return Err(ServiceError::invalid(
            "lines",
            "an order reserves at least one line",
        ));
    }
    let claimed = sqlx::query(
        "INSERT INTO stock_orders (order_id, status) VALUES ($1, 'reserved') ON CONFLICT DO NOTHING",
    )
    .bind(order_id.as_uuid())
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if !claimed {
        return answer_of(conn, order_id).await;
    }
    let mut merged: BTreeMap<&Sku, (i64, Quantity)> = BTreeMap::new();
    for line in lines {
        let entry = merged.entry(&line.sku).or_insert((0, line.quantity));
        entry.0 += i64::from(line.quantity.get());
    }
    let mut plan = Vec::new();
    for (sku, (quantity, first_line)) in merged {
        match pick(conn, sku, quantity).await? {
            Ok(taken) => plan.extend(taken.into_iter().map(|(b, q)| (sku, b, q))),
            Err(available) => {
                let requested = u32::try_from(quantity)
                    .ok()
                    .and_then(|q| Quantity::new(q).ok())
                    .unwrap_or(first_line);
                let available = u32::try_from(available.max(0)).unwrap_or(u32::MAX);
                sqlx::query(
                    "UPDATE stock_orders SET status = 'rejected', rejected_sku = $2, requested = $3,
                            available = $4, updated_at = now()
                     WHERE order_id = $1",
                )
                .bind(order_id.as_uuid())
                .bind(sku.as_str())
                .bind(i64::from(requested.get()))
                .bind(i64::from(available))
                .execute(&mut *conn)
                .await?;
                metrics::counter!("inventory_rejected_total").increment(1);
                return Ok(OrderStockEvent::OrderStockRejected {
                    order_id,
                    sku: sku.clone(),
                    requested,
                    available,
                });
            }
        }
    }
    // Every bucket in the plan is locked by this transaction: the updates cannot fail the CHECK unless a bug
    // slipped in, and then the CHECK refuses the transaction.
    for (sku, bucket, quantity) in plan {
        sqlx::query(
            "UPDATE stock_buckets SET reserved = reserved + $3 WHERE sku = $1 AND bucket = $2",
        )
        .bind(sku.as_str())
        .bind(bucket)
        .bind(quantity)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "INSERT INTO stock_reservations (order_id, sku, bucket, quantity, status)
             VALUES ($1, $2, $3, $4, 'reserved')",
        )
        .bind(order_id.as_uuid())
        .bind(sku.as_str())
        .bind(bucket)
        .bind(quantity)
        .execute(&mut *conn)
        .await?;
    }
    metrics::counter!("inventory_reserved_total").increment(1);
    Ok(OrderStockEvent::OrderStockReserved { order_id })
}

/// Locks buckets of `sku` holding `quantity` free units and says how much to take from each, or returns the
/// free units of the SKU when they do not cover `quantity`.
async fn pick(
    conn: &mut PgConnection,
    sku: &Sku,
    quantity: i64,
) -> Result<Result<Vec<(i32, i64)>, i64>, ServiceError> {
    let free_bucket: Option<i32> = sqlx::query_scalar(
        "SELECT bucket FROM stock_buckets WHERE sku = $1 AND on_hand - reserved >= $2
         ORDER BY random() LIMIT 1 FOR UPDATE SKIP LOCKED",
    )
    .bind(sku.as_str())
    .bind(quantity)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(bucket) = free_bucket {
        return Ok(Ok(vec![(bucket, quantity)]));
    }
    // Busy or fragmented: wait for every bucket, in order, and look at the committed truth.
    metrics::counter!("inventory_fallback_locks_total").increment(1);
    let buckets: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT bucket, on_hand - reserved FROM stock_buckets WHERE sku = $1 ORDER BY bucket FOR UPDATE",
    )
    .bind(sku.as_str())
    .fetch_all(&mut *conn)
    .await?;
    let available: i64 = buckets.iter().map(|(_, free)| free.max(&0)).sum();
    if available < quantity {
        return Ok(Err(available));
    }
    let mut left = quantity;
    let mut taken = Vec::new();
    for (bucket, free) in buckets {
        if left == 0 {
            break;
        }
        let take = free.min(left);
        if take > 0 {
            taken.push((bucket, take));
            left -= take;
        }
    }
    Ok(Ok(taken))
}

/// The reply to a repeated `ReserveStock`: what the order's status says.
async fn answer_of(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<OrderStockEvent, ServiceError> {
    let (status, sku, requested, available): (String, Option<String>, Option<i64>, Option<i64>) =
        sqlx::query_as(
            "SELECT status, rejected_sku, requested, available FROM stock_orders WHERE order_id = $1",
        )
        .bind(order_id.as_uuid())
        .fetch_one(&mut *conn)
        .await?;
    Ok(match status.as_str() {
        "reserved" => OrderStockEvent::OrderStockReserved { order_id },
        "released" => OrderStockEvent::OrderStockReleased { order_id },
        "committed" => OrderStockEvent::OrderStockCommitted { order_id },
        _ => {
            let bad = |what| ServiceError::invalid("stock_orders row", what);
            let sku = Sku::new(sku.unwrap_or_default()).map_err(bad)?;
            let requested = u32::try_from(requested.unwrap_or_default())
                .ok()
                .and_then(|q| Quantity::new(q).ok())
                .ok_or_else(|| ServiceError::invalid("stock_orders row", "requested"))?;
            OrderStockEvent::OrderStockRejected {
                order_id,
                sku,
                requested,
                available: u32::try_from(available.unwrap_or_default()).unwrap_or(0),
            }
        }
    })
}

/// Gives back what `order_id` reserved, on `conn`. Replies `OrderStockReleased`, also when nothing was
/// reserved (and then remembers the order as released, so a late `ReserveStock` reserves nothing), or
/// `OrderStockCommitted` when the reservation was already committed.
pub async fn release(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<OrderStockEvent, ServiceError> {
    let claimed = sqlx::query(
        "INSERT INTO stock_orders (order_id, status) VALUES ($1, 'released') ON CONFLICT DO NOTHING",
    )
    .bind(order_id.as_uuid())
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if claimed {
        return Ok(OrderStockEvent::OrderStockReleased { order_id });
    }
    let status = lock_status(conn, order_id).await?;
    match status.as_deref() {
        Some("reserved") => {
            settle(
                conn,
                order_id,
                "UPDATE stock_buckets SET reserved = reserved - $3 WHERE sku = $1 AND bucket = $2",
                "released",
            )
            .await?;
            metrics::counter!("inventory_released_total").increment(1);
            Ok(OrderStockEvent::OrderStockReleased { order_id })
        }
        Some("committed") => Ok(OrderStockEvent::OrderStockCommitted { order_id }),
        // Rejected (nothing held) or already released.
        _ => Ok(OrderStockEvent::OrderStockReleased { order_id }),
    }
}

/// Turns `order_id`'s reservation into a sale (on dispatch): `on_hand` and `reserved` both drop. Replies
/// `OrderStockCommitted` (also for a repeat), or `OrderStockReleased` when the reservation was released.
///
/// # Errors
/// [`ServiceError::NotApplicable`] when the order has no reservation.
pub async fn commit(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<OrderStockEvent, ServiceError> {
    let status = lock_status(conn, order_id).await?;
    match status.as_deref() {
        Some("reserved") => {
            settle(
                conn,
                order_id,
                "UPDATE stock_buckets SET on_hand = on_hand - $3, reserved = reserved - $3
                 WHERE sku = $1 AND bucket = $2",
                "committed",
            )
            .await?;
            metrics::counter!("inventory_committed_total").increment(1);
            Ok(OrderStockEvent::OrderStockCommitted { order_id })
        }
        Some("committed") => Ok(OrderStockEvent::OrderStockCommitted { order_id }),
        Some("released") => Ok(OrderStockEvent::OrderStockReleased { order_id }),
        Some(other) => Err(ServiceError::NotApplicable(format!(
            "order {order_id} has no reservation to commit (its stock request was {other})"
        ))),
        None => Err(ServiceError::NotApplicable(format!(
            "order {order_id} has no reservation to commit"
        ))),
    }
}

async fn lock_status(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Option<String>, ServiceError> {
    Ok(
        sqlx::query_scalar("SELECT status FROM stock_orders WHERE order_id = $1 FOR UPDATE")
            .bind(order_id.as_uuid())
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// The order's reserved units per bucket, in lock order.
async fn held(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Vec<(String, i32, i64)>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT sku, bucket, quantity FROM stock_reservations
         WHERE order_id = $1 AND status = 'reserved' ORDER BY sku, bucket",
    )
    .bind(order_id.as_uuid())
    .fetch_all(&mut *conn)
    .await?)
}

/// Runs `bucket_update` (`$1` SKU, `$2` bucket, `$3` quantity) for every bucket `order_id` holds, in lock
/// order, then marks its reservation and its stock request `status`.
async fn settle(
    conn: &mut PgConnection,
    order_id: OrderId,
    bucket_update: &'static str,
    status: &str,
) -> Result<(), ServiceError> {
    for (sku, bucket, quantity) in held(conn, order_id).await? {
        sqlx::query(bucket_update)
            .bind(&sku)
            .bind(bucket)
            .bind(quantity)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query(
        "UPDATE stock_reservations SET status = $2 WHERE order_id = $1 AND status = 'reserved'",
    )
    .bind(order_id.as_uuid())
    .bind(status)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE stock_orders SET status = $2, updated_at = now() WHERE order_id = $1")
        .bind(order_id.as_uuid())
        .bind(status)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Handles `ReserveStock`, `ReleaseStock` and `CommitStock`, replying on `inventory.events`.
#[derive(Clone, Debug)]
pub struct InventoryHandler {
    ctx: Context,
}

impl InventoryHandler {
    /// A handler writing with `ctx`.
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }

    /// Applies `request` on `tx` and writes the reply.
    // No `err`: the consumer runtime logs a failure at the level its class calls for.
    #[tracing::instrument(skip_all, fields(order_id = %request.order_id(), request = request.event_type()))]
    pub async fn apply(
        &self,
        tx: &mut PgConnection,
        request: InventoryRequest,
        record: &Incoming,
    ) -> Result<(), ServiceError> {
        let order_id = request.order_id();
        let reply = match &request {
            InventoryRequest::ReserveStock { lines, .. } => reserve(tx, order_id, lines).await?,
            InventoryRequest::ReleaseStock { .. } => release(tx, order_id).await?,
            InventoryRequest::CommitStock { .. } => commit(tx, order_id).await?,
        };
        let metadata = caused_by(order_id, record);
        let topic = self.ctx.topics.events(Service::Inventory);
        self.ctx
            .store
            .publish(tx, &topic, &order_id.to_string(), &[reply], &metadata)
            .await?;
        Ok(())
    }
}

impl Handler for InventoryHandler {
    async fn handle(&self, tx: &mut PgConnection, record: &Incoming) -> Result<(), HandlerError> {
        let request: InventoryRequest = self.ctx.decode(record).await?;
        self.apply(tx, request, record).await.map_err(Into::into)
    }
}
