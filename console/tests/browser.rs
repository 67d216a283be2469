//! The console end to end in headless Chromium (Debian's `chromium`, driven by `playwright-core` from npm:
//! console/e2e/console.mjs), against a console over a real pipeline: the overview shows the counts the
//! database holds, searching an order shows its saga's timeline, a dead letter is refused without the token
//! and redriven from the page once logged in, and applied once (checked here, in the database); a replay's
//! dry run started from the page shows the command that would apply it. Screenshots
//! of each page go to `$CARGO_TARGET_DIR/console-screenshots` (`target/` by default).
//!
//! `./dev up` installs the browser and the npm package; a machine without them fails this test, naming
//! what is missing.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{TOKEN, dead_letter_of_the_global_view, global_rows, running};

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
    let (searched,): (uuid::Uuid,) =
        sqlx::query_as("SELECT order_id FROM orders_view ORDER BY order_id LIMIT 1")
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
    for page in [
        "overview",
        "order",
        "dead-letter",
        "refused",
        "dead-letters",
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
