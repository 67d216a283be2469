//! Reconciliation against a real database: each class of difference injected on purpose, by direct writes to
//! the provider's books and ours, is found with its class and amount, and nothing else is.

use chrono::{DateTime, Duration, Utc};
use indicatif::ProgressBar;
use ops::reconcile::{self, Class, Mode, Window};
use outbox::Metadata;
use provider::{Operation, OperationResult};
use services::payments::{ProviderClient, Recorder};
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

/// A provider without faults whose results go to a payments service nobody runs here.
fn unheard() -> provider::ProviderConfig {
    let mut config = provider::ProviderConfig::without_faults();
    config.callback.url = Some("http://127.0.0.1:9/nobody".into());
    config
}

/// A provider on the test's database, over HTTP, and what `--apply` repairs through: it and the payments
/// service's recorder (with a registry of its own).
struct Provider {
    books: provider::Books,
    recorder: Recorder,
    repairer: reconcile::Repairer,
    _api: provider::LocalProvider,
    _registry: schemas::registry::LocalRegistry,
}

impl Provider {
    async fn start(pool: &PgPool) -> Self {
        let config = unheard();
        let api = provider::LocalProvider::start(pool.clone(), config.clone())
            .await
            .unwrap();
        let registry = schemas::registry::LocalRegistry::start(pool.clone())
            .await
            .unwrap();
        let codec = std::sync::Arc::new(schemas::AvroCodec::new(registry.url()).unwrap());
        let topics = producers::topics::Topics::with_prefix(testkit::unique_name("reconcile"));
        let context = services::Context::new(pool.clone(), codec, topics, "test");
        let client = ProviderClient::new(api.url(), std::time::Duration::from_secs(5)).unwrap();
        let recorder = Recorder::new(context);
        Self {
            books: provider::Books::new(pool.clone(), config),
            repairer: reconcile::Repairer::new(client, recorder.clone()),
            recorder,
            _api: api,
            _registry: registry,
        }
    }

    /// Asks the provider for `operation` on `order`, as the payments service would; returns the result.
    async fn request(
        &self,
        operation: Operation,
        order: Uuid,
        amount: i64,
        key: &str,
    ) -> OperationResult {
        let amount = provider::Amount {
            amount_minor: amount,
            currency: "EUR".into(),
        };
        match self
            .books
            .request(operation, order, &amount, key)
            .await
            .unwrap()
        {
            provider::Decided::New(result) => result,
            other => panic!("{other:?}"),
        }
    }

    /// `request`, and the result recorded by the payments service.
    async fn recorded(&self, pool: &PgPool, operation: Operation, order: Uuid, amount: i64) {
        let key = format!("{order}-{operation}");
        let result = self.request(operation, order, amount, &key).await;
        sqlx::query(
            "INSERT INTO payment_operations (provider_ref, order_id, operation, amount_minor, currency)
             VALUES ($1, $2, $3, $4, 'EUR')",
        )
        .bind(&result.reference)
        .bind(order)
        .bind(operation.name())
        .bind(amount)
        .execute(pool)
        .await
        .unwrap();
    }
}

/// Refunds, voids and captures the provider has, and what each order holds there (captured less refunded).
async fn provider_books(pool: &PgPool, order: Uuid) -> (i64, i64) {
    sqlx::query_as(
        "SELECT count(*) FILTER (WHERE operation = 'refund'),
                COALESCE(sum(CASE operation WHEN 'capture' THEN amount_minor
                                            WHEN 'refund' THEN -amount_minor ELSE 0 END), 0)::bigint
         FROM provider_ledger WHERE order_id = $1",
    )
    .bind(order)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// `--apply` repairs each class it can through the provider and the payments service's recorder, leaves
/// the rest to a person with the reason, and run twice moves no money twice: one refund per case, counted
/// at the provider; a second run finds only what a person must look at.
#[tokio::test]
async fn apply_repairs_through_the_provider_once_and_leaves_the_rest_to_a_person() {
    let db = testkit::TestDb::new().await;
    let pool = db.pool();
    let at = Utc::now();
    let books = Books { pool, at };
    let provider = Provider::start(pool).await;

    // Money kept for a cancelled order: both sides know the capture.
    let kept = books.order("cancelled", 600).await;
    provider
        .recorded(pool, Operation::Authorize, kept, 600)
        .await;
    provider.recorded(pool, Operation::Capture, kept, 600).await;
    // Captured at the provider, its result lost: recorded from the provider's books, through the recorder.
    let unrecorded = books.order("completed", 700).await;
    let authorized = provider
        .request(
            Operation::Authorize,
            unrecorded,
            700,
            &format!("{unrecorded}"),
        )
        .await;
    let mut tx = pool.begin().await.unwrap();
    provider
        .recorder
        .record(&mut tx, &authorized, &Metadata::new(unrecorded))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    provider
        .request(
            Operation::Capture,
            unrecorded,
            700,
            &format!("{unrecorded}"),
        )
        .await;
    // A cancelled order whose authorization was never voided.
    let dangling = books.order("cancelled", 900).await;
    provider
        .recorded(pool, Operation::Authorize, dangling, 900)
        .await;
    // Captured twice (a provider's bug: the second capture written straight into its ledger).
    let twice = books.order("completed", 250).await;
    provider
        .recorded(pool, Operation::Authorize, twice, 250)
        .await;
    provider
        .recorded(pool, Operation::Capture, twice, 250)
        .await;
    books
        .movement(twice, "capture", Some((250, at)), Some((250, at)))
        .await;
    // A refund we recorded that the provider never made: a person's matter.
    let phantom = books.completed(200).await;
    books
        .movement(phantom, "refund", None, Some((50, at)))
        .await;
    // A notification nobody acknowledged.
    sqlx::raw_sql(
        "INSERT INTO notify_subscribers (name, url, secret) VALUES ('shop', 'http://127.0.0.1:9', 's');
         INSERT INTO notifications (id, subscriber, kind, body, status, attempts)
         VALUES (gen_random_uuid(), 'shop', 'order.cancelled', '{}', 'given_up', 7)",
    )
    .execute(pool)
    .await
    .unwrap();

    let hidden = ProgressBar::hidden();
    let run = |mode| reconcile::reconcile(pool, window_around(at), "test", mode, &hidden);
    let first = run(Mode::Apply(&provider.repairer)).await.unwrap();
    assert_eq!(
        first.summary.total(),
        6,
        "{}",
        reconcile::render_table(&first)
    );
    let repairs = first.repairs.unwrap();
    assert_eq!(
        repairs,
        reconcile::Repairs {
            recorded_captures: 1,
            refunds: 2,
            voids: 1,
            resent_notifications: 1,
            needs_attention: 1,
            handled_before: 0,
            failed: 0,
        }
    );
    // The money, at the provider: refunded once each, nothing held for the cancelled order.
    assert_eq!(provider_books(pool, kept).await, (1, 0));
    assert_eq!(provider_books(pool, twice).await, (1, 250));
    let voided: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM provider_ledger WHERE order_id = $1 AND operation = 'void'",
    )
    .bind(dangling)
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(voided, 1);
    // The missing capture is recorded as the payments service records results: its event and operation.
    let status: String = sqlx::query_scalar("SELECT status FROM payments WHERE order_id = $1")
        .bind(unrecorded)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(status, "captured");

    let second = run(Mode::Apply(&provider.repairer)).await.unwrap();
    let found: Vec<(Class, Option<Uuid>)> = second
        .differences
        .iter()
        .map(|d| (d.class, d.order_id))
        .collect();
    assert_eq!(found, [(Class::RecordedNotAtProvider, Some(phantom))]);
    let again = second.repairs.unwrap();
    assert_eq!((again.repaired(), again.handled_before), (0, 1));
    assert_eq!(provider_books(pool, kept).await, (1, 0), "no second refund");
    assert_eq!(
        provider_books(pool, twice).await,
        (1, 250),
        "no second refund"
    );
    let (class, reason): (String, String) = sqlx::query_as(
        "SELECT class, reason FROM reconcile_repairs WHERE action = 'needs_attention'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(class, "recorded_not_at_provider");
    assert!(reason.contains("ask the provider"), "{reason}");
    let runs = reconcile::history(pool, 5).await.unwrap();
    assert_eq!(runs[0].mode, "apply");
    assert_eq!(runs[0].repaired.as_ref().unwrap()["handled_before"], 1);
}
