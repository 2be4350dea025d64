//! Integration test harness: the proxy started on port 0 with a test's config, the `spawngate-echo`
//! backend, a raw HTTP client, and process facts from /proc. Each test file does `mod support;` and uses
//! the part it needs, so unused items are expected.
#![allow(dead_code, unused_imports)]

pub mod browser;
mod client;
pub mod cold;
mod echo;
mod h2client;
mod h2worker;
#[cfg(feature = "tls")]
pub mod https;
mod parity;
pub mod pools;
mod procs;
mod proxy;
pub mod recorder;
pub mod routing;
mod rustc;
pub mod sessions;
#[cfg(feature = "tls")]
pub mod tls_backend;
pub mod ws;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use client::{
    build_request, get, read_chunked, read_final_head, read_response, send, Client, Response,
};
pub use echo::{echo_backend, shell_backend, toml_str, EchoServer};
pub use h2client::*;
pub use h2worker::{h2_echo_config, warm_h2_worker, H2Worker};
pub use nix::sys::signal::Signal;
pub use parity::{
    assert_alike, assert_echoed, assert_refused, both, h2c_answer, http1_answer, Answer,
};
pub use procs::{
    backend_children_of, children_of, descendants_of, pid_alive, rss_kib, start_log_pids,
    zombies_of,
};
pub use proxy::Proxy;
pub use rustc::compile_std_program;

/// Pause between two checks of a condition in `wait_until`.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A port that was free a moment ago, for a backend to listen on.
///
/// Ports are taken from outside the kernel's ephemeral range: port-0 listeners (the proxy's own) and
/// outgoing connections draw from that range, so a port handed out here and released until the backend
/// starts cannot be taken by them in the meantime. A process-wide cursor keeps tests running in parallel
/// from being handed the same port.
pub fn free_port() -> u16 {
    static CURSOR: AtomicUsize = AtomicUsize::new(0);
    let (low, high) = non_ephemeral_range();
    let span = usize::from(high - low);
    // Start somewhere that differs between test processes, which may run at the same time.
    let seed = std::process::id() as usize * 7919
        + SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_micros() as usize)
            .unwrap_or(0);
    for _ in 0..span {
        let step = CURSOR.fetch_add(1, Ordering::Relaxed);
        let port = low + ((seed + step) % span) as u16;
        if claim(port, 1) {
            return port;
        }
    }
    panic!("no free port in {low}..{high}");
}

/// Ports already handed out in this process (by [`free_port`] or a pool's run of ports), which a
/// later draw must skip even while nothing listens on them yet.
static CLAIMED: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

/// Claims `count` consecutive ports from `first` if none is claimed and each can be bound now.
pub fn claim(first: u16, count: u16) -> bool {
    let mut claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
    let ports: Vec<u16> = (0..count).filter_map(|i| first.checked_add(i)).collect();
    let free = ports.len() == usize::from(count)
        && ports
            .iter()
            .all(|p| !claimed.contains(p) && TcpListener::bind(("127.0.0.1", *p)).is_ok());
    if free {
        claimed.extend(ports);
    }
    free
}

/// A range of ports the kernel does not pick from for port 0 or outgoing connections.
fn non_ephemeral_range() -> (u16, u16) {
    let ephemeral: Vec<u16> = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    match ephemeral[..] {
        [first, _] if first > 12_000 => (10_000, first),
        [_, last] if last < 63_000 => (last + 1, 65_535),
        // An unusual configuration: fall back to a range that is rarely ephemeral.
        _ => (10_000, 30_000),
    }
}

pub fn echo_bin() -> &'static str {
    env!("CARGO_BIN_EXE_spawngate-echo")
}

/// Polls `condition` until it holds (true) or `timeout` passes (false).
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// A directory of its own for one test, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "spawngate-test-{label}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create a temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Byte `i` of the `/stream` pattern.
pub fn pattern_byte(i: u64) -> u8 {
    (i % 251) as u8
}

/// A JSON request description from the echo backend: its headers as (name, value) pairs.
pub fn echoed_headers(json: &serde_json::Value) -> Vec<(String, String)> {
    json["headers"]
        .as_array()
        .unwrap_or_else(|| panic!("no headers in {json}"))
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().unwrap_or_default().to_string(),
                pair[1].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Every echoed value of header `name` (case-insensitive).
pub fn echoed_header_values(json: &serde_json::Value, name: &str) -> Vec<String> {
    echoed_headers(json)
        .into_iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .collect()
}

/// The Host most tests route to.
pub const ECHO_HOST: &str = "echo.test";

/// A proxy with one `spawngate-echo` backend for `ECHO_HOST` on a free port.
pub fn proxy_with_echo(keys: &str, env: &[(&str, &str)]) -> Proxy {
    Proxy::start(&echo_backend(ECHO_HOST, free_port(), keys, env))
}

/// Asserts that `response` is the proxy's JSON error with this code and status.
pub fn assert_proxy_error(response: &Response, code: &str, status: u16) {
    assert_eq!(
        response.status,
        status,
        "expected {status} {code}, got {} {:?} {}",
        response.status,
        response.headers,
        response.text()
    );
    assert_eq!(
        response.header("x-proxy-error"),
        Some(code),
        "{:?}",
        response.headers
    );
    assert_eq!(response.header("content-type"), Some("application/json"));
    let json = response.json();
    assert_eq!(json["code"], code, "{json}");
    assert_eq!(json["status"], status, "{json}");
    assert!(
        json["message"].as_str().is_some_and(|m| !m.is_empty()),
        "message missing in {json}"
    );
}

/// The backend pid that answered (from the echo backend's `X-Echo-Pid`).
pub fn echo_pid(response: &Response) -> u32 {
    response
        .header("x-echo-pid")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no X-Echo-Pid: {} {:?} {}",
                response.status,
                response.headers,
                response.text()
            )
        })
}

/// `path`, where Debian's `package` installs a tool, if it is installed; under CI a missing tool is a
/// failure (`.ci/run` installs it), elsewhere the caller skips.
pub fn debian_tool(path: &'static str, package: &str) -> Option<&'static str> {
    if Path::new(path).exists() {
        return Some(path);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{path} is missing: install Debian's {package} package (.ci/run does)");
    }
    eprintln!("skipped: {path} is missing (apt-get install {package})");
    None
}
