//! `orders_global`: every region's orders as this region sees them.
//!
//! In each region the group `<prefix>orders-global` reads the region's own `orders.events` and the other
//! regions' copies that MirrorMaker 2 replicates into it (`<region>.orders.events`), and keeps one row per
//! order with the region it is homed in (its events' `origin_region`). Both regions converge to the same
//! rows. An event can reach a region twice (its own topic and a copy after a failover, a replay, a
//! redelivery): the inbox applies it once per event id. An order's events all come from its home region's
//! topic, in order; a state change of an order that ended already changes nothing.
//!
//! The view carries what the events carry: no timestamps of the home region (`seen_at` is when this region
//! applied the placement, which the replication benchmark measures).

use std::sync::Arc;

use consumers::{ConsumerConfig, ConsumerRuntime, Handler, HandlerError, Incoming};
use domain::OrderEvent;
use producers::KafkaConfig;
use producers::headers::{EVENT_TYPE, ORIGIN_REGION};
use producers::topics::{Service, Topics};
use schemas::AvroCodec;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{ServiceError, ServicesConfig};

/// The consumer group's name after the prefix.
pub const GROUP: &str = "orders-global";

/// The topics the view reads: the region's own orders events, and each of `remote_regions`' replicated.
#[must_use]
pub fn topics(topics: &Topics, remote_regions: &[String]) -> Vec<String> {
    let local = topics.events(Service::Orders);
    std::iter::once(local.clone())
        .chain(
            remote_regions
                .iter()
                .map(|region| Topics::replicated(region, &local)),
        )
        .collect()
}

/// Applies order events to `orders_global`.
pub struct GlobalView {
    pub codec: Arc<AvroCodec>,
}

impl Handler for GlobalView {
    async fn handle(&self, tx: &mut PgConnection, record: &Incoming) -> Result<(), HandlerError> {
        if !matches!(
            record.headers.get(EVENT_TYPE).map(String::as_str),
            Some("OrderPlaced" | "OrderCompleted" | "OrderCancelled")
        ) {
            // The orders service's replies share the topic; they change no order.
            return Ok(());
        }
        let event: OrderEvent = self
            .codec
            .decode_as(&record.payload)
            .await
            .map_err(ServiceError::Schema)?;
        let home = record
            .headers
            .get(ORIGIN_REGION)
            .map_or("unknown", String::as_str);
        apply(tx, home, &event, None)
            .await
            .map_err(|e| ServiceError::Database(e).into())
    }
}

/// Applies one order event of an order homed in `home` to the view: the live `orders_global`, or with
/// `rebuild` the rows of that replay in `orders_global_rebuilds` (`orderflow replay --to-group orders-global
/// --rebuild`). A repeated placement and a state change of an order already ended change nothing.
///
/// # Errors
/// Database errors.
pub async fn apply(
    conn: &mut PgConnection,
    home: &str,
    event: &OrderEvent,
    rebuild: Option<Uuid>,
) -> Result<(), sqlx::Error> {
    // The rebuild's statements take the replay id as their last parameter.
    let query = match event {
        OrderEvent::Placed {
            order_id,
            customer_id,
            total,
            ..
        } => sqlx::query(if rebuild.is_some() {
            "INSERT INTO orders_global_rebuilds
                 (order_id, home_region, customer_id, status, total_minor, currency, replay_id)
             VALUES ($1, $2, $3, 'placed', $4, $5, $6)
             ON CONFLICT (replay_id, order_id) DO NOTHING"
        } else {
            "INSERT INTO orders_global (order_id, home_region, customer_id, status, total_minor, currency)
             VALUES ($1, $2, $3, 'placed', $4, $5)
             ON CONFLICT (order_id) DO NOTHING"
        })
        .bind(order_id.as_uuid())
        .bind(home)
        .bind(customer_id.as_uuid())
        .bind(total.minor())
        .bind(total.currency().code()),
        OrderEvent::Completed { order_id } | OrderEvent::Cancelled { order_id, .. } => {
            let (status, reason) = match event {
                OrderEvent::Cancelled { reason, .. } => ("cancelled", Some(reason.name())),
                _ => ("completed", None),
            };
            sqlx::query(if rebuild.is_some() {
                "UPDATE orders_global_rebuilds SET status = $2, cancel_reason = $3, ended_at = now()
                 WHERE order_id = $1 AND status = 'placed' AND replay_id = $4"
            } else {
                "UPDATE orders_global SET status = $2, cancel_reason = $3, ended_at = now()
                 WHERE order_id = $1 AND status = 'placed'"
            })
            .bind(order_id.as_uuid())
            .bind(status)
            .bind(reason)
        }
    };
    match rebuild {
        Some(id) => query.bind(id),
        None => query,
    }
    .execute(conn)
    .await?;
    Ok(())
}

/// Runs the view's consumer (`<group_prefix>orders-global`) until `cancel` fires. The replicated topics are
/// created when missing, with `partitions` like the local one, so that the consumer can start before
/// MirrorMaker 2 has copied anything (it replicates partition by partition into the existing topic).
///
/// # Errors
/// When a topic cannot be created or the consumer fails.
pub async fn run(
    pool: PgPool,
    kafka: &KafkaConfig,
    codec: Arc<AvroCodec>,
    config: &ServicesConfig,
    partitions: i32,
    cancel: CancellationToken,
) -> Result<(), ServiceError> {
    let settings = ConsumerConfig {
        group_id: format!("{}{GROUP}", config.group_prefix),
        topics: topics(&config.topics, &config.remote_regions),
        ..config.consumer.clone()
    };
    for topic in &settings.topics {
        producers::ensure_topic(kafka, topic, partitions).await?;
    }
    tracing::info!(group = %settings.group_id, topics = ?settings.topics, "global view starting");
    ConsumerRuntime::new(pool, kafka, settings, GlobalView { codec })?
        .run(cancel)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_view_reads_its_own_topic_and_the_other_regions_copies() {
        let topics = Topics::with_prefix("xr-1.");
        assert_eq!(
            super::topics(&topics, &["west".to_owned()]),
            ["xr-1.orders.events", "west.xr-1.orders.events"]
        );
        assert_eq!(super::topics(&topics, &[]), ["xr-1.orders.events"]);
    }
}
