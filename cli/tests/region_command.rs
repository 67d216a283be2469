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
        .args(["--regions", &regions])
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
