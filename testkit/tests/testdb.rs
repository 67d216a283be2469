//! The test database helper against the real Postgres server.

use sqlx::Connection as _;

async fn database_exists(name: &str) -> bool {
    let mut admin = sqlx::PgConnection::connect(&testkit::database_url())
        .await
        .expect("admin connection");
    sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(&mut admin)
        .await
        .expect("query pg_database")
}

#[tokio::test]
async fn each_test_database_is_fresh_migrated_and_dropped_afterwards() {
    let first = testkit::TestDb::new().await;
    let second = testkit::TestDb::new().await;
    assert_ne!(first.name(), second.name());

    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(first.pool())
        .await
        .expect("migrations table");
    assert_eq!(applied as usize, db::MIGRATOR.iter().count());

    // A row written in one database is not visible in the other.
    sqlx::query("CREATE TABLE probe (v int)")
        .execute(first.pool())
        .await
        .unwrap();
    let in_second: Option<String> = sqlx::query_scalar("SELECT to_regclass('probe')::text")
        .fetch_one(second.pool())
        .await
        .unwrap();
    assert_eq!(in_second, None);

    let name = first.name().to_owned();
    assert!(database_exists(&name).await);
    drop(first);
    assert!(!database_exists(&name).await, "{name} was not dropped");
}

#[test]
fn unique_names_differ_and_keep_the_prefix() {
    let a = testkit::unique_name("orders.events");
    let b = testkit::unique_name("orders.events");
    assert_ne!(a, b);
    assert!(a.starts_with("orders.events-"));
}
