//! The overview: what on-call looks at first.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use producers::topics::{Service, Topics};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use serde::Serialize;
use sqlx::PgPool;
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;

use crate::{Console, Problem};

/// Everything the overview shows.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Overview {
    /// Orders placed in the last hour, by their state now: `placed` (open), `completed`, `cancelled`.
    pub orders_last_hour: BTreeMap<String, i64>,
    /// Sagas not ended yet.
    pub sagas_in_flight: i64,
    /// Sagas that ended escalated.
    pub sagas_needing_attention: i64,
    pub outbox: Outbox,
    /// Per consumer group of the pipeline, the records it has yet to read; `None` when its topics cannot
    /// be read.
    pub consumer_lag: Vec<GroupLag>,
    /// Records in each dead-letter topic that has any.
    pub dead_letters: Vec<DeadLetters>,
    /// Per replication flow (`east->west`), the most a partition lags; empty with one region, or before
    /// the first reading.
    pub replication: Vec<FlowLag>,
    /// Notifications the notifier gave up on (left for reconciliation).
    pub notifications_given_up: i64,
    /// The orders placed in each minute of the last hour that had any, by their state now, oldest first.
    pub orders_per_minute: Vec<Minute>,
    /// The lag as sampled every [`SAMPLE_EVERY`] since the console started (the last hour at most).
    pub lag_history: Vec<LagSample>,
}

/// The orders placed in one minute.
#[derive(Clone, Debug, Default, PartialEq, Serialize, sqlx::FromRow)]
pub struct Minute {
    pub minute: DateTime<Utc>,
    pub placed: i64,
    pub completed: i64,
    pub cancelled: i64,
}

/// The lag at one moment: all consumer groups' together, and the worst replication flow's.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LagSample {
    pub at: DateTime<Utc>,
    pub consumer_lag: i64,
    pub replication_lag_seconds: f64,
}

/// How often the console samples the lag for its chart.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);

/// The samples kept: an hour's.
const SAMPLES_KEPT: usize = 360;

/// The outbox's backlog.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Outbox {
    pub backlog: i64,
    pub oldest_age_seconds: Option<f64>,
    pub quarantined: i64,
}

impl From<&outbox::quarantine::Backlog> for Outbox {
    fn from(backlog: &outbox::quarantine::Backlog) -> Self {
        Self {
            backlog: backlog.records,
            oldest_age_seconds: backlog.oldest_age.map(|age| age.as_secs_f64()),
            quarantined: backlog.quarantined,
        }
    }
}

/// A consumer group's lag over its topics.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupLag {
    pub group: String,
    pub topics: Vec<String>,
    pub lag: Option<i64>,
}

/// A dead-letter topic and how many records it holds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeadLetters {
    pub topic: String,
    pub records: i64,
}

/// The most any partition of a replication flow lags.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FlowLag {
    pub flow: String,
    pub lag_records: i64,
    pub lag_seconds: f64,
    pub heartbeat_age_seconds: Option<f64>,
}

/// `GET /api/overview`.
pub(crate) async fn get(State(console): State<Console>) -> Result<Json<Overview>, Problem> {
    Ok(Json(read(&console).await?))
}

/// Reads the overview.
///
/// # Errors
/// A problem naming what could not be read.
pub(crate) async fn read(console: &Console) -> Result<Overview, Problem> {
    let pool = &console.pool;
    let (sagas, outbox, orders, given_up, orders_per_minute) = tokio::try_join!(
        async {
            sagas::queries::counts(pool)
                .await
                .map_err(Problem::unavailable)
        },
        async {
            outbox::quarantine::backlog(pool)
                .await
                .map_err(Problem::unavailable)
        },
        orders_last_hour(pool),
        given_up(pool),
        orders_per_minute(pool),
    )?;
    let consumer_lag = consumer_lag(console).await;
    let dead_letters = dead_letters(console).await;
    let replication = console
        .replication
        .read()
        .await
        .as_ref()
        .map(flows)
        .unwrap_or_default();
    Ok(Overview {
        orders_last_hour: orders,
        sagas_in_flight: sagas.running,
        sagas_needing_attention: sagas.needs_attention,
        outbox: Outbox::from(&outbox),
        consumer_lag,
        dead_letters,
        replication,
        notifications_given_up: given_up,
        orders_per_minute,
        lag_history: console.lag_history.lock().await.iter().cloned().collect(),
    })
}

/// Each consumer group's lag; `None` for a group whose topics do not exist yet (a part that never ran).
async fn consumer_lag(console: &Console) -> Vec<GroupLag> {
    let groups = groups(&console.config.topics, &console.config.group_prefix);
    let mut lags = Vec::with_capacity(groups.len());
    for (group, topics) in groups {
        let lag = consumers::lag::group_lag(&console.kafka, &group, &topics)
            .await
            .ok()
            .map(|partitions| partitions.iter().map(|p| p.lag).sum());
        lags.push(GroupLag { group, topics, lag });
    }
    lags
}

async fn orders_per_minute(pool: &PgPool) -> Result<Vec<Minute>, Problem> {
    sqlx::query_as(
        "SELECT date_trunc('minute', placed_at) AS minute,
                count(*) FILTER (WHERE status = 'placed') AS placed,
                count(*) FILTER (WHERE status = 'completed') AS completed,
                count(*) FILTER (WHERE status = 'cancelled') AS cancelled
         FROM orders_view WHERE placed_at > now() - interval '1 hour'
         GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .map_err(Problem::unavailable)
}

/// Samples the lag every [`SAMPLE_EVERY`] into the console's history until `stop`.
pub(crate) async fn sample_lag(console: Console, stop: CancellationToken) {
    while !stop.is_cancelled() {
        let consumer_lag = consumer_lag(&console)
            .await
            .iter()
            .filter_map(|g| g.lag)
            .sum();
        let replication_lag_seconds = console
            .replication
            .read()
            .await
            .as_ref()
            .map(flows)
            .unwrap_or_default()
            .iter()
            .map(|f| f.lag_seconds)
            .fold(0.0, f64::max);
        {
            let mut history = console.lag_history.lock().await;
            if history.len() == SAMPLES_KEPT {
                history.pop_front();
            }
            history.push_back(LagSample {
                at: Utc::now(),
                consumer_lag,
                replication_lag_seconds,
            });
        }
        tokio::select! {
            () = stop.cancelled() => {}
            () = tokio::time::sleep(SAMPLE_EVERY) => {}
        }
    }
}

async fn orders_last_hour(pool: &PgPool) -> Result<BTreeMap<String, i64>, Problem> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, count(*) FROM orders_view WHERE placed_at > now() - interval '1 hour' GROUP BY status",
    )
    .fetch_all(pool)
    .await
    .map_err(Problem::unavailable)?;
    Ok(rows.into_iter().collect())
}

async fn given_up(pool: &PgPool) -> Result<i64, Problem> {
    sqlx::query_scalar("SELECT count(*) FROM notifications WHERE status = 'given_up'")
        .fetch_one(pool)
        .await
        .map_err(Problem::unavailable)
}

/// The pipeline's consumer groups and the topics each reads.
pub(crate) fn groups(topics: &Topics, prefix: &str) -> Vec<(String, Vec<String>)> {
    Service::ALL
        .into_iter()
        .map(|service| (format!("{prefix}{service}"), vec![topics.commands(service)]))
        .chain(std::iter::once((
            format!("{prefix}orchestrator"),
            Service::ALL.into_iter().map(|s| topics.events(s)).collect(),
        )))
        .collect()
}

/// The records in each dead-letter topic of the pipeline's consumed topics that holds any.
pub(crate) async fn dead_letters(console: &Console) -> Vec<DeadLetters> {
    let topics = crate::dead_letters::topics(console);
    let kafka = console.kafka.clone();
    tokio::task::spawn_blocking(move || {
        let Ok(consumer) = kafka.client_config().create::<BaseConsumer>() else {
            return Vec::new();
        };
        topics
            .into_iter()
            .filter_map(|topic| {
                let partitions =
                    producers::partitions(consumer.client(), &topic, Duration::from_secs(10))
                        .ok()?;
                let records: i64 = partitions
                    .iter()
                    .filter_map(|p| {
                        consumer
                            .fetch_watermarks(&topic, *p, Duration::from_secs(10))
                            .ok()
                    })
                    .map(|(low, high)| high - low)
                    .sum();
                (records > 0).then_some(DeadLetters { topic, records })
            })
            .collect()
    })
    .await
    .unwrap_or_default()
}

/// The worst partition of each flow.
fn flows(status: &ops::region::Status) -> Vec<FlowLag> {
    status
        .flows
        .iter()
        .map(|flow| {
            let partitions = status.partitions.iter().filter(|p| p.flow == flow.flow);
            FlowLag {
                flow: flow.flow.clone(),
                lag_records: partitions.clone().map(|p| p.lag_records).max().unwrap_or(0),
                lag_seconds: partitions.map(|p| p.lag_seconds).fold(0.0, f64::max),
                heartbeat_age_seconds: flow.heartbeat_age_seconds,
            }
        })
        .collect()
}

/// Reads the replication's state every `every` into `into` until `stop`.
pub(crate) async fn watch_replication(
    regions: Vec<ops::region::Region>,
    into: Arc<RwLock<Option<ops::region::Status>>>,
    every: Duration,
    stop: CancellationToken,
) {
    while !stop.is_cancelled() {
        match ops::region::status(&regions).await {
            Ok(status) => *into.write().await = Some(status),
            Err(e) => tracing::warn!(error = %e, "cannot read the replication's state"),
        }
        tokio::select! {
            () = stop.cancelled() => {}
            () = tokio::time::sleep(every) => {}
        }
    }
}
