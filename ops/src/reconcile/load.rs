//! Reading both books for a window.

use std::collections::HashSet;

use sqlx::{AssertSqlSafe, PgPool};
use uuid::Uuid;

use super::Window;
use super::classify::{Books, EndedOrder, GivenUp, Line};

/// One side's money movements: a query of [`Line`]s and the column that dates them.
struct Book {
    select: &'static str,
    dated_by: &'static str,
}

/// The provider's statement. Until the provider is a party of its own with a statement API, its books are
/// the `provider_ledger` table it writes on its own connection.
const STATEMENT: Book = Book {
    select: "SELECT provider_ref, order_id, operation, amount_minor, currency, created_at AS at
             FROM provider_ledger",
    dated_by: "created_at",
};

/// Our record of every provider operation.
const OURS: Book = Book {
    select: "SELECT provider_ref, order_id, operation, amount_minor, currency, recorded_at AS at
             FROM payment_operations",
    dated_by: "recorded_at",
};

impl Book {
    async fn in_window(&self, pool: &PgPool, window: &Window) -> Result<Vec<Line>, sqlx::Error> {
        let query = format!(
            "{} WHERE {column} >= $1 AND {column} < $2 ORDER BY {column}",
            self.select,
            column = self.dated_by
        );
        sqlx::query_as(AssertSqlSafe(query))
            .bind(window.from)
            .bind(window.to)
            .fetch_all(pool)
            .await
    }

    /// This side's lines outside the window with the references of `lines` (the other side's) that `mine`
    /// (this side's lines in the window) does not have.
    async fn elsewhere(
        &self,
        pool: &PgPool,
        mine: &[Line],
        lines: &[Line],
    ) -> Result<Vec<Line>, sqlx::Error> {
        let have: HashSet<&str> = mine.iter().map(|l| l.provider_ref.as_str()).collect();
        let missing: Vec<&str> = lines
            .iter()
            .map(|l| l.provider_ref.as_str())
            .filter(|r| !have.contains(r))
            .collect();
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        let query = format!("{} WHERE provider_ref = ANY($1)", self.select);
        sqlx::query_as(AssertSqlSafe(query))
            .bind(missing)
            .fetch_all(pool)
            .await
    }

    async fn of_orders(&self, pool: &PgPool, ids: &[Uuid]) -> Result<Vec<Line>, sqlx::Error> {
        let query = format!("{} WHERE order_id = ANY($1)", self.select);
        sqlx::query_as(AssertSqlSafe(query))
            .bind(ids)
            .fetch_all(pool)
            .await
    }
}

/// Both books of `window`, and what the checks need beyond it.
///
/// # Errors
/// A database error.
pub async fn load(pool: &PgPool, window: &Window) -> Result<Books, sqlx::Error> {
    // Both sides at once, on two connections: Postgres reads one while this process decodes the other.
    let (statement, ours) = tokio::try_join!(
        STATEMENT.in_window(pool, window),
        OURS.in_window(pool, window)
    )?;
    let statement_elsewhere = STATEMENT.elsewhere(pool, &statement, &ours).await?;
    let ours_elsewhere = OURS.elsewhere(pool, &ours, &statement).await?;
    let ended_orders: Vec<EndedOrder> = sqlx::query_as(
        "SELECT order_id, status, total_minor, currency FROM orders_view
         WHERE status IN ('completed', 'cancelled') AND ended_at >= $1 AND ended_at < $2",
    )
    .bind(window.from)
    .bind(window.to)
    .fetch_all(pool)
    .await?;
    let ids: Vec<Uuid> = ended_orders.iter().map(|o| o.order_id).collect();
    let ended_orders_lines = STATEMENT.of_orders(pool, &ids).await?;
    let given_up: Vec<GivenUp> = sqlx::query_as(
        "SELECT id, subscriber, kind FROM notifications
         WHERE status = 'given_up' AND created_at >= $1 AND created_at < $2",
    )
    .bind(window.from)
    .bind(window.to)
    .fetch_all(pool)
    .await?;
    Ok(Books {
        statement,
        ours,
        statement_elsewhere,
        ours_elsewhere,
        ended_orders,
        ended_orders_lines,
        given_up,
    })
}
