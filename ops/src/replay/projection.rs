//! Projections a replay may re-run (`--to-group`), and the rebuild of one (`--rebuild`).
//!
//! Only read models whose handlers touch nothing but their own rows can be re-run: `orders_view`
//! ([`Projection::OrdersView`], group `orders-view`, from `orders.events`) and the cross-region global view
//! `orders_global` ([`Projection::OrdersGlobal`], group `orders-global`, from the region's `orders.events` or
//! another region's copy, `<region>.orders.events`, a topic at a time). Groups whose handlers have effects outside the
//! database (a charge at the provider, a stock reservation, a command to another service) are refused by
//! name: to make them read records again, `orderflow group reset` moves their offsets and their inbox keeps
//! each effect single.
//!
//! Without `--rebuild`, records go through the projection's handler in the group's own inbox scope, so
//! events it applied already are skipped. With `--rebuild`, they go into a fresh scope
//! (`<group>/rebuild/<replay id>`) and into a table of their own (`orders_view_rebuilds`,
//! `orders_global_rebuilds`), which is then
//! compared with the live view; the differences are listed and the live view restored from the events
//! where it lacks a row, or holds values the events do not (never where it is ahead of the replayed range:
//! a live row completed after the range's end stays completed). `orders_view` columns the events do not
//! carry (the delivery address) cannot be rebuilt: a restored row has none.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::OrderEvent;
use rdkafka::message::{BorrowedMessage, Message as _, OwnedMessage};
use schemas::codec::AvroCodec;
use serde::Serialize;
use sqlx::{AssertSqlSafe, PgConnection, PgPool};
use uuid::Uuid;

use super::store::{self, Counts, Cursor};
use crate::OperatorError;

/// A read model a replay may re-run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Projection {
    /// `orders_view`, from `orders.events`.
    OrdersView,
    /// `orders_global`, from `orders.events` and the other regions' copies of theirs.
    OrdersGlobal,
}

/// Groups of the pipeline that are not projections, and why a replay never re-runs them.
const REFUSED: [(&str, &str); 6] = [
    (
        "payments",
        "its handlers charge, void and refund at the payment provider",
    ),
    ("inventory", "its handlers reserve and release stock"),
    ("delivery", "its handlers schedule and cancel deliveries"),
    (
        "orders",
        "its handlers complete and cancel orders and notify",
    ),
    ("orchestrator", "its handlers send commands to the services"),
    (
        "payments-provider-results",
        "its handlers record the provider's results as payments",
    ),
];

impl Projection {
    /// Every projection, for messages.
    pub const ALL: [Self; 2] = [Self::OrdersView, Self::OrdersGlobal];

    /// The consumer group that names it.
    #[must_use]
    pub const fn group(self) -> &'static str {
        match self {
            Self::OrdersView => "orders-view",
            Self::OrdersGlobal => "orders-global",
        }
    }

    /// The topic its events come from (without a prefix; the global view also reads the copies of other
    /// regions' under their region's prefix).
    #[must_use]
    pub const fn topic(self) -> &'static str {
        match self {
            Self::OrdersView | Self::OrdersGlobal => "orders.events",
        }
    }

    /// Its live table, the table a rebuild writes, and the columns the events decide (compared and
    /// restored) and that a restore also copies.
    const fn tables(self) -> Tables {
        match self {
            Self::OrdersView => Tables {
                live: "orders_view",
                rebuilds: "orders_view_rebuilds",
                decided: &[
                    "customer_id",
                    "status",
                    "cancel_reason",
                    "total_minor",
                    "currency",
                ],
                copied: &["placed_at", "ended_at"],
            },
            Self::OrdersGlobal => Tables {
                live: "orders_global",
                rebuilds: "orders_global_rebuilds",
                decided: &[
                    "home_region",
                    "customer_id",
                    "status",
                    "cancel_reason",
                    "total_minor",
                    "currency",
                ],
                copied: &["seen_at", "ended_at"],
            },
        }
    }

    /// The projection of consumer group `group`.
    ///
    /// # Errors
    /// A message naming the group and why it cannot be re-run, or the groups that can.
    pub fn for_group(group: &str) -> Result<Self, String> {
        if let Some(projection) = Self::ALL.into_iter().find(|p| p.group() == group) {
            return Ok(projection);
        }
        let known = Self::ALL.map(Self::group).join(", ");
        if let Some((_, why)) = REFUSED.iter().find(|(name, _)| *name == group) {
            return Err(format!(
                "group {group} is not rebuildable: {why}; a replay never re-runs it. To make it read records \
                 again, use `orderflow group reset {group}` (its inbox skips what it applied). Rebuildable: \
                 {known}"
            ));
        }
        Err(format!(
            "unknown group {group}: rebuildable groups are {known}"
        ))
    }

    /// Checks that `topic` carries this projection's events (it may have a prefix).
    ///
    /// # Errors
    /// A message naming both topics.
    pub fn check_source(self, topic: &str) -> Result<(), String> {
        if topic.ends_with(self.topic()) {
            Ok(())
        } else {
            Err(format!(
                "group {} reads {}, not {topic}",
                self.group(),
                self.topic()
            ))
        }
    }
}

/// A projection's tables (see [`Projection::tables`]); the names are constants, never input.
struct Tables {
    live: &'static str,
    rebuilds: &'static str,
    decided: &'static [&'static str],
    copied: &'static [&'static str],
}

impl Tables {
    /// `(r.a, r.b, ...)` over the decided columns, with table alias `alias`.
    fn decided_of(&self, alias: &str) -> String {
        let columns: Vec<String> = self
            .decided
            .iter()
            .map(|c| format!("{alias}.{c}"))
            .collect();
        format!("({})", columns.join(", "))
    }

    /// Whether rebuilt row `r` and live row `v` differ in what the events decide.
    fn differ(&self) -> String {
        format!(
            "{} IS DISTINCT FROM {}",
            self.decided_of("r"),
            self.decided_of("v")
        )
    }
}

/// Where a projection's handler writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Destination {
    /// The live `orders_view`.
    Live,
    /// `orders_view_rebuilds` rows of this replay.
    Rebuild(Uuid),
}

/// Applies matched records through the projection, each batch in one transaction with its inbox claims and
/// the checkpoint.
pub(super) struct ProjectionSink {
    pub pool: PgPool,
    pub codec: Arc<AvroCodec>,
    pub replay_id: Uuid,
    pub projection: Projection,
    /// The inbox scope: the group's own, or a fresh one for a rebuild.
    pub scope: String,
    pub into: Destination,
    pub batch: Vec<OwnedMessage>,
    /// Records the inbox had seen already in this scope.
    pub skipped: i64,
}

impl super::run::Sink for ProjectionSink {
    const WRITES: bool = true;

    async fn take(&mut self, message: &BorrowedMessage<'_>) -> Result<(), OperatorError> {
        self.batch.push(message.detach());
        Ok(())
    }

    fn pending(&self) -> usize {
        self.batch.len()
    }

    async fn land(&mut self, moved: &[Cursor], counts: Counts) -> Result<(), OperatorError> {
        let mut tx = self.pool.begin().await?;
        for message in std::mem::take(&mut self.batch) {
            let at = |what: &str| {
                format!(
                    "{}/{}/{}: {what}",
                    message.topic(),
                    message.partition(),
                    message.offset()
                )
            };
            let header = |name: &str| {
                use rdkafka::message::Headers as _;
                message.headers().and_then(|h| {
                    h.iter()
                        .filter(|h| h.key == name)
                        .last()
                        .and_then(|h| h.value)
                        .and_then(|v| std::str::from_utf8(v).ok())
                })
            };
            let event_id: Uuid = header(producers::headers::EVENT_ID)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| OperatorError::Failed(at("no readable event_id header")))?;
            if !consumers::inbox::claim(&mut tx, &self.scope, event_id, message.topic()).await? {
                self.skipped += 1;
                continue;
            }
            if !matches!(
                header(producers::headers::EVENT_TYPE),
                Some("OrderPlaced" | "OrderCompleted" | "OrderCancelled")
            ) {
                continue;
            }
            let event: OrderEvent = self
                .codec
                .decode_as(message.payload().unwrap_or_default())
                .await
                .map_err(|e| OperatorError::Failed(at(&e.to_string())))?;
            match self.projection {
                Projection::OrdersView => {
                    let time = message
                        .timestamp()
                        .to_millis()
                        .and_then(DateTime::from_timestamp_millis)
                        .unwrap_or_else(Utc::now);
                    apply(&mut tx, self.into, &event, time).await?;
                }
                Projection::OrdersGlobal => {
                    let home = header(producers::headers::ORIGIN_REGION).unwrap_or("unknown");
                    let rebuild = match self.into {
                        Destination::Live => None,
                        Destination::Rebuild(id) => Some(id),
                    };
                    services::orders::global::apply(&mut tx, home, &event, rebuild).await?;
                }
            }
        }
        store::checkpoint(&mut tx, self.replay_id, moved, counts, None).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Applies one order event to `orders_view` or the rebuild `into`, as of `time` (its record's timestamp). A repeated placement
/// and a state change of an order already ended change nothing.
async fn apply(
    conn: &mut PgConnection,
    into: Destination,
    event: &OrderEvent,
    time: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    // The rebuild's statements take the replay id as their last parameter.
    let query = match event {
        OrderEvent::Placed {
            order_id,
            customer_id,
            total,
            ..
        } => sqlx::query(match into {
            Destination::Live => {
                "INSERT INTO orders_view (order_id, customer_id, status, total_minor, currency, placed_at)
                 VALUES ($1, $2, 'placed', $3, $4, $5)
                 ON CONFLICT (order_id) DO NOTHING"
            }
            Destination::Rebuild(_) => {
                "INSERT INTO orders_view_rebuilds
                     (order_id, customer_id, status, total_minor, currency, placed_at, replay_id)
                 VALUES ($1, $2, 'placed', $3, $4, $5, $6)
                 ON CONFLICT (replay_id, order_id) DO NOTHING"
            }
        })
        .bind(order_id.as_uuid())
        .bind(customer_id.as_uuid())
        .bind(total.minor())
        .bind(total.currency().code())
        .bind(time),
        OrderEvent::Completed { order_id } | OrderEvent::Cancelled { order_id, .. } => {
            let (status, reason) = match event {
                OrderEvent::Cancelled { reason, .. } => ("cancelled", Some(reason.name())),
                _ => ("completed", None),
            };
            sqlx::query(match into {
                Destination::Live => {
                    "UPDATE orders_view SET status = $2, cancel_reason = $3, ended_at = $4
                     WHERE order_id = $1 AND status = 'placed'"
                }
                Destination::Rebuild(_) => {
                    "UPDATE orders_view_rebuilds SET status = $2, cancel_reason = $3, ended_at = $4
                     WHERE order_id = $1 AND status = 'placed' AND replay_id = $5"
                }
            })
            .bind(order_id.as_uuid())
            .bind(status)
            .bind(reason)
            .bind(time)
        }
    };
    let query = match into {
        Destination::Live => query,
        Destination::Rebuild(id) => query.bind(id),
    };
    query.execute(conn).await?;
    Ok(())
}

/// A rebuilt projection against the live one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Differences {
    /// Orders the events of the range rebuilt.
    pub rebuilt: i64,
    /// Rebuilt orders the live view lacks.
    pub missing: i64,
    /// Rebuilt orders the live view holds with other values.
    pub differing: i64,
    /// Of those, orders the live view has ended while the range's events leave them placed (it is ahead
    /// of the range; left as it is).
    pub view_ahead: i64,
    /// Rows the live view has and the range's events do not mention.
    pub only_in_view: i64,
    /// Rows written into the live view (missing and differing, less those ahead).
    pub restored: i64,
    /// A few of the differences, one line each.
    pub examples: Vec<String>,
}

/// A difference: the order, the live status (none when the row is missing), the rebuilt status, and the
/// live and rebuilt cancel reasons.
type Example = (Uuid, Option<String>, String, Option<String>, Option<String>);

/// How many differences [`Differences::examples`] lists.
const EXAMPLES: i64 = 20;

/// Compares the rows replay `replay_id` rebuilt with `projection`'s live view, then, with `restore`, writes
/// them into it and drops the rebuild's rows and inbox scope, all in one transaction.
pub(super) async fn compare_and_restore(
    pool: &PgPool,
    projection: Projection,
    replay_id: Uuid,
    scope: &str,
    restore: bool,
) -> Result<Differences, OperatorError> {
    let t = projection.tables();
    let (live, rebuilds, differ) = (t.live, t.rebuilds, t.differ());
    let mut tx = pool.begin().await?;
    let (rebuilt, missing, differing, view_ahead): (i64, i64, i64, i64) =
        sqlx::query_as(AssertSqlSafe(format!(
            "SELECT count(*),
                    count(*) FILTER (WHERE v.order_id IS NULL),
                    count(*) FILTER (WHERE v.order_id IS NOT NULL AND {differ}),
                    count(*) FILTER (WHERE v.status <> 'placed' AND r.status = 'placed')
             FROM {rebuilds} r LEFT JOIN {live} v USING (order_id)
             WHERE r.replay_id = $1"
        )))
        .bind(replay_id)
        .fetch_one(&mut *tx)
        .await?;
    let (only_in_view,): (i64,) = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT count(*) FROM {live} v
         WHERE NOT EXISTS (SELECT 1 FROM {rebuilds} r WHERE r.replay_id = $1 AND r.order_id = v.order_id)"
    )))
    .bind(replay_id)
    .fetch_one(&mut *tx)
    .await?;
    let examples: Vec<Example> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT r.order_id, v.status, r.status, v.cancel_reason, r.cancel_reason
         FROM {rebuilds} r LEFT JOIN {live} v USING (order_id)
         WHERE r.replay_id = $1 AND (v.order_id IS NULL OR {differ})
         ORDER BY r.order_id LIMIT $2"
    )))
    .bind(replay_id)
    .bind(EXAMPLES)
    .fetch_all(&mut *tx)
    .await?;
    let describe = |status: &str, reason: Option<&str>| match reason {
        Some(reason) => format!("{status} ({reason})"),
        None => status.to_owned(),
    };
    let examples = examples
        .into_iter()
        .map(|(order, live, rebuilt, live_reason, rebuilt_reason)| {
            let rebuilt = describe(&rebuilt, rebuilt_reason.as_deref());
            match live {
                None => format!("order {order}: missing from the view; the events say {rebuilt}"),
                Some(live) => format!(
                    "order {order}: the view says {}, the events {rebuilt}",
                    describe(&live, live_reason.as_deref())
                ),
            }
        })
        .collect();
    let mut restored = 0;
    if restore {
        let copied = ["order_id"]
            .iter()
            .chain(t.decided)
            .chain(t.copied)
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        restored += sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {live} ({copied})
             SELECT {copied} FROM {rebuilds} WHERE replay_id = $1
             ON CONFLICT (order_id) DO NOTHING"
        )))
        .bind(replay_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let set = t
            .decided
            .iter()
            .map(|c| format!("{c} = r.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        restored += sqlx::query(AssertSqlSafe(format!(
            "UPDATE {live} v SET {set}, ended_at = coalesce(v.ended_at, r.ended_at)
             FROM {rebuilds} r
             WHERE r.replay_id = $1 AND r.order_id = v.order_id AND {differ}
               AND NOT (v.status <> 'placed' AND r.status = 'placed')"
        )))
        .bind(replay_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {rebuilds} WHERE replay_id = $1"
        )))
        .bind(replay_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM inbox WHERE consumer_group = $1")
            .bind(scope)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(Differences {
        rebuilt,
        missing,
        differing,
        view_ahead,
        only_in_view,
        restored: i64::try_from(restored).unwrap_or(i64::MAX),
        examples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_with_external_effects_are_refused_by_name() {
        assert_eq!(
            Projection::for_group("orders-view"),
            Ok(Projection::OrdersView)
        );
        assert_eq!(
            Projection::for_group("orders-global"),
            Ok(Projection::OrdersGlobal)
        );
        for group in ["payments", "inventory"] {
            let refused = Projection::for_group(group).unwrap_err();
            assert!(
                refused.contains(&format!("group {group} is not rebuildable")),
                "{refused}"
            );
            assert!(refused.contains("group reset"), "{refused}");
        }
        assert!(
            Projection::for_group("nope")
                .unwrap_err()
                .contains("unknown group nope: rebuildable groups are orders-view, orders-global")
        );
    }

    #[test]
    fn a_projection_reads_its_own_topic_prefixed_or_not() {
        assert!(Projection::OrdersView.check_source("orders.events").is_ok());
        assert!(
            Projection::OrdersView
                .check_source("t1.orders.events")
                .is_ok()
        );
        assert!(
            Projection::OrdersView
                .check_source("payments.events")
                .unwrap_err()
                .contains("reads orders.events, not payments.events")
        );
        assert!(
            Projection::OrdersGlobal
                .check_source("east.orders.events")
                .is_ok()
        );
    }
}
