//! Postgres and Apache Kafka from containers, for users with a Docker engine (the `testcontainers` feature).
//!
//! The containers start once per test process, on first use, and serve every test of that process. They are
//! not stopped when the process exits (a `static` is never dropped); Docker removes them with
//! `docker container prune`, or testcontainers' reaper where it is enabled.
//!
//! Without a reachable engine, [`shared`] returns the reason and the tests fall back to `DATABASE_URL`,
//! `KAFKA_BOOTSTRAP` or the local environment; [`skip_without_engine`] lets a container-only test say why it
//! did not run.

use std::sync::OnceLock;

use testcontainers::runners::SyncRunner as _;
use testcontainers::{Container, ImageExt as _};
use testcontainers_modules::kafka::apache::{KAFKA_PORT, Kafka};
use testcontainers_modules::postgres::Postgres;

/// Running containers and how to reach them.
pub struct Running {
    pub database_url: String,
    pub kafka_bootstrap: String,
    _postgres: Container<Postgres>,
    _kafka: Container<Kafka>,
}

/// Why containers could not be had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unavailable {
    /// No Docker engine answers at the socket or `DOCKER_HOST`.
    NoEngine(String),
    /// The engine answered but a container did not start.
    StartFailed(String),
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoEngine(why) => write!(f, "no Docker engine: {why}"),
            Self::StartFailed(why) => write!(f, "containers did not start: {why}"),
        }
    }
}

/// The containers of this test process, started on first call.
pub fn shared() -> Result<&'static Running, Unavailable> {
    static RUNNING: OnceLock<Result<Running, Unavailable>> = OnceLock::new();
    RUNNING
        .get_or_init(|| {
            // The blocking runner drives a runtime of its own, which must not nest in a test's runtime.
            std::thread::spawn(start).join().unwrap_or_else(|_| {
                Err(Unavailable::StartFailed(
                    "the thread starting containers panicked".into(),
                ))
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Prints why a container-only test is skipped and returns true when there is no engine.
pub fn skip_without_engine(test: &str) -> bool {
    match docker_engine() {
        Ok(()) => false,
        Err(why) => {
            eprintln!("skipped {test}: {why}");
            true
        }
    }
}

/// Checks that a Docker engine answers, at `DOCKER_HOST` or the default socket.
pub fn docker_engine() -> Result<(), Unavailable> {
    let host =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let reached = if let Some(path) = host.strip_prefix("unix://") {
        std::os::unix::net::UnixStream::connect(path).map(drop)
    } else if let Some(address) = host.strip_prefix("tcp://") {
        std::net::TcpStream::connect(address).map(drop)
    } else {
        return Err(Unavailable::NoEngine(format!(
            "DOCKER_HOST={host} is neither unix:// nor tcp://"
        )));
    };
    reached.map_err(|e| Unavailable::NoEngine(format!("{host}: {e}")))
}

/// The `apache/kafka` image tag: the version `./dev up` runs (`<kafka.version>` in env/kafka/pom.xml).
pub const KAFKA_IMAGE_TAG: &str = "4.3.1";

fn start() -> Result<Running, Unavailable> {
    docker_engine()?;
    let failed = |what: &str, e: testcontainers::TestcontainersError| {
        Unavailable::StartFailed(format!("{what}: {e}"))
    };
    let postgres = Postgres::default()
        .start()
        .map_err(|e| failed("postgres", e))?;
    let kafka = Kafka::default()
        .with_tag(KAFKA_IMAGE_TAG)
        .start()
        .map_err(|e| failed("kafka", e))?;
    let pg_port = postgres
        .get_host_port_ipv4(5432)
        .map_err(|e| failed("postgres port", e))?;
    let kafka_port = kafka
        .get_host_port_ipv4(KAFKA_PORT)
        .map_err(|e| failed("kafka port", e))?;
    Ok(Running {
        database_url: format!("postgres://postgres:postgres@127.0.0.1:{pg_port}/postgres"),
        kafka_bootstrap: format!("127.0.0.1:{kafka_port}"),
        _postgres: postgres,
        _kafka: kafka,
    })
}
