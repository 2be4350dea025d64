//! The lifecycle keys of `[defaults]`, which every backend may override.
//!
//! Upper bounds exist so that `now + duration` can never overflow a timer, and so a unit mix-up
//! (`health_check_interval_ms = 5` meant as seconds, `idle_timeout_secs = 600000`) is caught early.

use std::time::Duration;

use super::reader::{Ctx, Section};
use super::Timings;

pub(super) const SECS_PER_DAY: u64 = 86_400;

/// Built-in values of every `[defaults]` key (SPEC.md).
pub(super) fn builtin() -> Timings {
    Timings {
        idle_timeout: Duration::from_secs(600),
        startup_timeout: Duration::from_secs(30),
        health_check_interval: Duration::from_millis(100),
        health_path: "/health".to_string(),
        request_timeout: Duration::from_secs(30),
        shutdown_grace_period: Duration::from_secs(10),
        drain_timeout: Duration::from_secs(30),
        ready_health_check_interval: Duration::from_millis(5000),
        unhealthy_threshold: 3,
        socket_activation: false,
        watchdog: None,
        server_timing: true,
    }
}

/// `idle_timeout_secs`: 1 s to 365 days. Zero would stop a backend between two requests.
const IDLE_TIMEOUT_SECS: (u64, u64) = (1, 365 * SECS_PER_DAY);
/// `startup_timeout_secs`: 1 s to 1 day (a first start may include pulling a large image).
const STARTUP_TIMEOUT_SECS: (u64, u64) = (1, SECS_PER_DAY);
/// `health_check_interval_ms`: 10 ms (faster is busy polling) to 1 min.
const HEALTH_CHECK_INTERVAL_MS: (u64, u64) = (10, 60_000);
/// `request_timeout_secs`: 1 s to 1 day.
pub(super) const REQUEST_TIMEOUT_SECS: (u64, u64) = (1, SECS_PER_DAY);
/// `shutdown_grace_period_secs`: 0 (SIGKILL right after SIGTERM) to 1 hour.
const SHUTDOWN_GRACE_SECS: (u64, u64) = (0, 3_600);
/// `drain_timeout_secs`: 0 (do not wait for in-flight requests) to 1 day.
const DRAIN_TIMEOUT_SECS: (u64, u64) = (0, SECS_PER_DAY);
/// `ready_health_check_interval_ms`: 100 ms to 1 hour.
const READY_HEALTH_CHECK_INTERVAL_MS: (u64, u64) = (100, 3_600_000);
/// `unhealthy_threshold`: 1 to 1000 consecutive failed probes.
const UNHEALTHY_THRESHOLD: (u64, u64) = (1, 1_000);
/// `watchdog_secs`: 1 s (a tighter watchdog is a busy loop for the program) to 1 day.
const WATCHDOG_SECS: (u64, u64) = (1, SECS_PER_DAY);
/// `health_path`: longest accepted; longer than any sane probe path, short enough for one request line.
const MAX_HEALTH_PATH_LEN: usize = 2_048;

/// Reads the lifecycle keys present in `section`; a missing or invalid key keeps its value from `base`
/// (invalid ones are reported).
pub(super) fn read(section: &mut Section<'_, '_>, ctx: &mut Ctx, base: &Timings) -> Timings {
    let mut out = base.clone();
    let mut secs = |key: &'static str, (min, max): (u64, u64), target: &mut Duration| {
        if let Some(n) = section
            .take(key)
            .and_then(|item| item.uint_in(ctx, min, max))
        {
            *target = Duration::from_secs(n);
        }
    };
    secs(
        "idle_timeout_secs",
        IDLE_TIMEOUT_SECS,
        &mut out.idle_timeout,
    );
    secs(
        "startup_timeout_secs",
        STARTUP_TIMEOUT_SECS,
        &mut out.startup_timeout,
    );
    secs(
        "request_timeout_secs",
        REQUEST_TIMEOUT_SECS,
        &mut out.request_timeout,
    );
    secs(
        "shutdown_grace_period_secs",
        SHUTDOWN_GRACE_SECS,
        &mut out.shutdown_grace_period,
    );
    secs(
        "drain_timeout_secs",
        DRAIN_TIMEOUT_SECS,
        &mut out.drain_timeout,
    );

    let mut millis = |key: &'static str, (min, max): (u64, u64), target: &mut Duration| {
        if let Some(n) = section
            .take(key)
            .and_then(|item| item.uint_in(ctx, min, max))
        {
            *target = Duration::from_millis(n);
        }
    };
    millis(
        "health_check_interval_ms",
        HEALTH_CHECK_INTERVAL_MS,
        &mut out.health_check_interval,
    );
    millis(
        "ready_health_check_interval_ms",
        READY_HEALTH_CHECK_INTERVAL_MS,
        &mut out.ready_health_check_interval,
    );

    let (min, max) = UNHEALTHY_THRESHOLD;
    if let Some(n) = section
        .take("unhealthy_threshold")
        .and_then(|item| item.uint_in(ctx, min, max))
    {
        // The bound above keeps it far inside u32.
        out.unhealthy_threshold = u32::try_from(n).unwrap_or(u32::MAX);
    }

    if let Some(flag) = section.take("socket_activation") {
        if let Some(on) = flag.as_bool(ctx) {
            out.socket_activation = on;
        }
    }
    let (min, max) = WATCHDOG_SECS;
    if let Some(n) = section
        .take("watchdog_secs")
        .and_then(|item| item.uint_in(ctx, min, max))
    {
        out.watchdog = Some(Duration::from_secs(n));
    }

    if let Some(flag) = section.take("server_timing") {
        if let Some(on) = flag.as_bool(ctx) {
            out.server_timing = on;
        }
    }

    if let Some(item) = section.take("health_path") {
        if let Some(path) = item.as_str(ctx) {
            match check_health_path(path) {
                Ok(()) => out.health_path = path.to_string(),
                Err(message) => item.invalid(ctx, message),
            }
        }
    }
    out
}

fn check_health_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        Err("must start with '/'".into())
    } else if path.len() > MAX_HEALTH_PATH_LEN {
        Err(format!("must be at most {MAX_HEALTH_PATH_LEN} bytes"))
    } else if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err("must not contain whitespace or control characters".into())
    } else if !path.is_ascii() {
        Err("must be ASCII (percent-encode other characters)".into())
    } else if path.contains('#') {
        Err("must not contain a fragment ('#')".into())
    } else {
        Ok(())
    }
}
