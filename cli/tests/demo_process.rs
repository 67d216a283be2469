//! `orderflow demo` as a newcomer runs it: a small run passes every check and prints its summary, its log
//! goes to a file whose path it prints (the terminal shows progress and the summary only), and the faults
//! it injects on purpose are not logged as errors; a bad option is refused with a message that names it.

use std::process::Command;

#[tokio::test]
async fn a_small_demo_passes_every_check() {
    let db = testkit::TestDb::new().await;
    let logs = std::env::temp_dir().join(format!("{}.log", testkit::unique_name("demo")));
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
        .args(["--flash-sale-units", "5", "--provider-timeout-rate", "0.2"])
        // A lost result waits for the saga's deadline, a minute in the demo: the finance e2e test loses
        // results with short deadlines instead.
        .args(["--lost-notification-rate", "0"])
        .arg("--log-file")
        .arg(&logs)
        .env("DATABASE_URL", db.url())
        .env("HTTP_ADDR", "127.0.0.1:0")
        .env("KAFKA_BOOTSTRAP", &testkit::kafka().bootstrap)
        .env("RUST_LOG", "info")
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

    let log = std::fs::read_to_string(&logs).expect("the demo writes its log file");
    std::fs::remove_file(&logs).ok();
    assert!(
        stdout.contains(&format!("log: {}", logs.display())),
        "the demo prints where its log is:\n{stdout}"
    );
    assert!(
        log.contains(" INFO "),
        "the log file holds the run's log:\n{log}"
    );
    for level in [" INFO ", " WARN ", " ERROR "] {
        assert!(
            !stderr.contains(level) && !stdout.contains(level),
            "no log line on the terminal ({level:?}):\n{stdout}\n{stderr}"
        );
    }
    assert!(
        log.contains("transient failure"),
        "the provider timed out and was retried, or the next check proves nothing:\n{log}"
    );
    let errors: Vec<&str> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert!(
        errors.is_empty(),
        "an injected, retried fault is not an error:\n{}",
        errors.join("\n")
    );
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

/// `demo --regions 2`: east and west take orders at once, MirrorMaker 2 (`./dev up`) replicates their
/// events, and both global views end up the same, which the summary shows with one checksum per region.
#[tokio::test]
async fn a_two_region_demo_converges_to_one_global_view() {
    let db = testkit::TestDb::new().await;
    let west_database = format!("{}_west", db.name());
    let output = Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args(["demo", "--regions", "2", "--orders", "40"])
        .args(["--west-database", &west_database])
        // Lost results wait for the saga's deadline, a minute in the demo (see above).
        .args(["--lost-notification-rate", "0"])
        .env("DATABASE_URL", db.url())
        .env("HTTP_ADDR", "127.0.0.1:0")
        .env("KAFKA_BOOTSTRAP", &testkit::kafka().bootstrap)
        .env("KAFKA_BOOTSTRAP_WEST", &testkit::kafka_west().bootstrap)
        .env(
            "DEMO_LOG_FILE",
            std::env::temp_dir().join(format!("{}.log", testkit::unique_name("demo"))),
        )
        .output()
        .expect("the orderflow binary runs");
    db::drop_database(&testkit::database_url(), &west_database)
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for line in [
        "== region east\norders by final state: ",
        "== region west\norders by final state: ",
        "replication lag into east: p50 ",
        "replication lag into west: p50 ",
        "check ok   global views agree: both regions hold the same 40 orders",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("FAIL"), "{stdout}");
    let checksums: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("orders_global in "))
        .map(|l| {
            assert!(l.contains(":  40 orders of both regions"), "{l}");
            l.rsplit(' ').next().unwrap()
        })
        .collect();
    assert_eq!(checksums.len(), 2, "{stdout}");
    assert_eq!(checksums[0], checksums[1], "{stdout}");
}

#[test]
fn a_region_count_or_database_name_the_demo_cannot_use_is_refused() {
    for (args, named) in [
        (["--regions", "3"], "--regions"),
        (["--west-database", "West-DB"], "--west-database"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_orderflow"))
            .arg("demo")
            .args(args)
            .output()
            .expect("the orderflow binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(named), "{stderr}");
    }
}
