//! `orderflow demo` as a newcomer runs it: a small run passes every check and prints its summary, its log
//! goes to a file whose path it prints (the terminal shows progress and the summary only), the faults it
//! injects on purpose are not logged as errors, and its console answers while it runs; a bad option is
//! refused with a message that names it.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

#[tokio::test]
async fn a_small_demo_passes_every_check() {
    let db = testkit::TestDb::new().await;
    let logs = std::env::temp_dir().join(format!("{}.log", testkit::unique_name("demo")));
    let mut child = Command::new(env!("CARGO_BIN_EXE_orderflow"))
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
        .args(["--console", "127.0.0.1:0"])
        .arg("--log-file")
        .arg(&logs)
        .env("DATABASE_URL", db.url())
        .env("HTTP_ADDR", "127.0.0.1:0")
        .env("KAFKA_BOOTSTRAP", &testkit::kafka().bootstrap)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the orderflow binary runs");
    let mut stderr_pipe = child.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        stderr_pipe.read_to_string(&mut text).map(|_| text)
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stdout = String::new();
    // The console answers while the demo runs: its overview, over this run's pipeline.
    let mut console = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        stdout.push_str(&line);
        stdout.push('\n');
        if let Some(url) = line.strip_prefix("console: ") {
            console = Some(url.to_owned());
            break;
        }
    }
    let console = console.unwrap_or_else(|| panic!("no console address in:\n{stdout}"));
    let overview: serde_json::Value = reqwest::get(format!("{console}api/overview"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(overview["sagas_in_flight"].is_i64(), "{overview}");
    let groups = overview["consumer_lag"].as_array().unwrap();
    assert!(
        groups
            .iter()
            .all(|g| g["group"].as_str().unwrap().starts_with("demo-")),
        "the console reads the demo's own groups: {overview}"
    );
    for line in lines {
        stdout.push_str(&line.unwrap());
        stdout.push('\n');
    }
    let status = child.wait().unwrap();
    let stderr = stderr_reader.join().unwrap().unwrap();
    assert!(status.success(), "{stdout}\n{stderr}");
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
fn a_console_for_two_regions_or_on_an_open_address_without_a_token_is_refused() {
    for (args, named) in [
        (
            &["--regions", "2", "--console", "127.0.0.1:0"][..],
            "--regions 2",
        ),
        (&["--console", "0.0.0.0:0"][..], "CONSOLE_TOKEN"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_orderflow"))
            .arg("demo")
            .args(args)
            .env_remove("CONSOLE_TOKEN")
            .output()
            .expect("the orderflow binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(named), "{args:?}: {stderr}");
    }
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
