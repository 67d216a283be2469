//! Admission control: new orders are refused at once (429) while too many are in flight, rather than
//! accepted into a queue whose wait grows without end.
//!
//! The backlog is the number of orders placed and not yet completed or cancelled (`orders_view`), less those
//! whose saga ended without ending them (escalated to an operator), counted
//! every [`ApiConfig::backlog_refresh`](crate::ApiConfig::backlog_refresh), plus the orders this process
//! placed since that count began and those it is placing now. Several API processes each add their own to
//! the shared count, so together they overshoot the bound by at most what they admit in one refresh.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// The gate in front of `POST /orders`.
#[derive(Debug)]
pub struct Admission {
    bound: i64,
    /// The last count of orders in flight.
    counted: AtomicI64,
    /// Orders this process placed since the last count began.
    placed_since: AtomicI64,
    /// Admissions whose order is being placed.
    placing: AtomicI64,
}

/// What the gate said.
#[derive(Debug)]
pub enum Verdict<'a> {
    /// Go ahead, and say what became of the order.
    Admitted(Ticket<'a>),
    /// `backlog` orders are in flight, at or past the bound.
    Full { backlog: i64 },
}

/// An admission: [`placed`](Self::placed) once the order committed; dropped otherwise (refused, failed, a
/// repeat, or the request abandoned), which frees its place.
#[derive(Debug)]
pub struct Ticket<'a> {
    gate: &'a Admission,
}

impl Ticket<'_> {
    /// The order committed: it is in flight until the next count sees it.
    pub fn placed(self) {
        self.gate.placed_since.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.gate.placing.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Admission {
    /// A gate that admits while fewer than `bound` orders are in flight.
    pub fn new(bound: i64) -> Self {
        Self {
            bound,
            counted: AtomicI64::new(0),
            placed_since: AtomicI64::new(0),
            placing: AtomicI64::new(0),
        }
    }

    /// The bound.
    pub fn bound(&self) -> i64 {
        self.bound
    }

    /// The backlog as this process knows it: the last count, what it placed since, what it is placing.
    pub fn backlog(&self) -> i64 {
        self.counted.load(Ordering::Relaxed)
            + self.placed_since.load(Ordering::Relaxed)
            + self.placing.load(Ordering::Relaxed)
    }

    /// Admits one order unless the backlog is at the bound.
    pub fn admit(&self) -> Verdict<'_> {
        self.placing.fetch_add(1, Ordering::Relaxed);
        let ticket = Ticket { gate: self };
        let backlog = self.backlog();
        if backlog > self.bound {
            drop(ticket);
            return Verdict::Full {
                backlog: backlog - 1,
            };
        }
        Verdict::Admitted(ticket)
    }

    /// Counts the backlog in the database once.
    ///
    /// # Errors
    /// Database errors; the previous count stays.
    pub async fn count(&self, pool: &PgPool) -> Result<i64, sqlx::Error> {
        // Orders placed before the count began are in it; those placed while it runs may or may not be, and
        // stay counted here too (counted twice at worst, until the next count).
        let before = self.placed_since.load(Ordering::Relaxed);
        // An order whose saga ended without ending it (escalated, `needs_attention`) waits for an operator,
        // not for the pipeline.
        let counted: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM orders_view o
             WHERE o.status = 'placed'
               AND NOT EXISTS (SELECT 1 FROM sagas s WHERE s.order_id = o.order_id AND s.ended_at IS NOT NULL)",
        )
        .fetch_one(pool)
        .await?;
        self.counted.store(counted, Ordering::Relaxed);
        self.placed_since.fetch_sub(before, Ordering::Relaxed);
        metrics::gauge!("api_backlog_orders").set(counted as f64);
        Ok(counted)
    }

    /// Counts the backlog every `every` until `cancel` fires. A failed count is logged; the gate keeps the
    /// last count and keeps adding its admissions to it, so it closes rather than opens while the database is
    /// away.
    pub async fn run(&self, pool: PgPool, every: Duration, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.count(&pool).await {
                tracing::warn!(error = %e, "cannot count the orders in flight; keeping the last count");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(verdict: Verdict<'_>) -> Ticket<'_> {
        match verdict {
            Verdict::Admitted(ticket) => ticket,
            Verdict::Full { backlog } => panic!("full at {backlog}"),
        }
    }

    #[test]
    fn admits_up_to_the_bound_and_an_abandoned_ticket_frees_its_place() {
        let gate = Admission::new(2);
        admitted(gate.admit()).placed();
        let second = admitted(gate.admit());
        assert!(matches!(gate.admit(), Verdict::Full { backlog: 2 }));
        assert_eq!(gate.backlog(), 2, "a refusal takes no place");
        drop(second);
        admitted(gate.admit()).placed();
        assert!(matches!(gate.admit(), Verdict::Full { backlog: 2 }));
    }

    #[test]
    fn a_counted_backlog_counts_against_the_bound() {
        let gate = Admission::new(10);
        gate.counted.store(9, Ordering::Relaxed);
        admitted(gate.admit()).placed();
        assert!(matches!(gate.admit(), Verdict::Full { backlog: 10 }));
    }
}
