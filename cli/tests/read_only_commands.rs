//! Commands that only look (`outbox status`, `outbox quarantine list`, `status`) never change the schema: on
//! a database without orderflow's tables they say so and name the command that creates them, and the
//! database is left as it was.

use std::process::Command;

async fn empty_database() -> (String, String) {
    let server = testkit::database_url();
    let name = format!("orderflow_empty_{}", uuid::Uuid::now_v7().simple());
    let url = db::create_database(&server, &name).await.unwrap();
    (name, url)
}

#[tokio::test]
async fn read_only_commands_do_not_migrate_and_say_how_to() {
    let (name, url) = empty_database().await;
    let commands: [&[&str]; 3] = [
        &["outbox", "status"],
        &["outbox", "quarantine", "list"],
        &["status"],
    ];
    let mut outcomes = Vec::new();
    for args in commands {
        let output = Command::new(env!("CARGO_BIN_EXE_orderflow"))
            .args(args)
            .env("DATABASE_URL", &url)
            .env("KAFKA_BOOTSTRAP", &testkit::kafka().bootstrap)
            .output()
            .expect("the orderflow binary runs");
        outcomes.push((
            args.join(" "),
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ));
    }
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    db::drop_database(&testkit::database_url(), &name)
        .await
        .unwrap();

    assert_eq!(tables, 0, "the database is left without tables");
    for (command, code, stderr) in outcomes {
        assert_eq!(code, Some(1), "orderflow {command}:\n{stderr}");
        assert!(
            stderr.contains("orderflow migrate"),
            "orderflow {command} names the command that creates the tables:\n{stderr}"
        );
    }
}
