//! `orderflow saga retry` as an operator runs it: what it cannot retry is refused with exit 2, a message
//! that names the problem, and an audit row.

use std::process::Command;

use testkit::TestDb;

fn saga_retry(db: &TestDb, order: &str) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args(["saga", "retry", order])
        .env("DATABASE_URL", db.url())
        .env("USER", "alice")
        .output()
        .expect("the orderflow binary runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn an_order_without_a_saga_or_a_malformed_id_is_refused() {
    let db = TestDb::new().await;
    let order = uuid::Uuid::now_v7().to_string();
    let (code, stderr) = saga_retry(&db, &order);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("order {order} has no saga")),
        "{stderr}"
    );
    let audit: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT via, actor, outcome FROM operator_actions WHERE action = 'saga.retry' AND target = $1",
    )
    .bind(format!("saga/{order}"))
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert_eq!(
        audit,
        [("cli".to_owned(), "alice".to_owned(), "refused".to_owned())]
    );

    let (code, stderr) = saga_retry(&db, "order-42");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("order-42"), "{stderr}");
}
