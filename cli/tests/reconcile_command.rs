//! `orderflow reconcile` as finance's cron runs it: exit 0 when clean, 1 when differences remain, every run
//! in the history, and bad input named.

mod common;

use common::{run_on as orderflow, text};

#[tokio::test]
async fn clean_is_exit_0_differences_exit_1_and_both_are_in_the_history() {
    let db = testkit::TestDb::new().await;
    let now = chrono::Utc::now();
    let from = (now - chrono::Duration::hours(1)).to_rfc3339();
    let to = (now + chrono::Duration::hours(1)).to_rfc3339();
    let window = ["reconcile", "--from", from.as_str(), "--to", to.as_str()];
    let clean = orderflow(&db, &window);
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean.stderr));
    assert!(
        text(&clean.stdout).ends_with("\n0 differences\n"),
        "{}",
        text(&clean.stdout)
    );

    sqlx::query("INSERT INTO notify_subscribers (name, url, secret) VALUES ('shop', 'http://127.0.0.1:9', 's')")
        .execute(db.pool())
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO notifications (id, subscriber, kind, body, status) VALUES
         (gen_random_uuid(), 'shop', 'order.completed', '{}', 'given_up')",
    )
    .execute(db.pool())
    .await
    .unwrap();
    let found = orderflow(&db, &[&window[..], &["--format", "csv"]].concat());
    assert_eq!(found.status.code(), Some(1));
    let csv = text(&found.stdout);
    assert!(
        csv.starts_with(
            "class,order_id,provider_ref,amount_minor,currency,detail\nnotification_given_up,"
        ),
        "{csv}"
    );
    assert!(
        text(&found.stderr).contains("1 differences remain"),
        "{}",
        text(&found.stderr)
    );

    // --apply sends the notification again: nothing remains.
    let applied = orderflow(&db, &[&window[..], &["--apply"]].concat());
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied.stderr));
    assert!(
        text(&applied.stdout).contains("repaired: 1 notifications sent again; 0 need attention"),
        "{}",
        text(&applied.stdout)
    );
    let status: String = sqlx::query_scalar("SELECT status FROM notifications")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(status, "pending");

    let history = text(&orderflow(&db, &["reconcile", "history"]).stdout);
    assert_eq!(history.lines().count(), 3, "{history}");
    assert!(
        history
            .lines()
            .next()
            .unwrap()
            .contains("\tapply\tdifferences\t"),
        "{history}"
    );
}

#[tokio::test]
async fn bad_windows_are_refused_with_a_reason() {
    let db = testkit::TestDb::new().await;
    let backwards = orderflow(
        &db,
        &["reconcile", "--from", "2026-12-02", "--to", "2026-12-01"],
    );
    assert_eq!(backwards.status.code(), Some(1));
    assert!(
        text(&backwards.stderr).contains("is not before its end"),
        "{}",
        text(&backwards.stderr)
    );

    let bad_date = orderflow(&db, &["reconcile", "--from", "yesterday"]);
    assert_eq!(bad_date.status.code(), Some(2));
    assert!(
        text(&bad_date.stderr).contains("`yesterday` is neither RFC 3339"),
        "{}",
        text(&bad_date.stderr)
    );

    let to_alone = orderflow(&db, &["reconcile", "--to", "2026-12-01"]);
    assert_eq!(to_alone.status.code(), Some(2));

    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM reconcile_runs")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(runs, 0, "a refused run records nothing");
}

/// `--apply` killed with SIGKILL halfway, then run again: every repair done once, none twice, none lost.
#[tokio::test]
async fn apply_killed_halfway_and_run_again_repairs_each_difference_once() {
    const GIVEN_UP: i64 = 3000;
    let db = testkit::TestDb::new().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO notify_subscribers (name, url, secret) VALUES ('shop', 'http://127.0.0.1:9', 's');
         INSERT INTO notifications (id, subscriber, kind, body, status, attempts)
         SELECT gen_random_uuid(), 'shop', 'order.completed', '{{}}', 'given_up', 7
         FROM generate_series(1, {GIVEN_UP})"
    )))
    .execute(db.pool())
    .await
    .unwrap();
    let now = chrono::Utc::now();
    let from = (now - chrono::Duration::hours(1)).to_rfc3339();
    let to = (now + chrono::Duration::hours(1)).to_rfc3339();
    let args = [
        "reconcile",
        "--from",
        from.as_str(),
        "--to",
        to.as_str(),
        "--apply",
    ];
    let repairs = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM reconcile_repairs")
            .fetch_one(db.pool())
            .await
            .unwrap()
    };

    let mut first = common::orderflow_on(&db)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut done_before_kill = 0;
    for _ in 0..600 {
        done_before_kill = repairs().await;
        if done_before_kill >= 50 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let done_before_kill = repairs().await.max(done_before_kill);
    assert!(
        (1..GIVEN_UP).contains(&done_before_kill),
        "killed halfway: {done_before_kill} of {GIVEN_UP} done"
    );
    let pending: i64 =
        sqlx::query_scalar("SELECT count(*) FROM notifications WHERE status = 'pending'")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(
        pending, done_before_kill,
        "each repair commits with its row, or neither"
    );

    let second = orderflow(&db, &args);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second.stderr));
    let report = text(&second.stdout);
    let expected = format!(
        "repaired: {} notifications sent again; 0 need attention; 0 handled by an earlier run",
        GIVEN_UP - done_before_kill
    );
    assert!(report.contains(&expected), "{report}");
    assert_eq!(repairs().await, GIVEN_UP);
    let (pending, attempts): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'pending'), sum(attempts) FROM notifications",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!((pending, attempts), (GIVEN_UP, 0));
}
