//! The local brokers `./dev up` runs, for the drills that take one down: where their process ids are, how to
//! kill one with SIGKILL and how to bring it back. Such a drill kills a broker every other test uses, so it
//! is `#[ignore]`d and `./dev test` runs it alone after the suite.

use std::path::PathBuf;
use std::process::{Command, ExitStatus};

/// `ORDERFLOW_HOME`, or `~/.orderflow`: where `./dev` keeps its state.
#[must_use]
pub fn orderflow_home() -> PathBuf {
    std::env::var_os("ORDERFLOW_HOME").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".orderflow"),
        PathBuf::from,
    )
}

/// The file in which `./dev` keeps the process id of `region`'s broker.
#[must_use]
pub fn broker_pid_file(region: &str) -> PathBuf {
    orderflow_home().join(format!("run/kafka-{region}.pid"))
}

/// The process id of `region`'s broker, as `./dev` recorded it.
///
/// # Panics
/// When `./dev` started no broker for `region`.
#[must_use]
pub fn broker_pid(region: &str) -> String {
    let file = broker_pid_file(region);
    std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("no local broker started by ./dev ({}: {e})", file.display()))
        .trim()
        .to_owned()
}

/// Kills `region`'s broker with SIGKILL and returns the process id it had.
///
/// # Panics
/// When there is no such broker or `kill` fails.
#[must_use]
pub fn kill_broker(region: &str) -> String {
    let pid = broker_pid(region);
    let killed = Command::new("kill").args(["-9", &pid]).status().unwrap();
    assert!(killed.success(), "kill -9 {pid} (region {region})");
    pid
}

/// Runs `./dev COMMAND` (`up`, `status`) for the brokers `./dev` manages: without a `KAFKA_BOOTSTRAP` of the
/// caller's, which would tell it to leave Kafka alone.
///
/// # Panics
/// When `./dev` cannot be started.
#[must_use]
pub fn dev(command: &str) -> ExitStatus {
    Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../dev"))
        .arg(command)
        .env_remove("KAFKA_BOOTSTRAP")
        .status()
        .unwrap_or_else(|e| panic!("cannot run ./dev {command}: {e}"))
}
