//! `orderflow outbox quarantine retry|discard` as an operator runs it: an id that no quarantined record has
//! is refused with exit 2, a message that names it and where to look, and an audit row.

use std::process::Command;

use testkit::TestDb;

#[tokio::test]
async fn an_unknown_quarantined_record_is_refused_with_exit_2_and_audited() {
    let db = TestDb::new().await;
    for decision in ["retry", "discard"] {
        let output = Command::new(env!("CARGO_BIN_EXE_orderflow"))
            .args(["outbox", "quarantine", decision, "987654321"])
            .env("DATABASE_URL", db.url())
            .env("USER", "alice")
            .output()
            .expect("the orderflow binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{decision}: {stderr}");
        assert!(
            stderr.contains("no quarantined record with id 987654321")
                && stderr.contains("orderflow outbox quarantine list"),
            "{decision}: {stderr}"
        );
    }
    let audit: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT via, actor, action, outcome FROM operator_actions WHERE target = 'outbox_quarantine/987654321'
         ORDER BY at",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    let row = |action: &str| {
        (
            "cli".to_owned(),
            "alice".to_owned(),
            action.to_owned(),
            "refused".to_owned(),
        )
    };
    assert_eq!(audit, [row("outbox.retry"), row("outbox.discard")]);
}
