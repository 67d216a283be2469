//! `orderflow console` as an operator starts it.

use std::process::Command;

#[test]
fn it_refuses_an_address_other_than_loopback_without_a_token() {
    let output = Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args(["console", "--listen", "0.0.0.0:0"])
        .env_remove("CONSOLE_TOKEN")
        .output()
        .expect("the orderflow binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("not a loopback address") && stderr.contains("CONSOLE_TOKEN"),
        "{stderr}"
    );
}

#[test]
fn its_help_names_every_page_and_what_acting_needs() {
    let output = Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args(["console", "--help"])
        .output()
        .expect("the orderflow binary runs");
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{help}");
    for taught in [
        "the overview",
        "saga's timeline",
        "sagas needing attention",
        "dead letters",
        "quarantine",
        "replays",
        "reconciliation runs",
        "CONSOLE_TOKEN",
        "/login",
        "console@<client address>",
    ] {
        assert!(help.contains(taught), "{taught:?} not in {help}");
    }
}
