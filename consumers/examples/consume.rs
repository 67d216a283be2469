//! A welcome-mail service that is not part of orderflow: it consumes the sign-ups announced by
//! `cargo run -p outbox --example publish` with orderflow's consumer runtime, and keeps a row per welcome
//! mail in its own table. The runtime claims each record's `event_id` in the inbox within the transaction
//! it hands the handler, so a record delivered twice is applied once. `cargo run -p consumers --example
//! consume` runs until its group has caught up with the topic (or Ctrl-C), then stops cleanly.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::bail;
use consumers::{ConsumerConfig, ConsumerRuntime, Handler, HandlerError, Incoming};
use producers::KafkaConfig;
use sqlx::PgConnection;
use tokio_util::sync::CancellationToken;

const TOPIC: &str = "signups.events";
const GROUP: &str = "example-welcome-mails";
const TABLE: &str =
    "CREATE TABLE IF NOT EXISTS example_welcomes (signup_id uuid PRIMARY KEY, email text)";
const INSERT: &str = "INSERT INTO example_welcomes (signup_id, email) VALUES ($1, $2)";

/// What this service reads of the sign-up event.
#[derive(serde::Deserialize)]
struct SignedUp {
    signup_id: uuid::Uuid,
    email: String,
}

struct Welcome;

impl Handler for Welcome {
    async fn handle(&self, tx: &mut PgConnection, record: &Incoming) -> Result<(), HandlerError> {
        // A record that cannot be read never will be: poison, sent to `signups.events.dlq`.
        let signup: SignedUp =
            serde_json::from_slice(&record.payload).map_err(|e| HandlerError::Poison(e.into()))?;
        // A database that fails may come back: transient, retried in place while the partition waits.
        let welcome = sqlx::query(INSERT)
            .bind(signup.signup_id)
            .bind(signup.email);
        welcome
            .execute(tx)
            .await
            .map_err(|e| HandlerError::Transient(e.into()))?;
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let local = "postgres://postgres@127.0.0.1:5432/postgres";
    let url = std::env::var("DATABASE_URL").unwrap_or(local.into());
    let bootstrap = std::env::var("KAFKA_BOOTSTRAP").unwrap_or(producers::DEFAULT_BOOTSTRAP.into());
    let kafka = KafkaConfig::new(bootstrap);
    let pool = db::connect(&db::DbConfig::from_url(url)).await?;
    db::migrate(&pool).await?; // the inbox (and every other orderflow table)
    sqlx::query(TABLE).execute(&pool).await?;
    producers::ensure_topic(&kafka, TOPIC, 3).await?;

    let topics = vec![TOPIC.to_owned()];
    let mut settings = ConsumerConfig::new(GROUP, topics.clone());
    settings.commit_interval = Duration::from_secs(1); // so that the lag below soon shows progress
    let runtime = ConsumerRuntime::new(pool, &kafka, settings, Welcome)?;
    let stats = runtime.stats();
    let shutdown = CancellationToken::new();
    let mut consumer = tokio::spawn(runtime.run(shutdown.clone()));
    let on_ctrl_c = shutdown.clone();
    tokio::spawn(async move { tokio::signal::ctrl_c().await.map(|()| on_ctrl_c.cancel()) });
    // Caught up once the group's committed offsets reach the end of every partition.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            ended = &mut consumer => bail!("the consumer stopped by itself: {:?}", ended?),
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let lags = consumers::lag::group_lag(&kafka, GROUP, &topics).await?;
        match lags.iter().map(|p| p.lag).sum::<i64>() {
            0 => break,
            lag if Instant::now() > deadline => bail!("{lag} records unhandled after 120 s"),
            _ => {}
        }
    }
    shutdown.cancel();
    consumer.await??;
    let (applied, duplicates) = (stats.applied.load(Relaxed), stats.duplicates.load(Relaxed));
    let dead = stats.dead_lettered.load(Relaxed);
    println!(
        "welcomed {applied}; the inbox skipped {duplicates} redelivered; {dead} dead-lettered"
    );
    Ok(())
}
