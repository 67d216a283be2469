//! The sagas needing attention, as the saga store records an escalation: the failed step, whether it was
//! compensating, the attempts and the last failure.

mod common;

use common::console_on;
use testkit::TestDb;

/// A saga of `order` that escalated at `step` after `events` (the types before the escalation).
async fn escalated(db: &TestDb, order: uuid::Uuid, events: &[&str], step: &str, error: &str) {
    sqlx::query(
        "INSERT INTO sagas (order_id, version, state, ended_at, outcome)
         VALUES ($1, $2, 'NeedsAttention', clock_timestamp(), 'needs_attention')",
    )
    .bind(order)
    .bind(events.len() as i64 + 1)
    .execute(db.pool())
    .await
    .unwrap();
    for (version, event_type) in events.iter().enumerate() {
        sqlx::query("INSERT INTO saga_events (order_id, version, event_type, event) VALUES ($1, $2, $3, $4)")
            .bind(order)
            .bind(version as i64 + 1)
            .bind(event_type)
            .bind(serde_json::json!({ "type": event_type }))
            .execute(db.pool())
            .await
            .unwrap();
    }
    sqlx::query(
        "INSERT INTO saga_events (order_id, version, event_type, event) VALUES ($1, $2, 'SagaEscalated', $3)",
    )
    .bind(order)
    .bind(events.len() as i64 + 1)
    .bind(serde_json::json!({
        "type": "SagaEscalated", "step": step, "attempts": 5, "last_error": error
    }))
    .execute(db.pool())
    .await
    .unwrap();
}

#[tokio::test]
async fn each_escalated_saga_shows_its_failed_step_and_why() {
    let db = TestDb::new().await;
    let (refund, capture) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    escalated(
        &db,
        refund,
        &["SagaStarted", "StockReserved", "CompensationStarted"],
        "RefundPayment",
        "the provider refused the refund",
    )
    .await;
    escalated(
        &db,
        capture,
        &["SagaStarted"],
        "CapturePayment",
        "provider timeout",
    )
    .await;
    let (base, stop) = console_on(&db).await;

    let listed: serde_json::Value = reqwest::get(format!("{base}/api/sagas/attention"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rows: Vec<(String, String, bool, String)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["order_id"].as_str().unwrap().to_owned(),
                s["step"].as_str().unwrap().to_owned(),
                s["compensating"].as_bool().unwrap(),
                s["last_error"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                refund.to_string(),
                "RefundPayment".into(),
                true,
                "the provider refused the refund".into()
            ),
            (
                capture.to_string(),
                "CapturePayment".into(),
                false,
                "provider timeout".into()
            ),
        ]
    );
    let page = reqwest::get(format!("{base}/sagas/attention"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("href=\"/orders/{refund}\"")) && page.contains("compensation"),
        "{page}"
    );
    let overview: serde_json::Value = reqwest::get(format!("{base}/api/overview"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(overview["sagas_needing_attention"], 2);
    stop.cancel();
}
