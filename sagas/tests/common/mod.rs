#![allow(dead_code, reason = "each test binary uses part of the helpers")]

//! Helpers shared by the saga store and orchestrator tests.

use std::time::Duration;

use domain::{Currency, CustomerId, Money, OrderId, OrderLine, OrderLines, Quantity, Sku};
use outbox::{JsonCodec, Metadata};
use producers::topics::Topics;
use sagas::{RetryPolicy, SagaConfig, SagaInput, SagaStore, StepTimeouts};
use sqlx::PgPool;
use uuid::Uuid;

pub fn lines() -> OrderLines {
    OrderLines::new(vec![
        OrderLine {
            sku: Sku::new("MUG-RED").unwrap(),
            quantity: Quantity::new(2).unwrap(),
            unit_price: Money::new(1250, Currency::EUR).unwrap(),
        },
        OrderLine {
            sku: Sku::new("TEA-1KG").unwrap(),
            quantity: Quantity::new(1).unwrap(),
            unit_price: Money::new(1899, Currency::EUR).unwrap(),
        },
    ])
    .unwrap()
}

pub fn start(order_id: OrderId) -> SagaInput {
    SagaInput::Start {
        order_id,
        customer_id: CustomerId::new(),
        lines: lines(),
    }
}

/// Long timeouts: no timer fires during a test unless the test asks for it.
pub fn patient() -> SagaConfig {
    SagaConfig::default()
}

/// Every timeout and backoff a few milliseconds, two attempts per retried step.
pub fn hasty() -> SagaConfig {
    let ms = Duration::from_millis;
    SagaConfig {
        timeouts: StepTimeouts {
            reserve_stock: ms(5),
            authorize_payment: ms(5),
            schedule_delivery: ms(5),
            dispatch: ms(5),
            capture_payment: ms(5),
            commit_stock: ms(5),
            delivery: ms(5),
            compensation: ms(5),
        },
        retry: RetryPolicy {
            max_attempts: 2,
            first_backoff: ms(5),
            max_backoff: ms(10),
        },
    }
}

/// A store writing JSON records to commands topics with a per-test prefix.
pub fn json_store(pool: &PgPool, config: SagaConfig) -> (SagaStore<JsonCodec>, Topics) {
    let topics = Topics::with_prefix(testkit::unique_name("t"));
    let store = SagaStore::new(pool.clone(), JsonCodec, topics.clone(), "test", config);
    (store, topics)
}

/// Metadata of a reply with a fresh event id.
pub fn reply_metadata(order_id: OrderId) -> Metadata {
    Metadata::new(order_id.into()).caused_by(Uuid::now_v7())
}

/// `(topic, type)` of every outbox record of `order_id`, in outbox order (JSON codec).
pub async fn outbox_commands(pool: &PgPool, order_id: OrderId) -> Vec<(String, String)> {
    let rows: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT topic, payload FROM outbox WHERE key = $1 ORDER BY id")
            .bind(order_id.to_string())
            .fetch_all(pool)
            .await
            .unwrap();
    rows.into_iter()
        .map(|(topic, payload)| {
            let json: serde_json::Value = serde_json::from_slice(&payload).unwrap();
            (topic, json["type"].as_str().unwrap().to_owned())
        })
        .collect()
}

/// The saga's version, state and outcome.
pub async fn saga_row(pool: &PgPool, order_id: OrderId) -> sagas::queries::SagaRow {
    sagas::queries::saga(pool, order_id)
        .await
        .unwrap()
        .expect("the saga exists")
}
