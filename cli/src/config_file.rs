//! Settings from a file: `--config FILE` (or `ORDERFLOW_CONFIG`), one `NAME=value` per line, with the
//! environment variable names that `--help` shows for each flag. `#` starts a comment.
//!
//! Precedence: a flag, then the environment, then the file, then the built-in default. A name the binary
//! does not know is an error that names it, so a typo never goes unnoticed.

use std::collections::BTreeMap;
use std::ffi::OsString;

use anyhow::{Context as _, bail};
use clap::Command;

/// The path given with `--config FILE`, `--config=FILE` or `ORDERFLOW_CONFIG`, if any.
pub fn path(args: &[OsString]) -> Option<OsString> {
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--config" {
            return args.next().cloned();
        }
        if let Some(path) = arg.to_str().and_then(|a| a.strip_prefix("--config=")) {
            return Some(path.into());
        }
    }
    std::env::var_os("ORDERFLOW_CONFIG")
}

/// Reads `path` into names and values.
pub fn read(path: &OsString) -> anyhow::Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.to_string_lossy()))?;
    let mut settings = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            bail!(
                "{}:{}: expected NAME=value, got {line:?}",
                path.to_string_lossy(),
                n + 1
            );
        };
        settings.insert(name.trim().to_owned(), value.trim().to_owned());
    }
    Ok(settings)
}

/// `command` with the file's values as the defaults of the flags whose environment variable they name.
/// Fails on a name no flag of any subcommand reads.
pub fn apply(command: Command, settings: &BTreeMap<String, String>) -> anyhow::Result<Command> {
    let mut known = Vec::new();
    let command = with_defaults(command, settings, &mut known);
    if let Some(unknown) = settings.keys().find(|name| !known.contains(name)) {
        known.sort();
        known.dedup();
        bail!(
            "config file: unknown setting {unknown}; known settings: {}",
            known.join(", ")
        );
    }
    Ok(command)
}

fn with_defaults(
    mut command: Command,
    settings: &BTreeMap<String, String>,
    known: &mut Vec<String>,
) -> Command {
    let wanted: Vec<(clap::Id, String, bool)> = command
        .get_arguments()
        .filter_map(|arg| {
            let env = arg.get_env()?.to_str()?.to_owned();
            Some((arg.get_id().clone(), env, arg.is_hide_env_values_set()))
        })
        .collect();
    for (id, env, secret) in wanted {
        if let Some(value) = settings.get(&env) {
            // clap keeps defaults as 'static; a config file is read once per process.
            let value: &'static str = Box::leak(value.clone().into_boxed_str());
            // A setting whose environment value --help hides (it may hold a password) hides its default too.
            command = command.mut_arg(id, |arg| {
                arg.default_value(value).hide_default_value(secret)
            });
        }
        known.push(env);
    }
    let subcommands: Vec<String> = command
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    for name in subcommands {
        command = command.mut_subcommand(name, |sub| with_defaults(sub, settings, known));
    }
    command
}
