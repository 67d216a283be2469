//! The Confluent-compatible schema registry served by `orderflow registry`, stored in Postgres.
//!
//! Production runs Confluent Schema Registry, Apicurio or Redpanda's registry; this one stands in for them
//! where none can run (local development, tests) and answers Confluent's REST API as its clients use it:
//! `schema_registry_converter`, Confluent's Java and Python clients. Clients find it through
//! `SCHEMA_REGISTRY_URL`; `orderflow registry` listens on 127.0.0.1:8081 by default, as Confluent does.
//!
//! What it promises:
//! - One global id per schema, where "the same schema" means the same parsed schema written back as JSON
//!   (whitespace, key order and redundant namespaces do not matter; defaults, docs and aliases do): the
//!   same schema under another subject gets the same id, and registering it again under its subject returns
//!   the id without adding a version, also when 20 clients register it at once (a transaction-scoped
//!   advisory lock per subject and a unique fingerprint index decide, in Postgres, not in memory).
//! - A new version is added only when it passes the subject's compatibility level (NONE, BACKWARD,
//!   FORWARD, FULL and their transitive forms; default BACKWARD), decided by apache-avro's schema
//!   resolution checker; otherwise HTTP 409.
//! - Soft deletes hide versions from reads and lookups (unless `?deleted=true`); a permanent delete needs a
//!   soft delete first; a schema id keeps resolving while any version, soft-deleted or not, uses it.
//! - Errors carry Confluent's `{"error_code", "message"}` body with the HTTP status its code starts with.
//!
//! What it does not do: schema types other than AVRO, schema references, `normalize` (ignored: identity is
//! always the parsed form above), modes other than READWRITE, contexts,
//! metadata and rule sets, paging (`offset`, `limit`), authentication of reads and registrations (an
//! optional admin token guards deletes and configuration changes: [`RegistryConfig`]), and Kafka-backed storage.
//!
//! ```no_run
//! # async fn run(pool: sqlx::PgPool) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8081").await?;
//! schemas::registry::serve(listener, pool, async {
//!     tokio::signal::ctrl_c().await.ok();
//! })
//! .await
//! # }
//! ```

mod compatibility;
mod error;
mod http;
mod store;

pub use compatibility::Level;
pub use error::RegistryError;
pub use http::CONTENT_TYPE;

/// The longest subject name accepted, in bytes (UTF-8). A Kafka topic name has at most 249 characters, and
/// a `TopicRecordNameStrategy` subject adds a record's full name; 1,024 bytes leaves room for long names
/// and keeps a subject, even one that does not compress, under Postgres's limit on an index entry (2,704
/// bytes), which the key of `registry_subject_versions` is.
pub const MAX_SUBJECT_BYTES: usize = 1_024;

/// Who may change what, and how much work the registry takes on.
#[derive(Clone)]
pub struct RegistryConfig {
    /// When set, deletes and configuration changes (`DELETE` on any route, `PUT /config`,
    /// `PUT /config/{subject}`) need `Authorization: Bearer <token>` and are answered 401 (40101) without it.
    /// Reads and registrations stay open, as producers register their schemas themselves.
    pub admin_token: Option<String>,
    /// Refuses every delete of a subject or a version with 403 (40301), token or not. Removing a subject's
    /// compatibility level stays possible: it is configuration, and the admin token guards it.
    pub no_deletes: bool,
    /// How long a request may take; past it the client gets 503 (50301), which Confluent's clients and
    /// schema_registry_converter retry. Confluent answers a timeout with 500 (50002), which
    /// schema_registry_converter takes as final: a consumer would dead-letter a good record for it.
    pub request_timeout: std::time::Duration,
    /// Requests handled at once. One more is answered 503 (50302) at once rather than queued: a queue holds
    /// sockets and bodies for clients that may have given up, and a 503 is retried.
    pub max_concurrent_requests: usize,
}

impl Default for RegistryConfig {
    /// No token, deletes allowed, 30 s per request, 64 requests at once.
    fn default() -> Self {
        Self {
            admin_token: None,
            no_deletes: false,
            request_timeout: std::time::Duration::from_secs(30),
            max_concurrent_requests: 64,
        }
    }
}

impl std::fmt::Debug for RegistryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryConfig")
            .field("admin_token", &self.admin_token.as_ref().map(|_| "(set)"))
            .field("no_deletes", &self.no_deletes)
            .field("request_timeout", &self.request_timeout)
            .field("max_concurrent_requests", &self.max_concurrent_requests)
            .finish()
    }
}

/// The registry's routes on `pool`, whose database the caller has migrated (`db::migrate`).
pub fn router(pool: sqlx::PgPool, settings: &RegistryConfig) -> axum::Router {
    http::routes(pool, settings)
}

/// Serves the registry on `listener` with [`RegistryConfig::default`]; see [`serve_with`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    pool: sqlx::PgPool,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, pool, RegistryConfig::default(), shutdown).await
}

/// Serves the registry on `listener` until `shutdown` completes, then finishes the requests under way.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    pool: sqlx::PgPool,
    settings: RegistryConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    web::serve(listener, router(pool, &settings), shutdown).await
}

/// A registry served by this process on an ephemeral port of 127.0.0.1: the one-process pipeline's, and
/// tests'. It stops when [`stop`](Self::stop) is called or when it is dropped.
#[derive(Debug)]
pub struct LocalRegistry {
    url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl LocalRegistry {
    /// Serves the registry from `pool`, whose database the caller has migrated. Give it a pool of its own
    /// when writers encode inside their transactions: they may wait on the registry, which must never wait
    /// for one of their connections.
    ///
    /// # Errors
    /// When no local port can be bound.
    pub async fn start(pool: sqlx::PgPool) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, pool, async move {
            // A send or a drop of the sender both end the wait.
            let _ = stopped.await;
        }));
        Ok(Self { url, stop, task })
    }

    /// Where clients find it (`SCHEMA_REGISTRY_URL`).
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether the server has stopped on its own (it failed).
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops the server after the requests under way and waits for it.
    ///
    /// # Errors
    /// What stopped the server, if it failed.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.stop.send(());
        self.task.await.map_err(std::io::Error::other)?
    }
}
