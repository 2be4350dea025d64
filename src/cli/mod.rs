//! The command line: `spawngate CONFIG | check CONFIG | status [ADMIN_URL] | --version | --help`.
//!
//! Fixed forms, so no argument-parsing crate. Exit codes: 0 success, 1 invalid config or a runtime
//! failure, 2 a command line that does not match any form (as most Unix tools do).

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::{self, ConfigErrors};

mod status;

const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit and target triple that build.rs embeds, so a bug report names the exact build.
const GIT_COMMIT: &str = env!("SPAWNGATE_GIT_COMMIT");
const TARGET: &str = env!("SPAWNGATE_TARGET");

const USAGE: &str = "\
Usage:
  spawngate CONFIG.toml         run the proxy in the foreground
  spawngate check CONFIG.toml   validate the config: print every problem and exit 1, or exit 0
  spawngate status [ADMIN_URL]  print every backend, pool and session of a running proxy as a table
                                (default http://127.0.0.1:9999)
  spawngate --version | -V      print the version
  spawngate --help | -h         print this help

Environment:
  RUST_LOG               log filter, e.g. RUST_LOG=debug or RUST_LOG=spawngate=debug,container=warn
                         (default: info)
  SPAWNGATE_ADMIN_TOKEN  the admin token `status` sends, when the proxy has admin_token_file

Signals:
  SIGHUP           re-read the config file; an invalid file is rejected and the running config kept
  SIGTERM, SIGINT  stop accepting, drain in-flight requests, stop every backend, exit 0
";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Command {
    Run(PathBuf),
    Check(PathBuf),
    Status(String),
    Version,
    Help,
}

/// Reads the arguments after the program name; `None` for anything that is not one of the forms.
fn parse_args(args: &[OsString]) -> Option<Command> {
    let is = |arg: &OsString, names: &[&str]| names.iter().any(|name| arg == name);
    match args {
        [flag] if is(flag, &["--help", "-h"]) => Some(Command::Help),
        [flag] if is(flag, &["--version", "-V"]) => Some(Command::Version),
        [check, path] if check == "check" && !looks_like_flag(path) => {
            Some(Command::Check(PathBuf::from(path)))
        }
        [status] if status == "status" => Some(Command::Status(status::DEFAULT_ADMIN.to_string())),
        [status, url] if status == "status" && !looks_like_flag(url) => {
            Some(Command::Status(url.to_string_lossy().into_owned()))
        }
        // A lone "check" is a forgotten argument, not a config file named "check" (use ./check for that);
        // a config file named "status" is run as ./status.
        [path] if path != "check" && !looks_like_flag(path) => {
            Some(Command::Run(PathBuf::from(path)))
        }
        _ => None,
    }
}

fn looks_like_flag(arg: &OsString) -> bool {
    arg.to_string_lossy().starts_with('-')
}

/// Entry point of the `spawngate` binary.
pub fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args
        .first()
        .is_some_and(|a| a == crate::supervisor::watchdog::WATCHDOG_ARG)
    {
        return crate::supervisor::watchdog::run();
    }
    match parse_args(&args) {
        Some(Command::Help) => print_stdout(USAGE),
        Some(Command::Version) => print_stdout(&version_line()),
        Some(Command::Check(path)) => check(&path),
        Some(Command::Status(admin)) => {
            let token = std::env::var("SPAWNGATE_ADMIN_TOKEN").ok();
            match status::status(&admin, token.as_deref()) {
                Ok(table) => print_stdout(&table),
                Err(why) => {
                    eprintln!("spawngate status: {why}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::Run(path)) => run(&path),
        None => {
            if args.is_empty() {
                eprintln!("spawngate: missing the config file\n");
            } else {
                let shown: Vec<String> = args
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect();
                eprintln!("spawngate: unexpected arguments: {}\n", shown.join(" "));
            }
            eprint!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// `spawngate 0.1.0 (commit abc1234, x86_64-unknown-linux-musl)`.
fn version_line() -> String {
    format!(
        "spawngate {VERSION} (commit {GIT_COMMIT}, {TARGET}, features: {})\n",
        features()
    )
}

/// The optional cargo features compiled in (`none`, `tls`, `tls acme`): whether this binary can serve
/// HTTPS is something to see without reading a config.
fn features() -> String {
    let compiled = [
        ("tls", cfg!(feature = "tls")),
        ("acme", cfg!(feature = "acme")),
    ];
    let names: Vec<&str> = (compiled.iter())
        .filter(|(_, on)| *on)
        .map(|(name, _)| *name)
        .collect();
    match names.is_empty() {
        true => "none".to_string(),
        false => names.join(" "),
    }
}

/// Writes to stdout without panicking when stdout is closed (`spawngate --help | head -1`).
fn print_stdout(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

fn report(errors: &ConfigErrors) {
    let count = errors.0.len();
    eprint!("{errors}");
    eprintln!(
        "spawngate: {count} problem{} found",
        if count == 1 { "" } else { "s" }
    );
}

fn check(path: &Path) -> ExitCode {
    match config::load(path) {
        Ok(config) => {
            let tables = match config.hosts.len() {
                0 => String::new(),
                1 => ", 1 route table".to_string(),
                n => format!(", {n} route tables"),
            };
            let backends = match config.backends.len() {
                1 => "1 backend".to_string(),
                n => format!("{n} backends"),
            };
            let sessions = match config.sessions.len() {
                0 => String::new(),
                1 => ", 1 session template".to_string(),
                n => format!(", {n} session templates"),
            };
            print_stdout(&format!(
                "ok: {} ({backends}{tables}{sessions})\n",
                path.display()
            ))
        }
        Err(errors) => {
            report(&errors);
            ExitCode::FAILURE
        }
    }
}

fn run(path: &Path) -> ExitCode {
    init_logging();
    let config = match config::load(path) {
        Ok(config) => config,
        Err(errors) => {
            report(&errors);
            return ExitCode::FAILURE;
        }
    };
    log::info!(
        "spawngate {VERSION} starting with {} ({} backends)",
        path.display(),
        config.backends.len()
    );
    match crate::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            log::error!("fatal: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr as `[timestamp LEVEL target] message`; the filter comes from `RUST_LOG`.
fn init_logging() {
    let filter = env_logger::Env::default().default_filter_or("info");
    let result = env_logger::Builder::from_env(filter)
        .format_timestamp_millis()
        .format_target(true)
        .try_init();
    if let Err(error) = result {
        eprintln!("spawngate: logging unavailable: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Option<Command> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        parse_args(&args)
    }

    #[test]
    fn the_four_forms() {
        assert_eq!(parse(&["a.toml"]), Some(Command::Run("a.toml".into())));
        assert_eq!(
            parse(&["check", "a.toml"]),
            Some(Command::Check("a.toml".into()))
        );
        assert_eq!(parse(&["--version"]), Some(Command::Version));
        assert_eq!(parse(&["-V"]), Some(Command::Version));
        assert_eq!(parse(&["--help"]), Some(Command::Help));
        assert_eq!(parse(&["-h"]), Some(Command::Help));
        assert_eq!(parse(&["./check"]), Some(Command::Run("./check".into())));
        assert_eq!(
            parse(&["status"]),
            Some(Command::Status("http://127.0.0.1:9999".into()))
        );
        assert_eq!(
            parse(&["status", "http://10.0.0.2:9000"]),
            Some(Command::Status("http://10.0.0.2:9000".into()))
        );
    }

    #[test]
    fn the_version_names_the_commit_target_and_features() {
        let line = version_line();
        let expected = match (cfg!(feature = "tls"), cfg!(feature = "acme")) {
            (false, _) => "none",
            (true, false) => "tls",
            (true, true) => "tls acme",
        };
        let inside = line
            .strip_prefix(&format!("spawngate {VERSION} (commit "))
            .and_then(|rest| rest.strip_suffix(&format!(", features: {expected})\n")))
            .unwrap_or_else(|| panic!("{line:?}"));
        let (commit, target) = inside
            .split_once(", ")
            .unwrap_or_else(|| panic!("{line:?}"));
        assert!(!commit.is_empty() && !commit.contains(' '), "{line:?}");
        assert_eq!(target.split('-').count(), 4, "a target triple: {line:?}");
    }

    #[test]
    fn anything_else_is_a_usage_error() {
        for args in [
            &[][..],
            &["check"],
            &["--verbose"],
            &["-x"],
            &["a.toml", "b.toml"],
            &["check", "a.toml", "b.toml"],
            &["check", "--help"],
            &["--version", "a.toml"],
            &["status", "--help"],
            &["status", "a", "b"],
        ] {
            assert_eq!(parse(args), None, "{args:?}");
        }
    }
}
