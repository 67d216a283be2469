//! The simulated provider's HTTP API against a real database: idempotent on the key, its own refusals, its
//! results written as notifications in the transaction that books them (or not, or twice, by its knobs),
//! one payment's view, the settlement statement, and bad requests named.

use provider::{LocalProvider, ProviderConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

struct Api {
    db: testkit::TestDb,
    local: LocalProvider,
    client: reqwest::Client,
}

impl Api {
    async fn start(config: ProviderConfig) -> Self {
        let db = testkit::TestDb::new().await;
        // Its results go to a payments service nobody runs here.
        let config = ProviderConfig {
            callback: provider::CallbackConfig {
                url: Some("http://127.0.0.1:9/nobody".into()),
                ..config.callback
            },
            ..config
        };
        let local = LocalProvider::start(db.pool().clone(), config)
            .await
            .unwrap();
        Self {
            db,
            local,
            client: reqwest::Client::new(),
        }
    }

    fn url(&self) -> &str {
        self.local.url()
    }

    /// POSTs `operation` for `order` with `key`; the status and the body.
    async fn ask(
        &self,
        order: Uuid,
        operation: &str,
        key: &str,
        minor: i64,
    ) -> (StatusCode, Value) {
        let answer = self
            .client
            .post(format!("{}/v1/payments/{order}/{operation}", self.url()))
            .header(provider::IDEMPOTENCY_KEY, key)
            .json(&json!({ "amount_minor": minor, "currency": "EUR" }))
            .send()
            .await
            .unwrap();
        let status = answer.status();
        (status, answer.json().await.unwrap_or(Value::Null))
    }

    async fn notifications(&self) -> Vec<Value> {
        sqlx::query_scalar("SELECT body FROM notifications ORDER BY created_at, id")
            .fetch_all(self.db.pool())
            .await
            .unwrap()
    }
}

fn calm() -> ProviderConfig {
    ProviderConfig::without_faults()
}

#[tokio::test]
async fn a_request_is_accepted_once_its_repeat_gets_the_result_and_the_result_is_notified_once() {
    let api = Api::start(calm()).await;
    let order = Uuid::now_v7();
    let (status, accepted) = api.ask(order, "authorize", "k1", 4399).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    assert_eq!(accepted["status"], "pending");
    let reference = accepted["reference"].as_str().unwrap().to_owned();

    let (status, repeat) = api.ask(order, "authorize", "k1", 4399).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (repeat["reference"].as_str(), repeat["outcome"].as_str()),
        (Some(reference.as_str()), Some("approved"))
    );
    let notified = api.notifications().await;
    assert_eq!(notified.len(), 1, "one result, notified once: {notified:?}");
    assert_eq!(notified[0], repeat, "the notification carries the result");

    // Capture, then the provider's own refusals: a second capture, a refund past the capture.
    assert_eq!(
        api.ask(order, "capture", "k1", 4399).await.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        api.ask(order, "capture", "k2", 4399).await.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        api.ask(order, "refund", "r1", 5000).await.0,
        StatusCode::ACCEPTED
    );
    let (_, refused) = api.ask(order, "refund", "r1", 5000).await;
    assert_eq!(refused["outcome"], "declined");
    assert!(
        refused["reason"].as_str().unwrap().contains("exceeds"),
        "{refused}"
    );

    let view: Value = api
        .client
        .get(format!("{}/v1/payments/{order}", api.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            &view["authorized_minor"],
            &view["captured_minor"],
            &view["refunded_minor"]
        ),
        (&json!(4399), &json!(4399), &json!(0)),
        "{view}"
    );
    assert_eq!(view["operations"].as_array().unwrap().len(), 4);
    let ledger: i64 =
        sqlx::query_scalar("SELECT count(*) FROM provider_ledger WHERE order_id = $1")
            .bind(order)
            .fetch_one(api.db.pool())
            .await
            .unwrap();
    assert_eq!(
        ledger, 2,
        "money moved for the authorization and one capture only"
    );
    let unknown = api
        .client
        .get(format!("{}/v1/payments/{}", api.url(), Uuid::now_v7()))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

/// A key names one request: the same key for another order or another amount is refused, 422, and books
/// nothing; the first request's result is untouched.
#[tokio::test]
async fn a_key_used_again_for_another_request_is_refused() {
    let api = Api::start(calm()).await;
    let (first, other) = (Uuid::now_v7(), Uuid::now_v7());
    assert_eq!(
        api.ask(first, "authorize", "shared", 100).await.0,
        StatusCode::ACCEPTED
    );
    for (order, minor) in [(other, 100), (first, 999)] {
        let (status, body) = api.ask(order, "authorize", "shared", minor).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            body["error"].as_str().unwrap().contains("Idempotency-Key"),
            "{body}"
        );
    }
    let booked: Vec<(Uuid, i64)> =
        sqlx::query_as("SELECT order_id, amount_minor FROM provider_requests")
            .fetch_all(api.db.pool())
            .await
            .unwrap();
    assert_eq!(booked, [(first, 100)]);
    let (status, repeat) = api.ask(first, "authorize", "shared", 100).await;
    assert_eq!(
        (status, repeat["order_id"].as_str()),
        (StatusCode::OK, Some(first.to_string().as_str()))
    );
}

#[tokio::test]
async fn the_knobs_lose_duplicate_and_time_out_results_as_they_say() {
    let losing = Api::start(ProviderConfig {
        lost_notification_rate: 1.0,
        ..calm()
    })
    .await;
    assert_eq!(
        losing.ask(Uuid::now_v7(), "authorize", "a", 100).await.0,
        StatusCode::ACCEPTED
    );
    assert!(
        losing.notifications().await.is_empty(),
        "lost: never notified"
    );

    let doubling = Api::start(ProviderConfig {
        duplicate_notification_rate: 1.0,
        ..calm()
    })
    .await;
    doubling.ask(Uuid::now_v7(), "authorize", "a", 100).await;
    let twice = doubling.notifications().await;
    assert_eq!(twice.len(), 2);
    assert_eq!(twice[0], twice[1], "one result, twice");

    let charging = Api::start(ProviderConfig {
        timeout_rate: 1.0,
        charge_before_timeout: 1.0,
        ..calm()
    })
    .await;
    let order = Uuid::now_v7();
    for _ in 0..3 {
        assert_eq!(
            charging.ask(order, "authorize", "a", 100).await.0,
            StatusCode::GATEWAY_TIMEOUT
        );
    }
    let booked: i64 = sqlx::query_scalar("SELECT count(*) FROM provider_ledger")
        .fetch_one(charging.db.pool())
        .await
        .unwrap();
    assert_eq!(booked, 1, "timed out three times, charged once");

    let not_charging = Api::start(ProviderConfig {
        timeout_rate: 1.0,
        charge_before_timeout: 0.0,
        ..calm()
    })
    .await;
    not_charging.ask(order, "authorize", "a", 100).await;
    let booked: i64 = sqlx::query_scalar("SELECT count(*) FROM provider_requests")
        .fetch_one(not_charging.db.pool())
        .await
        .unwrap();
    assert_eq!(booked, 0, "timed out before it did anything");
}

#[tokio::test]
async fn the_settlement_statement_lists_each_money_movement_of_the_window() {
    let api = Api::start(calm()).await;
    let before = chrono::Utc::now();
    let order = Uuid::now_v7();
    api.ask(order, "authorize", "s", 2500).await;
    api.ask(order, "capture", "s", 2500).await;
    api.ask(order, "refund", "s-0", 500).await;
    let after = chrono::Utc::now() + chrono::Duration::seconds(1);
    let statement = |from: chrono::DateTime<chrono::Utc>, to: chrono::DateTime<chrono::Utc>| {
        api.client
            .get(format!("{}/v1/settlements", api.url()))
            .query(&[("from", from.to_rfc3339()), ("to", to.to_rfc3339())])
            .send()
    };
    let answer = statement(before, after).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert!(
        answer.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = answer.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "reference,order_id,operation,amount_minor,currency,booked_at"
    );
    let rows: Vec<Vec<&str>> = lines[1..].iter().map(|l| l.split(',').collect()).collect();
    let movements: Vec<(&str, &str)> = rows.iter().map(|r| (r[2], r[3])).collect();
    assert_eq!(
        movements,
        [
            ("authorize", "2500"),
            ("capture", "2500"),
            ("refund", "500")
        ]
    );
    assert!(
        rows.iter()
            .all(|r| r[1] == order.to_string() && r[4] == "EUR")
    );
    assert_eq!(rows[1][0], format!("psp-capture-s"));
    // Another window has none of them; an empty window is refused with why.
    let earlier = statement(before - chrono::Duration::hours(2), before)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(earlier.lines().count(), 1);
    let empty = statement(after, before).await.unwrap();
    assert_eq!(empty.status(), StatusCode::BAD_REQUEST);
    assert!(empty.text().await.unwrap().contains("is not before"));
}

#[tokio::test]
async fn bad_requests_are_refused_naming_what_is_wrong_and_book_nothing() {
    let api = Api::start(calm()).await;
    let order = Uuid::now_v7();
    let refusals = [
        (
            api.ask(order, "authorize", "", 100).await,
            "Idempotency-Key",
        ),
        (
            api.ask(order, "authorize", "a,b", 100).await,
            "Idempotency-Key",
        ),
        (api.ask(order, "authorize", "k", -1).await, "negative"),
        (api.ask(order, "steal", "k", 100).await, "unknown operation"),
    ];
    for ((status, body), names) in refusals {
        assert!(status.is_client_error(), "{status} {body}");
        assert!(
            body["error"].as_str().unwrap_or_default().contains(names),
            "{body} should name {names}"
        );
    }
    let not_a_uuid = api
        .client
        .post(format!("{}/v1/payments/nope/authorize", api.url()))
        .header(provider::IDEMPOTENCY_KEY, "k")
        .json(&json!({ "amount_minor": 1, "currency": "EUR" }))
        .send()
        .await
        .unwrap();
    assert_eq!(not_a_uuid.status(), StatusCode::BAD_REQUEST);
    let booked: i64 = sqlx::query_scalar("SELECT count(*) FROM provider_requests")
        .fetch_one(api.db.pool())
        .await
        .unwrap();
    assert_eq!(booked, 0);
}
