//! The sagas needing attention, as the saga store records an escalation: the failed step, whether it was
//! compensating, the attempts and the last failure; and retrying one over a real pipeline.

mod common;

use common::{TOKEN, console_on, escalate, running_with, saga_events, wait_for_outcome};
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
    // Escalations written before `retryable` existed all ran out of attempts: each can be retried.
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["retryable"] == true),
        "{listed}"
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

#[tokio::test]
async fn an_escalated_compensation_is_retried_from_the_console_and_the_pipeline_finishes_it() {
    // Every payment declined: each saga releases its stock, then cancels its order.
    let running = running_with(2, 1.0).await;
    let db = &running.db;
    let (order,): (uuid::Uuid,) =
        sqlx::query_as("SELECT order_id FROM sagas WHERE outcome = 'compensated' LIMIT 1")
            .fetch_one(db.pool())
            .await
            .unwrap();
    let types = |events: Vec<(i64, String)>| -> Vec<String> {
        events.into_iter().map(|(_, t)| t).collect()
    };
    assert_eq!(
        types(saga_events(&running, order).await),
        [
            "SagaStarted",
            "StockReserved",
            "CompensationStarted",
            "StockReleased"
        ]
    );
    // As if the inventory had not answered within the retry budget: the release escalated instead.
    escalate(&running, order, 3, &[], "ReleaseStock").await;

    let page = running.get("/sagas/attention").await.text().await.unwrap();
    assert!(
        page.contains(&format!("action=\"/sagas/{order}/retry\"")),
        "{page}"
    );
    let retry = format!("/api/sagas/{order}/retry");
    // Without the token: refused, nothing changed.
    let refused = running.post(&retry, None, None).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(saga_events(&running, order).await.len(), 4);

    let answer = running.post(&retry, None, Some(TOKEN)).await;
    assert_eq!(answer.status(), 200);
    let retried: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(retried["step"], "ReleaseStock");
    // The release goes out through the outbox; the inventory answers; the saga cancels the order again.
    wait_for_outcome(&running, order, "compensated").await;
    assert_eq!(
        types(saga_events(&running, order).await)[3..],
        ["SagaEscalated", "SagaResumed", "StockReleased"]
    );
    let (status,): (String,) = sqlx::query_as("SELECT status FROM orders_view WHERE order_id = $1")
        .bind(order)
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(status, "cancelled");

    // Again: the saga does not need attention any more.
    let again = running.post(&retry, None, Some(TOKEN)).await;
    assert_eq!(again.status(), 409);
    let problem: serde_json::Value = again.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("does not need attention"),
        "{problem}"
    );
    let audit: Vec<(String, String)> = sqlx::query_as(
        "SELECT actor, outcome FROM operator_actions WHERE action = 'saga.retry' AND target = $1 AND via = 'console'
         ORDER BY at",
    )
    .bind(format!("saga/{order}"))
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert_eq!(
        audit,
        [
            ("console@127.0.0.1".to_owned(), "done".to_owned()),
            ("console@127.0.0.1".to_owned(), "refused".to_owned()),
        ]
    );
    // Bad references: 400 and 404, as problem+json.
    for (reference, status) in [
        ("not-an-id", 400),
        (&*uuid::Uuid::now_v7().to_string(), 404),
    ] {
        let answer = running
            .post(&format!("/api/sagas/{reference}/retry"), None, Some(TOKEN))
            .await;
        assert_eq!(answer.status(), status, "{reference}");
        assert_eq!(
            answer.headers()["content-type"],
            "application/problem+json",
            "{reference}"
        );
    }
    running.stop().await;
}
