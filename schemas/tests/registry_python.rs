//! The registry driven by Confluent's Python client (`confluent-kafka`), through
//! `scripts/registry_python_client.py`, with the python of the venv `./dev up` installs in
//! `$ORDERFLOW_HOME/venv` (default `~/.orderflow/venv`).

use std::path::PathBuf;
use std::process::Command;

use testkit::TestDb;

fn venv_python() -> PathBuf {
    let home = std::env::var_os("ORDERFLOW_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let user_home = std::env::var_os("HOME").expect("HOME is set");
            PathBuf::from(user_home).join(".orderflow")
        });
    home.join("venv/bin/python")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_python_client_registers_reads_and_round_trips() {
    let python = venv_python();
    assert!(
        python.exists(),
        "{} is missing: run ./dev up, which installs Confluent's Python client there",
        python.display()
    );
    let db = TestDb::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(schemas::registry::serve(
        listener,
        db.pool().clone(),
        std::future::pending(),
    ));

    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/registry_python_client.py");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .arg(&script)
            .arg(&url)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()))
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the Python client's checks failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains("ok: round trip"),
        "no round trip in:\n{stdout}"
    );
    assert!(
        stdout
            .lines()
            .last()
            .is_some_and(|l| l == "registry_python_client: all checks passed"),
        "last line:\n{stdout}"
    );
}
