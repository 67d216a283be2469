//! End to end on the real broker, database and registry: the whole pipeline (relay, the four services, the
//! saga orchestrator) in this process, on topics and consumer groups of each test, driven through the
//! orders service and checked with the demo's report (its consistency checks must pass). Each part connects
//! as its own database role, as `orderflow demo` runs them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::ProgressBar;
use pipeline::report::{Report, wait_until_ended};
use pipeline::workload::{Placed, Workload};
use pipeline::{Part, Pipeline, PipelineConfig};
use producers::topics::{Service, Topics};
use testkit::TestDb;

/// One pipeline at a time: each holds up to [`CONNECTIONS`] Postgres connections and keeps the broker busy.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const CONNECTIONS: u32 = 40;

struct Run {
    db: TestDb,
    pipeline: Pipeline,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

/// A pipeline on a fresh database and topics of its own, without declines or delivery failures unless the
/// test asks for them.
async fn start(parts: &[Part], customize: impl FnOnce(&mut PipelineConfig)) -> Run {
    let turn = ONE_AT_A_TIME.lock().await;
    let db = TestDb::new().await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(CONNECTIONS)
        .acquire_timeout(Duration::from_secs(60))
        .connect(db.url())
        .await
        .unwrap();
    let mut config = PipelineConfig::new(testkit::kafka());
    let prefix = format!("{}.", testkit::unique_name("e2e"));
    config.services.topics = Topics::with_prefix(prefix.clone());
    config.services.group_prefix = prefix;
    config.partitions = 3;
    config.provider.decline_rate = 0.0;
    config.services.carrier.failure_rate = 0.0;
    config.services.carrier.dispatch_delay = Duration::from_millis(200);
    config.services.carrier.delivery_delay = Duration::from_millis(200);
    // Least privilege, as `orderflow demo` and `serve` run: each part on its own role.
    config.roles = Some(
        db::RoleConfig::new(db::DbConfig::from_url(db.url()))
            .with_limits(12, Duration::from_secs(60)),
    );
    customize(&mut config);
    let pipeline = Pipeline::start_parts(pool, config, parts).await.unwrap();
    Run {
        db,
        pipeline,
        _turn: turn,
    }
}

/// Stocks and places `workload`, then [`finish`]es.
async fn run(pipeline: &Pipeline, workload: &Workload, timeout: Duration) -> Report {
    let shared = pipeline.shared();
    workload.stock(shared).await.unwrap();
    let placed = workload
        .place(shared, &ProgressBar::hidden())
        .await
        .unwrap();
    finish(pipeline, workload, &placed, timeout).await
}

/// Waits for every saga of `placed` (at most `timeout`) and gathers the report; fails when one is open.
async fn finish(
    pipeline: &Pipeline,
    workload: &Workload,
    placed: &Placed,
    timeout: Duration,
) -> Report {
    let pool = &pipeline.shared().pool;
    let progress = ProgressBar::hidden();
    let open = wait_until_ended(pool, placed, timeout, &progress, || pipeline.check())
        .await
        .unwrap();
    let repairer = pipeline.shared().repairer().unwrap();
    let report = Report::gather(
        pool,
        placed,
        &workload.flash_sku(),
        workload.flash_sale_units,
        Some(&repairer),
    )
    .await
    .unwrap();
    assert_eq!(open, 0, "orders still open:\n{}", report.render());
    report
}

fn counts<const N: usize>(pairs: [(&str, i64); N]) -> BTreeMap<String, i64> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn assert_passed(report: &Report) {
    assert!(report.passed(), "a check failed:\n{}", report.render());
}

#[tokio::test]
async fn happy_path_completes_every_order() {
    let Run {
        db: _db,
        pipeline,
        _turn,
    } = start(&Part::ALL, |_| {}).await;
    let report = run(&pipeline, &Workload::happy(30), Duration::from_secs(180)).await;
    pipeline.stop().await.unwrap();
    assert_eq!(report.orders_by_state, counts([("completed", 30)]));
    assert_eq!(report.saga_outcomes, counts([("completed", 30)]));
    assert_passed(&report);
}

#[tokio::test]
async fn declined_payments_release_the_stock_and_cancel() {
    let Run {
        db: _db,
        pipeline,
        _turn,
    } = start(&Part::ALL, |c| c.provider.decline_rate = 1.0).await;
    let report = run(&pipeline, &Workload::happy(10), Duration::from_secs(180)).await;
    pipeline.stop().await.unwrap();
    assert_eq!(report.orders_by_state, counts([("cancelled", 10)]));
    assert_eq!(report.cancel_reasons, counts([("PaymentDeclined", 10)]));
    assert_eq!(report.compensations, 10);
    assert_passed(&report);
}

#[tokio::test]
async fn failed_deliveries_void_the_payment_release_the_stock_and_cancel() {
    let Run {
        db: _db,
        pipeline,
        _turn,
    } = start(&Part::ALL, |c| c.services.carrier.failure_rate = 1.0).await;
    let report = run(&pipeline, &Workload::happy(10), Duration::from_secs(180)).await;
    pipeline.stop().await.unwrap();
    assert_eq!(report.orders_by_state, counts([("cancelled", 10)]));
    assert_eq!(report.cancel_reasons, counts([("DeliveryFailed", 10)]));
    assert_passed(&report);
}

/// Signed order-status webhooks a receiver verified, by order id: (status, cancel reason, times received).
type Webhooks = Arc<Mutex<BTreeMap<String, (String, Option<String>, usize)>>>;

const WEBHOOK_SECRET: &str = "merchant-secret";

/// A merchant's endpoint: verifies each webhook's signature (401 otherwise, counted in `refused`) and
/// records it.
async fn webhook_receiver() -> (String, Webhooks, Arc<AtomicUsize>) {
    let received = Webhooks::default();
    let refused = Arc::new(AtomicUsize::new(0));
    let (into, refusals) = (Arc::clone(&received), Arc::clone(&refused));
    let hook = move |headers: axum::http::HeaderMap, body: axum::body::Bytes| async move {
        let signature = headers
            .get(notify::signature::SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok());
        let now = chrono::Utc::now().timestamp();
        let tolerance = notify::signature::DEFAULT_TOLERANCE;
        if notify::signature::verify(WEBHOOK_SECRET.as_bytes(), signature, &body, now, tolerance)
            .is_err()
        {
            refusals.fetch_add(1, Ordering::SeqCst);
            return axum::http::StatusCode::UNAUTHORIZED;
        }
        let webhook: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let text = |field: &str| webhook[field].as_str().map(str::to_owned);
        let mut received = into.lock().unwrap();
        let entry = received.entry(text("order_id").unwrap()).or_insert((
            text("status").unwrap(),
            text("cancel_reason"),
            0,
        ));
        entry.2 += 1;
        axum::http::StatusCode::NO_CONTENT
    };
    let app = axum::Router::new().route("/hooks", axum::routing::post(hook));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received, refused)
}

/// Also: a merchant subscribed to order.completed and order.cancelled gets one signed webhook per order,
/// written in the transaction that ended it.
#[tokio::test]
async fn orders_beyond_the_stock_are_cancelled_out_of_stock() {
    let Run {
        db,
        pipeline,
        _turn,
    } = start(&Part::ALL, |c| {
        c.notifier.poll_interval = Duration::from_millis(50)
    })
    .await;
    let (url, webhooks, refused) = webhook_receiver().await;
    let merchant = notify::Subscriber {
        name: "merchant".into(),
        url,
        secret: WEBHOOK_SECRET.into(),
        kinds: vec!["order.completed".into(), "order.cancelled".into()],
    };
    notify::subscribe(db.pool(), &merchant).await.unwrap();
    let workload = Workload {
        flash_sale_share: 1.0,
        flash_sale_units: 4,
        flash_sale_buckets: 2,
        ..Workload::happy(12)
    };
    let report = run(&pipeline, &workload, Duration::from_secs(180)).await;
    for _ in 0..200 {
        if webhooks.lock().unwrap().len() == 12 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pipeline.stop().await.unwrap();
    assert_eq!(
        report.orders_by_state,
        counts([("cancelled", 8), ("completed", 4)])
    );
    assert_eq!(report.cancel_reasons, counts([("OutOfStock", 8)]));
    assert_passed(&report);

    let webhooks = webhooks.lock().unwrap().clone();
    let mut by_status = BTreeMap::new();
    for (status, reason, times) in webhooks.values() {
        *by_status
            .entry((status.as_str(), reason.as_deref()))
            .or_insert(0) += times;
    }
    let expected = BTreeMap::from([
        (("cancelled", Some("OutOfStock")), 8),
        (("completed", None), 4),
    ]);
    assert_eq!(by_status, expected, "one webhook per order: {webhooks:?}");
    assert_eq!(refused.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_double_submit_makes_one_order() {
    let Run {
        db,
        pipeline,
        _turn,
    } = start(&Part::ALL, |_| {}).await;
    let workload = Workload {
        double_submit_share: 1.0,
        ..Workload::happy(10)
    };
    let report = run(&pipeline, &workload, Duration::from_secs(180)).await;
    pipeline.stop().await.unwrap();
    assert_eq!(report.duplicates_suppressed, 10);
    assert_eq!(report.orders_by_state, counts([("completed", 10)]));
    let placed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'OrderPlaced'")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(placed, 10);
    assert_passed(&report);
}

/// The delivery service is down: scheduling times out, and the saga compensates (void, release) and
/// cancels with reason Timeout. The service comes back before the compensation's retries run out, so the
/// cancellation of the delivery it may have scheduled is answered too.
#[tokio::test]
async fn a_step_that_times_out_is_compensated() {
    let without_delivery: Vec<Part> = Part::ALL
        .into_iter()
        .filter(|p| *p != Part::Service(Service::Delivery))
        .collect();
    let Run {
        db,
        mut pipeline,
        _turn,
    } = start(&without_delivery, |c| {
        c.saga.timeouts.schedule_delivery = Duration::from_secs(2);
        c.saga.timeouts.compensation = Duration::from_secs(3);
        c.saga.retry.first_backoff = Duration::from_millis(500);
        c.saga.retry.max_attempts = 20;
        c.services.carrier.dispatch_delay = Duration::from_secs(120);
    })
    .await;
    let workload = Workload::happy(8);
    let shared = pipeline.shared().clone();
    workload.stock(&shared).await.unwrap();
    let placed = workload
        .place(&shared, &ProgressBar::hidden())
        .await
        .unwrap();
    // Wait until every saga has timed out in the scheduling step and moved on to compensating.
    let ids: Vec<uuid::Uuid> = placed.order_ids.iter().map(|id| id.as_uuid()).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let timed_out: i64 = sqlx::query_scalar(
            "SELECT count(DISTINCT order_id) FROM saga_events
             WHERE order_id = ANY($1) AND event_type = 'CompensationStarted'",
        )
        .bind(&ids)
        .fetch_one(db.pool())
        .await
        .unwrap();
        if timed_out == 8 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{timed_out} of 8 sagas timed out"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    pipeline
        .restart(Part::Service(Service::Delivery))
        .await
        .unwrap();
    let report = finish(&pipeline, &workload, &placed, Duration::from_secs(180)).await;
    pipeline.stop().await.unwrap();
    assert_eq!(report.orders_by_state, counts([("cancelled", 8)]));
    assert_eq!(report.cancel_reasons, counts([("Timeout", 8)]));
    assert_passed(&report);
}

/// Services are stopped and started again (as a redeploy does) while sagas are in flight.
#[tokio::test]
async fn services_restarted_in_the_middle_of_sagas() {
    let Run {
        db: _db,
        mut pipeline,
        _turn,
    } = start(&Part::ALL, |_| {}).await;
    let workload = Workload::happy(40);
    let shared = pipeline.shared().clone();
    workload.stock(&shared).await.unwrap();
    let placed = workload
        .place(&shared, &ProgressBar::hidden())
        .await
        .unwrap();
    for part in [
        Part::Service(Service::Payments),
        Part::Service(Service::Inventory),
        Part::Orchestrator,
        Part::Relay,
        Part::Service(Service::Delivery),
    ] {
        pipeline.restart(part).await.unwrap();
    }
    let report = finish(&pipeline, &workload, &placed, Duration::from_secs(240)).await;
    pipeline.stop().await.unwrap();
    assert_eq!(report.orders_by_state, counts([("completed", 40)]));
    assert_passed(&report);
}

/// 2,000 buyers for 100 units of one SKU spread over 8 buckets, with declines and delivery failures off:
/// exactly 100 orders complete and 1,900 are cancelled for lack of stock.
#[tokio::test]
async fn flash_sale_sells_exactly_the_stock() {
    let Run {
        db: _db,
        pipeline,
        _turn,
    } = start(&Part::ALL, |_| {}).await;
    let workload = Workload {
        flash_sale_share: 1.0,
        flash_sale_units: 100,
        flash_sale_buckets: 8,
        concurrency: 64,
        ..Workload::happy(2000)
    };
    let report = run(&pipeline, &workload, Duration::from_secs(900)).await;
    pipeline.stop().await.unwrap();
    assert_eq!(
        report.orders_by_state,
        counts([("cancelled", 1900), ("completed", 100)]),
        "{}",
        report.render()
    );
    assert_eq!(report.cancel_reasons, counts([("OutOfStock", 1900)]));
    assert_passed(&report);
}

/// The flash sale through the HTTP API: 5,000 buyers for 100 units of one SKU, sent at 2,000 requests/s.
/// Every request is answered 202 or 429 (the backlog bound sheds the rest at once); every accepted order
/// ends; exactly 100 complete and the rest are cancelled for lack of stock; nothing is oversold.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flash_sale_through_the_http_api_answers_every_buyer_and_sells_exactly_the_stock() {
    const BUYERS: usize = 5_000;
    const RATE: f64 = 2_000.0;
    const UNITS: u32 = 100;
    let Run {
        db: _db,
        pipeline,
        _turn,
    } = start(&Part::ALL, |c| {
        c.http = Some(pipeline::HttpConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            api: api::ApiConfig {
                max_backlog: 400,
                ..api::ApiConfig::default()
            },
        });
    })
    .await;
    let sku = domain::Sku::new(format!("FLASH-{}", uuid::Uuid::now_v7().simple()).to_uppercase())
        .unwrap();
    services::inventory::set_stock(&pipeline.shared().pool, &sku, UNITS, 8)
        .await
        .unwrap();
    let url = format!("http://{}/orders", pipeline.http_addr().unwrap());
    let client = reqwest::Client::new();
    let connections = Arc::new(tokio::sync::Semaphore::new(256));
    let started = tokio::time::Instant::now();
    let mut buyers = tokio::task::JoinSet::new();
    for n in 0..BUYERS {
        tokio::time::sleep_until(started + Duration::from_secs_f64(n as f64 / RATE)).await;
        let (client, url, connections) = (client.clone(), url.clone(), connections.clone());
        let body = serde_json::json!({
            "customer_id": uuid::Uuid::now_v7().to_string(),
            "lines": [{"sku": sku.as_str(), "quantity": 1, "unit_price_minor": 1999, "currency": "EUR"}],
            "delivery_address": {"name": "Buyer", "street": "1 Main St", "city": "Berlin",
                                 "postal_code": "10115", "country": "DE"},
        });
        buyers.spawn(async move {
            let _connection = connections.acquire_owned().await.unwrap();
            let response = client
                .post(&url)
                .header("Idempotency-Key", format!("buyer-{n}"))
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let answer: serde_json::Value = response.json().await.unwrap();
            (status, answer["order_id"].as_str().map(str::to_owned))
        });
    }
    let answers = buyers.join_all().await;
    let mut by_status = BTreeMap::<u16, i64>::new();
    let mut accepted = std::collections::BTreeSet::new();
    for (status, order_id) in &answers {
        *by_status.entry(*status).or_default() += 1;
        if *status == 202 {
            let id = uuid::Uuid::parse_str(order_id.as_deref().unwrap()).unwrap();
            accepted.insert(domain::OrderId::from_uuid(id).unwrap());
        }
    }
    eprintln!(
        "flash sale over HTTP: {BUYERS} buyers in {:.1} s, answers {by_status:?}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        by_status.keys().all(|status| [202, 429].contains(status)),
        "every buyer is answered 202 or 429: {by_status:?}"
    );
    let accepted_count = i64::try_from(accepted.len()).unwrap();
    assert!(accepted_count >= i64::from(UNITS), "{by_status:?}");
    let placed = Placed {
        order_ids: accepted,
        duplicates_suppressed: 0,
    };
    let pool = &pipeline.shared().pool;
    let open = wait_until_ended(
        pool,
        &placed,
        Duration::from_secs(600),
        &ProgressBar::hidden(),
        || pipeline.check(),
    )
    .await
    .unwrap();
    let report = Report::gather(pool, &placed, sku.as_str(), UNITS, None)
        .await
        .unwrap();
    pipeline.stop().await.unwrap();
    assert_eq!(open, 0, "orders still open:\n{}", report.render());
    let completed = i64::from(UNITS);
    assert_eq!(
        report.orders_by_state,
        counts([
            ("cancelled", accepted_count - completed),
            ("completed", completed)
        ])
    );
    assert_eq!(
        report.cancel_reasons,
        counts([("OutOfStock", accepted_count - completed)])
    );
    assert_passed(&report);
}

/// Finance's case: 2,000 orders of the demo's mix with a provider that times out on 2% of calls after
/// charging and never notifies 1% of its results (and loses 1% of the acknowledgements). The payments
/// service retries with the same idempotency key; the saga's deadlines (short here) ask again or
/// compensate; reconciliation repairs what is left (`--apply`, then a second run must find nothing: both in
/// the report's checks). After that the provider's books equal the orders: every cancelled order holds no
/// money there, every completed one exactly its total.
#[tokio::test]
async fn provider_timeouts_and_lost_notifications_leave_the_provider_books_equal_to_the_orders() {
    let Run {
        db,
        pipeline,
        _turn,
    } = start(&Part::ALL, |c| {
        let provider = &mut c.provider;
        provider.timeout_rate = 0.02;
        provider.charge_before_timeout = 1.0;
        provider.lost_notification_rate = 0.01;
        provider.lost_ack_rate = 0.01;
        provider.decline_rate = 0.05;
        provider.notifier.schedule = "200ms,500ms,1s".parse().unwrap();
        c.services.carrier.failure_rate = 0.02;
        let timeouts = &mut c.saga.timeouts;
        timeouts.authorize_payment = Duration::from_secs(5);
        timeouts.capture_payment = Duration::from_secs(5);
        timeouts.compensation = Duration::from_secs(5);
        c.saga.retry.first_backoff = Duration::from_millis(500);
        c.saga.retry.max_attempts = 20;
    })
    .await;
    let report = run(&pipeline, &Workload::demo(2000), Duration::from_secs(600)).await;
    pipeline.stop().await.unwrap();
    assert_passed(&report);
    let cancelled = report
        .orders_by_state
        .get("cancelled")
        .copied()
        .unwrap_or(0);
    assert!(
        cancelled > 0,
        "the mix cancels some orders: {:?}",
        report.orders_by_state
    );
    let (cancelled_holding, completed_off): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE o.status = 'cancelled' AND coalesce(l.held, 0) <> 0),
                count(*) FILTER (WHERE o.status = 'completed' AND coalesce(l.held, 0) <> o.total_minor)
         FROM orders_view o
         LEFT JOIN (SELECT order_id,
                           sum(CASE operation WHEN 'capture' THEN amount_minor
                                              WHEN 'refund' THEN -amount_minor ELSE 0 END) AS held
                    FROM provider_ledger GROUP BY order_id) l USING (order_id)",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(
        (cancelled_holding, completed_off),
        (0, 0),
        "at the provider: cancelled orders holding money, completed orders off their total"
    );
    let never_notified: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM provider_requests r
         WHERE NOT EXISTS (SELECT 1 FROM notifications n WHERE n.body ->> 'reference' = r.reference)",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert!(never_notified > 0, "the provider lost some results");
}

/// The event-carried columns of every `orders_view` row, in order.
async fn orders_view(
    pool: &sqlx::PgPool,
) -> Vec<(uuid::Uuid, uuid::Uuid, String, Option<String>, i64, String)> {
    sqlx::query_as(
        "SELECT order_id, customer_id, status, cancel_reason, total_minor, currency FROM orders_view
         ORDER BY order_id",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn rebuilding_orders_view_after_rows_are_lost_restores_it_from_the_events() {
    let Run {
        db,
        pipeline,
        _turn,
    } = start(&Part::ALL, |c| c.provider.decline_rate = 0.3).await;
    let report = run(&pipeline, &Workload::happy(40), Duration::from_secs(180)).await;
    assert_passed(&report);
    let original = orders_view(db.pool()).await;
    assert_eq!(original.len(), 40);
    assert!(
        ["completed", "cancelled"]
            .iter()
            .all(|s| original.iter().any(|row| row.2 == *s)),
        "both ends among the orders"
    );

    // Ten rows lost, one altered.
    sqlx::query(
        "DELETE FROM orders_view WHERE order_id IN (SELECT order_id FROM orders_view ORDER BY order_id LIMIT 10)",
    )
    .execute(db.pool())
    .await
    .unwrap();
    sqlx::query("UPDATE orders_view SET total_minor = total_minor + 1 WHERE order_id = $1")
        .bind(original[20].0)
        .execute(db.pool())
        .await
        .unwrap();

    let shared = pipeline.shared();
    let (progress, cancel) = (
        ProgressBar::hidden(),
        tokio_util::sync::CancellationToken::new(),
    );
    let replayer = ops::replay::Replayer {
        pool: db.pool(),
        kafka: &shared.config.kafka,
        codec: Arc::clone(&shared.codec),
        progress: &progress,
        cancel: &cancel,
        max_batch: 25,
    };
    let spec = ops::replay::ReplaySpec {
        source: shared.config.services.topics.events(Service::Orders),
        partitions: None,
        range: ops::replay::Range::default(),
        filters: ops::replay::Filters::default(),
        target: ops::replay::Target::Group {
            group: "orders-view".into(),
            rebuild: true,
        },
        rate: None,
    };
    let rebuilt = replayer
        .start(spec, ops::replay::Mode::Apply, "test")
        .await
        .unwrap();
    pipeline.stop().await.unwrap();

    let differences = rebuilt.differences.unwrap();
    assert_eq!(
        (
            differences.rebuilt,
            differences.missing,
            differences.differing,
            differences.restored
        ),
        (40, 10, 1, 11),
        "{differences:?}"
    );
    assert_eq!(orders_view(db.pool()).await, original);
    let (left,): (i64,) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM orders_view_rebuilds) + (SELECT count(*) FROM inbox WHERE consumer_group LIKE 'orders-view/%')",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(left, 0, "the rebuild's rows and inbox scope are dropped");
}
