//! Inventory: no oversell under concurrency, all lines or none, release and commit, a Kafka round trip.

mod common;

use domain::Service;
use std::sync::Arc;
use std::time::Duration;

use domain::{InventoryRequest, OrderId, OrderStockEvent, Quantity, Sku, StockLine};
use services::inventory;
use testkit::TestDb;

fn line(sku: &str, quantity: u32) -> StockLine {
    StockLine {
        sku: Sku::new(sku).unwrap(),
        quantity: Quantity::new(quantity).unwrap(),
    }
}

/// Reserves `lines` for a fresh order in its own transaction.
async fn reserve(db: &TestDb, lines: &[StockLine]) -> (OrderId, OrderStockEvent) {
    let order_id = OrderId::new();
    let mut tx = db.pool().begin().await.unwrap();
    let reply = inventory::reserve(&mut tx, order_id, lines).await.unwrap();
    // The handler's transaction goes on to write its reply: keep the locks a moment, so that concurrent
    // reservations overlap and find every bucket busy.
    tokio::time::sleep(Duration::from_millis(5)).await;
    tx.commit().await.unwrap();
    (order_id, reply)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reservations_never_oversell_and_never_reject_while_stock_is_free() {
    let db = Arc::new(TestDb::new().await);
    let hot = Sku::new("FLASH-1").unwrap();
    inventory::set_stock(db.pool(), &hot, 20, 4).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let db = Arc::clone(&db);
        tasks.spawn(async move { reserve(&db, &[line("FLASH-1", 1)]).await.1 });
    }
    let mut reserved = 0;
    let mut rejected = 0;
    while let Some(reply) = tasks.join_next().await {
        match reply.unwrap() {
            OrderStockEvent::OrderStockReserved { .. } => reserved += 1,
            OrderStockEvent::OrderStockRejected { available, .. } => {
                assert_eq!(available, 0, "rejected while units were free");
                rejected += 1;
            }
            other => panic!("unexpected reply {other:?}"),
        }
    }
    assert_eq!((reserved, rejected), (20, 180));
    let level = inventory::stock_level(db.pool(), &hot).await.unwrap();
    assert_eq!((level.on_hand, level.reserved, level.buckets), (20, 20, 4));
    let (rows, units): (i64, Option<i64>) = sqlx::query_as(
        "SELECT count(*), sum(quantity)::bigint FROM stock_reservations WHERE sku = 'FLASH-1'",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!((rows, units), (20, Some(20)));
    let over: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM stock_buckets WHERE reserved > on_hand OR reserved < 0",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(over, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn as_many_concurrent_buyers_as_units_all_get_one_although_every_bucket_is_busy() {
    let db = Arc::new(TestDb::new().await);
    let sku = Sku::new("FLASH-2").unwrap();
    inventory::set_stock(db.pool(), &sku, 40, 4).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let db = Arc::clone(&db);
        tasks.spawn(async move { reserve(&db, &[line("FLASH-2", 1)]).await.1 });
    }
    while let Some(reply) = tasks.join_next().await {
        let reply = reply.unwrap();
        assert!(
            matches!(reply, OrderStockEvent::OrderStockReserved { .. }),
            "rejected while units were free: {reply:?}"
        );
    }
    let level = inventory::stock_level(db.pool(), &sku).await.unwrap();
    assert_eq!((level.on_hand, level.reserved), (40, 40));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_multi_line_orders_in_both_sku_orders_neither_deadlock_nor_oversell() {
    let db = Arc::new(TestDb::new().await);
    inventory::set_stock(db.pool(), &Sku::new("A-1").unwrap(), 30, 3)
        .await
        .unwrap();
    inventory::set_stock(db.pool(), &Sku::new("B-1").unwrap(), 30, 2)
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..100 {
        let db = Arc::clone(&db);
        // Lines in both orders, and quantities that need several buckets once they fragment.
        let lines = if n % 2 == 0 {
            vec![line("A-1", 2), line("B-1", 3)]
        } else {
            vec![line("B-1", 3), line("A-1", 2)]
        };
        tasks.spawn(async move { reserve(&db, &lines).await.1 });
    }
    let mut reserved = 0;
    while let Some(reply) = tasks.join_next().await {
        if let OrderStockEvent::OrderStockReserved { .. } = reply.unwrap() {
            reserved += 1;
        }
    }
    // B-1 (30 units, 3 per order) is the limit: exactly 10 orders fit.
    assert_eq!(reserved, 10);
    let a = inventory::stock_level(db.pool(), &Sku::new("A-1").unwrap())
        .await
        .unwrap();
    let b = inventory::stock_level(db.pool(), &Sku::new("B-1").unwrap())
        .await
        .unwrap();
    assert_eq!((a.reserved, b.reserved), (20, 30));
}

#[tokio::test]
async fn a_line_short_of_stock_reserves_nothing_and_a_repeat_gets_the_same_answer() {
    let db = TestDb::new().await;
    inventory::set_stock(db.pool(), &Sku::new("MUG-RED").unwrap(), 5, 2)
        .await
        .unwrap();
    inventory::set_stock(db.pool(), &Sku::new("TEA-1KG").unwrap(), 1, 1)
        .await
        .unwrap();
    let lines = [line("MUG-RED", 4), line("TEA-1KG", 2)];
    let (order_id, reply) = reserve(&db, &lines).await;
    let rejected = OrderStockEvent::OrderStockRejected {
        order_id,
        sku: Sku::new("TEA-1KG").unwrap(),
        requested: Quantity::new(2).unwrap(),
        available: 1,
    };
    assert_eq!(reply, rejected);
    let mug = inventory::stock_level(db.pool(), &Sku::new("MUG-RED").unwrap())
        .await
        .unwrap();
    assert_eq!(mug.reserved, 0, "the first line was not kept");
    // The repeat gets the same rejection, even though it is asked again.
    let mut tx = db.pool().begin().await.unwrap();
    let again = inventory::reserve(&mut tx, order_id, &lines).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(again, rejected);
}

#[tokio::test]
async fn reservation_spanning_buckets_then_release_and_commit() {
    let db = TestDb::new().await;
    let sku = Sku::new("MUG-RED").unwrap();
    inventory::set_stock(db.pool(), &sku, 10, 4).await.unwrap(); // 3, 3, 2, 2
    // 7 units fit in no single bucket: taken from several.
    let (first, reply) = reserve(&db, &[line("MUG-RED", 7)]).await;
    assert_eq!(
        reply,
        OrderStockEvent::OrderStockReserved { order_id: first }
    );
    let (second, reply) = reserve(&db, &[line("MUG-RED", 3)]).await;
    assert_eq!(
        reply,
        OrderStockEvent::OrderStockReserved { order_id: second }
    );
    let level = inventory::stock_level(db.pool(), &sku).await.unwrap();
    assert_eq!((level.on_hand, level.reserved), (10, 10));

    let mut tx = db.pool().begin().await.unwrap();
    let released = inventory::release(&mut tx, first).await.unwrap();
    let committed = inventory::commit(&mut tx, second).await.unwrap();
    // Repeats, and an undo of nothing.
    let released_again = inventory::release(&mut tx, first).await.unwrap();
    let committed_again = inventory::commit(&mut tx, second).await.unwrap();
    let release_after_commit = inventory::release(&mut tx, second).await.unwrap();
    let nobody = OrderId::new();
    let release_nothing = inventory::release(&mut tx, nobody).await.unwrap();
    let late_reserve = inventory::reserve(&mut tx, nobody, &[line("MUG-RED", 1)])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        released,
        OrderStockEvent::OrderStockReleased { order_id: first }
    );
    assert_eq!(released_again, released);
    assert_eq!(
        committed,
        OrderStockEvent::OrderStockCommitted { order_id: second }
    );
    assert_eq!(committed_again, committed);
    assert_eq!(release_after_commit, committed);
    assert_eq!(
        release_nothing,
        OrderStockEvent::OrderStockReleased { order_id: nobody }
    );
    assert_eq!(
        late_reserve, release_nothing,
        "a reserve after the release reserves nothing"
    );

    let level = inventory::stock_level(db.pool(), &sku).await.unwrap();
    assert_eq!((level.on_hand, level.reserved), (7, 0));
    let mut tx = db.pool().begin().await.unwrap();
    let no_reservation = inventory::commit(&mut tx, OrderId::new()).await;
    assert!(matches!(
        no_reservation,
        Err(services::ServiceError::NotApplicable(_))
    ));
}

#[tokio::test]
async fn kafka_round_trip_reserve_and_release() {
    let env = common::Env::new().await;
    inventory::set_stock(env.db.pool(), &Sku::new("MUG-RED").unwrap(), 3, 1)
        .await
        .unwrap();
    let pipeline = env
        .start_pipeline(|pool, kafka, codec, config, stop| async move {
            services::run(Service::Inventory, pool, &kafka, codec, &config, stop).await
        })
        .await;
    let commands = env.config.topics.commands(Service::Inventory);
    let events = env.config.topics.events(Service::Inventory);
    let order_id = OrderId::new();
    let reserve = InventoryRequest::ReserveStock {
        order_id,
        lines: vec![line("MUG-RED", 2)],
    };
    let reserve_id = pipeline.send(&env.codec, &commands, &reserve).await;
    pipeline
        .send(
            &env.codec,
            &commands,
            &InventoryRequest::ReleaseStock { order_id },
        )
        .await;
    let replies = pipeline.replies(&env.codec, &events, 2).await;
    let types: Vec<&str> = replies
        .iter()
        .map(|(_, _, d)| d.event_type.as_str())
        .collect();
    assert_eq!(types, ["OrderStockReserved", "OrderStockReleased"]);
    for (key, headers, _) in &replies {
        assert_eq!(key, &order_id.to_string());
        assert_eq!(
            headers[producers::headers::CORRELATION_ID],
            order_id.to_string()
        );
    }
    assert_eq!(
        replies[0].1[producers::headers::CAUSATION_ID],
        reserve_id.to_string()
    );
    let reply: OrderStockEvent = serde_json::from_value(replies[0].2.event.clone()).unwrap();
    assert_eq!(reply, OrderStockEvent::OrderStockReserved { order_id });
    pipeline.stop().await;
}
