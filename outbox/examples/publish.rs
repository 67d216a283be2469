//! A sign-up service that is not part of orderflow: it keeps its own table and announces each sign-up on
//! Kafka through orderflow's outbox. Each sign-up row and its outbox record commit in one transaction, so
//! nothing is announced that was not stored, nor stored and never announced. A relay then publishes the
//! outbox (at least once, in commit order per key); this one stops once the broker has acknowledged ours.
//! `cargo run -p outbox --example publish`, then `cargo run -p consumers --example consume`.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use outbox::{EventStore, Metadata, Relay, RelayConfig};
use producers::{KafkaConfig, topics::Topics};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const TOPIC: &str = "signups.events";
const TABLE: &str = "CREATE TABLE IF NOT EXISTS example_signups (id uuid PRIMARY KEY, email text)";
const INSERT: &str = "INSERT INTO example_signups (id, email) VALUES ($1, $2)";
/// Ours that are still in the outbox, and in quarantine (refused by the broker for good).
const LEFT: &str = "SELECT (SELECT count(*) FROM outbox WHERE headers->>'event_id' = ANY($1)),
    (SELECT count(*) FROM outbox_quarantine WHERE headers->>'event_id' = ANY($1))";

/// The service's message: its serde form is the record's value, its `Message` names give the record's
/// `event_type` header; the key is the sign-up. Writers of one key must be serialized to keep its order on
/// the topic; here each sign-up is its own key with one writer.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type")]
enum SignupEvent {
    SignedUp { signup_id: Uuid, email: String },
}

impl domain::Message for SignupEvent {
    const EVENT_TYPES: &'static [&'static str] = &["SignedUp"];
    fn event_type(&self) -> &'static str {
        "SignedUp"
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let local = "postgres://postgres@127.0.0.1:5432/postgres";
    let url = std::env::var("DATABASE_URL").unwrap_or(local.into());
    let bootstrap = std::env::var("KAFKA_BOOTSTRAP").unwrap_or(producers::DEFAULT_BOOTSTRAP.into());
    let kafka = KafkaConfig::new(bootstrap);
    let pool = db::connect(&db::DbConfig::from_url(url)).await?;
    db::migrate(&pool).await?; // the outbox (and every other orderflow table)
    sqlx::query(TABLE).execute(&pool).await?;
    producers::ensure_topic(&kafka, TOPIC, 3).await?;

    let store = EventStore::json(pool.clone(), Topics::default(), "local");
    let mut ours = Vec::new();
    for n in 1..=5 {
        let (signup_id, email) = (Uuid::now_v7(), format!("user{n}@example.com"));
        let mut tx = pool.begin().await?;
        let stored = sqlx::query(INSERT).bind(signup_id).bind(&email);
        stored.execute(&mut *tx).await?;
        let event = [SignupEvent::SignedUp { signup_id, email }];
        let metadata = Metadata::new(signup_id); // its correlation id
        let event_ids = store
            .publish(&mut tx, TOPIC, &signup_id.to_string(), &event, &metadata)
            .await?;
        tx.commit().await?;
        ours.extend(event_ids.iter().map(Uuid::to_string));
    }
    println!("stored {} sign-ups with their outbox records", ours.len());

    let shutdown = CancellationToken::new();
    let relay = Relay::new(pool.clone(), &kafka, RelayConfig::default())?;
    let relay = tokio::spawn(relay.run(shutdown.clone()));
    // The relay deletes a record once the broker has acknowledged it.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left: (i64, i64) = sqlx::query_as(LEFT).bind(&ours).fetch_one(&pool).await?;
        match left {
            (_, 1..) => bail!("{} quarantined: `orderflow outbox quarantine list`", left.1),
            (0, _) => break,
            _ if Instant::now() > deadline => bail!("{} unpublished after 60 s", left.0),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    shutdown.cancel();
    relay.await?.context("the relay failed")?;
    println!("published {} records to {TOPIC}", ours.len());
    Ok(())
}
