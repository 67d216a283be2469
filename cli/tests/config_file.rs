//! Settings from a file: used as defaults, beaten by the environment and flags, typos refused.

use std::process::Command;

fn orderflow() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_orderflow"));
    command
        .env_remove("DATABASE_URL")
        .env_remove("ORDERFLOW_CONFIG")
        .env_remove("RELAY_BATCH_SIZE");
    command
}

fn config(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("{}-{name}.env", testkit::unique_name("config")));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_file_sets_defaults_and_an_unknown_name_is_refused() {
    let file = config("defaults", "# relay\nRELAY_BATCH_SIZE = 7\n");
    let help = orderflow()
        .arg("--config")
        .arg(&file)
        .args(["relay", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("[default: 7]"), "{text}");

    let typo = config("typo", "DATABSE_URL=postgres://x\n");
    let refused = orderflow()
        .arg("--config")
        .arg(&typo)
        .args(["outbox", "status"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let error = String::from_utf8_lossy(&refused.stderr);
    assert!(error.contains("unknown setting DATABSE_URL"), "{error}");
}

#[tokio::test]
async fn the_environment_beats_the_file() {
    let db = testkit::TestDb::new().await;
    let file = config(
        "unreachable",
        "DATABASE_URL=postgres://nobody@127.0.0.1:1/nothing\n",
    );
    let status = orderflow()
        .env("ORDERFLOW_CONFIG", &file)
        .env("DATABASE_URL", db.url())
        .args(["outbox", "status"])
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(String::from_utf8_lossy(&status.stdout).contains("unpublished records: 0"));
}

#[test]
fn help_never_prints_a_secret_from_the_file() {
    let file = config(
        "secret",
        "DATABASE_URL=postgres://app:hunter2@db/orders\nKAFKA_PROPERTIES=sasl.password=swordfish\n",
    );
    let help = orderflow()
        .arg("--config")
        .arg(&file)
        .args(["relay", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("--database-url"), "{text}");
    for secret in ["hunter2", "swordfish"] {
        assert!(!text.contains(secret), "--help shows {secret}:\n{text}");
    }
}
