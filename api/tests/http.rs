//! The orders API over real HTTP, on a real database and registry: what it accepts, what it refuses and with
//! which problem, one order per key under a race, admission control, the OpenAPI file and shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use api::{Api, ApiConfig};
use outbox::EventStore;
use producers::topics::Topics;
use reqwest::StatusCode;
use schemas::AvroCodec;
use schemas::registry::LocalRegistry;
use serde_json::{Value, json};
use testkit::TestDb;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

struct Server {
    db: TestDb,
    _registry: LocalRegistry,
    addr: SocketAddr,
    client: reqwest::Client,
    cancel: CancellationToken,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(config: ApiConfig) -> Self {
        let db = TestDb::new().await;
        let registry = LocalRegistry::start(db.pool().clone()).await.unwrap();
        let codec = Arc::new(AvroCodec::new(registry.url()).unwrap());
        let topics = Topics::with_prefix(format!("{}.", testkit::unique_name("api")));
        let store = EventStore::new(db.pool().clone(), codec, topics, "local");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cancel = CancellationToken::new();
        let served = tokio::spawn(api::serve(
            listener,
            Api::new(store, config),
            cancel.clone(),
        ));
        Self {
            db,
            _registry: registry,
            addr,
            client: reqwest::Client::new(),
            cancel,
            served,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn place(&self, key: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/orders"))
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// `POST /orders` with exactly these headers and body.
    async fn post(&self, headers: &[(&str, &str)], body: String) -> reqwest::Response {
        let mut request = self.client.post(self.url("/orders")).body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }

    async fn count(&self, table: &str) -> i64 {
        let sql = match table {
            "orders_view" => "SELECT count(*) FROM orders_view",
            "outbox" => "SELECT count(*) FROM outbox",
            "order_submissions" => "SELECT count(*) FROM order_submissions",
            other => panic!("no count of {other}"),
        };
        sqlx::query_scalar(sql)
            .fetch_one(self.db.pool())
            .await
            .unwrap()
    }

    async fn nothing_written(&self) {
        for table in ["orders_view", "outbox", "order_submissions"] {
            assert_eq!(self.count(table).await, 0, "{table} has rows");
        }
    }
}

fn order() -> Value {
    json!({
        "customer_id": Uuid::now_v7().to_string(),
        "lines": [
            {"sku": "MUG-RED", "quantity": 2, "unit_price_minor": 1250, "currency": "EUR"},
            {"sku": "TEA-1KG", "quantity": 1, "unit_price_minor": 1899, "currency": "EUR"}
        ],
        "delivery_address": {
            "name": "Ada Lovelace", "street": "12 St James's Square", "city": "London",
            "postal_code": "SW1Y 4JH", "country": "GB"
        }
    })
}

async fn problem(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json", "{status}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16(), "{body}");
    assert!(
        body["type"].as_str().unwrap().starts_with("/problems/"),
        "{body}"
    );
    assert!(!body["detail"].as_str().unwrap().is_empty(), "{body}");
    (status, body)
}

#[tokio::test]
async fn an_order_is_accepted_then_read_back_with_its_status() {
    let server = Server::start(ApiConfig::default()).await;
    let response = server.place("first", &order()).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let accepted: Value = response.json().await.unwrap();
    let order_id = accepted["order_id"].as_str().unwrap();
    assert_eq!(location, format!("/orders/{order_id}"));
    assert_eq!(accepted["location"], location);
    // The order, its OrderPlaced event and the event's outbox record committed before the answer.
    assert_eq!(server.count("orders_view").await, 1);
    assert_eq!(server.count("outbox").await, 1);

    let read = server
        .client
        .get(server.url(&location))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["order_id"], order_id);
    assert_eq!(read["status"], "placed");
    assert_eq!(read["total"], json!({"minor": 4399, "currency": "EUR"}));
    assert_eq!(read["delivery_address"]["postal_code"], "SW1Y 4JH");
    assert_eq!(read["cancel_reason"], Value::Null);
    assert_eq!(read["saga"], Value::Null, "no orchestrator runs here");
    assert!(read["placed_at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn one_key_makes_one_order_also_when_its_requests_race() {
    let server = Arc::new(Server::start(ApiConfig::default()).await);
    let body = order();
    let mut racing = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let server = Arc::clone(&server);
        let body = body.clone();
        racing.spawn(async move {
            let response = server.place("same-key", &body).await;
            let status = response.status();
            let answer: Value = response.json().await.unwrap();
            (status, answer["order_id"].as_str().unwrap().to_owned())
        });
    }
    let answers = racing.join_all().await;
    let created = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::ACCEPTED)
        .count();
    assert_eq!(created, 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(
                |(status, id)| (*status == StatusCode::ACCEPTED || *status == StatusCode::OK)
                    && *id == answers[0].1
            ),
        "{answers:?}"
    );
    assert_eq!(server.count("orders_view").await, 1);
    // A repeat of the same order gets the first order and writes nothing.
    let again = server.place("same-key", &body).await;
    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["order_id"], answers[0].1.as_str());
    // The key with another order is refused, naming the key, and nothing is written.
    let mut other = body.clone();
    other["lines"][0]["quantity"] = json!(3);
    let (status, refused) = problem(server.place("same-key", &other).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"),
        "{refused}"
    );
    assert_eq!(server.count("orders_view").await, 1);
}

#[tokio::test]
async fn bad_input_is_a_problem_naming_each_field_and_nothing_is_written() {
    let server = Server::start(ApiConfig {
        max_body_bytes: 2048,
        ..ApiConfig::default()
    })
    .await;

    // 422: each field at fault, by path and pointer.
    let mut bad = order();
    bad["lines"][1]["quantity"] = json!(0);
    bad["lines"][0]["sku"] = json!("mug red");
    bad["delivery_address"]["country"] = json!("Britain");
    let (status, body) = problem(server.place("bad-fields", &bad).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "lines[0].sku",
            "lines[1].quantity",
            "delivery_address.country"
        ]
    );
    assert_eq!(body["errors"][1]["pointer"], "/lines/1/quantity");

    // 422: a field of the wrong type, and one missing.
    let mut bad = order();
    bad["lines"][0]["quantity"] = json!("two");
    bad.as_object_mut().unwrap().remove("customer_id");
    let (status, body) = problem(server.place("bad-types", &bad).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "customer_id");
    assert_eq!(body["errors"][0]["detail"], "is required");
    assert_eq!(body["errors"][1]["field"], "lines[0].quantity");

    // 400: not JSON; no Idempotency-Key; a blank one.
    let json = ("Content-Type", "application/json");
    let not_json = server
        .post(&[("Idempotency-Key", "k"), json], "{\"lines\": [".into())
        .await;
    let (status, body) = problem(not_json).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"].as_str().unwrap().contains("not JSON"),
        "{body}"
    );
    let no_key = server.post(&[json], order().to_string()).await;
    let (status, body) = problem(no_key).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"].as_str().unwrap().contains("Idempotency-Key"),
        "{body}"
    );
    let (status, _) = problem(server.place("   ", &order()).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // 415: not JSON by its Content-Type.
    let text = server
        .post(
            &[("Idempotency-Key", "text"), ("Content-Type", "text/plain")],
            order().to_string(),
        )
        .await;
    let (status, _) = problem(text).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // 413: over the limit by its Content-Length, and chunked with no length.
    let mut big = order();
    big["note"] = json!("x".repeat(4096));
    let (status, body) = problem(server.place("big", &big).await).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(body["detail"].as_str().unwrap().contains("2048"), "{body}");
    let answer = chunked_post(server.addr, &big.to_string()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    server.nothing_written().await;
}

/// POSTs `body` in one chunk of `Transfer-Encoding: chunked` (no Content-Length) and returns the answer.
async fn chunked_post(addr: SocketAddr, body: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /orders HTTP/1.1\r\nHost: {addr}\r\nIdempotency-Key: chunked\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.ok();
    answer
}

#[tokio::test]
async fn a_full_backlog_is_answered_429_at_once_and_a_repeat_still_finds_its_order() {
    let server = Server::start(ApiConfig {
        max_backlog: 2,
        ..ApiConfig::default()
    })
    .await;
    let a = order();
    let first = server.place("a", &a).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first: Value = first.json().await.unwrap();
    assert_eq!(
        server.place("b", &order()).await.status(),
        StatusCode::ACCEPTED
    );

    let refused = server.place("c", &order()).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "1");
    let (status, body) = problem(refused).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["type"], "/problems/busy");
    assert_eq!(server.count("orders_view").await, 2, "a 429 writes nothing");

    let repeat = server.place("a", &a).await;
    assert_eq!(repeat.status(), StatusCode::OK);
    // While full, the key with another order is still refused as reused, not as busy.
    let (status, reused) = problem(server.place("a", &order()).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reused["type"], "/problems/idempotency-key-reused");
    let repeat: Value = repeat.json().await.unwrap();
    assert_eq!(repeat["order_id"], first["order_id"]);

    // Once an order ends, the next count frees its place.
    sqlx::query("UPDATE orders_view SET status = 'completed' WHERE order_id = $1")
        .bind(Uuid::parse_str(first["order_id"].as_str().unwrap()).unwrap())
        .execute(server.db.pool())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = server.place("c", &order()).await.status();
        if status == StatusCode::ACCEPTED {
            break;
        }
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert!(
            tokio::time::Instant::now() < deadline,
            "never admitted again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(server.count("orders_view").await, 3);
}

#[tokio::test]
async fn an_unknown_or_malformed_order_id_is_404() {
    let server = Server::start(ApiConfig::default()).await;
    for path in [
        format!("/orders/{}", Uuid::now_v7()),
        "/orders/not-an-id".to_owned(),
    ] {
        let (status, _) = problem(server.client.get(server.url(&path)).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn the_openapi_file_describes_exactly_the_served_routes_and_their_answers() {
    let server = Server::start(ApiConfig::default()).await;
    let spec: Value = server
        .client
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(spec, serde_json::from_str::<Value>(api::OPENAPI).unwrap());
    let mut documented = Vec::new();
    for (path, operations) in spec["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            documented.push((method.clone(), path.clone()));
            // Each route answers a bare request with one of the statuses its operation documents.
            let url = server.url(&path.replace("{id}", &Uuid::now_v7().to_string()));
            let answer = server
                .client
                .request(method.to_uppercase().parse().unwrap(), url)
                .send()
                .await
                .unwrap();
            let status = answer.status().as_u16().to_string();
            assert!(
                operation["responses"].get(&status).is_some(),
                "{method} {path} answered {status}, which its operation does not document"
            );
        }
    }
    documented.sort();
    let mut served: Vec<(String, String)> = api::ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    served.sort();
    assert_eq!(documented, served);
    // Nothing else is served.
    let stray = server
        .client
        .get(server.url("/orders"))
        .send()
        .await
        .unwrap();
    assert_eq!(stray.status(), StatusCode::METHOD_NOT_ALLOWED);
    let stray = server
        .client
        .get(server.url("/admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(stray.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn shutdown_closes_the_listener_first_and_finishes_the_request_in_flight() {
    let server = Server::start(ApiConfig::default()).await;
    // Hold the key's row so that a request with that key waits inside its transaction.
    let mut holder = server.db.pool().begin().await.unwrap();
    sqlx::query("INSERT INTO order_submissions (idempotency_key, order_id) VALUES ('held', $1)")
        .bind(Uuid::now_v7())
        .execute(&mut *holder)
        .await
        .unwrap();
    let in_flight = {
        let client = server.client.clone();
        let url = server.url("/orders");
        tokio::spawn(async move {
            client
                .post(url)
                .header("Idempotency-Key", "held")
                .json(&order())
                .send()
                .await
                .map(|r| r.status())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !in_flight.is_finished(),
        "the request did not wait for the held key"
    );

    server.cancel.cancel();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(server.addr).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "still listening");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !server.served.is_finished(),
        "stopped before the request in flight"
    );

    holder.rollback().await.unwrap();
    let status = in_flight.await.unwrap().unwrap();
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "the request in flight finished"
    );
    let Server { served, .. } = server;
    tokio::time::timeout(Duration::from_secs(10), served)
        .await
        .expect("stopped after the request in flight")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn an_order_whose_saga_ended_needing_attention_no_longer_counts_against_the_bound() {
    let server = Server::start(ApiConfig {
        max_backlog: 1,
        ..ApiConfig::default()
    })
    .await;
    let stuck = server.place("stuck", &order()).await;
    assert_eq!(stuck.status(), StatusCode::ACCEPTED);
    let stuck: Value = stuck.json().await.unwrap();
    assert_eq!(
        server.place("next", &order()).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // The saga gave up and escalated: the order stays placed until an operator acts, but nothing is in
    // flight any more.
    sqlx::query(
        "INSERT INTO sagas (order_id, version, state, outcome, ended_at)
         VALUES ($1, 9, 'NeedsAttention', 'needs_attention', now())",
    )
    .bind(Uuid::parse_str(stuck["order_id"].as_str().unwrap()).unwrap())
    .execute(server.db.pool())
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = server.place("next", &order()).await.status();
        if status == StatusCode::ACCEPTED {
            break;
        }
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert!(
            tokio::time::Instant::now() < deadline,
            "an escalated order still counts as in flight"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
