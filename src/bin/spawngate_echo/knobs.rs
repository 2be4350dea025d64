//! The startup knobs' plumbing: reading a flag or a delay from the environment, and appending to the log
//! files some knobs name (`ECHO_START_LOG`, `ECHO_LISTEN_LOG`, `ECHO_ACCEPT_LOG`). Which knob does what
//! is main's to say; the crate root's doc lists them.

use std::fs::OpenOptions;
use std::io::Write;
use std::time::Duration;

/// A knob that is on: set, not empty and not `0`.
pub fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Now, in microseconds since the Unix epoch: what the listen and accept logs hold, for a test to
/// compare with its own clock.
pub fn micros_since_epoch() -> String {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    since_epoch.as_micros().to_string()
}

/// A knob in milliseconds; unset, or not a whole number, is no delay.
pub fn delay_from_env(name: &str) -> Option<Duration> {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
}

/// `ECHO_START_LOG`: one line per start, the pid, so a test can count starts and tell them apart.
pub fn record_start(path: &str, pid: u32) {
    append_line(path, &pid.to_string());
}

/// Appends `line` to the file at `path`; a failure is reported on stderr, never fatal (a log is a
/// test's aid, not the echo's job).
pub fn append_line(path: &str, line: &str) {
    // O_APPEND makes each line one atomic write, even with several instances sharing the file.
    let result = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
    if let Err(e) = result {
        eprintln!("spawngate-echo: cannot append to {path}: {e}");
    }
}
