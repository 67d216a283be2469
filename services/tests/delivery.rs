//! Delivery: schedule and cancel with the reply contract, the carrier's dispatch, delivery and failures, a
//! Kafka round trip with the carrier running.

mod common;

use domain::Service;
use std::time::Duration;

use domain::{DeliveryRequest, OrderId};
use services::CarrierConfig;
use services::delivery::{self, Delivery, DeliveryHandler};

fn carrier(failure_rate: f64, post_dispatch_failure_rate: f64) -> CarrierConfig {
    CarrierConfig {
        dispatch_delay: Duration::ZERO,
        delivery_delay: Duration::ZERO,
        failure_rate,
        post_dispatch_failure_rate,
        poll_interval: Duration::from_millis(20),
        batch_size: 10,
        seed: 3,
    }
}

/// Runs carrier rounds until nothing is due.
async fn drive(env: &common::Env, config: &CarrierConfig) {
    let ctx = env.context();
    for _ in 0..10 {
        if delivery::carrier_round(&ctx, config).await.unwrap() == 0 {
            return;
        }
    }
    panic!("the carrier kept moving deliveries after 10 rounds");
}

async fn send(env: &common::Env, handler: &DeliveryHandler, request: DeliveryRequest) {
    let record = env
        .incoming(&env.config.topics.commands(Service::Delivery), &request)
        .await;
    env.apply(handler, &record).await.unwrap();
}

/// The event types on `delivery.events` of `order_id`, in order.
async fn events_of(env: &common::Env, order_id: OrderId) -> Vec<(String, serde_json::Value)> {
    env.outbox(&env.config.topics.events(Service::Delivery))
        .await
        .into_iter()
        .filter(|(key, _)| key == &order_id.to_string())
        .map(|(_, d)| (d.event_type, d.event))
        .collect()
}

fn types(events: &[(String, serde_json::Value)]) -> Vec<&str> {
    events.iter().map(|(t, _)| t.as_str()).collect()
}

#[tokio::test]
async fn schedule_cancel_and_their_repeats() {
    let env = common::Env::new().await;
    // A dispatch delay the test never reaches: nothing is due.
    let config = CarrierConfig {
        dispatch_delay: Duration::from_secs(3600),
        ..carrier(0.0, 0.0)
    };
    let handler = DeliveryHandler::from(Delivery::new(env.context(), config.clone()));
    let order_id = OrderId::new();
    send(
        &env,
        &handler,
        DeliveryRequest::ScheduleDelivery { order_id },
    )
    .await;
    send(
        &env,
        &handler,
        DeliveryRequest::ScheduleDelivery { order_id },
    )
    .await;
    assert_eq!(
        delivery::carrier_round(&env.context(), &config)
            .await
            .unwrap(),
        0
    );
    send(&env, &handler, DeliveryRequest::CancelDelivery { order_id }).await;
    send(&env, &handler, DeliveryRequest::CancelDelivery { order_id }).await;
    let events = events_of(&env, order_id).await;
    assert_eq!(
        types(&events),
        [
            "DeliveryScheduled",
            "DeliveryScheduled",
            "DeliveryCancelled",
            "DeliveryCancelled"
        ]
    );
    assert_eq!(events[0].1, events[1].1);
    assert_eq!(events[2].1, events[3].1);
    assert_eq!(events[0].1["delivery_id"], events[2].1["delivery_id"]);
    let (_, status) = delivery::get_delivery(env.db.pool(), order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, "cancelled");

    // Cancel of nothing: DeliveryCancelled, with the order id's UUID as the delivery id.
    let nothing = OrderId::new();
    send(
        &env,
        &handler,
        DeliveryRequest::CancelDelivery { order_id: nothing },
    )
    .await;
    let events = events_of(&env, nothing).await;
    assert_eq!(types(&events), ["DeliveryCancelled"]);
    assert_eq!(events[0].1["delivery_id"], nothing.to_string());
}

#[tokio::test]
async fn the_carrier_dispatches_delivers_and_fails_before_or_after_dispatch() {
    let env = common::Env::new().await;
    for (config, expected, cancel_reply) in [
        (
            carrier(0.0, 0.0),
            &[
                "DeliveryScheduled",
                "DeliveryDispatched",
                "DeliveryCompleted",
            ][..],
            "DeliveryCompleted",
        ),
        (
            carrier(1.0, 0.0),
            &["DeliveryScheduled", "DeliveryFailed"][..],
            // Failed before dispatch: nothing is on its way.
            "DeliveryCancelled",
        ),
        (
            carrier(0.0, 1.0),
            &["DeliveryScheduled", "DeliveryDispatched", "DeliveryFailed"][..],
            "DeliveryFailed",
        ),
    ] {
        let handler = DeliveryHandler::from(Delivery::new(env.context(), config.clone()));
        let order_id = OrderId::new();
        send(
            &env,
            &handler,
            DeliveryRequest::ScheduleDelivery { order_id },
        )
        .await;
        drive(&env, &config).await;
        let events = events_of(&env, order_id).await;
        assert_eq!(types(&events), expected, "{config:?}");
        send(&env, &handler, DeliveryRequest::CancelDelivery { order_id }).await;
        let events = events_of(&env, order_id).await;
        assert_eq!(events.last().unwrap().0, cancel_reply, "{config:?}");
    }
}

#[tokio::test]
async fn kafka_round_trip_schedule_to_delivered() {
    let mut env = common::Env::new().await;
    env.config.carrier = carrier(0.0, 0.0);
    let pipeline = env
        .start_pipeline(|pool, kafka, codec, config, stop| async move {
            services::run(Service::Delivery, pool, &kafka, codec, &config, stop).await
        })
        .await;
    let order_id = OrderId::new();
    let commands = env.config.topics.commands(Service::Delivery);
    pipeline
        .send(
            &env.codec,
            &commands,
            &DeliveryRequest::ScheduleDelivery { order_id },
        )
        .await;
    let replies = pipeline
        .replies(&env.codec, &env.config.topics.events(Service::Delivery), 3)
        .await;
    let seen: Vec<(&str, &str)> = replies
        .iter()
        .map(|(key, _, d)| (key.as_str(), d.event_type.as_str()))
        .collect();
    let key = order_id.to_string();
    assert_eq!(
        seen,
        [
            (key.as_str(), "DeliveryScheduled"),
            (key.as_str(), "DeliveryDispatched"),
            (key.as_str(), "DeliveryCompleted")
        ]
    );
    pipeline.stop().await;
}

#[tokio::test]
async fn a_delivery_the_carrier_cannot_move_is_put_back_and_the_others_move() {
    let env = common::Env::new().await;
    let config = carrier(0.0, 0.0);
    let handler = DeliveryHandler::from(Delivery::new(env.context(), config.clone()));
    let (broken, healthy) = (OrderId::new(), OrderId::new());
    for order_id in [broken, healthy] {
        send(
            &env,
            &handler,
            DeliveryRequest::ScheduleDelivery { order_id },
        )
        .await;
    }
    // Both are due, the broken one first; its stream no longer reads.
    for (order_id, ago) in [(broken, "2 seconds"), (healthy, "1 second")] {
        sqlx::query("UPDATE deliveries SET due_at = now() - $2::interval WHERE order_id = $1")
            .bind(order_id.as_uuid())
            .bind(ago)
            .execute(env.db.pool())
            .await
            .unwrap();
    }
    sqlx::query("UPDATE events SET payload = '{\"not\": \"an event\"}' WHERE aggregate_id = $1")
        .bind(broken.to_string())
        .execute(env.db.pool())
        .await
        .unwrap();

    let moved = delivery::carrier_round(&env.context(), &config)
        .await
        .unwrap();

    assert_eq!(moved, 1, "the healthy delivery moved");
    let (_, status) = delivery::get_delivery(env.db.pool(), healthy)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, "dispatched");
    let pushed_back: bool =
        sqlx::query_scalar("SELECT due_at > now() FROM deliveries WHERE order_id = $1")
            .bind(broken.as_uuid())
            .fetch_one(env.db.pool())
            .await
            .unwrap();
    assert!(
        pushed_back,
        "the broken delivery is due later, so that it is not picked first forever"
    );
}

/// Issue 11, finding 1: the saga cancels a delivery whose `ScheduleDelivery` never got an answer (it was
/// dead-lettered, say); when that request is redriven later, no parcel is scheduled for the cancelled order.
#[tokio::test]
async fn a_cancel_before_the_schedule_is_remembered_and_a_late_schedule_ships_nothing() {
    let env = common::Env::new().await;
    let config = carrier(0.0, 0.0);
    let handler = DeliveryHandler::from(Delivery::new(env.context(), config.clone()));
    let order_id = OrderId::new();
    send(&env, &handler, DeliveryRequest::CancelDelivery { order_id }).await;
    send(
        &env,
        &handler,
        DeliveryRequest::ScheduleDelivery { order_id },
    )
    .await;

    let events = events_of(&env, order_id).await;
    assert_eq!(types(&events), ["DeliveryCancelled", "DeliveryCancelled"]);
    assert_eq!(
        events[0].1, events[1].1,
        "the late request gets the same answer"
    );
    assert_eq!(
        delivery::carrier_round(&env.context(), &config)
            .await
            .unwrap(),
        0,
        "nothing for the carrier to move"
    );
    let status = delivery::get_delivery(env.db.pool(), order_id)
        .await
        .unwrap()
        .map(|(_, status)| status);
    assert_ne!(status.as_deref(), Some("scheduled"));
}
