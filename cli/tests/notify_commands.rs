//! `orderflow notify ...` against a database of its own: subscribe, list, show, retry, and the errors that
//! name what is wrong.

use std::process::{Command, Output};

fn orderflow(db: &testkit::TestDb, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .env("DATABASE_URL", db.url())
        .env("NOTIFY_SECRET", "s3cret")
        .env_remove("ORDERFLOW_CONFIG")
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
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
    assert!(subscribed.status.success(), "{}", stderr(&subscribed));
    assert_eq!(
        stdout(&subscribed),
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
        stdout(&empty).starts_with("no notifications\n"),
        "{}",
        stdout(&empty)
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
    let listed = stdout(&orderflow(&db, &["notify", "list", "--status", "pending"]));
    assert!(
        listed.contains(&format!("{id}\tpending\tshop\torder.completed")),
        "{listed}"
    );
    assert!(
        listed.ends_with("pending 1, delivered 0, given up 0\n"),
        "{listed}"
    );
    let shown = stdout(&orderflow(&db, &["notify", "show", &id.to_string()]));
    assert!(shown.contains("\"order\": \"o-1\""), "{shown}");
    assert!(!shown.contains("s3cret"), "the secret is never shown");

    sqlx::query("UPDATE notifications SET status = 'given_up', attempts = 7")
        .execute(db.pool())
        .await
        .unwrap();
    let retried = orderflow(&db, &["notify", "retry", &id.to_string()]);
    assert!(retried.status.success(), "{}", stderr(&retried));
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
        stderr(&unknown).contains(&format!("no notification has the id {missing}")),
        "{}",
        stderr(&unknown)
    );

    let bad_url = orderflow(&db, &["notify", "subscribe", "shop", "--url", "not a url"]);
    assert_eq!(bad_url.status.code(), Some(2));
    assert!(stderr(&bad_url).contains("--url"), "{}", stderr(&bad_url));

    let bad_schedule = orderflow(&db, &["notify", "run", "--schedule", "15s,1d"]);
    assert_eq!(bad_schedule.status.code(), Some(2));
    assert!(
        stderr(&bad_schedule).contains("`1d` has no unit of ms, s, m or h"),
        "{}",
        stderr(&bad_schedule)
    );
}
