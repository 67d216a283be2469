//! The console's JSON API and pages over a real pipeline (Postgres and Kafka of `./dev up`): the overview
//! shows what the database holds, an order is found by id and by idempotency key with its saga's timeline,
//! and bad input is a problem+json 4xx that changes nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use indicatif::ProgressBar;
use orderflow_console::{Console, ConsoleConfig};
use pipeline::report::wait_until_ended;
use pipeline::workload::Workload;
use pipeline::{Pipeline, PipelineConfig};
use producers::topics::Topics;
use testkit::TestDb;

/// A pipeline on its own database and topics, with `orders` orders ended, and the console over it;
/// returns the console's base URL.
struct Running {
    db: TestDb,
    pipeline: Pipeline,
    base: String,
    workload: Workload,
    stop: tokio_util::sync::CancellationToken,
}

async fn running(orders: usize) -> Running {
    let db = TestDb::new().await;
    let prefix = format!("{}.", testkit::unique_name("console"));
    let mut config = PipelineConfig::new(testkit::kafka());
    config.services.topics = Topics::with_prefix(&prefix);
    config.services.group_prefix.clone_from(&prefix);
    config.partitions = 2;
    config.provider.decline_rate = 0.3;
    config.services.carrier.failure_rate = 0.0;
    let pipeline = Pipeline::start(db.pool().clone(), config).await.unwrap();
    let workload = Workload::happy(orders);
    let shared = pipeline.shared();
    workload.stock(shared).await.unwrap();
    let placed = workload
        .place(shared, &ProgressBar::hidden())
        .await
        .unwrap();
    let open = wait_until_ended(
        &shared.pool,
        &placed,
        Duration::from_secs(120),
        &ProgressBar::hidden(),
        || pipeline.check(),
    )
    .await
    .unwrap();
    assert_eq!(open, 0);

    let console = Console::new(
        db.pool().clone(),
        testkit::kafka(),
        ConsoleConfig {
            topics: Topics::with_prefix(&prefix),
            group_prefix: prefix.clone(),
            regions: Vec::new(),
            replication_every: Duration::from_secs(15),
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(console.serve(listener, stop.clone()));
    Running {
        db,
        pipeline,
        base,
        workload,
        stop,
    }
}

impl Running {
    async fn get(&self, path: &str) -> reqwest::Response {
        reqwest::get(format!("{}{path}", self.base)).await.unwrap()
    }

    async fn json(&self, path: &str) -> serde_json::Value {
        let answer = self.get(path).await;
        assert_eq!(answer.status(), 200, "{path}");
        answer.json().await.unwrap()
    }

    async fn stop(self) {
        self.stop.cancel();
        self.pipeline.stop().await.unwrap();
    }
}

#[tokio::test]
async fn the_overview_shows_what_the_database_holds() {
    let running = running(12).await;
    let overview = running.json("/api/overview").await;
    let in_database: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM orders_view GROUP BY status")
            .fetch_all(running.db.pool())
            .await
            .unwrap();
    let shown: BTreeMap<String, i64> =
        serde_json::from_value(overview["orders_last_hour"].clone()).unwrap();
    assert_eq!(shown, in_database.into_iter().collect::<BTreeMap<_, _>>());
    assert_eq!(shown.values().sum::<i64>(), 12);
    assert!(
        shown.contains_key("cancelled"),
        "declines among them: {shown:?}"
    );
    assert_eq!(overview["sagas_in_flight"], 0);
    assert_eq!(overview["sagas_needing_attention"], 0);
    assert_eq!(overview["outbox"]["quarantined"], 0);
    let groups: Vec<&str> = overview["consumer_lag"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            assert!(g["lag"].is_i64(), "every group's topics exist: {g}");
            g["group"].as_str().unwrap()
        })
        .collect();
    assert_eq!(groups.len(), 5, "{groups:?}");
    assert!(groups.iter().any(|g| g.ends_with("orchestrator")));

    // The page shows the same figures.
    let page = running.get("/").await.text().await.unwrap();
    let completed = overview["orders_last_hour"]["completed"]
        .as_i64()
        .unwrap_or(0);
    assert!(
        page.contains(&format!(
            "id=\"orders-completed\"><b class=\"\">{completed}</b>"
        )),
        "{page}"
    );
    assert!(page.contains("http-equiv=\"refresh\""), "it reloads itself");
    running.stop().await;
}

#[tokio::test]
async fn an_order_is_found_by_id_and_by_key_with_its_sagas_timeline() {
    let running = running(3).await;
    let (id, key): (uuid::Uuid, String) =
        sqlx::query_as("SELECT order_id, idempotency_key FROM order_submissions LIMIT 1")
            .fetch_one(running.db.pool())
            .await
            .unwrap();
    assert!(key.starts_with(&running.workload.run_id));
    let by_id = running.json(&format!("/api/orders/{id}")).await;
    let by_key = running.json(&format!("/api/orders/{key}")).await;
    assert_eq!(by_id, by_key);
    assert_eq!(by_id["order"]["order_id"], id.to_string());
    assert_eq!(by_id["order"]["idempotency_key"], key);
    let (steps,): (i64,) = sqlx::query_as("SELECT count(*) FROM saga_events WHERE order_id = $1")
        .bind(id)
        .fetch_one(running.db.pool())
        .await
        .unwrap();
    let timeline = by_id["timeline"].as_array().unwrap();
    assert_eq!(timeline.len() as i64, steps);
    assert!(steps >= 2, "a saga that ended took steps");
    assert!(by_id["saga"]["outcome"].is_string(), "{}", by_id["saga"]);
    let events: Vec<&str> = by_id["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(events.first(), Some(&"OrderPlaced"), "{events:?}");
    assert!(
        by_id["payment"]["status"].is_string(),
        "{}",
        by_id["payment"]
    );

    let page = running.get(&format!("/orders/{id}")).await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    for step in timeline {
        let event_type = step["event_type"].as_str().unwrap();
        assert!(
            page.contains(&format!("<td>{event_type}</td>")),
            "{event_type} in\n{page}"
        );
    }
    // The search form leads to the same page.
    let searched = running.get(&format!("/orders?ref={key}")).await;
    assert_eq!(searched.url().path(), format!("/orders/{key}"));
    running.stop().await;
}

#[tokio::test]
async fn bad_input_is_a_problem_with_a_4xx_status_and_changes_nothing() {
    let running = running(1).await;
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM orders_view")
        .fetch_one(running.db.pool())
        .await
        .unwrap();
    let unknown = uuid::Uuid::now_v7();
    let long = "k".repeat(300);
    for (path, status, detail) in [
        (format!("/api/orders/{unknown}"), 404, unknown.to_string()),
        (
            "/api/orders/no-such-key".to_owned(),
            404,
            "no-such-key".to_owned(),
        ),
        (
            "/api/orders/%20".to_owned(),
            400,
            "give an order id".to_owned(),
        ),
        (
            format!("/api/orders/{long}"),
            400,
            "300 characters".to_owned(),
        ),
        (
            "/api/sagas/whatever".to_owned(),
            404,
            "/api/sagas/whatever".to_owned(),
        ),
    ] {
        let answer = running.get(&path).await;
        assert_eq!(answer.status(), status, "{path}");
        assert_eq!(
            answer.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
        let problem: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(problem["status"], status);
        assert!(
            problem["detail"].as_str().unwrap().contains(&detail),
            "{path}: {problem}"
        );
    }
    // The page of an unknown order says so, with the same status.
    let page = running.get(&format!("/orders/{unknown}")).await;
    assert_eq!(page.status(), 404);
    assert!(page.text().await.unwrap().contains("no order has the id"));
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM orders_view")
        .fetch_one(running.db.pool())
        .await
        .unwrap();
    assert_eq!(before, after);
    running.stop().await;
}
