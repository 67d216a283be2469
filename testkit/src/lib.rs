//! Test support shared by the integration tests of every crate.
//!
//! - [`TestDb::new`] creates a database with a random name, applies every migration and drops the database
//!   when the value goes out of scope, so tests never see each other's rows.
//! - [`unique_name`] gives topic and consumer-group names no other test uses.
//! - [`database_url`] and [`kafka`] say where the real Postgres and Kafka-protocol broker are:
//!   `DATABASE_URL` / `KAFKA_BOOTSTRAP` when set; else, with the `testcontainers` feature and a Docker engine
//!   present, containers started once per test process; else the local environment of `./dev up`.
//!
//! Helpers panic with a message that says what to do, because a test cannot go on without its database or
//! broker and a panic is how a test reports that.
//!
//! ```no_run
//! # async fn a_test() {
//! let db = testkit::TestDb::new().await; // dropped (with its database) at the end of the test
//! let topic = testkit::unique_name("orders");
//! producers::ensure_topic(&testkit::kafka(), &topic, 3).await.unwrap();
//! # let _ = db.pool();
//! # }
//! ```

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use producers::KafkaConfig;
use rdkafka::ClientConfig;
use sqlx::postgres::{PgPool, PgPoolOptions};

#[cfg(feature = "testcontainers")]
pub mod containers;
pub mod local;
pub mod proxy;

/// Postgres of the local environment (`./dev up`), used when `DATABASE_URL` is not set.
pub const LOCAL_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Where the tests' Postgres server is: a URL whose database is used only to create and drop test databases.
pub fn database_url() -> String {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return url;
    }
    #[cfg(feature = "testcontainers")]
    if let Ok(running) = containers::shared() {
        return running.database_url.clone();
    }
    LOCAL_DATABASE_URL.to_owned()
}

/// Where the tests' Kafka-protocol broker is.
pub fn kafka() -> KafkaConfig {
    if let Ok(bootstrap) = std::env::var("KAFKA_BOOTSTRAP") {
        return KafkaConfig::new(bootstrap);
    }
    #[cfg(feature = "testcontainers")]
    if let Ok(running) = containers::shared() {
        return KafkaConfig::new(running.kafka_bootstrap.clone());
    }
    KafkaConfig::new(producers::DEFAULT_BOOTSTRAP)
}

/// Where the second region's cluster is: `KAFKA_BOOTSTRAP_WEST` when set, else region west of `./dev up`.
pub fn kafka_west() -> KafkaConfig {
    KafkaConfig::new(
        std::env::var("KAFKA_BOOTSTRAP_WEST").unwrap_or_else(|_| LOCAL_KAFKA_WEST.to_owned()),
    )
}

/// Region west of the local environment (`./dev up`); region east is [`producers::DEFAULT_BOOTSTRAP`].
pub const LOCAL_KAFKA_WEST: &str = "127.0.0.1:9094";

/// A name no other test uses: `<prefix>-<random uuid>`. Use it for topics and consumer groups.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

/// Consumer settings for tests: reading from the earliest offset, and the shortest session timeout the broker
/// allows (`group.min.session.timeout.ms`, 6 s), so that a member that died leaves the group soon.
pub fn consumer_config(kafka: &KafkaConfig, group: &str) -> ClientConfig {
    let mut config = kafka.client_config();
    config
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("enable.partition.eof", "false");
    config
}

/// A fresh, migrated database that is dropped when this value is dropped.
pub struct TestDb {
    pool: PgPool,
    name: String,
    url: String,
    server: String,
}

impl TestDb {
    /// Creates `orderflow_test_<random>` on the server of [`database_url`] and applies every migration.
    pub async fn new() -> Self {
        let server = database_url();
        let name = format!("orderflow_test_{}", uuid::Uuid::now_v7().simple());
        let url = db::create_database(&server, &name)
            .await
            .unwrap_or_else(|e| {
                panic!("cannot create a test database on {server}: {e:?}. Run `./dev up` or set DATABASE_URL.")
            });
        let pool = PgPoolOptions::new()
            .max_connections(20)
            .acquire_timeout(Duration::from_secs(30))
            .connect(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to test database {name}: {e}"));
        db::migrate(&pool)
            .await
            .unwrap_or_else(|e| panic!("cannot migrate test database {name}: {e:?}"));
        Self {
            pool,
            name,
            url,
            server,
        }
    }

    /// A pool on the test database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The test database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL of the test database, for a child process such as the `orderflow` binary.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop runs outside async context and possibly on a runtime that is shutting down, so the database
        // is dropped from a thread with a runtime of its own.
        let server = std::mem::take(&mut self.server);
        let name = std::mem::take(&mut self.name);
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?
                .block_on(db::drop_database(&server, &name))
                .map_err(|e| format!("{e:?}"))
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: could not drop a test database: {e}"),
            Err(_) => eprintln!("warning: the thread dropping a test database panicked"),
        }
    }
}

/// A record read back from a topic.
#[derive(Clone, Debug)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: producers::headers::RecordHeaders,
}

/// Every record in `topic` now, read from each partition's low to its high watermark (see
/// [`consumers::reader::read_to_end`]).
pub async fn read_topic(kafka: &KafkaConfig, topic: &str) -> Vec<Consumed> {
    consumers::reader::read_to_end(kafka, topic)
        .await
        .unwrap_or_else(|e| panic!("reading {topic}: {}", producers::error_chain(&e)))
        .into_iter()
        .map(|r| Consumed {
            partition: r.partition,
            offset: r.offset,
            key: r.key.map(|k| String::from_utf8_lossy(&k).into_owned()),
            payload: r.payload,
            headers: r.headers,
        })
        .collect()
}

/// The total number of records in `topic` (sum of high minus low watermarks over its partitions).
pub async fn count_records(kafka: &KafkaConfig, topic: &str) -> i64 {
    consumers::reader::count(kafka, topic)
        .await
        .unwrap_or_else(|e| panic!("counting {topic}: {}", producers::error_chain(&e)))
}

/// Waits until `topic` holds at least `count` records; panics after `timeout` with the count it saw.
pub async fn wait_for_records(kafka: &KafkaConfig, topic: &str, count: i64, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let seen = count_records(kafka, topic).await;
        if seen >= count {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{topic} holds {seen} records after {timeout:?}, expected at least {count}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Checks a topic against the event store of `pool`: every committed event is on the topic (by its
/// `event_id` header), and for each key the first occurrences come in stream-version order. Returns the
/// number of duplicates, which at-least-once delivery allows.
pub async fn assert_every_event_in_key_order(pool: &PgPool, records: &[Consumed]) -> usize {
    let rows: Vec<(String, uuid::Uuid)> =
        sqlx::query_as("SELECT aggregate_id, event_id FROM events ORDER BY aggregate_id, version")
            .fetch_all(pool)
            .await
            .unwrap();
    let mut expected: HashMap<String, Vec<String>> = HashMap::new();
    for (key, event_id) in rows {
        expected.entry(key).or_default().push(event_id.to_string());
    }
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    let mut duplicates = 0;
    let mut all_ids = HashSet::new();
    for record in records {
        let key = record.key.clone().expect("records are keyed");
        let event_id = record.headers[producers::headers::EVENT_ID].clone();
        if all_ids.insert(event_id.clone()) {
            seen.entry(key).or_default().push(event_id);
        } else {
            duplicates += 1;
        }
    }
    assert_eq!(seen.len(), expected.len(), "keys on the topic");
    for (key, ids) in &expected {
        let on_topic = seen.get(key).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(
            on_topic.len(),
            ids.len(),
            "{key}: {} of {} events on the topic",
            on_topic.len(),
            ids.len()
        );
        assert_eq!(on_topic, ids.as_slice(), "{key}: events out of order");
    }
    duplicates
}
