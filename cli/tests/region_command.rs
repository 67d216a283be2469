//! `orderflow region status --serve`: the replication's figures as Prometheus gauges, read again and again
//! from both local regions (which `./dev up` replicates with MirrorMaker 2), until SIGTERM.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{free_local_address, get};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// The value of the series `name{labels}` in `metrics`, the Prometheus text format.
fn series(metrics: &str, name_and_labels: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.trim().parse().ok())
}

#[tokio::test]
async fn status_serves_the_lag_of_each_copied_partition_and_the_heartbeats_as_gauges() {
    let east = testkit::kafka();
    // xr-*: a topic MirrorMaker 2 replicates.
    let topic = format!("{}.orders.events", testkit::unique_name("xr"));
    producers::ensure_topic(&east, &topic, 1).await.unwrap();
    let producer: FutureProducer = east.client_config().create().unwrap();
    for n in 0..5 {
        producer
            .send(
                FutureRecord::to(&topic)
                    .key("k")
                    .payload(&format!("record {n}")),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }

    let addr = free_local_address();
    let regions = format!(
        "east={},west={}",
        east.bootstrap,
        testkit::kafka_west().bootstrap
    );
    let mut status = Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args(["region", "status", "--serve", &addr, "--every", "1"])
        .args(["--region-clusters", &regions])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Until the copy has caught up: MirrorMaker 2 finds a new topic within 5 s.
    let lag =
        format!("replication_lag_records{{flow=\"east->west\",topic=\"{topic}\",partition=\"0\"}}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let metrics = loop {
        let metrics = get(&addr, "/metrics").await.unwrap_or_default();
        if series(&metrics, &lag) == Some(0.0) {
            break metrics;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {lag} 0 in 90 s:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(
        series(&metrics, "replication_status_up"),
        Some(1.0),
        "{metrics}"
    );
    for flow in ["east->west", "west->east"] {
        let age = series(
            &metrics,
            &format!("replication_heartbeat_age_seconds{{flow=\"{flow}\"}}"),
        );
        assert!(
            age.is_some_and(|age| age < 30.0),
            "{flow}: {age:?}\n{metrics}"
        );
    }

    let terminated = Command::new("kill")
        .args(["-TERM", &status.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    let exit = status.wait().unwrap();
    assert!(exit.success(), "SIGTERM ends it with status 0: {exit}");
}

/// REGION, when --region-clusters (ORDERFLOW_REGIONS) names it, selects that region's cluster and a database of its
/// own, orderflow_<region> on the local server, which a command that migrates creates.
#[tokio::test]
async fn region_selects_its_cluster_and_a_database_of_its_own() {
    let server = testkit::database_url();
    if !server.starts_with("postgres://postgres@127.0.0.1:5432/") {
        eprintln!("skipped: REGION's databases are on the local server, the tests' on {server}");
        return;
    }
    let region = format!("r{}", uuid::Uuid::now_v7().simple());
    let database = format!("orderflow_{region}");
    let west = testkit::kafka_west().bootstrap;
    let output = Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .arg("smoke")
        .env_remove("DATABASE_URL")
        .env_remove("KAFKA_BOOTSTRAP")
        .env("REGION", &region)
        .env("ORDERFLOW_REGIONS", format!("{region}={west}"))
        .output()
        .unwrap();
    let created = sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
    )
    .bind(&database)
    .fetch_one(testkit::TestDb::new().await.pool())
    .await
    .unwrap();
    db::drop_database(&server, &database).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(created, "{database} created");
    assert!(
        stdout.contains(&format!("/{database}")) && stdout.contains(&format!("kafka: ok ({west},")),
        "{stdout}"
    );
}
