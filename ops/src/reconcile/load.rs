//! Reading what the checks of a window need. The database matches the references (a join on each side's
//! reference index) and hands over only those that differ; this process weighs orders and classifies.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::Window;
use super::classify::{Books, EndedOrder, GivenUp, Line, Pair};

/// The references with a half in the window whose halves differ; the other half may lie outside the
/// window. The provider's statement is read from its books (`provider_ledger`, the lines of its settlement
/// statement), which share this database.
const UNMATCHED: &str = "
    SELECT t.provider_ref AS t_ref, t.order_id AS t_order, t.operation AS t_operation,
           t.amount_minor AS t_amount, t.currency AS t_currency, t.created_at AS t_at,
           o.provider_ref AS o_ref, o.order_id AS o_order, o.operation AS o_operation,
           o.amount_minor AS o_amount, o.currency AS o_currency, o.recorded_at AS o_at
    FROM provider_ledger t
    LEFT JOIN payment_operations o ON o.provider_ref = t.provider_ref
    WHERE t.created_at >= $1 AND t.created_at < $2
      AND (o.provider_ref IS NULL
           OR (o.amount_minor, o.currency) IS DISTINCT FROM (t.amount_minor, t.currency))
    UNION ALL
    SELECT NULL, NULL, NULL, NULL, NULL, NULL,
           o.provider_ref, o.order_id, o.operation, o.amount_minor, o.currency, o.recorded_at
    FROM payment_operations o
    WHERE o.recorded_at >= $1 AND o.recorded_at < $2
      AND NOT EXISTS (SELECT 1 FROM provider_ledger t WHERE t.provider_ref = o.provider_ref)";

/// Every capture and refund of the orders captured more than once, one of them in the window.
const REPEATED_CAPTURES: &str = "
    SELECT provider_ref, order_id, operation, amount_minor, currency, created_at AS at
    FROM provider_ledger
    WHERE operation IN ('capture', 'refund') AND order_id IN (
        SELECT order_id FROM provider_ledger
        WHERE operation = 'capture' AND order_id IN (
            SELECT order_id FROM provider_ledger
            WHERE operation = 'capture' AND created_at >= $1 AND created_at < $2)
        GROUP BY order_id HAVING count(*) > 1)";

/// Both halves of an unmatched reference, as one row.
#[derive(sqlx::FromRow)]
struct PairRow {
    t_ref: Option<String>,
    t_order: Option<Uuid>,
    t_operation: Option<String>,
    t_amount: Option<i64>,
    t_currency: Option<String>,
    t_at: Option<DateTime<Utc>>,
    o_ref: Option<String>,
    o_order: Option<Uuid>,
    o_operation: Option<String>,
    o_amount: Option<i64>,
    o_currency: Option<String>,
    o_at: Option<DateTime<Utc>>,
}

impl From<PairRow> for Pair {
    fn from(row: PairRow) -> Self {
        let line = |provider_ref, order_id, operation, amount_minor, currency, at| {
            Some(Line {
                provider_ref: provider_ref?,
                order_id: order_id?,
                operation: operation?,
                amount_minor: amount_minor?,
                currency: currency?,
                at: at?,
            })
        };
        Self {
            theirs: line(
                row.t_ref,
                row.t_order,
                row.t_operation,
                row.t_amount,
                row.t_currency,
                row.t_at,
            ),
            ours: line(
                row.o_ref,
                row.o_order,
                row.o_operation,
                row.o_amount,
                row.o_currency,
                row.o_at,
            ),
        }
    }
}

/// What the checks of `window` need.
///
/// # Errors
/// A database error.
pub async fn load(pool: &PgPool, window: &Window) -> Result<Books, sqlx::Error> {
    let unmatched: Vec<PairRow> = sqlx::query_as(UNMATCHED)
        .bind(window.from)
        .bind(window.to)
        .fetch_all(pool)
        .await?;
    let repeated_captures: Vec<Line> = sqlx::query_as(REPEATED_CAPTURES)
        .bind(window.from)
        .bind(window.to)
        .fetch_all(pool)
        .await?;
    let ended_orders: Vec<EndedOrder> = sqlx::query_as(
        "SELECT order_id, status, total_minor, currency FROM orders_view
         WHERE status IN ('completed', 'cancelled') AND ended_at >= $1 AND ended_at < $2",
    )
    .bind(window.from)
    .bind(window.to)
    .fetch_all(pool)
    .await?;
    let ids: Vec<Uuid> = ended_orders.iter().map(|o| o.order_id).collect();
    let ended_orders_lines: Vec<Line> = sqlx::query_as(
        "SELECT provider_ref, order_id, operation, amount_minor, currency, created_at AS at
         FROM provider_ledger WHERE order_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    let given_up: Vec<GivenUp> = sqlx::query_as(
        "SELECT id, subscriber, kind FROM notifications
         WHERE status = 'given_up' AND created_at >= $1 AND created_at < $2",
    )
    .bind(window.from)
    .bind(window.to)
    .fetch_all(pool)
    .await?;
    Ok(Books {
        unmatched: unmatched.into_iter().map(Pair::from).collect(),
        repeated_captures,
        ended_orders,
        ended_orders_lines,
        given_up,
    })
}
