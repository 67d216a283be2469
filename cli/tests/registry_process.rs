//! The `orderflow registry` binary: migrates, serves Confluent's REST API on the address it was given and
//! says so, and exits 0 on SIGTERM.

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_local_address, get};

#[tokio::test]
async fn registry_serves_until_sigterm_and_exits_0() {
    let db = testkit::TestDb::new().await;
    let addr = free_local_address();
    let mut child = Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args(["registry", "--listen", &addr])
        .env("DATABASE_URL", db.url())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start orderflow registry");
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });

    let deadline = Instant::now() + Duration::from_secs(30);
    let answer = loop {
        match get(&addr, "/schemas/types").await {
            Ok(answer) => break answer,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "registry never answered on {addr}: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(r#"["AVRO"]"#), "{answer}");
    let subjects = get(&addr, "/subjects/none/versions").await.unwrap();
    assert!(subjects.starts_with("HTTP/1.1 404"), "{subjects}");
    assert!(subjects.contains("40401"), "{subjects}");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "registry still running 15 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let log = log.join().unwrap().join("\n");
    assert!(status.success(), "exit status {status}; log:\n{log}");
    assert!(
        log.contains(&format!("SCHEMA_REGISTRY_URL=http://{addr}")),
        "the log names the address:\n{log}"
    );
}

#[test]
fn help_names_the_default_address_and_schema_registry_url() {
    let output = Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args(["registry", "--help"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "127.0.0.1:8081",
        "SCHEMA_REGISTRY_URL",
        "REGISTRY_LISTEN",
        "Confluent",
        "--admin-token",
        "REGISTRY_ADMIN_TOKEN",
        "--no-deletes",
        "--request-timeout-secs",
        "--max-concurrent-requests",
    ] {
        assert!(help.contains(expected), "{expected} missing from:\n{help}");
    }
}
