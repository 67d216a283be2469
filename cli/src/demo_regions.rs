//! `orderflow demo --regions 2`: regions east and west each run the whole pipeline on their own cluster and
//! database, and take orders at once; MirrorMaker 2 (`./dev up`) replicates their events both ways. Each
//! region's run is reported and checked as the one-region demo's is; then both regions' `orders_global` are
//! compared (the same orders in the same final states: one checksum), and the replication lag is shown: how
//! long after an order's placement reached its home region's global view it reached the other region's.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use pipeline::report::Check;
use pipeline::workload::{Placed, Workload};
use pipeline::{Pipeline, RegistrySetting};
use producers::KafkaConfig;
use producers::topics::Service;
use sqlx::PgPool;
use uuid::Uuid;

use crate::demo::{DemoArgs, demo_config, drive};

const REGIONS: [&str; 2] = ["east", "west"];

/// Runs the demo in both regions; exits non-zero when a check of either region, or of the comparison,
/// fails.
pub async fn run(
    roles: &db::RoleConfig,
    east_kafka: &KafkaConfig,
    registry_url: &str,
    args: &DemoArgs,
) -> anyhow::Result<()> {
    let mut west_kafka = KafkaConfig::new(&args.west_bootstrap);
    west_kafka.properties.clone_from(&east_kafka.properties);
    let west_url = db::ensure_database(&roles.admin().url, &args.west_database)
        .await
        .with_context(|| {
            format!(
                "failed to create region west's database {}",
                args.west_database
            )
        })?;
    let west_roles = db::RoleConfig::new(db::DbConfig::from_url(&west_url));

    let workloads = [
        Workload::demo(args.orders / 2),
        Workload::demo(args.orders - args.orders / 2),
    ];
    // xr-: the prefix of the topics and groups MirrorMaker 2 replicates between the local regions
    // (env/mm2/mm2.properties).
    let name = format!("xr-demo-{}", workloads[0].run_id);
    println!(
        "demo run {name} in regions east ({}) and west ({}): {} orders in each, topics {name}.*",
        east_kafka.bootstrap, west_kafka.bootstrap, workloads[0].orders
    );
    if let Some(log_file) = &args.log_file() {
        println!("log: {}", log_file.display());
    }

    // East serves the schema registry (unless it is external); west uses it too, as one global registry
    // would serve both: a replicated record's schema id must mean the same schema in each region.
    let config = |kafka: &KafkaConfig, region: usize, roles: &db::RoleConfig| {
        let mut config = demo_config(kafka, &name, args, registry_url);
        config.services.region = REGIONS[region].to_owned();
        config.services.remote_regions = vec![REGIONS[1 - region].to_owned()];
        config.roles = Some(roles.clone().with_limits(8, Duration::from_secs(120)));
        config
    };
    let mut east_config = config(east_kafka, 0, roles);
    east_config.http = Some(args.api.config());
    let east = Pipeline::start(connect(roles, args).await?, east_config).await?;
    let mut west_config = config(&west_kafka, 1, &west_roles);
    west_config.registry = RegistrySetting::Url(east.shared().registry_url.clone());
    let west = async { Pipeline::start(connect(&west_roles, args).await?, west_config).await };
    let west = match west.await {
        Ok(west) => west,
        Err(e) => {
            east.stop().await.ok();
            return Err(e.context("failed to start region west"));
        }
    };
    if let Some(addr) = east.http_addr() {
        println!("orders API of east: http://{addr}/orders");
    }
    // The run's topics are new: MirrorMaker 2 finds them within its refresh interval. Orders are placed
    // once it replicates both ways, so that the lag shown is the replication's, not the discovery's.
    let copy = |pipeline: &Pipeline, from: &str| {
        let topic = pipeline
            .shared()
            .config
            .services
            .topics
            .events(Service::Orders);
        producers::topics::Topics::replicated(from, &topic)
    };
    let copies = [
        (&west_kafka, copy(&east, REGIONS[0])),
        (east_kafka, copy(&west, REGIONS[1])),
    ];
    for (kafka, copy) in &copies {
        if let Err(e) = replicated(kafka, copy).await {
            west.stop().await.ok();
            east.stop().await.ok();
            return Err(e);
        }
    }

    let (in_east, in_west) = tokio::join!(
        drive(&east, &workloads[0], args),
        drive(&west, &workloads[1], args)
    );
    let compared = match (&in_east, &in_west) {
        (Ok((east_placed, _)), Ok((west_placed, _))) => Some(
            compare(
                [&east.shared().pool, &west.shared().pool],
                [east_placed, west_placed],
                Duration::from_secs(args.timeout_secs),
            )
            .await,
        ),
        _ => None,
    };
    let stopped_west = west.stop().await;
    let stopped_east = east.stop().await;
    let reports = [
        in_east.context("region east")?.1,
        in_west.context("region west")?.1,
    ];
    stopped_west.context("region west")?;
    stopped_east.context("region east")?;
    let comparison = compared.expect("both regions ran")?;

    for (region, report) in REGIONS.iter().zip(&reports) {
        println!("\n== region {region}");
        print!("{}", report.render());
    }
    println!("\n== both regions");
    print!("{}", comparison.render());
    anyhow::ensure!(
        reports.iter().all(pipeline::report::Report::passed) && comparison.check.passed,
        "a consistency check failed"
    );
    Ok(())
}

/// Waits until MirrorMaker 2 has created `copy` in `kafka`'s cluster.
async fn replicated(kafka: &KafkaConfig, copy: &str) -> anyhow::Result<()> {
    use rdkafka::consumer::Consumer as _;
    let client: rdkafka::consumer::BaseConsumer = kafka.client_config().create()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while producers::partitions(client.client(), copy, Duration::from_secs(10))?.is_empty() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "MirrorMaker 2 created no {copy} in {} in 60 s: does it run between the regions? (`./dev up` \
             starts it, `./dev status` shows it)",
            kafka.bootstrap
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

/// A pool for the workload's submissions and the report, as the migrating user (see the one-region demo).
async fn connect(roles: &db::RoleConfig, args: &DemoArgs) -> anyhow::Result<PgPool> {
    let submissions = u32::try_from(args.concurrency).unwrap_or(u32::MAX);
    Ok(db::connect(&db::DbConfig {
        max_connections: submissions.saturating_add(4).min(60),
        acquire_timeout: Duration::from_secs(120),
        ..roles.admin().clone()
    })
    .await?)
}

/// Both regions' global views of the run's orders, compared.
struct Comparison {
    /// Per region: rows, checksum of the rows.
    views: [(usize, String); 2],
    /// Per region: the replication lag into it of the orders homed in the other region, in ms, sorted.
    lags: [Vec<f64>; 2],
    check: Check,
}

impl Comparison {
    fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        for (region, (rows, checksum)) in REGIONS.iter().zip(&self.views) {
            let _ = writeln!(
                out,
                "orders_global in {region}:  {rows} orders of both regions, checksum {checksum}"
            );
        }
        for (i, lags) in self.lags.iter().enumerate() {
            let (region, home) = (REGIONS[i], REGIONS[1 - i]);
            let p = |q| crate::bench::percentile(lags, q);
            let _ = writeln!(
                out,
                "replication lag into {region}: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} orders placed in {}; \
                 from their home region's global view to this one's; the first orders also wait for MirrorMaker \
                 2 to take up the run's new topics, a few seconds)",
                p(0.5),
                p(0.99),
                p(1.0),
                lags.len(),
                home
            );
        }
        let mark = if self.check.passed { "ok  " } else { "FAIL" };
        let _ = writeln!(
            out,
            "check {mark} {}: {}",
            self.check.name, self.check.detail
        );
        out
    }
}

/// An order as a region's `orders_global` holds it.
#[derive(sqlx::FromRow)]
struct Row {
    order_id: Uuid,
    home_region: String,
    status: String,
    cancel_reason: Option<String>,
    total_minor: i64,
    currency: String,
    /// When this region applied its placement.
    seen_at: DateTime<Utc>,
}

/// Waits up to `timeout` until both regions' `orders_global` hold every order of both workloads, ended,
/// then compares them.
async fn compare(
    pools: [&PgPool; 2],
    placed: [&Placed; 2],
    timeout: Duration,
) -> anyhow::Result<Comparison> {
    let ids: Vec<Uuid> = placed
        .iter()
        .flat_map(|p| p.order_ids.iter().map(|id| id.as_uuid()))
        .collect();
    let deadline = Instant::now() + timeout;
    let views = loop {
        let views = [view(pools[0], &ids).await?, view(pools[1], &ids).await?];
        let whole =
            |rows: &[Row]| rows.len() == ids.len() && rows.iter().all(|r| r.status != "placed");
        if (whole(&views[0]) && whole(&views[1])) || Instant::now() >= deadline {
            break views;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // Into each region, of the other's orders.
    let lags = [
        lags(&views[1], &views[0], REGIONS[1]),
        lags(&views[0], &views[1], REGIONS[0]),
    ];
    let equal = agreed(&views[0]) == agreed(&views[1]);
    let passed = equal && views[0].len() == ids.len();
    let detail = if passed {
        format!(
            "both regions hold the same {} orders in the same final states",
            ids.len()
        )
    } else {
        format!(
            "{} orders placed; east's view holds {}, west's {}; {}",
            ids.len(),
            views[0].len(),
            views[1].len(),
            if equal {
                "the same rows"
            } else {
                "their rows differ"
            }
        )
    };
    Ok(Comparison {
        views: [summary(&views[0]), summary(&views[1])],
        lags,
        check: Check {
            name: "global views agree",
            passed,
            detail,
        },
    })
}

/// The rows of `ids` in `pool`'s `orders_global`, by order id.
async fn view(pool: &PgPool, ids: &[Uuid]) -> anyhow::Result<Vec<Row>> {
    Ok(sqlx::query_as(
        "SELECT order_id, home_region, status, cancel_reason, total_minor, currency, seen_at
         FROM orders_global WHERE order_id = ANY($1) ORDER BY order_id",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?)
}

/// What both regions must agree on of `rows` (not when each applied them), a line per order.
fn agreed(rows: &[Row]) -> String {
    rows.iter()
        .map(|r| {
            format!(
                "{} {} {} {} {} {}\n",
                r.order_id,
                r.home_region,
                r.status,
                r.cancel_reason.as_deref().unwrap_or(""),
                r.total_minor,
                r.currency
            )
        })
        .collect()
}

/// Rows, and a checksum of what both regions must agree on.
fn summary(rows: &[Row]) -> (usize, String) {
    (
        rows.len(),
        format!("{:016x}", fnv1a(agreed(rows).as_bytes())),
    )
}

/// Each order homed in region `home`: from when its home region's view (`at_home`) saw its placement to
/// when `away`'s did, in ms, sorted.
fn lags(at_home: &[Row], away: &[Row], home: &str) -> Vec<f64> {
    let home_seen: HashMap<Uuid, DateTime<Utc>> = at_home
        .iter()
        .filter(|r| r.home_region == home)
        .map(|r| (r.order_id, r.seen_at))
        .collect();
    let mut lags: Vec<f64> = away
        .iter()
        .filter_map(|r| {
            let seen = home_seen.get(&r.order_id)?;
            Some(((r.seen_at - *seen).num_microseconds().unwrap_or(0) as f64 / 1000.0).max(0.0))
        })
        .collect();
    lags.sort_by(f64::total_cmp);
    lags
}

/// 64-bit FNV-1a: a checksum both regions' rows are compared by at a glance.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
