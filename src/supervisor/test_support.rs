//! Helpers shared by the supervisor's tests.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use crate::config::{BackendConfig, BackendKind, LocalSpec, Timings};

/// Polls `check` until it yields a value or `limit` passes.
pub fn wait_for<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A path in the temp dir, unique to this test process and `name`, not existing yet.
pub fn scratch_file(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("spawngate-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// Test backend ports come from below Linux's ephemeral range (32768..): a port handed out by
/// `bind(0)` could be taken a moment later as the local end of some other test's outgoing connection,
/// which would make a start fail with "port in use".
const TEST_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A port nothing listens on right now, and that this test process has not handed out before.
pub fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let span = TEST_PORTS.end - TEST_PORTS.start;
    // Different test binaries start at different offsets so they rarely probe the same ports.
    let offset = (std::process::id() % u32::from(span)) as u16;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = TEST_PORTS.start + (offset.wrapping_add(n) % span);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free test port in {TEST_PORTS:?}");
}

/// A local backend `app.localhost` on `port` with short, test-friendly timings.
pub fn local_config(port: u16, command: &str, args: &[&str]) -> BackendConfig {
    BackendConfig {
        hostname: "app.localhost".to_string(),
        port,
        kind: BackendKind::Local(LocalSpec {
            command: command.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            working_dir: None,
        }),
        env: vec![("PORT".to_string(), "1".to_string())],
        timings: Timings {
            idle_timeout: Duration::from_secs(60),
            startup_timeout: Duration::from_secs(30),
            health_check_interval: Duration::from_millis(20),
            health_path: "/health".to_string(),
            request_timeout: Duration::from_secs(30),
            shutdown_grace_period: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(20),
            ready_health_check_interval: Duration::from_secs(5),
            unhealthy_threshold: 3,
        },
    }
}
