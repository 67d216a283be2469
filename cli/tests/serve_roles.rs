//! Least privilege in the binary: `orderflow serve <part>` migrates as DATABASE_URL's user, then runs the
//! part as its own role; ORDERFLOW_<PART>_DATABASE_URL gives a part a URL of its own, whose password never
//! shows, neither in an error nor in --help.

mod common;

use std::process::{Command, Stdio};

use common::free_local_address;

/// The users connected to `db`'s database, besides this query's own connection.
async fn connected_users(db: &testkit::TestDb) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT DISTINCT usename::text FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(db.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn serve_payments_connects_as_the_payments_role() {
    let db = testkit::TestDb::new().await;
    let kafka = testkit::kafka();
    let health = free_local_address();
    let mut payments = Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args(["serve", "payments", "--health-addr", &health])
        .env("DATABASE_URL", db.url())
        .env("KAFKA_BOOTSTRAP", &kafka.bootstrap)
        .env("PAYMENTS_CALLBACK_LISTEN", free_local_address())
        .env(
            "TOPIC_PREFIX",
            format!("{}.", testkit::unique_name("roles")),
        )
        .env("GROUP_PREFIX", testkit::unique_name("roles"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("the orderflow binary starts");
    common::wait_until_serving(&mut payments, &health, "payments").await;
    let users = connected_users(&db).await;
    payments.kill().unwrap();
    payments.wait().unwrap();
    assert!(
        users.iter().any(|u| u == "orderflow_payments"),
        "the payments part holds a connection as orderflow_payments: {users:?}"
    );
    // The test's own pool is the only other user; serve closed its migrating connection.
    assert!(
        users
            .iter()
            .all(|u| u == "orderflow_payments" || u == "postgres"),
        "{users:?}"
    );
}

#[tokio::test]
async fn a_parts_own_url_is_used_and_its_password_never_shown() {
    let db = testkit::TestDb::new().await;
    let own = format!("postgres://nobody:s3cret@127.0.0.1:5432/{}", db.name());
    let output = Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args(["serve", "payments", "--health-addr", &free_local_address()])
        .env("DATABASE_URL", db.url())
        .env("ORDERFLOW_PAYMENTS_DATABASE_URL", &own)
        .env("KAFKA_BOOTSTRAP", &testkit::kafka().bootstrap)
        .env("PAYMENTS_CALLBACK_LISTEN", free_local_address())
        .env("RUST_LOG", "info")
        .output()
        .expect("the orderflow binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("payments part") && stderr.contains("postgres://nobody:***@127.0.0.1"),
        "the error names the part and the URL it was given:\n{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");

    let help = Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args(["serve", "--help"])
        .env("ORDERFLOW_PAYMENTS_DATABASE_URL", &own)
        .output()
        .expect("the orderflow binary runs");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("ORDERFLOW_PAYMENTS_DATABASE_URL"), "{help}");
    assert!(!help.contains("s3cret"), "{help}");
}

/// The provider as its own process: it runs as `orderflow_provider`, registers where its results go, and
/// answers on its API.
#[tokio::test]
async fn serve_provider_runs_as_its_role_registers_its_callback_and_answers() {
    let db = testkit::TestDb::new().await;
    let health = free_local_address();
    let api = free_local_address();
    let callback = format!("http://{}/provider/results", free_local_address());
    let mut provider = Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args(["serve", "provider", "--health-addr", &health])
        .args(["--provider-listen", &api, "--callback-url", &callback])
        .env("DATABASE_URL", db.url())
        .env("KAFKA_BOOTSTRAP", &testkit::kafka().bootstrap)
        .env(
            "TOPIC_PREFIX",
            format!("{}.", testkit::unique_name("provider")),
        )
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("the orderflow binary starts");
    common::wait_until_serving(&mut provider, &health, "provider").await;
    let order = uuid::Uuid::now_v7();
    let mut answered = None;
    for _ in 0..100 {
        let body = r#"{"amount_minor": 1000, "currency": "EUR"}"#;
        let request = format!(
            "POST /v1/payments/{order}/authorize HTTP/1.1\r\nHost: {api}\r\nIdempotency-Key: k\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        if let Ok(answer) = common::send(&api, &request).await {
            answered = Some(answer);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let users = connected_users(&db).await;
    provider.kill().unwrap();
    provider.wait().unwrap();
    let answered = answered.expect("the provider's API answers");
    assert!(answered.starts_with("HTTP/1.1 202"), "{answered}");
    assert!(users.iter().any(|u| u == "orderflow_provider"), "{users:?}");
    let url: String =
        sqlx::query_scalar("SELECT url FROM notify_subscribers WHERE name = 'payments'")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(url, callback);
    let notified: i64 =
        sqlx::query_scalar("SELECT count(*) FROM notifications WHERE subscriber = 'payments'")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert!(
        notified >= 1,
        "the result is written for the payments service"
    );
}
