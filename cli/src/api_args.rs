//! The orders HTTP API's settings, shared by `serve orders` and `demo`.

use std::net::SocketAddr;

use pipeline::HttpConfig;

/// Settings of the orders HTTP API.
#[derive(Clone, Debug, clap::Args)]
pub struct ApiArgs {
    /// Serve the orders API here: POST /orders, GET /orders/{id}, GET /openapi.json. Port 0 picks a free
    /// port (the log says which).
    #[arg(long, env = "HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    /// Largest accepted body of POST /orders, in bytes; a larger one is answered 413 before it is read.
    #[arg(long, env = "API_MAX_BODY_BYTES", default_value_t = api::DEFAULT_MAX_BODY_BYTES as u64,
        value_parser = clap::value_parser!(u64).range(1..=16 * 1024 * 1024))]
    pub max_body_bytes: u64,
    /// Orders in flight (placed, not yet completed or cancelled) past which POST /orders answers 429 with
    /// Retry-After at once, instead of letting the wait grow without end.
    #[arg(long, env = "API_MAX_BACKLOG", default_value_t = api::DEFAULT_MAX_BACKLOG,
        value_parser = clap::value_parser!(i64).range(1..))]
    pub max_backlog: i64,
}

impl ApiArgs {
    /// The pipeline's setting for these arguments.
    pub fn config(&self) -> HttpConfig {
        HttpConfig {
            listen: self.http_addr,
            api: api::ApiConfig {
                max_body_bytes: usize::try_from(self.max_body_bytes).unwrap_or(usize::MAX),
                max_backlog: self.max_backlog,
                ..api::ApiConfig::default()
            },
        }
    }
}
