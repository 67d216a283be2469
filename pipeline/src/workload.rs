//! The demo's orders: a realistic mix placed concurrently through the orders service.
//!
//! - Most orders buy one to three regular SKUs, which never run out.
//! - A share are flash-sale buyers of one hot SKU with far less stock than buyers, spread over buckets.
//! - A few ask for more of a scarce SKU than exists: out of stock.
//! - A share are submitted twice with the same idempotency key, as a double click would: one order each.
//! - Declines and delivery failures come from the payment provider's and the carrier's configured rates.

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::Context as _;
use domain::{CustomerId, OrderId, Sku};
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use services::orders::{LineInput, PlaceOrder, place_order};
use tokio::sync::Semaphore;

use crate::Shared;

/// What to place.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Orders to place (duplicate submissions come on top).
    pub orders: usize,
    /// Submissions in flight at once.
    pub concurrency: usize,
    /// Share of orders that are flash-sale buyers of the hot SKU.
    pub flash_sale_share: f64,
    /// Units of the hot SKU in stock, and the buckets they are spread over.
    pub flash_sale_units: u32,
    pub flash_sale_buckets: u16,
    /// Share of orders asking for more of the scarce SKU than exists.
    pub out_of_stock_share: f64,
    /// Share of orders submitted twice with the same idempotency key.
    pub double_submit_share: f64,
    /// Names every SKU of the run, so that runs on one database do not share stock.
    pub run_id: String,
    pub seed: u64,
}

impl Workload {
    /// The demo's default mix for `orders` orders.
    #[must_use]
    pub fn demo(orders: usize) -> Self {
        Self {
            orders,
            concurrency: 32,
            flash_sale_share: 0.25,
            flash_sale_units: 100,
            flash_sale_buckets: 8,
            out_of_stock_share: 0.03,
            double_submit_share: 0.05,
            run_id: uuid::Uuid::now_v7().simple().to_string()[20..].to_uppercase(),
            seed: 7,
        }
    }

    /// Only orders that can succeed: no flash sale, no scarce SKU, no double submits.
    #[must_use]
    pub fn happy(orders: usize) -> Self {
        Self {
            flash_sale_share: 0.0,
            out_of_stock_share: 0.0,
            double_submit_share: 0.0,
            ..Self::demo(orders)
        }
    }

    /// The hot SKU of this run.
    #[must_use]
    pub fn flash_sku(&self) -> String {
        format!("FLASH-{}", self.run_id)
    }

    fn scarce_sku(&self) -> String {
        format!("SCARCE-{}", self.run_id)
    }

    fn regular_sku(&self, n: u32) -> String {
        format!("REG{n:02}-{}", self.run_id)
    }

    /// Puts the run's stock in place: plenty of each regular SKU, the scarce SKU, and the hot SKU over its
    /// buckets.
    ///
    /// # Errors
    /// Database errors.
    pub async fn stock(&self, shared: &Shared) -> anyhow::Result<()> {
        let plenty = u32::try_from(self.orders)
            .unwrap_or(u32::MAX)
            .saturating_mul(10)
            .max(100);
        let mut stock = vec![
            (self.scarce_sku(), SCARCE_UNITS, 1),
            (
                self.flash_sku(),
                self.flash_sale_units,
                self.flash_sale_buckets,
            ),
        ];
        stock.extend((0..REGULAR_SKUS).map(|n| (self.regular_sku(n), plenty, 2)));
        for (sku, units, buckets) in stock {
            let sku = Sku::new(sku.as_str()).with_context(|| format!("SKU {sku}"))?;
            services::inventory::set_stock(&shared.pool, &sku, units, buckets).await?;
        }
        Ok(())
    }

    /// Places every order, `concurrency` at a time, with a progress bar; returns what was placed.
    ///
    /// # Errors
    /// The first submission that failed (a bad order in the mix is a bug: every order here is valid).
    pub async fn place(&self, shared: &Shared, progress: &ProgressBar) -> anyhow::Result<Placed> {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let submissions: Vec<(PlaceOrder, bool)> = (0..self.orders)
            .map(|n| {
                (
                    self.order(n, &mut rng),
                    rng.random_bool(self.double_submit_share),
                )
            })
            .collect();
        progress.set_length(submissions.len() as u64);
        progress.set_style(bar_style("placing orders"));
        let limit = Arc::new(Semaphore::new(self.concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for (order, twice) in submissions {
            let permit = limit
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let store = shared.store.clone();
            let progress = progress.clone();
            tasks.spawn(async move {
                let _permit = permit;
                let again = twice.then(|| order.clone());
                let first = place_order(&store, order);
                let result = match again {
                    // A double click: both submissions at once.
                    Some(again) => {
                        let (a, b) = tokio::join!(first, place_order(&store, again));
                        let (a, b) = (a?, b?);
                        anyhow::ensure!(
                            a.order_id == b.order_id,
                            "a double submit made two orders"
                        );
                        (a.order_id, u64::from(a.duplicate) + u64::from(b.duplicate))
                    }
                    None => (first.await?.order_id, 0),
                };
                progress.inc(1);
                anyhow::Ok(result)
            });
        }
        let mut placed = Placed::default();
        while let Some(joined) = tasks.join_next().await {
            let (order_id, suppressed) = joined.context("an order submission panicked")??;
            placed.order_ids.insert(order_id);
            placed.duplicates_suppressed += suppressed;
        }
        progress.finish();
        Ok(placed)
    }

    fn order(&self, n: usize, rng: &mut StdRng) -> PlaceOrder {
        let mut lines = Vec::new();
        if rng.random_bool(self.flash_sale_share) {
            lines.push(LineInput::new(self.flash_sku(), 1, 4_999, "EUR"));
        } else if rng.random_bool(self.out_of_stock_share) {
            lines.push(LineInput::new(
                self.scarce_sku(),
                SCARCE_UNITS + 1,
                12_500,
                "EUR",
            ));
        } else {
            let first = rng.random_range(0..REGULAR_SKUS);
            for k in 0..rng.random_range(1..=3) {
                let sku = (first + k) % REGULAR_SKUS;
                lines.push(LineInput::new(
                    self.regular_sku(sku),
                    rng.random_range(1..=3),
                    i64::from(500 + 250 * sku),
                    "EUR",
                ));
            }
        }
        PlaceOrder {
            idempotency_key: Some(format!("{}-{n}", self.run_id)),
            customer_id: CustomerId::new(),
            lines,
            delivery_address: None,
        }
    }
}

const REGULAR_SKUS: u32 = 20;
const SCARCE_UNITS: u32 = 5;

/// What [`Workload::place`] placed.
#[derive(Clone, Debug, Default)]
pub struct Placed {
    /// One id per order (a double submit counts once).
    pub order_ids: BTreeSet<OrderId>,
    /// Submissions that found their idempotency key already used and returned the first order.
    pub duplicates_suppressed: u64,
}

/// A progress bar style with `label`.
#[must_use]
pub fn bar_style(label: &str) -> ProgressStyle {
    ProgressStyle::with_template(&format!(
        "{label:>22} [{{bar:40}}] {{pos}}/{{len}} ({{per_sec}}, {{elapsed}})"
    ))
    .expect("a valid template")
    .progress_chars("=> ")
}
