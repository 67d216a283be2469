//! The event store against a real Postgres: append and rebuild, optimistic concurrency, and outbox records
//! written in the same transaction as their events.

mod common;

use std::time::Duration;

use domain::{
    Aggregate as _, Currency, CustomerId, DomainError, InventoryCommand, InventoryState, Money,
    OrderCommand, OrderEvent, OrderId, OrderLine, OrderLines, OrderState, Quantity, Sku,
};
use outbox::{EventStore, Metadata, OutboxError};
use producers::headers;
use producers::topics::Topics;

fn lines() -> OrderLines {
    OrderLines::new(vec![OrderLine {
        sku: Sku::new("MUG-RED").unwrap(),
        quantity: Quantity::new(2).unwrap(),
        unit_price: Money::new(1250, Currency::EUR).unwrap(),
    }])
    .unwrap()
}

#[tokio::test]
async fn executing_commands_appends_events_and_rebuilds_the_aggregate() {
    let db = testkit::TestDb::new().await;
    let store = EventStore::json(db.pool().clone(), Topics::with_prefix("t-"), "eu-west");
    let order_id = OrderId::new();
    let id = order_id.to_string();
    let meta = Metadata::new(order_id.into());
    let place = OrderCommand::Place {
        order_id,
        customer_id: CustomerId::new(),
        lines: lines(),
        idempotency_key: Some("checkout-1".into()),
    };
    let placed = store
        .execute::<OrderState>(&id, place, &meta)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(placed.version, 1);
    assert!(matches!(placed.events[..], [OrderEvent::Placed { .. }]));

    let completed = store
        .execute::<OrderState>(&id, OrderCommand::Complete, &meta)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(completed.version, 2);

    let loaded = store.load::<OrderState>(&id).await.unwrap();
    assert_eq!(loaded.version, 2);
    assert_eq!(loaded.state, completed.state);
    assert!(loaded.state.is_terminal());

    // A rejected command is an answer, not an error, and writes nothing.
    let again = store
        .execute::<OrderState>(&id, OrderCommand::Complete, &meta)
        .await
        .unwrap()
        .unwrap();
    assert!(again.events.is_empty(), "completing twice is a no-op");
    let cancel = store
        .execute::<OrderState>(
            &id,
            OrderCommand::Cancel {
                reason: domain::CancelReason::CustomerRequest,
            },
            &meta,
        )
        .await
        .unwrap();
    assert!(matches!(cancel, Err(DomainError::IllegalTransition { .. })));
    assert_eq!(store.load::<OrderState>(&id).await.unwrap().version, 2);
}

#[tokio::test]
async fn outbox_records_carry_the_event_and_its_headers() {
    let db = testkit::TestDb::new().await;
    let store = EventStore::json(db.pool().clone(), Topics::with_prefix("t-"), "eu-west");
    let sku = Sku::new("TEA-GREEN").unwrap();
    let correlation = uuid::Uuid::now_v7();
    let causation = uuid::Uuid::now_v7();
    let meta = Metadata::new(correlation).caused_by(causation);
    store
        .execute::<InventoryState>(
            sku.as_str(),
            InventoryCommand::Receive {
                sku: sku.clone(),
                quantity: 40,
            },
            &meta,
        )
        .await
        .unwrap()
        .unwrap();

    let (topic, key, payload, record_headers): (
        String,
        String,
        Vec<u8>,
        sqlx::types::Json<headers::RecordHeaders>,
    ) = sqlx::query_as("SELECT topic, key, payload, headers FROM outbox")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(topic, "t-inventory.events");
    assert_eq!(key, "TEA-GREEN");
    let event: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(event["type"], "StockReceived");
    assert_eq!(event["quantity"], 40);

    let event_id: uuid::Uuid = sqlx::query_scalar("SELECT event_id FROM events")
        .fetch_one(db.pool())
        .await
        .unwrap();
    let h = &record_headers.0;
    assert_eq!(h[headers::EVENT_ID], event_id.to_string());
    assert_eq!(h[headers::EVENT_TYPE], "StockReceived");
    assert_eq!(h[headers::EVENT_VERSION], "1");
    assert_eq!(h[headers::CORRELATION_ID], correlation.to_string());
    assert_eq!(h[headers::CAUSATION_ID], causation.to_string());
    assert_eq!(h[headers::ORIGIN_REGION], "eu-west");
    assert!(headers::is_traceparent(&h[headers::TRACEPARENT]));
    assert!(!h.contains_key(headers::SCHEMA_ID), "JSON has no schema id");
}

#[tokio::test]
async fn of_two_concurrent_writers_one_wins_and_the_other_gets_conflict() {
    let db = testkit::TestDb::new().await;
    let store = EventStore::json(db.pool().clone(), Topics::default(), "eu-west");
    let sku = common::sku(1);
    let events = common::received(&sku, 1);
    let meta = Metadata::new(uuid::Uuid::now_v7());

    // Both loaded version 0. The first holds its transaction open; the second blocks on the key and, once
    // the first commits, must get a typed Conflict.
    let mut first = db.pool().begin().await.unwrap();
    store
        .append::<InventoryState>(&mut first, sku.as_str(), 0, &events, &meta)
        .await
        .unwrap();
    let second = {
        let store = store.clone();
        let (sku, events, meta) = (sku.clone(), events.clone(), meta.clone());
        tokio::spawn(async move {
            let mut tx = store.pool().begin().await.unwrap();
            store
                .append::<InventoryState>(&mut tx, sku.as_str(), 0, &events, &meta)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !second.is_finished(),
        "the second writer waits for the first"
    );
    first.commit().await.unwrap();
    let outcome = second.await.unwrap();
    assert!(
        matches!(&outcome, Err(OutboxError::Conflict { expected: 0, .. })),
        "{outcome:?}"
    );
    assert!(outcome.unwrap_err().is_retryable());

    let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM events")
        .fetch_all(db.pool())
        .await
        .unwrap();
    assert_eq!(versions, [1]);
    assert_eq!(common::outbox_len(db.pool()).await, 1, "one outbox record");
}

#[tokio::test]
async fn a_rolled_back_transaction_leaves_neither_events_nor_records() {
    let db = testkit::TestDb::new().await;
    let store = EventStore::json(db.pool().clone(), Topics::default(), "eu-west");
    let sku = common::sku(2);
    let mut tx = db.pool().begin().await.unwrap();
    store
        .append::<InventoryState>(
            &mut tx,
            sku.as_str(),
            0,
            &common::received(&sku, 3),
            &Metadata::new(uuid::Uuid::now_v7()),
        )
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(common::outbox_len(db.pool()).await, 0);
    assert_eq!(
        store
            .load::<InventoryState>(sku.as_str())
            .await
            .unwrap()
            .version,
        0
    );
}
