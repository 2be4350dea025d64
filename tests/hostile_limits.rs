//! Resource limits against hostile clients, each with small values so the tests are quick: head sizes
//! (414/431), body size (413, chunked cut off), header and body timeouts, keep-alive idle timeout,
//! max_connections with accept pause and resume, held requests, and descriptor exhaustion. Slow senders
//! are in `hostile_trickle.rs`.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use support::recorder::{warm, Recorder};
use support::*;

const HOST: &str = "rec.test";

fn rejected(raw: &[u8], proxy: &Proxy, code: &str, status: u16) {
    let mut client = send(proxy.addr(), raw);
    let response = client.read_response();
    assert_proxy_error(&response, code, status);
    assert!(client.closed_by_peer_within(Duration::from_secs(5)));
}

#[test]
fn request_line_and_head_limits_at_their_edges() {
    let recorder = Recorder::ok();
    let proxy = recorder.proxy(HOST, "");
    warm(&proxy, HOST);
    // "GET " + target + " HTTP/1.1\r\n" is at most 8 KiB.
    let longest_target = 8 * 1024 - "GET ".len() - " HTTP/1.1\r\n".len();
    let line = |len: usize| {
        format!(
            "GET /{} HTTP/1.1\r\nHost: {HOST}\r\n\r\n",
            "a".repeat(len - 1)
        )
    };
    let mut client = send(proxy.addr(), line(longest_target).as_bytes());
    assert_eq!(client.read_response().status, 200);
    rejected(
        line(longest_target + 1).as_bytes(),
        &proxy,
        "URI_TOO_LONG",
        414,
    );

    // 100 fields (Host included) pass, 101 are 431.
    let fields = |n: usize| {
        let extra: String = (1..n).map(|i| format!("X-F{i}: v\r\n")).collect();
        format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n{extra}\r\n")
    };
    let mut client = send(proxy.addr(), fields(100).as_bytes());
    assert_eq!(client.read_response().status, 200);
    rejected(
        fields(101).as_bytes(),
        &proxy,
        "HEADER_FIELDS_TOO_LARGE",
        431,
    );

    // A head of just under 64 KiB passes; one byte more is 431.
    let head_of = |len: usize| {
        let prefix = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nX-Pad: ");
        let pad = len - prefix.len() - "\r\n\r\n".len();
        format!("{prefix}{}\r\n\r\n", "p".repeat(pad))
    };
    let mut client = send(proxy.addr(), head_of(64 * 1024).as_bytes());
    assert_eq!(client.read_response().status, 200);
    rejected(
        head_of(64 * 1024 + 1).as_bytes(),
        &proxy,
        "HEADER_FIELDS_TOO_LARGE",
        431,
    );
}

#[test]
fn bodies_over_the_limit_are_refused_or_cut_off() {
    let recorder = Recorder::ok();
    let proxy = recorder.proxy(HOST, "max_request_body_bytes = 100");
    warm(&proxy, HOST);
    let at_limit = build_request("POST", HOST, "/", &[], &[b'x'; 100]);
    let mut client = send(proxy.addr(), &at_limit);
    assert_eq!(client.read_response().status, 200);

    let before = recorder.requests().len();
    let over = build_request("POST", HOST, "/", &[], &[b'x'; 101]);
    rejected(&over, &proxy, "PAYLOAD_TOO_LARGE", 413);
    assert_eq!(
        recorder.requests().len(),
        before,
        "a 413 body reached the backend"
    );

    // A chunked body has no length up front: it is cut off once it passes the limit.
    let mut client = send(
        proxy.addr(),
        format!("POST /c HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\r\n")
            .as_bytes(),
    );
    let chunk = format!("40\r\n{}\r\n", "y".repeat(0x40));
    for _ in 0..4 {
        if client.try_send(chunk.as_bytes()).is_err() {
            break;
        }
    }
    if let Ok(response) = client.try_read_response() {
        assert_proxy_error(&response, "PAYLOAD_TOO_LARGE", 413);
    }
    assert!(client.closed_by_peer_within(Duration::from_secs(5)));
    let complete = recorder
        .requests()
        .iter()
        .filter(|r| r.request_line() == "POST /c HTTP/1.1" && !r.body.is_empty())
        .count();
    assert_eq!(
        complete, 0,
        "an oversized chunked body reached the backend whole"
    );
}

#[test]
fn slow_heads_stalled_bodies_and_idle_keep_alive_are_cut_off() {
    let recorder = Recorder::ok();
    let proxy = recorder.proxy(
        HOST,
        "header_read_timeout_secs = 1\nkeepalive_timeout_secs = 1",
    );
    warm(&proxy, HOST);

    let started = Instant::now();
    let mut slow_head = send(
        proxy.addr(),
        format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n").as_bytes(),
    );
    assert_proxy_error(&slow_head.read_response(), "CLIENT_TIMEOUT", 408);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(slow_head.closed_by_peer_within(Duration::from_secs(5)));

    // A body that stops half-way: the backend has the head, the client is cut off.
    let started = Instant::now();
    let mut stalled = send(
        proxy.addr(),
        format!("POST /stall HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 100\r\n\r\n0123456789")
            .as_bytes(),
    );
    if let Ok(response) = stalled.try_read_response() {
        assert_proxy_error(&response, "CLIENT_TIMEOUT", 408);
    }
    assert!(stalled.closed_by_peer_within(Duration::from_secs(5)));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(6),
        "stalled body cut off after {took:?}"
    );

    // An idle keep-alive connection is closed after keepalive_timeout_secs.
    let mut idle = Client::connect(proxy.addr());
    assert_eq!(idle.get(HOST, "/once").status, 200);
    let started = Instant::now();
    assert!(idle.closed_by_peer_within(Duration::from_secs(5)));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "closed after only {took:?}"
    );
}

/// Reads a response with a deadline; `None` if nothing complete arrived in time.
fn response_within(stream: &TcpStream, wait: Duration) -> Option<Vec<u8>> {
    stream.set_read_timeout(Some(wait)).ok()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        match (&*stream).read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if got.windows(4).any(|w| w == b"\r\n\r\n") && got.ends_with(b"ok") {
                    return Some(got);
                }
            }
            Err(_) => break,
        }
    }
    None
}

#[test]
fn accepting_pauses_at_max_connections_and_resumes_below_ninety_percent() {
    let recorder = Recorder::ok();
    let proxy = recorder.proxy(HOST, "max_connections = 10");
    warm(&proxy, HOST);
    let request = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
    // Ten served, kept open: the proxy is at its limit.
    let mut held: Vec<Client> = (0..10).map(|_| Client::connect(proxy.addr())).collect();
    for client in &mut held {
        assert_eq!(client.get(HOST, "/held").status, 200);
    }
    // Three more connect (the kernel queues them) but are not served while the proxy is full.
    let waiting: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut stream = TcpStream::connect(proxy.addr()).unwrap();
            stream.write_all(request.as_bytes()).unwrap();
            stream
        })
        .collect();
    for stream in &waiting {
        assert!(
            response_within(stream, Duration::from_millis(300)).is_none(),
            "served past max_connections"
        );
    }
    // Closing four leaves 6 open, under 90 % of the limit: accepting resumes and all three fit.
    held.truncate(6);
    for stream in &waiting {
        let answer = response_within(stream, Duration::from_secs(10))
            .expect("a waiting connection was not served once others closed");
        assert!(answer.starts_with(b"HTTP/1.1 200"));
    }
}

#[test]
fn requests_beyond_max_held_are_refused_while_the_backend_starts() {
    let recorder = Recorder::ok();
    let proxy = Proxy::start(&format!(
        "[server]\nport = 0\nadmin_port = 0\nbind = \"127.0.0.1\"\nmax_held_requests = 2\n\n{}",
        recorder.backend_table_starting_after(HOST, "", Duration::from_secs(2))
    ));
    let addr = proxy.addr();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
    let requests: Vec<_> = (0..6)
        .map(|i| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                get(addr, HOST, &format!("/held/{i}"))
            })
        })
        .collect();
    let responses: Vec<Response> = requests.into_iter().map(|r| r.join().unwrap()).collect();
    assert_eq!(responses.iter().filter(|r| r.status == 200).count(), 2);
    for refused in responses.iter().filter(|r| r.status != 200) {
        assert_proxy_error(refused, "TOO_MANY_WAITING_REQUESTS", 503);
    }
}

/// User plus system CPU time of a process, in clock ticks (`/proc/PID/stat` fields 14 and 15).
fn cpu_ticks(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &text[text.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn descriptor_exhaustion_neither_spins_nor_stops_the_proxy() {
    let recorder = Recorder::ok();
    // Probes need descriptors too; keep them out of the measured span (they would fail with EMFILE).
    let proxy = Proxy::start(&format!(
        "[server]\nport = 0\nadmin_port = 0\nbind = \"127.0.0.1\"\n\n{}",
        recorder.backend_table(HOST, "ready_health_check_interval_ms = 600000")
    ));
    warm(&proxy, HOST);
    let status = Command::new("prlimit")
        .args(["--pid", &proxy.pid().to_string(), "--nofile=64:64"])
        .status()
        .expect("run prlimit");
    assert!(status.success());
    // Far more connections than descriptors: about 40 are accepted, the rest wait in the kernel's
    // accept queue (128 deep); a connect that finds the queue full is given up quickly.
    let flood: Vec<TcpStream> = (0..170)
        .filter_map(|_| TcpStream::connect_timeout(&proxy.addr(), Duration::from_millis(300)).ok())
        .collect();
    assert!(flood.len() > 100, "only {} connections", flood.len());
    let ticks_before = cpu_ticks(proxy.pid());
    let measured = Instant::now();
    std::thread::sleep(Duration::from_secs(2)); // measuring CPU use over a span, not waiting for an event
    let ticks = cpu_ticks(proxy.pid()) - ticks_before;
    // 100 ticks per second is the usual clock: 2 s of spinning would be about 200.
    assert!(
        ticks < 40,
        "the proxy used {ticks} ticks in {:?} while out of descriptors",
        measured.elapsed()
    );
    assert!(
        proxy.logs("Too many open files"),
        "the flood never exhausted the proxy's descriptors"
    );
    drop(flood);
    let served = wait_until(Duration::from_secs(10), || {
        let mut stream = match TcpStream::connect(proxy.addr()) {
            Ok(s) => s,
            Err(_) => return false,
        };
        let request = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).is_ok()
            && response_within(&stream, Duration::from_secs(2)).is_some()
    });
    assert!(
        served,
        "the proxy did not serve again once descriptors were free"
    );
}
