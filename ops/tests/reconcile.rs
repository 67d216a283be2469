//! Reconciliation against a real database: each class of difference injected on purpose, by direct writes to
//! the provider's books and ours, is found with its class and amount, and nothing else is.

use chrono::{DateTime, Duration, Utc};
use indicatif::ProgressBar;
use ops::reconcile::{self, Class, Mode, Window};
use sqlx::PgPool;
use uuid::Uuid;

struct Books<'a> {
    pool: &'a PgPool,
    at: DateTime<Utc>,
}

impl Books<'_> {
    async fn order(&self, status: &str, total_minor: i64) -> Uuid {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO orders_view (order_id, customer_id, status, total_minor, currency, ended_at)
             VALUES ($1, $2, $3, $4, 'EUR', $5)",
        )
        .bind(id)
        .bind(Uuid::now_v7())
        .bind(status)
        .bind(total_minor)
        .bind(self.at)
        .execute(self.pool)
        .await
        .unwrap();
        id
    }

    /// One movement (one reference) at the provider (`theirs`), in our records (`ours`), or both: the
    /// amount each side has, and when.
    async fn movement(
        &self,
        order: Uuid,
        operation: &str,
        theirs: Option<(i64, DateTime<Utc>)>,
        ours: Option<(i64, DateTime<Utc>)>,
    ) {
        let reference = format!("psp-{operation}-{order}-{}", Uuid::now_v7().simple());
        if let Some((amount, at)) = theirs {
            sqlx::query(
                "INSERT INTO provider_ledger (order_id, operation, amount_minor, currency, provider_ref, created_at)
                 VALUES ($1, $2, $3, 'EUR', $4, $5)",
            )
            .bind(order)
            .bind(operation)
            .bind(amount)
            .bind(&reference)
            .bind(at)
            .execute(self.pool)
            .await
            .unwrap();
        }
        if let Some((amount, at)) = ours {
            sqlx::query(
                "INSERT INTO payment_operations (provider_ref, order_id, operation, amount_minor, currency, recorded_at)
                 VALUES ($1, $2, $3, $4, 'EUR', $5)",
            )
            .bind(&reference)
            .bind(order)
            .bind(operation)
            .bind(amount)
            .bind(at)
            .execute(self.pool)
            .await
            .unwrap();
        }
    }

    /// A completed order, authorized and captured, both sides agreeing.
    async fn completed(&self, total_minor: i64) -> Uuid {
        let order = self.order("completed", total_minor).await;
        self.agreed(order, "authorize", total_minor).await;
        self.agreed(order, "capture", total_minor).await;
        order
    }

    /// The same movement on both sides.
    async fn agreed(&self, order: Uuid, operation: &str, amount: i64) {
        let both = Some((amount, self.at));
        self.movement(order, operation, both, both).await;
    }
}

fn window_around(at: DateTime<Utc>) -> Window {
    Window::new(at - Duration::hours(1), at + Duration::hours(1)).unwrap()
}

#[tokio::test]
async fn each_injected_difference_is_found_with_its_class_and_amount_and_nothing_else() {
    let db = testkit::TestDb::new().await;
    let at = Utc::now();
    let books = Books {
        pool: db.pool(),
        at,
    };

    // Healthy: a completed order and a cancelled one.
    books.completed(500).await;
    let cancelled = books.order("cancelled", 300).await;
    books.agreed(cancelled, "authorize", 300).await;
    books.agreed(cancelled, "void", 300).await;
    // Healthy across the window's end: captured a second before it, recorded a second after.
    let late = books.order("completed", 100).await;
    books.agreed(late, "authorize", 100).await;
    let end = window_around(at).to;
    let (before_end, after_end) = (end - Duration::seconds(1), end + Duration::seconds(1));
    books
        .movement(
            late,
            "capture",
            Some((100, before_end)),
            Some((100, after_end)),
        )
        .await;
    // The provider charged and the answer was lost: captured, not recorded.
    let unrecorded = books.order("completed", 700).await;
    books.agreed(unrecorded, "authorize", 700).await;
    books
        .movement(unrecorded, "capture", Some((700, at)), None)
        .await;
    // A refund we recorded that the provider never made.
    let phantom = books.completed(200).await;
    books
        .movement(phantom, "refund", None, Some((50, at)))
        .await;
    // Another amount on our side.
    let mismatch = books.order("completed", 400).await;
    books.agreed(mismatch, "authorize", 400).await;
    books
        .movement(mismatch, "capture", Some((400, at)), Some((350, at)))
        .await;
    // Captured twice.
    let twice = books.completed(250).await;
    books.agreed(twice, "capture", 250).await;
    // Money kept for a cancelled order.
    let kept = books.order("cancelled", 600).await;
    books.agreed(kept, "authorize", 600).await;
    books.agreed(kept, "capture", 600).await;
    // Completed, never captured.
    let free = books.order("completed", 800).await;
    books.agreed(free, "authorize", 800).await;
    // Cancelled, authorization left hanging.
    let dangling = books.order("cancelled", 900).await;
    books.agreed(dangling, "authorize", 900).await;
    // A notification nobody acknowledged.
    sqlx::query("INSERT INTO notify_subscribers (name, url, secret) VALUES ('payments', 'http://127.0.0.1:9', 's')")
        .execute(db.pool())
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO notifications (id, subscriber, kind, body, status, attempts)
         VALUES (gen_random_uuid(), 'payments', 'payment.result', '{}', 'given_up', 7)",
    )
    .execute(db.pool())
    .await
    .unwrap();

    let report = reconcile::reconcile(
        db.pool(),
        window_around(at),
        "test",
        Mode::DryRun,
        &ProgressBar::hidden(),
    )
    .await
    .unwrap();
    let found: Vec<(Class, Option<Uuid>, i64)> = report
        .differences
        .iter()
        .map(|d| (d.class, d.order_id, d.amount_minor))
        .collect();
    let mut expected = vec![
        (Class::CapturedNotRecorded, Some(unrecorded), 700),
        (Class::RecordedNotAtProvider, Some(phantom), 50),
        (Class::AmountMismatch, Some(mismatch), 400),
        (Class::ChargedTwice, Some(twice), 250),
        (Class::CapturedForCancelledOrder, Some(kept), 600),
        (Class::CompletedWithoutCapture, Some(free), 800),
        (Class::DanglingAuthorization, Some(dangling), 900),
        (Class::NotificationGivenUp, None, 0),
    ];
    expected.sort();
    let mut found_sorted = found.clone();
    found_sorted.sort();
    assert_eq!(
        found_sorted,
        expected,
        "{}",
        reconcile::render_table(&report)
    );
    assert_eq!(report.summary.total(), 8);
    assert_eq!(
        report.summary.classes["captured_not_recorded"].amounts["EUR"],
        700
    );

    // The run is on record, with what it found.
    let history = reconcile::history(db.pool(), 5).await.unwrap();
    assert_eq!(history.len(), 1);
    let run = &history[0];
    assert_eq!(
        (run.id, run.outcome.as_deref(), run.mode.as_str()),
        (report.run_id, Some("differences"), "dry_run")
    );
    assert_eq!(run.found.as_ref().unwrap()["charged_twice"]["count"], 1);
}

#[tokio::test]
async fn agreeing_books_are_clean_and_the_run_says_so() {
    let db = testkit::TestDb::new().await;
    let at = Utc::now();
    let books = Books {
        pool: db.pool(),
        at,
    };
    books.completed(500).await;
    let refunded = books.order("cancelled", 300).await;
    books.agreed(refunded, "authorize", 300).await;
    books.agreed(refunded, "capture", 300).await;
    books.agreed(refunded, "refund", 300).await;

    let report = reconcile::reconcile(
        db.pool(),
        window_around(at),
        "test",
        Mode::DryRun,
        &ProgressBar::hidden(),
    )
    .await
    .unwrap();
    assert_eq!(
        report.differences,
        [],
        "{}",
        reconcile::render_table(&report)
    );
    // Outside the window, the same books are not looked at.
    let earlier = Window::new(at - Duration::days(2), at - Duration::days(1)).unwrap();
    assert_eq!(
        reconcile::reconcile(
            db.pool(),
            earlier,
            "test",
            Mode::DryRun,
            &ProgressBar::hidden()
        )
        .await
        .unwrap()
        .summary
        .total(),
        0
    );
    let outcomes: Vec<Option<String>> = reconcile::history(db.pool(), 5)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.outcome)
        .collect();
    assert_eq!(
        outcomes,
        [Some("clean".to_owned()), Some("clean".to_owned())]
    );
}

/// `--apply`: a notification given up is sent again; a money difference is left to a person with the
/// reason; a second run repeats nothing.
#[tokio::test]
async fn apply_resends_given_up_notifications_marks_the_rest_and_repeats_nothing() {
    let db = testkit::TestDb::new().await;
    let at = Utc::now();
    let books = Books {
        pool: db.pool(),
        at,
    };
    let kept = books.order("cancelled", 600).await;
    books.agreed(kept, "authorize", 600).await;
    books.agreed(kept, "capture", 600).await;
    sqlx::raw_sql(
        "INSERT INTO notify_subscribers (name, url, secret) VALUES ('shop', 'http://127.0.0.1:9', 's');
         INSERT INTO notifications (id, subscriber, kind, body, status, attempts)
         VALUES (gen_random_uuid(), 'shop', 'order.cancelled', '{}', 'given_up', 7)",
    )
    .execute(db.pool())
    .await
    .unwrap();
    let hidden = ProgressBar::hidden();
    let apply = || reconcile::reconcile(db.pool(), window_around(at), "test", Mode::Apply, &hidden);

    let repairs = apply().await.unwrap().repairs.unwrap();
    let counts =
        |r: &reconcile::Repairs| (r.resent_notifications, r.needs_attention, r.handled_before);
    assert_eq!(counts(&repairs), (1, 1, 0));
    let (status, attempts): (String, i32) =
        sqlx::query_as("SELECT status, attempts FROM notifications")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!((status.as_str(), attempts), ("pending", 0));
    let attention: Vec<(String, Option<Uuid>, String)> = sqlx::query_as(
        "SELECT class, order_id, reason FROM reconcile_repairs WHERE action = 'needs_attention'",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert_eq!(attention.len(), 1);
    let (class, order, reason) = &attention[0];
    assert_eq!(
        (class.as_str(), *order),
        ("captured_for_cancelled_order", Some(kept))
    );
    assert!(
        reason.starts_with("refund through the provider"),
        "{reason}"
    );

    let again = apply().await.unwrap().repairs.unwrap();
    assert_eq!(
        counts(&again),
        (0, 0, 1),
        "the money difference is still there, marked once"
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM reconcile_repairs")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(rows, 2);
    let runs = reconcile::history(db.pool(), 5).await.unwrap();
    assert_eq!(runs[0].mode, "apply");
    assert_eq!(runs[0].repaired.as_ref().unwrap()["handled_before"], 1);
}
