//! Helpers shared by the supervisor's tests.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{BackendConfig, BackendKind, LocalSpec, Timings};

/// Longest wait for anything a test expects to happen; generous for a loaded machine.
pub const WAIT: Duration = Duration::from_secs(5);

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
            socket_activation: false,
            server_timing: true,
            watchdog: None,
        },
        pool: None,
        session: None,
    }
}

/// `sh -c 'echo $$ >> PIDS; exec CMD'`: a backend whose pids can be read back, one line per start.
pub fn recorded(port: u16, pids: &Path, then: &str) -> BackendConfig {
    let script = format!("echo $$ >> {}; {then}", pids.display());
    local_config(port, "sh", &["-c", &script])
}

pub fn pids_in(file: &Path) -> Vec<u32> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

pub fn first_pid(file: &Path) -> u32 {
    wait_for(WAIT, || pids_in(file).first().copied()).expect("the backend wrote its pid")
}

pub fn gone(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

pub fn assert_gone(pid: u32) {
    assert!(
        wait_for(WAIT, || gone(pid).then_some(())).is_some(),
        "pid {pid} is still there"
    );
}

/// Answers every request on `port` with the status in the returned cell.
pub fn health_server(port: u16) -> Arc<AtomicU16> {
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let status = Arc::new(AtomicU16::new(200));
    let answer = status.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut head = Vec::new();
            let mut buf = [0u8; 512];
            while !head.ends_with(b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let code = answer.load(Ordering::SeqCst);
            let _ = write!(
                conn,
                "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    status
}

/// A Docker driver whose reports land in the returned receiver; keep the `Poll` alive with it (its
/// waker is what the driver's mailbox wakes).
pub fn docker_driver() -> (
    crate::supervisor::docker::DockerDriver,
    std::sync::mpsc::Receiver<crate::supervisor::docker::DriverEvent>,
    mio::Poll,
) {
    let poll = mio::Poll::new().unwrap();
    let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let mailbox = crate::msg::Mailbox::new(tx, waker);
    (
        crate::supervisor::docker::DockerDriver::new(mailbox),
        rx,
        poll,
    )
}
