//! The simulated payment provider's settings, shared by `serve provider` and `demo`, and the payments
//! service's link to it (`serve payments`).

use std::net::SocketAddr;
use std::time::Duration;

use provider::ProviderConfig;

/// How the simulated provider behaves: its faults.
#[derive(Clone, Debug, clap::Args)]
pub struct ProviderKnobs {
    /// Share of authorizations the provider declines, from 0 to 1 (decided per order).
    #[arg(long, env = "PROVIDER_DECLINE_RATE", default_value_t = 0.05, value_parser = parse_share)]
    pub decline_rate: f64,
    /// Share of calls to the provider that time out (answered 504; the payments service retries them with
    /// the same idempotency key), from 0 to 1.
    #[arg(long, env = "PROVIDER_TIMEOUT_RATE", default_value_t = 0.01, value_parser = parse_share)]
    pub provider_timeout_rate: f64,
    /// Share of those timeouts whose operation went through before the answer was lost, from 0 to 1.
    #[arg(long, env = "PROVIDER_CHARGE_BEFORE_TIMEOUT", default_value_t = 0.5,
        value_parser = parse_share)]
    pub charge_before_timeout: f64,
    /// Share of results the provider notifies twice, from 0 to 1.
    #[arg(long, env = "PROVIDER_DUPLICATE_NOTIFICATION_RATE", default_value_t = 0.01,
        value_parser = parse_share)]
    pub duplicate_notification_rate: f64,
    /// Share of results the provider never notifies, from 0 to 1: the saga's deadline or reconciliation
    /// finds them.
    #[arg(long, env = "PROVIDER_LOST_NOTIFICATION_RATE", default_value_t = 0.01,
        value_parser = parse_share)]
    pub lost_notification_rate: f64,
    /// Share of the payments service's acknowledgements the provider loses, from 0 to 1: it sends the
    /// result again.
    #[arg(long, env = "PROVIDER_LOST_ACK_RATE", default_value_t = 0.01, value_parser = parse_share)]
    pub lost_ack_rate: f64,
    /// How long every call to the provider takes, in milliseconds.
    #[arg(long, env = "PROVIDER_LATENCY_MS", default_value_t = 2)]
    pub provider_latency_ms: u64,
    /// Seed of the provider's simulated decisions.
    #[arg(long, env = "PROVIDER_SEED", default_value_t = 42)]
    pub provider_seed: u64,
}

impl ProviderKnobs {
    /// Sets these knobs on `config`.
    pub fn apply(&self, config: &mut ProviderConfig) {
        config.decline_rate = self.decline_rate;
        config.timeout_rate = self.provider_timeout_rate;
        config.charge_before_timeout = self.charge_before_timeout;
        config.duplicate_notification_rate = self.duplicate_notification_rate;
        config.lost_notification_rate = self.lost_notification_rate;
        config.lost_ack_rate = self.lost_ack_rate;
        config.latency = Duration::from_millis(self.provider_latency_ms);
        config.seed = self.provider_seed;
    }
}

/// Where the provider listens and where its results go (`serve provider`).
#[derive(Clone, Debug, clap::Args)]
pub struct ProviderArgs {
    /// Serve the provider's API here.
    #[arg(long, env = "PROVIDER_LISTEN", default_value = "127.0.0.1:7070")]
    pub provider_listen: SocketAddr,
    /// Where its results are POSTed: the payments service's callback endpoint (see `serve payments
    /// --callback-listen`).
    #[arg(
        long,
        env = "PROVIDER_CALLBACK_URL",
        default_value = "http://127.0.0.1:7071/provider/results"
    )]
    pub callback_url: String,
    /// The faults it simulates.
    #[command(flatten)]
    pub knobs: ProviderKnobs,
}

/// The payments service's link to the provider (`serve payments`).
#[derive(Clone, Debug, clap::Args)]
pub struct PaymentsArgs {
    /// The provider's API (see `serve provider --provider-listen`).
    #[arg(long, env = "PROVIDER_URL", default_value = services::payments::DEFAULT_PROVIDER_URL)]
    pub provider_url: String,
    /// Listen here for the provider's results (POST /provider/results).
    #[arg(
        long,
        env = "PAYMENTS_CALLBACK_LISTEN",
        default_value = "127.0.0.1:7071"
    )]
    pub callback_listen: SocketAddr,
}

/// The secret the provider signs its results with and the payments service checks; both processes must
/// have the same one.
#[derive(Clone, Debug, clap::Args)]
pub struct CallbackSecretArg {
    /// The secret the provider signs its results with (serve provider) and the payments service checks
    /// them with (serve payments).
    #[arg(
        long,
        env = "PROVIDER_CALLBACK_SECRET",
        default_value = "orderflow-provider-secret",
        hide_default_value = true
    )]
    pub callback_secret: String,
}

/// A share from 0 to 1.
pub fn parse_share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(share) if (0.0..=1.0).contains(&share) => Ok(share),
        _ => Err(format!(
            "expected a share from 0 to 1, e.g. 0.05, got {text:?}"
        )),
    }
}
