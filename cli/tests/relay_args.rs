//! `orderflow relay` refuses settings that cannot work, before it connects to anything, with a message that
//! names the flag: a batch of 0 publishes nothing, a huge one overflows the SQL limit, a poll interval of 0
//! busy-loops, 0 attempts quarantines every record at once.

use std::process::Command;

fn relay(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .arg("relay")
        .args(args)
        // Nothing answers here: a relay that accepted the settings would fail later, with another message.
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .env("KAFKA_BOOTSTRAP", "127.0.0.1:1")
        .output()
        .expect("the orderflow binary runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn out_of_range_relay_settings_are_refused_naming_the_flag() {
    for (flag, value) in [
        ("--batch-size", "0"),
        ("--batch-size", "100000000000"),
        ("--poll-interval-ms", "0"),
        ("--max-attempts", "0"),
        ("--max-attempts", "=-3"),
        ("--max-message-bytes", "10"),
    ] {
        // `--flag=value` is one argument, so that a negative value is not taken for a flag.
        let (code, stderr) = match value.strip_prefix('=') {
            Some(_) => relay(&[&format!("{flag}{value}")]),
            None => relay(&[flag, value]),
        };
        let value = value.trim_start_matches('=');
        assert_eq!(code, Some(2), "{flag} {value} is refused:\n{stderr}");
        assert!(
            stderr.contains(flag) && stderr.contains(value),
            "the message names {flag} and {value}:\n{stderr}"
        );
    }
}

#[test]
fn settings_in_range_get_past_the_check() {
    let (code, stderr) = relay(&[
        "--batch-size",
        "1",
        "--poll-interval-ms",
        "10",
        "--max-attempts",
        "1",
    ]);
    assert_eq!(
        code,
        Some(1),
        "accepted, then failed to reach the database:\n{stderr}"
    );
    assert!(stderr.contains("error:"), "{stderr}");
}
