//! The console's outbox page and API: the quarantine as the database holds it, a record retried back into
//! the outbox and another discarded, with the token only, each an `operator_actions` row. No relay runs
//! here, so a retried record stays in the outbox to be seen.

mod common;

use common::{TOKEN, console_on};
use testkit::TestDb;

async fn quarantine(db: &TestDb, id: i64, reason: &str) {
    sqlx::query(
        "INSERT INTO outbox_quarantine (id, topic, key, payload, headers, created_at, attempts, reason)
         VALUES ($1, 'orders.events', 'order-1', '\\x00', '{}', now(), 5, $2)",
    )
    .bind(id)
    .bind(reason)
    .execute(db.pool())
    .await
    .unwrap();
}

#[tokio::test]
async fn a_quarantined_record_is_retried_or_discarded_with_the_token_only() {
    let db = TestDb::new().await;
    quarantine(&db, 41, "MessageSizeTooLarge").await;
    quarantine(&db, 42, "UnknownTopicOrPartition").await;
    let (base, stop) = console_on(&db).await;
    let client = reqwest::Client::new();

    let state: serde_json::Value = client
        .get(format!("{base}/api/outbox"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["quarantined"], 2, "{state}");
    let reasons: Vec<&str> = state["quarantine"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["MessageSizeTooLarge", "UnknownTopicOrPartition"]);

    let act = |path: &str, token: Option<&str>| {
        let mut request = client.post(format!("{base}/api/outbox/quarantine/{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    for (path, token, status) in [
        ("41/retry", None, 401),
        ("41/retry", Some("wrong"), 401),
        ("99/retry", Some(TOKEN), 404),
        ("41/requeue", Some(TOKEN), 404),
        ("x/discard", Some(TOKEN), 400),
    ] {
        let answer = act(path, token).await.unwrap();
        assert_eq!(answer.status(), status, "{path}");
        assert_eq!(answer.headers()["content-type"], "application/problem+json");
    }
    let untouched: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM outbox_quarantine), (SELECT count(*) FROM outbox)",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(untouched, (2, 0), "refused actions change nothing");

    assert_eq!(act("41/retry", Some(TOKEN)).await.unwrap().status(), 200);
    assert_eq!(act("42/discard", Some(TOKEN)).await.unwrap().status(), 200);
    let (quarantined, back): (i64, Vec<i64>) = (
        sqlx::query_scalar("SELECT count(*) FROM outbox_quarantine")
            .fetch_one(db.pool())
            .await
            .unwrap(),
        sqlx::query_scalar("SELECT id FROM outbox ORDER BY id")
            .fetch_all(db.pool())
            .await
            .unwrap(),
    );
    assert_eq!(
        (quarantined, back),
        (0, vec![41]),
        "41 back with its id, 42 gone"
    );
    let actions: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT action, target, outcome FROM operator_actions WHERE via = 'console' ORDER BY at",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert_eq!(
        actions,
        [
            ("outbox.retry", "outbox_quarantine/99", "refused"),
            ("outbox.retry", "outbox_quarantine/41", "done"),
            ("outbox.discard", "outbox_quarantine/42", "done"),
        ]
        .map(|(a, t, o)| (a.to_owned(), t.to_owned(), o.to_owned()))
    );
    let page = client
        .get(format!("{base}/outbox"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("id=\"quarantine\" class=\"ok\">none"),
        "{page}"
    );
    stop.cancel();
}
