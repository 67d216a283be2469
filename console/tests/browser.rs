//! The console end to end in headless Chromium (Debian's `chromium`, driven by `playwright-core` from npm:
//! console/e2e/console.mjs), against a console over a real pipeline: the overview shows the counts the
//! database holds, searching an order shows its saga's timeline, a dead letter is refused without the token
//! and redriven from the page once logged in, and applied once (checked here, in the database); a replay's
//! dry run started from the page shows the command that would apply it; a saga needing attention is retried
//! from its page and ends (checked here); a reconciliation's dry run started from the page shows what it
//! found and the command that would apply it. Screenshots
//! of each page go to `$CARGO_TARGET_DIR/console-screenshots` (`target/` by default).
//!
//! `./dev up` installs the browser and the npm package; a machine without them fails this test, naming
//! what is missing.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{
    TOKEN, dead_letter_of_the_global_view, escalate, global_rows, running, saga_events,
    wait_for_outcome,
};

const CHROMIUM: &str = "/usr/bin/chromium";

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e")
}

fn screenshots() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
            PathBuf::from,
        )
        .join("console-screenshots")
}

#[tokio::test]
async fn on_call_uses_the_console_in_a_browser() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: `./dev up` installs Debian's chromium"
    );
    assert!(
        e2e_dir().join("node_modules/playwright-core").exists(),
        "console/e2e/node_modules is missing: `./dev up` runs npm ci there"
    );
    let running = running(6).await;
    let (dlq, order, event_id) = dead_letter_of_the_global_view(&running).await;
    let orders: BTreeMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT status, count(*) FROM orders_view GROUP BY status",
    )
    .fetch_all(running.db.pool())
    .await
    .unwrap()
    .into_iter()
    .collect();
    // A completed order whose stock commit, as if out of attempts, escalated after the parcel arrived
    // (which it may have done before the capture, or after).
    let (escalated, captured, delivered): (uuid::Uuid, i64, bool) = sqlx::query_as(
        "SELECT s.order_id, c.version, EXISTS (
                    SELECT 1 FROM saga_events d WHERE d.order_id = s.order_id
                    AND d.event_type = 'DeliveryCompleted' AND d.version < c.version)
         FROM sagas s JOIN saga_events c ON c.order_id = s.order_id AND c.event_type = 'PaymentCaptured'
         WHERE s.outcome = 'completed' LIMIT 1",
    )
    .fetch_one(running.db.pool())
    .await
    .unwrap();
    let arrived: &[serde_json::Value] = if delivered {
        &[]
    } else {
        &[serde_json::json!({ "type": "DeliveryCompleted" })]
    };
    escalate(&running, escalated, captured, arrived, "CommitStock").await;
    // Another order to search for.
    let (searched,): (uuid::Uuid,) = sqlx::query_as(
        "SELECT order_id FROM orders_view WHERE order_id <> $1 ORDER BY order_id LIMIT 1",
    )
    .bind(escalated)
    .fetch_one(running.db.pool())
    .await
    .unwrap();
    let timeline: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM saga_events WHERE order_id = $1 ORDER BY version",
    )
    .bind(searched)
    .fetch_all(running.db.pool())
    .await
    .unwrap();

    let today = chrono::Utc::now().date_naive();
    let tomorrow = today.succ_opt().unwrap();

    // Each run writes its own screenshots.
    std::fs::remove_dir_all(screenshots()).ok();
    // Off the runtime's thread: the console in this process answers the browser meanwhile.
    let mut node = std::process::Command::new("node");
    node.arg("console.mjs")
        .current_dir(e2e_dir())
        .env("CONSOLE_URL", &running.base)
        .env("CONSOLE_TOKEN", TOKEN)
        .env("CHROMIUM", CHROMIUM)
        .env("SCREENSHOTS", screenshots())
        .env("EXPECT_ORDERS", serde_json::to_string(&orders).unwrap())
        .env("ORDER_ID", searched.to_string())
        .env("EXPECT_TIMELINE", serde_json::to_string(&timeline).unwrap())
        .env("DLQ_TOPIC", &dlq)
        .env("ESCALATED_ORDER", escalated.to_string())
        .env("RECONCILE_FROM", today.to_string())
        .env(
            "EXPECT_RECONCILE",
            format!(
                "orderflow reconcile --from {today}T00:00:00Z --to {tomorrow}T00:00:00Z --apply"
            ),
        )
        .env(
            "ORDERS_TOPIC",
            running
                .pipeline
                .shared()
                .config
                .services
                .topics
                .events(producers::topics::Service::Orders),
        );
    let output = tokio::task::spawn_blocking(move || node.output())
        .await
        .unwrap()
        .expect("node runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(output.status.success(), "{stdout}\n{stderr}");
    print!("{stdout}");

    // The redrive from the page reached the global view, once.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while global_rows(&running, order).await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the redriven event was not applied in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (applied, redrives): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM inbox WHERE event_id = $1 AND consumer_group LIKE '%orders-global'),
                (SELECT count(*) FROM operator_actions WHERE target = $2 AND outcome = 'done')",
    )
    .bind(event_id)
    .bind(&dlq)
    .fetch_one(running.db.pool())
    .await
    .unwrap();
    assert_eq!((applied, redrives), (1, 1));
    // The retried commit reached the inventory, which answered; the saga completed again.
    wait_for_outcome(&running, escalated, "completed").await;
    let tail: Vec<String> = saga_events(&running, escalated)
        .await
        .into_iter()
        .filter(|(version, _)| *version > captured)
        .map(|(_, t)| t)
        .collect();
    let expected = [
        "DeliveryCompleted",
        "SagaEscalated",
        "SagaResumed",
        "StockCommitted",
    ];
    assert_eq!(tail, expected[usize::from(delivered)..]);
    for page in [
        "overview",
        "order",
        "dead-letter",
        "refused",
        "dead-letters",
        "dry-run",
        "attention",
        "reconcile-dry-run",
    ] {
        let shot = screenshots().join(format!("{page}.png"));
        assert!(
            std::fs::metadata(&shot).is_ok_and(|m| m.len() > 1000),
            "screenshot {}",
            shot.display()
        );
    }
    running.stop().await;
}
