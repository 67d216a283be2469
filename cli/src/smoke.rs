//! `orderflow smoke`: proves the environment works end to end before anything else runs on it.

use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use producers::KafkaConfig;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

/// The topic the smoke check writes to; records in it mean nothing and may be deleted at any time.
const SMOKE_TOPIC: &str = "orderflow.smoke";

pub async fn run(db_settings: &db::DbConfig, kafka: &KafkaConfig) -> anyhow::Result<()> {
    let started = Instant::now();
    postgres_round_trip(db_settings).await?;
    println!("postgres: ok ({})", db_settings.redacted_url());
    let offset = kafka_round_trip(kafka).await?;
    println!(
        "kafka: ok ({}, {SMOKE_TOPIC} offset {offset})",
        kafka.bootstrap
    );
    println!("smoke check passed in {:.1?}", started.elapsed());
    Ok(())
}

/// Migrates, then writes a row in a temporary table and reads it back.
async fn postgres_round_trip(settings: &db::DbConfig) -> anyhow::Result<()> {
    let pool = db::connect(settings).await?;
    db::migrate(&pool).await?;
    let mut tx = pool
        .begin()
        .await
        .context("failed to begin a transaction")?;
    sqlx::query("CREATE TEMPORARY TABLE smoke (token uuid) ON COMMIT DROP")
        .execute(&mut *tx)
        .await
        .context("failed to create a temporary table")?;
    let token = uuid::Uuid::now_v7();
    sqlx::query("INSERT INTO smoke (token) VALUES ($1)")
        .bind(token)
        .execute(&mut *tx)
        .await
        .context("failed to insert a row")?;
    let read: uuid::Uuid = sqlx::query_scalar("SELECT token FROM smoke")
        .fetch_one(&mut *tx)
        .await
        .context("failed to read the row back")?;
    tx.commit().await.context("failed to commit")?;
    ensure!(read == token, "postgres returned {read}, expected {token}");
    Ok(())
}

/// Produces one record and consumes it back from the offset the broker acknowledged.
async fn kafka_round_trip(kafka: &KafkaConfig) -> anyhow::Result<i64> {
    producers::ensure_topic(kafka, SMOKE_TOPIC, 1).await?;
    let producer: FutureProducer = kafka
        .client_config()
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "15000")
        .create()
        .context("failed to create a producer")?;
    let token = uuid::Uuid::now_v7().to_string();
    let delivery = producer
        .send(
            FutureRecord::to(SMOKE_TOPIC).key("smoke").payload(&token),
            Duration::from_secs(15),
        )
        .await
        .map_err(|(e, _)| e)
        .with_context(|| format!("failed to produce to {SMOKE_TOPIC} at {}", kafka.bootstrap))?;

    let consumer: StreamConsumer = kafka
        .client_config()
        .set("group.id", "orderflow-smoke")
        .set("enable.auto.commit", "false")
        .create()
        .context("failed to create a consumer")?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(
        SMOKE_TOPIC,
        delivery.partition,
        Offset::Offset(delivery.offset),
    )?;
    consumer.assign(&assignment)?;
    let message = tokio::time::timeout(Duration::from_secs(15), consumer.recv())
        .await
        .with_context(|| {
            format!(
                "the record produced at {SMOKE_TOPIC} offset {} did not come back within 15 s",
                delivery.offset
            )
        })?
        .context("failed to consume")?;
    let payload = message.payload().unwrap_or_default();
    ensure!(
        message.offset() == delivery.offset && payload == token.as_bytes(),
        "read back offset {} with payload {:?}, expected offset {} with {token}",
        message.offset(),
        String::from_utf8_lossy(payload),
        delivery.offset
    );
    Ok(delivery.offset)
}
