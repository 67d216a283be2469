//! What the console's tests share: a pipeline with orders ended and the console over it, and a dead letter
//! to redrive.
#![allow(dead_code)]

use std::time::Duration;

use indicatif::ProgressBar;
use orderflow_console::{Console, ConsoleConfig};
use pipeline::report::wait_until_ended;
use pipeline::workload::Workload;
use pipeline::{Pipeline, PipelineConfig};
use producers::topics::Topics;
use testkit::TestDb;

pub const TOKEN: &str = "console-test-token";

/// A pipeline on its own database and topics, with `orders` orders ended, and the console over it;
/// returns the console's base URL.
pub struct Running {
    pub db: TestDb,
    pub pipeline: Pipeline,
    pub base: String,
    pub workload: Workload,
    stop: tokio_util::sync::CancellationToken,
}

/// The console over `db` alone (no pipeline, no registry), with `TOKEN`: its base URL, and what stops it.
pub async fn console_on(db: &TestDb) -> (String, tokio_util::sync::CancellationToken) {
    console_reading(db, false).await
}

/// As [`console_on`]; reading needs the token too when `reads_need_token`, as on an open address.
pub async fn console_reading(
    db: &TestDb,
    reads_need_token: bool,
) -> (String, tokio_util::sync::CancellationToken) {
    let console = Console::new(
        db.pool().clone(),
        testkit::kafka(),
        ConsoleConfig {
            topics: Topics::with_prefix(""),
            group_prefix: "orderflow-".into(),
            regions: Vec::new(),
            replication_every: Duration::from_secs(15),
            token: Some(TOKEN.into()),
            reads_need_token,
            codec: None,
            region: "test".into(),
        },
    );
    serve(console).await
}

async fn serve(console: Console) -> (String, tokio_util::sync::CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(console.serve(listener, stop.clone()));
    (base, stop)
}

pub async fn running(orders: usize) -> Running {
    running_with(orders, 0.3).await
}

/// As [`running`], with the provider declining a share `decline_rate` of the payments.
pub async fn running_with(orders: usize, decline_rate: f64) -> Running {
    let db = TestDb::new().await;
    let prefix = format!("{}.", testkit::unique_name("console"));
    let mut config = PipelineConfig::new(testkit::kafka());
    config.services.topics = Topics::with_prefix(&prefix);
    config.services.group_prefix.clone_from(&prefix);
    config.partitions = 2;
    config.provider.decline_rate = decline_rate;
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
            token: Some(TOKEN.to_owned()),
            reads_need_token: false,
            codec: Some(std::sync::Arc::clone(&pipeline.shared().codec)),
            region: pipeline.shared().config.services.region.clone(),
        },
    );
    let (base, stop) = serve(console).await;
    Running {
        db,
        pipeline,
        base,
        workload,
        stop,
    }
}

impl Running {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        reqwest::get(format!("{}{path}", self.base)).await.unwrap()
    }

    pub async fn json(&self, path: &str) -> serde_json::Value {
        let answer = self.get(path).await;
        assert_eq!(answer.status(), 200, "{path}");
        answer.json().await.unwrap()
    }

    /// POSTs to `path`, with `body` as JSON when given and `token` as a bearer when given.
    pub async fn post(
        &self,
        path: &str,
        body: Option<&serde_json::Value>,
        token: Option<&str>,
    ) -> reqwest::Response {
        let mut request = reqwest::Client::new().post(format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.pipeline.stop().await.unwrap();
    }
}

/// A dead letter of the global view: the `OrderPlaced` of an order its group never applied. Returns the
/// dead-letter topic, the order and the event id.
pub async fn dead_letter_of_the_global_view(running: &Running) -> (String, uuid::Uuid, uuid::Uuid) {
    use producers::headers::{self, EVENT_ID, EVENT_TYPE};
    let shared = running.pipeline.shared();
    let topic = shared
        .config
        .services
        .topics
        .events(producers::topics::Service::Orders);
    let placed = testkit::read_topic(&testkit::kafka(), &topic)
        .await
        .into_iter()
        .find(|r| r.headers.get(EVENT_TYPE).map(String::as_str) == Some("OrderPlaced"))
        .unwrap();
    let event_id: uuid::Uuid = placed.headers[EVENT_ID].parse().unwrap();
    let group = format!(
        "{}{}",
        shared.config.services.group_prefix,
        services::orders::global::GROUP
    );
    // Records are keyed by order id. The view's group has not applied it: no inbox row, no view row.
    let order: uuid::Uuid = placed.key.as_deref().unwrap().parse().unwrap();
    sqlx::query("DELETE FROM inbox WHERE consumer_group = $1 AND event_id = $2")
        .bind(&group)
        .bind(event_id)
        .execute(running.db.pool())
        .await
        .unwrap();
    sqlx::query("DELETE FROM orders_global WHERE order_id = $1")
        .bind(order)
        .execute(running.db.pool())
        .await
        .unwrap();
    let envelope = consumers::envelope::DeadLetterEnvelope {
        source_topic: topic.clone(),
        source_partition: placed.partition,
        source_offset: placed.offset,
        consumer_group: group,
        error_class: consumers::envelope::FailureClass::Poison,
        error_message: "the view's handler failed".into(),
        attempts: 1,
        first_failed_at_ms: 1,
        dead_lettered_at_ms: 2,
    };
    let mut all = placed.headers.clone();
    all.extend(envelope.to_headers());
    let dlq = Topics::dead_letters(&topic);
    producers::ensure_topic(&testkit::kafka(), &dlq, 1)
        .await
        .unwrap();
    let producer: rdkafka::producer::FutureProducer =
        testkit::kafka().client_config().create().unwrap();
    producer
        .send(
            rdkafka::producer::FutureRecord::to(&dlq)
                .key(placed.key.as_deref().unwrap())
                .payload(&placed.payload)
                .headers(headers::to_kafka(&all)),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    (dlq, order, event_id)
}

pub async fn global_rows(running: &Running, order: uuid::Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM orders_global WHERE order_id = $1")
        .bind(order)
        .fetch_one(running.db.pool())
        .await
        .unwrap()
}

/// Rewrites the saga of `order` as if its step `step` had run out of attempts after the saga's first
/// `keep` events and then `then` (event JSONs): the stream is cut there, the escalation appended, and the
/// `sagas` row says it needs attention. What the test stands in for: a participant that did not answer
/// within the retry budget.
pub async fn escalate(
    running: &Running,
    order: uuid::Uuid,
    keep: i64,
    then: &[serde_json::Value],
    step: &str,
) {
    let escalation = serde_json::json!({
        "type": "SagaEscalated", "step": step, "attempts": 5,
        "last_error": "no reply within 30s", "retryable": true
    });
    let mut tx = running.db.pool().begin().await.unwrap();
    sqlx::query("DELETE FROM saga_events WHERE order_id = $1 AND version > $2")
        .bind(order)
        .bind(keep)
        .execute(&mut *tx)
        .await
        .unwrap();
    let mut version = keep;
    for event in then.iter().chain([&escalation]) {
        version += 1;
        sqlx::query(
            "INSERT INTO saga_events (order_id, version, event_type, event) VALUES ($1, $2, $3, $4)",
        )
        .bind(order)
        .bind(version)
        .bind(event["type"].as_str().unwrap())
        .bind(event)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    sqlx::query(
        "UPDATE sagas SET version = $2, state = 'NeedsAttention', outcome = 'needs_attention',
                          cancel_reason = NULL
         WHERE order_id = $1",
    )
    .bind(order)
    .bind(version)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// Waits until the saga of `order` ends with `outcome`.
pub async fn wait_for_outcome(running: &Running, order: uuid::Uuid, outcome: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (now,): (Option<String>,) =
            sqlx::query_as("SELECT outcome FROM sagas WHERE order_id = $1")
                .bind(order)
                .fetch_one(running.db.pool())
                .await
                .unwrap();
        if now.as_deref() == Some(outcome) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the saga of {order} did not end {outcome} in 60 s: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `(version, type)` of the saga events of `order`.
pub async fn saga_events(running: &Running, order: uuid::Uuid) -> Vec<(i64, String)> {
    sqlx::query_as(
        "SELECT version, event_type FROM saga_events WHERE order_id = $1 ORDER BY version",
    )
    .bind(order)
    .fetch_all(running.db.pool())
    .await
    .unwrap()
}
