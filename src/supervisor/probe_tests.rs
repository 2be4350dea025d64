use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::time::Instant;

use mio::{Events, Poll};

use super::*;
use crate::upstream::UpstreamAddr;

#[test]
fn status_line_parsing() {
    assert_eq!(
        parse_status(b"HTTP/1.1 200 OK\r\n"),
        StatusLine::Status(200)
    );
    assert_eq!(parse_status(b"HTTP/1.0 503"), StatusLine::Status(503));
    assert_eq!(parse_status(b"HTTP/1.1 20"), StatusLine::Incomplete);
    assert_eq!(parse_status(b""), StatusLine::Incomplete);
    assert_eq!(parse_status(b"HTTP/2 200 OK"), StatusLine::Invalid);
    assert_eq!(parse_status(b"SSH-2.0-OpenSSH"), StatusLine::Invalid);
    assert_eq!(parse_status(b"HTTP/1.1 2x0 OK"), StatusLine::Invalid);
}

#[test]
fn timeout_follows_the_interval_within_bounds() {
    assert_eq!(
        probe_timeout(Duration::from_millis(100)),
        Duration::from_secs(1)
    );
    assert_eq!(
        probe_timeout(Duration::from_secs(3)),
        Duration::from_secs(3)
    );
    assert_eq!(
        probe_timeout(Duration::from_secs(60)),
        Duration::from_secs(5)
    );
}

/// A one-connection server: answers with `response` (if any) and hands back the request it read.
fn serve_once(response: Option<&'static [u8]>) -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        answer_one(conn, response, &tx);
    });
    (port, rx)
}

/// [`serve_once`] on a unix-domain socket, bound at a fresh path before it returns.
fn serve_once_unix(
    name: &str,
    response: Option<&'static [u8]>,
) -> (UpstreamAddr, mpsc::Receiver<String>) {
    let path = socket_path(name);
    let listener = UnixListener::bind(&path).unwrap();
    let addr = UpstreamAddr::Unix(Arc::new(path.clone()));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        // The one connection is in: the file has served its purpose.
        let _ = std::fs::remove_file(path);
        answer_one(conn, response, &tx);
    });
    (addr, rx)
}

/// A path for a test's socket, with no file at it yet.
fn socket_path(name: &str) -> PathBuf {
    crate::supervisor::test_support::scratch_file(name)
}

fn answer_one(
    mut conn: impl Read + Write,
    response: Option<&'static [u8]>,
    tx: &mpsc::Sender<String>,
) {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.ends_with(b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let _ = tx.send(String::from_utf8_lossy(&request).into_owned());
    match response {
        Some(bytes) => {
            let _ = conn.write_all(bytes);
        }
        // Hold the connection open without answering until the probe closes it (the test is done).
        None => {
            let _ = conn.read(&mut buf);
        }
    }
}

/// Runs a probe until it answers or `limit` passes (then `None`).
fn run_probe(port: u16, limit: Duration) -> Option<Verdict> {
    run_probe_at(&UpstreamAddr::Tcp(([127, 0, 0, 1], port).into()), limit)
}

/// [`run_probe`] at any address.
fn run_probe_at(addr: &UpstreamAddr, limit: Duration) -> Option<Verdict> {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(8);
    let mut probe = match Probe::start(
        poll.registry(),
        Token(7),
        addr,
        "app.localhost",
        Some("/health"),
        0,
    ) {
        Ok(probe) => probe,
        Err(e) => return Some(Verdict::of_connect_error(&e)),
    };
    let deadline = Instant::now() + limit;
    loop {
        if let Some(result) = probe.advance() {
            probe.close(poll.registry());
            return Some(result);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        poll.poll(&mut events, Some(left)).unwrap();
    }
}

#[test]
fn a_2xx_answer_is_healthy_and_the_request_is_well_formed() {
    let (port, request) = serve_once(Some(b"HTTP/1.1 204 No Content\r\n\r\n"));
    assert_eq!(
        run_probe(port, Duration::from_secs(5)),
        Some(Verdict::Healthy)
    );
    let request = request.recv().unwrap();
    assert_eq!(
        request,
        "GET /health HTTP/1.1\r\nHost: app.localhost\r\nUser-Agent: spawngate-health\r\n\
         Connection: close\r\n\r\n"
    );
}

#[test]
fn a_5xx_answer_is_unhealthy() {
    let (port, _request) = serve_once(Some(b"HTTP/1.1 503 Service Unavailable\r\n\r\n"));
    assert_eq!(
        run_probe(port, Duration::from_secs(5)),
        Some(Verdict::Unhealthy)
    );
}

#[test]
fn garbage_and_early_close_are_unhealthy() {
    let (port, _request) = serve_once(Some(b"nonsense"));
    assert_eq!(
        run_probe(port, Duration::from_secs(5)),
        Some(Verdict::Unhealthy)
    );
    let (port, _request) = serve_once(Some(b"HTTP/1.1 2"));
    assert_eq!(
        run_probe(port, Duration::from_secs(5)),
        Some(Verdict::Unhealthy)
    );
}

/// A one-connection server that accepts and closes: at once (`read_first == false`), or once the
/// request is in, without a byte of answer. Both are what a port forwarder does for a container that
/// does not listen yet.
fn accept_and_close(read_first: bool) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        if read_first {
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
        }
    });
    port
}

#[test]
fn a_connection_closed_before_any_answer_is_dropped_not_unhealthy() {
    for read_first in [false, true] {
        assert_eq!(
            run_probe(accept_and_close(read_first), Duration::from_secs(5)),
            Some(Verdict::Dropped),
            "read_first: {read_first}"
        );
    }
    // Starting, a drop is a knock like a refusal; ready, the lifecycle counts it as a failed probe.
    assert_eq!(Verdict::Dropped.input(), Input::ProbeRefused);
}

#[test]
fn a_refused_connection_is_told_apart() {
    let port = crate::supervisor::test_support::free_port();
    assert_eq!(
        run_probe(port, Duration::from_secs(5)),
        Some(Verdict::Refused)
    );
}

#[test]
fn a_silent_backend_leaves_the_probe_pending() {
    let (port, request) = serve_once(None);
    assert_eq!(run_probe(port, Duration::from_millis(300)), None);
    assert!(request.recv().unwrap().starts_with("GET /health"));
}

#[test]
fn a_unix_socket_is_probed_with_the_same_request_and_verdicts() {
    let (addr, request) = serve_once_unix("probe-healthy.sock", Some(b"HTTP/1.1 200 OK\r\n\r\n"));
    assert_eq!(
        run_probe_at(&addr, Duration::from_secs(5)),
        Some(Verdict::Healthy)
    );
    assert_eq!(
        request.recv().unwrap(),
        "GET /health HTTP/1.1\r\nHost: app.localhost\r\nUser-Agent: spawngate-health\r\n\
         Connection: close\r\n\r\n"
    );
    let (addr, _request) = serve_once_unix("probe-503.sock", Some(b"HTTP/1.1 503 Busy\r\n\r\n"));
    assert_eq!(
        run_probe_at(&addr, Duration::from_secs(5)),
        Some(Verdict::Unhealthy)
    );
}

#[test]
fn a_missing_or_stale_unix_socket_means_nothing_listens_yet() {
    let path = socket_path("probe-refused.sock");
    let addr = UpstreamAddr::Unix(Arc::new(path.clone()));
    assert_eq!(
        run_probe_at(&addr, Duration::from_secs(5)),
        Some(Verdict::Refused),
        "no socket file yet"
    );
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists(), "the file outlives its listener");
    assert_eq!(
        run_probe_at(&addr, Duration::from_secs(5)),
        Some(Verdict::Refused),
        "a stale socket file"
    );
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_silent_unix_backend_leaves_the_probe_pending() {
    let (addr, request) = serve_once_unix("probe-silent.sock", None);
    assert_eq!(run_probe_at(&addr, Duration::from_millis(300)), None);
    assert!(request.recv().unwrap().starts_with("GET /health"));
}

#[test]
fn a_connection_check_is_healthy_once_accepted_whatever_would_be_answered() {
    // The listener never answers: an HTTP probe would wait; a connection check does not.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = UpstreamAddr::Tcp(listener.local_addr().unwrap());
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(8);
    let mut probe =
        Probe::start(poll.registry(), Token(7), &addr, "app.localhost", None, 0).expect("connects");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let verdict = loop {
        if let Some(verdict) = probe.advance() {
            break Some(verdict);
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break None;
        }
        poll.poll(&mut events, Some(left)).unwrap();
    };
    assert_eq!(verdict, Some(Verdict::Healthy));
    drop(listener);
}
