//! `orderflow bench pipeline --rate R`: orders placed through the HTTP API at a fixed rate (open loop: the
//! next request does not wait for the last), and what the pipeline made of them.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use domain::Sku;
use pipeline::Pipeline;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use uuid::Uuid;

use crate::bench::percentile;

/// SKUs the open loop orders from, each stocked far beyond what a run sells.
const SKUS: u32 = 20;
const UNITS_PER_SKU: u32 = 100_000_000;
/// Requests in flight at once, at most; past it the sender falls behind its schedule (and says so).
const IN_FLIGHT: usize = 512;
/// What a step must keep to hold its rate.
const P99_BOUND: Duration = Duration::from_secs(1);

/// One rate held (or not) for a while.
pub struct Step {
    pub rate: f64,
    pub sent: usize,
    pub accepted: usize,
    pub shed: usize,
    pub failed: usize,
    /// Seconds the sender needed beyond the step's duration to send everything (it fell behind).
    pub sending_late: f64,
    pub completed: usize,
    pub completed_per_second: f64,
    /// Place (committed) to final state, seconds, sorted.
    pub place_to_final: Vec<f64>,
    /// Orders accepted and not ended when the step gave up waiting.
    pub open: usize,
    /// Request sent to answer received, milliseconds, sorted.
    pub accept_ms: Vec<f64>,
    /// Transactions committed per second while the step ran (every part's).
    pub commits_per_second: f64,
}

impl Step {
    /// Whether the pipeline held the rate: nothing shed or failed, every order ended, p99 within a second,
    /// and the sender kept its schedule.
    pub fn held(&self) -> bool {
        self.shed == 0
            && self.failed == 0
            && self.open == 0
            && percentile(&self.place_to_final, 0.99) <= P99_BOUND.as_secs_f64()
            && self.sending_late < 1.0
    }

    pub fn render(&self) -> String {
        format!(
            "open loop {:.0} orders/s: {} sent, {} accepted (202), {} shed (429), {} failed{}; {} completed, \
             {:.1} orders/s; place-to-final p50 {:.0} ms, p99 {:.0} ms, p99.9 {:.0} ms; HTTP accept p99 {:.1} ms; \
             {:.0} commits/s{}; {}",
            self.rate,
            self.sent,
            self.accepted,
            self.shed,
            self.failed,
            if self.sending_late >= 1.0 {
                format!(" (the sender fell {:.1} s behind)", self.sending_late)
            } else {
                String::new()
            },
            self.completed,
            self.completed_per_second,
            percentile(&self.place_to_final, 0.5) * 1000.0,
            percentile(&self.place_to_final, 0.99) * 1000.0,
            percentile(&self.place_to_final, 0.999) * 1000.0,
            percentile(&self.accept_ms, 0.99),
            self.commits_per_second,
            if self.open > 0 {
                format!(", {} still open", self.open)
            } else {
                String::new()
            },
            if self.held() { "held" } else { "not held" },
        )
    }
}

/// Stocks the SKUs the open loop orders from; returns them.
pub async fn stock(pipeline: &Pipeline, run_id: &str) -> anyhow::Result<Vec<Sku>> {
    let mut skus = Vec::new();
    for n in 0..SKUS {
        let sku = Sku::new(format!("OPEN-{}-{n}", &run_id[..8]).to_uppercase())?;
        services::inventory::set_stock(&pipeline.shared().pool, &sku, UNITS_PER_SKU, 8).await?;
        skus.push(sku);
    }
    Ok(skus)
}

/// Places orders at `rate` per second for `duration` through the pipeline's HTTP API, then waits (up to
/// `duration` more, at least 30 s) for every accepted one to end, and measures.
pub async fn step(
    pipeline: &Pipeline,
    skus: &[Sku],
    rate: f64,
    duration: Duration,
) -> anyhow::Result<Step> {
    let addr = pipeline
        .http_addr()
        .context("the pipeline serves no HTTP API")?;
    let url = format!("http://{addr}/orders");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(IN_FLIGHT)
        .build()?;
    let total = (rate * duration.as_secs_f64()).round() as usize;
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
    let pool = &pipeline.shared().pool;
    let commits_before = crate::bench_pipeline::commits(pool).await?;
    let started = Instant::now();
    let mut requests = tokio::task::JoinSet::new();
    for n in 0..total {
        tokio::time::sleep_until(started + Duration::from_secs_f64(n as f64 / rate)).await;
        let permit = in_flight.clone().acquire_owned().await?;
        let (client, url) = (client.clone(), url.clone());
        let sku = skus[n % skus.len()].as_str().to_owned();
        requests.spawn(async move {
            let _permit = permit;
            let body = json!({
                "customer_id": Uuid::now_v7().to_string(),
                "lines": [{"sku": sku, "quantity": 1, "unit_price_minor": 1999, "currency": "EUR"}],
                "delivery_address": {"name": "Bench", "street": "1 Main St", "city": "Berlin",
                                     "postal_code": "10115", "country": "DE"},
            });
            let sent = Instant::now();
            let response = client
                .post(&url)
                .header("Idempotency-Key", Uuid::now_v7().to_string())
                .json(&body)
                .send()
                .await;
            let answered = sent.elapsed().as_secs_f64() * 1000.0;
            let Ok(response) = response else {
                return (0, answered, None);
            };
            let status = response.status().as_u16();
            let answer: serde_json::Value = response.json().await.unwrap_or_default();
            let id = answer["order_id"]
                .as_str()
                .and_then(|id| Uuid::parse_str(id).ok());
            (status, answered, id)
        });
    }
    let sending_late = (started.elapsed().saturating_sub(duration)).as_secs_f64();
    let answers = requests.join_all().await;
    let mut step = Step {
        rate,
        sent: total,
        accepted: 0,
        shed: 0,
        failed: 0,
        sending_late,
        completed: 0,
        completed_per_second: 0.0,
        place_to_final: Vec::new(),
        open: 0,
        accept_ms: answers.iter().map(|(_, ms, _)| *ms).collect(),
        commits_per_second: 0.0,
    };
    step.accept_ms.sort_by(f64::total_cmp);
    let mut accepted = Vec::new();
    for (status, _, id) in answers {
        match (status, id) {
            (202, Some(id)) => accepted.push(id),
            (429, _) => step.shed += 1,
            _ => step.failed += 1,
        }
    }
    step.accepted = accepted.len();
    let deadline = Instant::now() + duration.max(Duration::from_secs(30));
    loop {
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM orders_view WHERE order_id = ANY($1) AND ended_at IS NULL",
        )
        .bind(&accepted)
        .fetch_one(pool)
        .await?;
        step.open = usize::try_from(open).unwrap_or(usize::MAX);
        if open == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let commits = crate::bench_pipeline::commits(pool).await? - commits_before;
    step.commits_per_second = commits as f64 / started.elapsed().as_secs_f64();
    let ended: Vec<(String, f64, f64, f64)> = sqlx::query_as(
        "SELECT status, extract(epoch FROM ended_at - placed_at)::float8,
                extract(epoch FROM placed_at)::float8, extract(epoch FROM ended_at)::float8
         FROM orders_view WHERE order_id = ANY($1) AND ended_at IS NOT NULL",
    )
    .bind(&accepted)
    .fetch_all(pool)
    .await?;
    step.completed = ended.iter().filter(|(s, ..)| s == "completed").count();
    step.place_to_final = ended.iter().map(|(_, latency, ..)| *latency).collect();
    step.place_to_final.sort_by(f64::total_cmp);
    let first_placed = ended.iter().map(|e| e.2).fold(f64::INFINITY, f64::min);
    let last_ended = ended.iter().map(|e| e.3).fold(f64::NEG_INFINITY, f64::max);
    if last_ended > first_placed {
        step.completed_per_second = step.completed as f64 / (last_ended - first_placed);
    }
    Ok(step)
}
