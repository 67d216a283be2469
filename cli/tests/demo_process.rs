//! `orderflow demo` as a newcomer runs it: a small run passes every check and prints its summary; a bad
//! option is refused with a message that names it.

use std::process::Command;

#[tokio::test]
async fn a_small_demo_passes_every_check() {
    let db = testkit::TestDb::new().await;
    let output = Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args([
            "demo",
            "--orders",
            "60",
            "--decline-rate",
            "0.2",
            "--delivery-failure-rate",
            "0.2",
        ])
        .args(["--flash-sale-units", "5"])
        .env("DATABASE_URL", db.url())
        .env("KAFKA_BOOTSTRAP", &testkit::kafka().bootstrap)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the orderflow binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for line in [
        "orders by final state: ",
        "cancelled because:     ",
        "end-to-end latency:    p50 ",
        "check ok   every saga ended",
        "check ok   no oversell",
        "check ok   completed orders are paid and shipped",
        "check ok   cancelled orders hold no money and no stock",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("FAIL"), "{stdout}");
}

#[test]
fn a_share_outside_0_to_1_is_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args(["demo", "--decline-rate", "1.5"])
        .output()
        .expect("the orderflow binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--decline-rate") && stderr.contains("expected a share from 0 to 1"),
        "{stderr}"
    );
}
