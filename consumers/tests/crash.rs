//! A consumer process killed with SIGKILL after its effects committed and before its offsets were: the next
//! consumer of the group gets the records again and the inbox keeps it to one effect each.
//!
//! The consumer runs in a child process: this test binary again, running the ignored `child_consumer` test
//! with the settings in its environment.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Running, handler, produce};

const CHILD_ENV: &str = "ORDERFLOW_CRASH_TEST_CHILD";

/// Runs a consumer until killed; offsets are committed only once a minute, so a kill loses them.
#[tokio::test]
#[ignore = "the child process of a_consumer_killed_before_its_offset_commit_applies_each_event_once"]
async fn child_consumer() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = spec.split('|');
    let (url, bootstrap, topic, group) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let settings = consumers::ConsumerConfig {
        commit_interval: Duration::from_secs(60),
        ..consumers::ConsumerConfig::new(group, vec![topic.to_owned()])
    };
    let kafka = producers::KafkaConfig::new(bootstrap);
    let runtime = consumers::ConsumerRuntime::new(pool, &kafka, settings, handler()).unwrap();
    runtime
        .run(tokio_util::sync::CancellationToken::new())
        .await
        .unwrap();
}

fn spawn_child(spec: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["child_consumer", "--exact", "--ignored", "--nocapture"])
        .env(CHILD_ENV, spec)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

async fn effect_count(db: &testkit::TestDb) -> (i64, i64) {
    sqlx::query_as("SELECT count(*), count(DISTINCT event_id) FROM effects")
        .fetch_one(db.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_consumer_killed_before_its_offset_commit_applies_each_event_once() {
    let (db, kafka, topic) = common::setup().await;
    let ids: Vec<uuid::Uuid> = (0..50).map(|_| uuid::Uuid::now_v7()).collect();
    let records: Vec<_> = ids.iter().map(|id| (Some(*id), "effect")).collect();
    produce(&kafka, &topic, &records).await;
    let group = testkit::unique_name("crash");
    let spec = format!("{}|{}|{topic}|{group}", db.url(), kafka.bootstrap);

    let mut first = spawn_child(&spec);
    common::wait_for_effects(&db, 50, Duration::from_secs(90)).await;
    first.kill().unwrap(); // SIGKILL: the effects are committed, the offsets are not
    first.wait().unwrap();

    // The group's next consumer starts from the last committed offset (none) and gets all 50 again.
    let second = Running::start_in(&group, &db, &kafka, &topic, handler());
    second.wait_until_handled(50).await;
    let duplicates = second
        .stats
        .duplicates
        .load(std::sync::atomic::Ordering::Relaxed);
    second.stop().await;
    assert_eq!(duplicates, 50, "every record came back and was skipped");
    assert_eq!(effect_count(&db).await, (50, 50));
}
