//! The inventory service: stock per SKU split over buckets, reservations per order, never an oversell.
//!
//! What a request comes to is decided by the pure [`respond`] from where the order's stock request stands
//! ([`StockRequest`]); this module locks that status, and reserves or settles.
//!
//! # How a reservation is made
//! [`reserve`] takes an order's lines, merged per SKU and sorted by SKU ([`reservation::demand`]), and for
//! each SKU:
//! 1. picks one bucket with enough free units with `FOR UPDATE SKIP LOCKED` (in random order, so concurrent
//!    buyers of a hot SKU spread over its buckets instead of queueing on one row);
//! 2. when none is free to take (all busy or each too small), locks all the SKU's buckets in bucket order
//!    and takes from them greedily ([`reservation::take`]), or, when their free units together do not
//!    cover the line, rejects the order with what was available at that moment.
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

use domain::inventory::reservation::{self, Demand};
use domain::{
    InventoryRequest, OrderId, OrderStockEvent, Quantity, Service, Sku, StockLine, StockRequest,
};
use outbox::Metadata;
use sqlx::{PgConnection, PgPool};

use crate::shell::{Decision, Responder, Shell};
use crate::{Context, ServiceError};

mod respond;

pub use respond::{Act, respond};

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

/// Answers `request` on `conn` (inside the caller's transaction) and returns the reply, without writing it:
/// what [`InventoryHandler`] does before it replies. See [`reserve`], [`release`] and [`commit`].
///
/// # Errors
/// [`ServiceError::Invalid`] for a reservation of no lines; [`ServiceError::NotApplicable`] for a commit
/// without a reservation; database errors (transient).
pub async fn answer(
    conn: &mut PgConnection,
    request: InventoryRequest,
) -> Result<OrderStockEvent, ServiceError> {
    let order_id = request.order_id();
    let status = lock_status(conn, order_id).await?;
    match respond(status.as_ref(), request)? {
        Decision::Act(act) => carry_out(conn, order_id, act).await,
        Decision::Repeat(reply) => Ok(reply),
        Decision::NotApplicable(reason) => Err(ServiceError::NotApplicable(reason)),
    }
}

/// Reserves every line of `order_id` or none: `OrderStockReserved`, or `OrderStockRejected` with the first
/// SKU short. A repeat returns the answer of the order's current status (see the crate's reply contract).
///
/// # Errors
/// As [`answer`].
pub async fn reserve(
    conn: &mut PgConnection,
    order_id: OrderId,
    lines: &[StockLine],
) -> Result<OrderStockEvent, ServiceError> {
    let lines = lines.to_vec();
    answer(conn, InventoryRequest::ReserveStock { order_id, lines }).await
}

/// Gives back what `order_id` reserved. Replies `OrderStockReleased`, also when nothing was reserved (and
/// then remembers the order as released, so a late `ReserveStock` reserves nothing), or
/// `OrderStockCommitted` when the reservation was already committed.
///
/// # Errors
/// As [`answer`].
pub async fn release(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<OrderStockEvent, ServiceError> {
    answer(conn, InventoryRequest::ReleaseStock { order_id }).await
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
    answer(conn, InventoryRequest::CommitStock { order_id }).await
}

/// Carries out `act` for `order_id` and returns the reply.
async fn carry_out(
    conn: &mut PgConnection,
    order_id: OrderId,
    act: Act,
) -> Result<OrderStockEvent, ServiceError> {
    Ok(match act {
        Act::Reserve(lines) => reserve_all_or_none(conn, order_id, &lines).await?,
        Act::ReleaseUnreserved => {
            insert_status(conn, order_id, &StockRequest::Released).await?;
            OrderStockEvent::OrderStockReleased { order_id }
        }
        Act::Release => {
            settle(
                conn,
                order_id,
                "UPDATE stock_buckets SET reserved = reserved - $3 WHERE sku = $1 AND bucket = $2",
                StockRequest::Released,
            )
            .await?;
            metrics::counter!("inventory_released_total").increment(1);
            OrderStockEvent::OrderStockReleased { order_id }
        }
        Act::Commit => {
            settle(
                conn,
                order_id,
                "UPDATE stock_buckets SET on_hand = on_hand - $3, reserved = reserved - $3
                 WHERE sku = $1 AND bucket = $2",
                StockRequest::Committed,
            )
            .await?;
            metrics::counter!("inventory_committed_total").increment(1);
            OrderStockEvent::OrderStockCommitted { order_id }
        }
    })
}

/// Records the order's first stock request as `status`. A concurrent handler of the same order (a redriven
/// dead letter, say) that recorded one first fails the primary key: a transient error, and the retry
/// answers as its status says.
async fn insert_status(
    conn: &mut PgConnection,
    order_id: OrderId,
    status: &StockRequest,
) -> Result<(), ServiceError> {
    sqlx::query("INSERT INTO stock_orders (order_id, status) VALUES ($1, $2)")
        .bind(order_id.as_uuid())
        .bind(status.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Reserves every line of a new stock request, or none (see the module doc).
async fn reserve_all_or_none(
    conn: &mut PgConnection,
    order_id: OrderId,
    lines: &[StockLine],
) -> Result<OrderStockEvent, ServiceError> {
    insert_status(conn, order_id, &StockRequest::Reserved).await?;
    let mut plan = Vec::new();
    for Demand {
        sku,
        units,
        requested,
    } in reservation::demand(lines)
    {
        let units = i64::try_from(units).unwrap_or(i64::MAX);
        match pick(conn, &sku, units).await? {
            Ok(taken) => plan.extend(taken.into_iter().map(|(b, q)| (sku.clone(), b, q))),
            Err(available) => {
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
                let rejected = StockRequest::Rejected {
                    sku,
                    requested,
                    available,
                };
                return Ok(rejected.reply(order_id));
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
    Ok(StockRequest::Reserved.reply(order_id))
}

/// Locks buckets of `sku` holding `units` free units and says how much to take from each, or returns the
/// free units of the SKU when they do not cover `units`.
async fn pick(
    conn: &mut PgConnection,
    sku: &Sku,
    units: i64,
) -> Result<Result<Vec<(i32, i64)>, i64>, ServiceError> {
    let free_bucket: Option<i32> = sqlx::query_scalar(
        "SELECT bucket FROM stock_buckets WHERE sku = $1 AND on_hand - reserved >= $2
         ORDER BY random() LIMIT 1 FOR UPDATE SKIP LOCKED",
    )
    .bind(sku.as_str())
    .bind(units)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(bucket) = free_bucket {
        return Ok(Ok(vec![(bucket, units)]));
    }
    // Busy or fragmented: wait for every bucket, in order, and look at the committed truth.
    metrics::counter!("inventory_fallback_locks_total").increment(1);
    let buckets: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT bucket, on_hand - reserved FROM stock_buckets WHERE sku = $1 ORDER BY bucket FOR UPDATE",
    )
    .bind(sku.as_str())
    .fetch_all(&mut *conn)
    .await?;
    Ok(reservation::take(&buckets, units))
}

/// A `stock_orders` row.
#[derive(sqlx::FromRow)]
struct StatusRow {
    status: String,
    rejected_sku: Option<String>,
    requested: Option<i64>,
    available: Option<i64>,
}

/// Locks where `order_id`'s stock request stands; `None` when it was never asked.
async fn lock_status(
    conn: &mut PgConnection,
    order_id: OrderId,
) -> Result<Option<StockRequest>, ServiceError> {
    let row: Option<StatusRow> = sqlx::query_as(
        "SELECT status, rejected_sku, requested, available FROM stock_orders
         WHERE order_id = $1 FOR UPDATE",
    )
    .bind(order_id.as_uuid())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let bad = |what: &str| ServiceError::invalid("stock_orders row", what);
    if row.status != "rejected" {
        return row
            .status
            .parse()
            .map(Some)
            .map_err(|e: reservation::UnknownStatus| bad(&e.to_string()));
    }
    Ok(Some(StockRequest::Rejected {
        sku: Sku::new(row.rejected_sku.unwrap_or_default()).map_err(|e| bad(&e.to_string()))?,
        requested: u32::try_from(row.requested.unwrap_or_default())
            .ok()
            .and_then(|q| Quantity::new(q).ok())
            .ok_or_else(|| bad("requested"))?,
        available: u32::try_from(row.available.unwrap_or_default()).unwrap_or(0),
    }))
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
    status: StockRequest,
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
    .bind(status.as_str())
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE stock_orders SET status = $2, updated_at = now() WHERE order_id = $1")
        .bind(order_id.as_uuid())
        .bind(status.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Answers `ReserveStock`, `ReleaseStock` and `CommitStock`, replying on `inventory.events`.
#[derive(Clone, Debug)]
pub struct Inventory {
    ctx: Context,
}

/// The inventory service's handler on the consumer runtime.
pub type InventoryHandler = Shell<Inventory>;

impl Inventory {
    /// A service writing with `ctx`.
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }
}

impl Responder for Inventory {
    const SERVICE: Service = Service::Inventory;
    // A reservation locks buckets of SKUs that orders of every partition share, in SKU order: a batch of
    // orders would hold some while it waits for others, and deadlock with a batch of another partition.
    const BATCHES: bool = false;
    type Request = InventoryRequest;
    type State = Option<StockRequest>;
    type Act = Act;
    type Reply = OrderStockEvent;

    fn context(&self) -> &Context {
        &self.ctx
    }

    async fn load(
        &self,
        tx: &mut PgConnection,
        order_id: OrderId,
    ) -> Result<Option<StockRequest>, ServiceError> {
        lock_status(tx, order_id).await
    }

    fn decide(
        &self,
        status: &Option<StockRequest>,
        request: InventoryRequest,
    ) -> Result<Decision<Act, OrderStockEvent>, ServiceError> {
        respond(status.as_ref(), request)
    }

    /// Reserves or settles, and replies on `inventory.events`.
    async fn carry_out(
        &self,
        tx: &mut PgConnection,
        order_id: OrderId,
        _: Option<StockRequest>,
        act: Act,
        metadata: &Metadata,
    ) -> Result<(), ServiceError> {
        let reply = carry_out(tx, order_id, act).await?;
        let topic = self.ctx.topics.events(Service::Inventory);
        self.ctx
            .store
            .publish(tx, &topic, &order_id.to_string(), &[reply], metadata)
            .await?;
        Ok(())
    }
}
