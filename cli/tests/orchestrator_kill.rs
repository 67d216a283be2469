//! `orderflow serve orchestrator` is killed with SIGKILL in the middle of a run; a new one, started at once,
//! takes over and every saga still ends, with the demo's consistency checks passing. The new one serves
//! /health and /metrics and exits 0 on SIGTERM.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use indicatif::ProgressBar;
use pipeline::report::{Report, wait_until_ended};
use pipeline::workload::Workload;
use pipeline::{Part, Pipeline, PipelineConfig};
use producers::topics::Topics;

use common::{free_local_address, get};

fn orchestrator(db_url: &str, registry_url: &str, prefix: &str, health_addr: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args(["serve", "orchestrator", "--health-addr", health_addr])
        .env("DATABASE_URL", db_url)
        .env("KAFKA_BOOTSTRAP", &testkit::kafka().bootstrap)
        .env("SCHEMA_REGISTRY_URL", registry_url)
        .env("TOPIC_PREFIX", prefix)
        .env("GROUP_PREFIX", prefix)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("the orderflow binary starts")
}

async fn ended(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM sagas WHERE ended_at IS NOT NULL")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn every_saga_ends_after_the_orchestrator_is_killed() {
    let db = testkit::TestDb::new().await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(30)
        .acquire_timeout(Duration::from_secs(60))
        .connect(db.url())
        .await
        .unwrap();
    let prefix = format!("{}.", testkit::unique_name("kill"));
    let mut config = PipelineConfig::new(testkit::kafka());
    config.services.topics = Topics::with_prefix(prefix.clone());
    config.services.group_prefix = prefix.clone();
    config.partitions = 3;
    config.provider.decline_rate = 0.0;
    config.services.carrier.failure_rate = 0.0;
    config.services.carrier.dispatch_delay = Duration::from_millis(200);
    config.services.carrier.delivery_delay = Duration::from_millis(200);
    let in_process: Vec<Part> = Part::ALL
        .into_iter()
        .filter(|p| *p != Part::Orchestrator)
        .collect();
    let pipeline = Pipeline::start_parts(pool.clone(), config, &in_process)
        .await
        .unwrap();
    let registry_url = pipeline.shared().registry_url.clone();
    let mut first = orchestrator(db.url(), &registry_url, &prefix, "127.0.0.1:0");

    let workload = Workload::happy(100);
    workload.stock(pipeline.shared()).await.unwrap();
    let placed = workload
        .place(pipeline.shared(), &ProgressBar::hidden())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    while ended(&pool).await < 10 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no saga ended with the first orchestrator"
        );
        assert!(
            first.try_wait().unwrap().is_none(),
            "the orchestrator exited on its own"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let at_kill = ended(&pool).await;
    assert!(
        at_kill < 100,
        "every saga had ended before the kill; the test proves nothing"
    );

    // The new process starts at once, while the dead one is still a member of the group: the broker must
    // evict it when its session times out and give its partitions to the new one.
    let health = free_local_address();
    let mut second = orchestrator(db.url(), &registry_url, &prefix, &health);
    let open = wait_until_ended(
        &pool,
        &placed,
        Duration::from_secs(300),
        &ProgressBar::hidden(),
        || pipeline.check(),
    )
    .await
    .unwrap();
    let report = Report::gather(&pool, &placed, &workload.flash_sku(), 0, None)
        .await
        .unwrap();
    let alive = get(&health, "/health").await.unwrap();
    let metrics = get(&health, "/metrics").await.unwrap();
    let terminated = Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    let exit = second.wait().unwrap();
    pipeline.stop().await.unwrap();
    assert!(alive.starts_with("HTTP/1.1 200"), "{alive}");
    assert!(
        metrics.starts_with("HTTP/1.1 200") && metrics.contains("saga_transitions_total"),
        "{metrics}"
    );
    assert!(
        exit.success(),
        "SIGTERM ends the orchestrator with status 0: {exit}"
    );
    assert_eq!(open, 0, "{at_kill} ended at the kill\n{}", report.render());
    assert_eq!(
        report.saga_outcomes.get("completed"),
        Some(&100),
        "{}",
        report.render()
    );
    assert!(report.passed(), "{}", report.render());
}
