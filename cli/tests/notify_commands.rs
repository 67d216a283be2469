//! `orderflow notify ...` against a database of its own: subscribe, list, show, retry, and the errors that
//! name what is wrong.

mod common;

use std::process::Output;

use common::text;

fn orderflow(db: &testkit::TestDb, args: &[&str]) -> Output {
    common::orderflow_on(db)
        .env("NOTIFY_SECRET", "s3cret")
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test]
async fn operators_subscribe_list_show_and_retry() {
    let db = testkit::TestDb::new().await;
    let subscribed = orderflow(
        &db,
        &[
            "notify",
            "subscribe",
            "shop",
            "--url",
            "http://127.0.0.1:9/hook",
            "--kind",
            "order.completed",
        ],
    );
    assert!(subscribed.status.success(), "{}", text(&subscribed.stderr));
    assert_eq!(
        text(&subscribed.stdout),
        "subscribed shop at http://127.0.0.1:9/hook\n"
    );
    let secret: String =
        sqlx::query_scalar("SELECT secret FROM notify_subscribers WHERE name = 'shop'")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(secret, "s3cret", "taken from NOTIFY_SECRET");

    let empty = orderflow(&db, &["notify", "list"]);
    assert!(
        text(&empty.stdout).starts_with("no notifications\n"),
        "{}",
        text(&empty.stdout)
    );

    let mut conn = db.pool().acquire().await.unwrap();
    let sent = notify::notify_kind(
        &mut conn,
        "order.completed",
        &serde_json::json!({"order": "o-1"}),
    )
    .await
    .unwrap();
    assert_eq!(sent, 1);
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM notifications")
        .fetch_one(db.pool())
        .await
        .unwrap();
    let listed = text(&orderflow(&db, &["notify", "list", "--status", "pending"]).stdout);
    assert!(
        listed.contains(&format!("{id}\tpending\tshop\torder.completed")),
        "{listed}"
    );
    assert!(
        listed.ends_with("pending 1, delivered 0, given up 0\n"),
        "{listed}"
    );
    let shown = text(&orderflow(&db, &["notify", "show", &id.to_string()]).stdout);
    assert!(shown.contains("\"order\": \"o-1\""), "{shown}");
    assert!(!shown.contains("s3cret"), "the secret is never shown");

    sqlx::query("UPDATE notifications SET status = 'given_up', attempts = 7")
        .execute(db.pool())
        .await
        .unwrap();
    let retried = orderflow(&db, &["notify", "retry", &id.to_string()]);
    assert!(retried.status.success(), "{}", text(&retried.stderr));
    let (status, attempts): (String, i32) =
        sqlx::query_as("SELECT status, attempts FROM notifications WHERE id = $1")
            .bind(id)
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!((status.as_str(), attempts), ("pending", 0));
}

#[tokio::test]
async fn bad_input_is_named() {
    let db = testkit::TestDb::new().await;
    let missing = uuid::Uuid::now_v7();
    let unknown = orderflow(&db, &["notify", "show", &missing.to_string()]);
    assert!(!unknown.status.success());
    assert!(
        text(&unknown.stderr).contains(&format!("no notification has the id {missing}")),
        "{}",
        text(&unknown.stderr)
    );

    let bad_url = orderflow(&db, &["notify", "subscribe", "shop", "--url", "not a url"]);
    assert_eq!(bad_url.status.code(), Some(2));
    assert!(
        text(&bad_url.stderr).contains("--url"),
        "{}",
        text(&bad_url.stderr)
    );

    let bad_schedule = orderflow(&db, &["notify", "run", "--schedule", "15s,1d"]);
    assert_eq!(bad_schedule.status.code(), Some(2));
    assert!(
        text(&bad_schedule.stderr).contains("`1d` has no unit of ms, s, m or h"),
        "{}",
        text(&bad_schedule.stderr)
    );
}
