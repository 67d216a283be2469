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
        text(&applied.stdout).contains(
            "repaired: 0 captures recorded, 0 refunds and 0 voids asked of the provider, 1 notifications \
             sent again; 0 need attention"
        ),
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

/// A provider serving on 127.0.0.1 over the test's database until dropped; its results go to a
/// subscriber nobody serves (no payments service runs here).
struct Provider {
    api: provider::LocalProvider,
    books: provider::Books,
}

impl Provider {
    async fn start(db: &testkit::TestDb) -> Self {
        let mut config = provider::ProviderConfig::without_faults();
        config.callback.url = Some("http://127.0.0.1:9/nobody".into());
        Self {
            api: provider::LocalProvider::start(db.pool().clone(), config.clone())
                .await
                .unwrap(),
            books: provider::Books::new(db.pool().clone(), config),
        }
    }

    /// An order cancelled in the run's window whose money the provider captured and kept, as both books say.
    async fn cancelled_and_charged(&self, db: &testkit::TestDb, amount_minor: i64) -> uuid::Uuid {
        let order = uuid::Uuid::now_v7();
        sqlx::query(
            "INSERT INTO orders_view (order_id, customer_id, status, total_minor, currency, ended_at)
             VALUES ($1, gen_random_uuid(), 'cancelled', $2, 'EUR', now())",
        )
        .bind(order)
        .bind(amount_minor)
        .execute(db.pool())
        .await
        .unwrap();
        let amount = provider::Amount {
            amount_minor,
            currency: "EUR".into(),
        };
        // Both books have the authorization and the capture.
        for operation in [provider::Operation::Authorize, provider::Operation::Capture] {
            let key = order.to_string();
            let provider::Decided::New(result) = self
                .books
                .request(operation, order, &amount, &key)
                .await
                .unwrap()
            else {
                panic!("the provider decided {operation} of {order} before");
            };
            sqlx::query(
                "INSERT INTO payment_operations (provider_ref, order_id, operation, amount_minor, currency)
                 VALUES ($1, $2, $3, $4, 'EUR')",
            )
            .bind(&result.reference)
            .bind(order)
            .bind(operation.name())
            .bind(amount_minor)
            .execute(db.pool())
            .await
            .unwrap();
        }
        order
    }
}

/// `--apply` killed with SIGKILL halfway, then run again: every repair done once, none twice, none lost;
/// each cancelled order's money refunded once at the provider. (Several threads: the provider serves here
/// while the test waits for the process.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_killed_halfway_and_run_again_repairs_each_difference_once() {
    const GIVEN_UP: i64 = 2700;
    const CHARGED: i64 = 300;
    let db = testkit::TestDb::new().await;
    let provider = Provider::start(&db).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO notify_subscribers (name, url, secret) VALUES ('shop', 'http://127.0.0.1:9', 's');
         INSERT INTO notifications (id, subscriber, kind, body, status, attempts)
         SELECT gen_random_uuid(), 'shop', 'order.completed', '{{}}', 'given_up', 7
         FROM generate_series(1, {GIVEN_UP})"
    )))
    .execute(db.pool())
    .await
    .unwrap();
    for _ in 0..CHARGED {
        provider.cancelled_and_charged(&db, 1999).await;
    }
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
    let reconcile = || {
        let mut command = common::orderflow_on(&db);
        command.args(args).env("PROVIDER_URL", provider.api.url());
        command
    };

    let mut first = reconcile()
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
        (1..GIVEN_UP + CHARGED).contains(&done_before_kill),
        "killed halfway: {done_before_kill} of {} done",
        GIVEN_UP + CHARGED
    );

    let second = reconcile().output().unwrap();
    assert_eq!(second.status.code(), Some(0), "{}", text(&second.stderr));
    // A run killed after the provider refunded and before the repair's row committed leaves no row: the
    // next run finds that order settled (the provider's books say so) and has nothing to repair.
    let rows = repairs().await;
    assert!(
        (GIVEN_UP + CHARGED - 1..=GIVEN_UP + CHARGED).contains(&rows),
        "{rows} repairs recorded"
    );
    let (pending, attempts): (i64, i64) = sqlx::query_as(
        "SELECT count(*), sum(attempts) FROM notifications WHERE subscriber = 'shop' AND status = 'pending'",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(
        (pending, attempts),
        (GIVEN_UP, 0),
        "each notification sent again once"
    );
    // At the provider: one refund per cancelled order, whichever run made it, and nothing held.
    let (refunds, orders_refunded, held): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE operation = 'refund'),
                count(DISTINCT order_id) FILTER (WHERE operation = 'refund'),
                COALESCE(sum(CASE operation WHEN 'capture' THEN amount_minor
                                            WHEN 'refund' THEN -amount_minor ELSE 0 END), 0)::bigint
         FROM provider_ledger",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!((refunds, orders_refunded, held), (CHARGED, CHARGED, 0));
    let clean = reconcile().output().unwrap();
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean.stdout));
    assert!(
        text(&clean.stdout).ends_with("\n0 differences\n"),
        "{}",
        text(&clean.stdout)
    );
}
