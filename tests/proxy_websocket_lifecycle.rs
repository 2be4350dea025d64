//! WebSocket tunnels and the backend lifecycle: an open WebSocket keeps its backend through idle
//! timeouts, drains (SIGTERM, removal on reload) wait for it up to the drain timeout and then close it, a
//! dying backend ends it, and a side that never reads does not make the proxy buffer.

mod support;

use std::time::{Duration, Instant};

use tungstenite::Message;

use support::ws::*;
use support::*;

/// `/backends` and processes are polled for this long when a count or state is expected to settle.
const SETTLE: Duration = Duration::from_secs(5);

#[test]
fn an_open_websocket_keeps_its_backend_across_idle_timeouts() {
    let proxy = proxy_with_echo("idle_timeout_secs = 1", &[]);
    let (mut ws, response) = ws_connect(proxy.addr(), ECHO_HOST, "/ws");
    let pid = ws_pid(&response);
    let stays_ready = |quiet: Duration| {
        let stopped = wait_until(quiet, || proxy.state_of(ECHO_HOST) != "ready");
        assert!(
            !stopped,
            "stopped with a WebSocket open: {}",
            proxy.backend(ECHO_HOST)
        );
        assert!(pid_alive(pid));
    };
    // About 3.5 idle timeouts: a long silence, then messages now and then.
    stays_ready(Duration::from_millis(1500));
    assert_eq!(ws_echo(&mut ws, Message::text("1")), Message::text("1"));
    stays_ready(Duration::from_millis(1200));
    assert_eq!(ws_echo(&mut ws, Message::text("2")), Message::text("2"));
    stays_ready(Duration::from_millis(800));
    assert_eq!(in_flight(&proxy, ECHO_HOST), 1);

    ws_close_cleanly(ws);
    wait_in_flight(&proxy, ECHO_HOST, 0);
    proxy.wait_for_state(ECHO_HOST, "stopped", Duration::from_secs(10));
    assert!(
        wait_until(SETTLE, || !pid_alive(pid)),
        "backend {pid} outlived its stop"
    );
}

#[test]
fn sigterm_drains_an_open_websocket_then_closes_it() {
    let drain = Duration::from_secs(2);
    let mut proxy = proxy_with_echo(
        "drain_timeout_secs = 2\nshutdown_grace_period_secs = 2",
        &[],
    );
    let (mut ws, response) = ws_connect(proxy.addr(), ECHO_HOST, "/ws");
    let pid = ws_pid(&response);
    let children = descendants_of(proxy.pid());
    assert!(children.contains(&pid), "{pid} is not among {children:?}");
    let signalled = Instant::now();
    proxy.signal(Signal::SIGTERM);
    assert!(
        proxy.wait_for_log("shutting down", SETTLE),
        "the proxy did not start its shutdown"
    );
    // The tunnel still works while the proxy waits for it.
    assert_eq!(
        ws_echo(&mut ws, Message::text("during drain")),
        Message::text("during drain")
    );
    assert!(
        ws_ended_within(&mut ws, drain * 4),
        "the WebSocket was never closed by the drain"
    );
    let ended_after = signalled.elapsed();
    assert!(
        ended_after >= drain - Duration::from_millis(300),
        "the tunnel was closed after {ended_after:?}, before the drain timeout"
    );
    let status = proxy.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "proxy exited with {status}");
    let left: Vec<u32> = children.into_iter().filter(|&p| pid_alive(p)).collect();
    assert!(left.is_empty(), "processes outlived the proxy: {left:?}");
}

#[test]
fn sigterm_stops_waiting_once_the_websocket_closes() {
    let mut proxy = proxy_with_echo("drain_timeout_secs = 30", &[]);
    let (ws, response) = ws_connect(proxy.addr(), ECHO_HOST, "/ws");
    let pid = ws_pid(&response);
    let signalled = Instant::now();
    proxy.signal(Signal::SIGTERM);
    assert!(
        proxy.wait_for_log("shutting down", SETTLE),
        "the proxy did not start its shutdown"
    );
    ws_close_cleanly(ws);
    let status = proxy.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "proxy exited with {status}");
    let took = signalled.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "the drain went on for {took:?} after the last tunnel closed"
    );
    assert!(!pid_alive(pid), "backend {pid} outlived the proxy");
}

#[test]
fn removing_the_backend_on_reload_drains_its_websocket_then_closes_it() {
    let drain = Duration::from_secs(2);
    let other = echo_backend("other.test", free_port(), "", &[]);
    let echo = echo_backend(ECHO_HOST, free_port(), "drain_timeout_secs = 2", &[]);
    let proxy = Proxy::start(&format!("{echo}{other}"));
    let (mut ws, response) = ws_connect(proxy.addr(), ECHO_HOST, "/ws");
    let pid = ws_pid(&response);
    proxy.rewrite_config(&other);
    let signalled = Instant::now();
    proxy.signal(Signal::SIGHUP);
    assert!(
        proxy.wait_for_log("config reloaded", SETTLE),
        "the reload was not applied"
    );
    assert_eq!(
        ws_echo(&mut ws, Message::text("while removed")),
        Message::text("while removed")
    );
    assert!(
        ws_ended_within(&mut ws, drain * 4),
        "the WebSocket of a removed backend was never closed"
    );
    let ended_after = signalled.elapsed();
    assert!(
        ended_after >= drain - Duration::from_millis(300),
        "the tunnel was closed after {ended_after:?}, before the drain timeout"
    );
    assert!(
        wait_until(SETTLE, || !pid_alive(pid)),
        "backend {pid} still runs"
    );
}

#[test]
fn a_backend_that_dies_ends_its_websockets() {
    let proxy = proxy_with_echo("", &[]);
    let (mut ws, response) = ws_connect(proxy.addr(), ECHO_HOST, "/ws");
    let pid = ws_pid(&response);
    assert_eq!(
        ws_echo(&mut ws, Message::text("alive")),
        Message::text("alive")
    );
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    assert!(
        ws_ended_within(&mut ws, SETTLE),
        "the WebSocket outlived its backend"
    );
    drop(ws);
    wait_in_flight(&proxy, ECHO_HOST, 0);
    proxy.wait_for_state(ECHO_HOST, "stopped", SETTLE);
    // The next handshake starts a new backend.
    let (ws, response) = ws_connect(proxy.addr(), ECHO_HOST, "/ws");
    assert_ne!(ws_pid(&response), pid);
    ws_close_cleanly(ws);
}

#[test]
fn a_client_that_never_reads_does_not_grow_proxy_memory() {
    let proxy = proxy_with_echo("", &[]);
    assert_eq!(get(proxy.addr(), ECHO_HOST, "/").status, 200);
    let baseline = rss_kib(proxy.pid()).expect("proxy RSS");
    let flood_bytes: u64 = 256 * 1024 * 1024;
    let (mut ws, _) = ws_connect(
        proxy.addr(),
        ECHO_HOST,
        &format!("/ws-flood?bytes={flood_bytes}"),
    );
    // The backend writes as fast as it can while this client reads nothing.
    let mut peak = baseline;
    wait_until(Duration::from_secs(2), || {
        peak = peak.max(rss_kib(proxy.pid()).unwrap_or(0));
        false
    });
    let growth_kib = peak.saturating_sub(baseline);
    eprintln!("proxy RSS {baseline} KiB before the flood, peak {peak} KiB while not reading");
    assert!(
        growth_kib < 4 * 1024,
        "proxy RSS grew by {growth_kib} KiB while the client did not read"
    );

    // What was held back arrives intact once the client reads.
    let want = 8 * 1024 * 1024;
    let mut received = Vec::with_capacity(want);
    while received.len() < want {
        match ws.read().expect("flood data") {
            Message::Binary(data) => received.extend_from_slice(&data),
            other => panic!("unexpected {other:?} in the flood"),
        }
    }
    assert!(
        received[..] == pattern_bytes(received.len())[..],
        "the flood bytes changed"
    );
    assert_eq!(in_flight(&proxy, ECHO_HOST), 1);

    drop(ws);
    wait_in_flight(&proxy, ECHO_HOST, 0);
    assert_eq!(proxy.state_of(ECHO_HOST), "ready");
    let after = rss_kib(proxy.pid()).unwrap_or(0);
    assert!(
        after.saturating_sub(baseline) < 4 * 1024,
        "proxy RSS {after} KiB after the flood ended (was {baseline} KiB)"
    );
}

#[test]
fn a_backend_that_never_reads_does_not_grow_proxy_memory() {
    let proxy = proxy_with_echo("", &[]);
    assert_eq!(get(proxy.addr(), ECHO_HOST, "/").status, 200);
    let baseline = rss_kib(proxy.pid()).expect("proxy RSS");
    // The flood endpoint reads nothing until it has sent everything, and this client reads nothing at
    // all, so both directions stall and the proxy sits between two full pipes.
    let mut client = send(
        proxy.addr(),
        &raw_ws_handshake(ECHO_HOST, "/ws-flood?bytes=268435456"),
    );
    assert_eq!(client.read_head().0, 101);
    let mut writer = client.stream().try_clone().unwrap();
    writer
        .set_write_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let frame = masked_frame(true, 0x2, &pattern_bytes(64 * 1024));
    let sender = std::thread::spawn(move || {
        let mut sent = 0usize;
        while std::io::Write::write_all(&mut writer, &frame).is_ok() {
            sent += frame.len();
        }
        sent
    });
    let mut peak = baseline;
    wait_until(Duration::from_secs(2), || {
        peak = peak.max(rss_kib(proxy.pid()).unwrap_or(0));
        false
    });
    let sent = sender.join().unwrap();
    eprintln!("client pushed {sent} bytes before blocking; proxy RSS {baseline} -> {peak} KiB");
    assert!(sent > 0, "the client could not send at all");
    let growth_kib = peak.saturating_sub(baseline);
    assert!(
        growth_kib < 4 * 1024,
        "proxy RSS grew by {growth_kib} KiB while the backend did not read"
    );
    drop(client);
    wait_in_flight(&proxy, ECHO_HOST, 0);
}
