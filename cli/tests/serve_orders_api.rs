//! `orderflow serve orders` serves the orders HTTP API on --http-addr: an order placed over HTTP is read
//! back, a bad one is a problem naming its field, and SIGTERM ends the process with status 0.

mod common;

use std::process::{Command, Stdio};

use common::free_local_address;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// `POST /orders` over plain HTTP/1.1 with `key` and `body`: the whole answer, status line first.
async fn post_order(addr: &str, key: &str, body: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /orders HTTP/1.1\r\nHost: {addr}\r\nIdempotency-Key: {key}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

fn order(quantity: u32) -> String {
    format!(
        r#"{{"customer_id": "{}", "lines": [{{"sku": "MUG-RED", "quantity": {quantity}, "unit_price_minor": 1250,
            "currency": "EUR"}}], "delivery_address": {{"name": "Ada", "street": "1 Main St", "city": "Berlin",
            "postal_code": "10115", "country": "DE"}}}}"#,
        uuid::Uuid::now_v7()
    )
}

#[tokio::test]
async fn serve_orders_takes_orders_over_http_and_stops_on_sigterm() {
    let db = testkit::TestDb::new().await;
    let registry = schemas::registry::LocalRegistry::start(db.pool().clone())
        .await
        .unwrap();
    let health = free_local_address();
    let http = free_local_address();
    let prefix = format!("{}.", testkit::unique_name("api"));
    let mut orders = Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args([
            "serve",
            "orders",
            "--health-addr",
            &health,
            "--http-addr",
            &http,
        ])
        .env("DATABASE_URL", db.url())
        .env("KAFKA_BOOTSTRAP", &testkit::kafka().bootstrap)
        .env("SCHEMA_REGISTRY_URL", registry.url())
        .env("TOPIC_PREFIX", &prefix)
        .env("GROUP_PREFIX", &prefix)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("the orderflow binary starts");
    common::wait_until_serving(&mut orders, &health, "orders").await;

    let accepted = post_order(&http, "cli-1", &order(2)).await;
    assert!(accepted.starts_with("HTTP/1.1 202"), "{accepted}");
    let location = accepted
        .lines()
        .find_map(|line| line.strip_prefix("location: "))
        .unwrap_or_else(|| panic!("no Location: {accepted}"))
        .to_owned();
    let read = common::get(&http, &location).await.unwrap();
    assert!(read.starts_with("HTTP/1.1 200"), "{read}");
    assert!(read.contains(r#""status":"placed""#), "{read}");

    let refused = post_order(&http, "cli-2", &order(0)).await;
    assert!(refused.starts_with("HTTP/1.1 422"), "{refused}");
    assert!(refused.contains("lines[0].quantity"), "{refused}");
    let placed: i64 = sqlx::query_scalar("SELECT count(*) FROM orders_view")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(placed, 1);

    let signalled = Command::new("kill")
        .args(["-TERM", &orders.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let exit = orders.wait().unwrap();
    assert_eq!(
        exit.code(),
        Some(0),
        "SIGTERM ends serve orders with 0: {exit}"
    );
    assert!(
        tokio::net::TcpStream::connect(&http).await.is_err(),
        "the API stopped listening"
    );
}
