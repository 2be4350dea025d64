//! HTTPS end to end (feature `tls`: `cargo test --features tls --test https`): the real binary with
//! certificates a test CA issues at test time, real `curl` (and a rustls client where curl cannot show
//! the step): the echo backend behind TLS, SNI between two certificates and a wildcard, the default for
//! a client without SNI, HSTS, the cleartext redirect, a WebSocket, a reload that swaps a certificate
//! under a running download, and the clients that never make it through a handshake.
#![cfg(feature = "tls")]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};
use support::https::*;
use support::{echo_backend, echoed_header_values, free_port, pattern_byte, Proxy};

#[test]
fn curl_reaches_the_backend_over_https_with_sni_the_default_hsts_and_the_redirect() {
    let ca = Ca::new();
    ca.issue("a", "a.test", &["a.test"]);
    ca.issue("b", "b.test", &["b.test"]);
    ca.issue("w", "wildcard", &["*.w.test"]);
    ca.issue("d", "fallback", &["default.test"]);
    let certs = [
        ca.entry("a", false),
        ca.entry("b", false),
        ca.entry("w", false),
        ca.entry("d", true),
    ]
    .concat();
    let tls_keys = format!("redirect_http = true\nhsts_max_age_secs = 600\n{certs}");
    let proxy = Proxy::start(&config(
        &tls_keys,
        &echo_backend("a.test", free_port(), "", &[]),
    ));

    let (ok, body, log) = curl_https(&ca, &proxy, "a.test", "/hello?x=1");
    assert!(ok, "{log}");
    assert!(log.contains("< HTTP/1.1 200"), "{log}");
    assert!(
        log.contains("< Strict-Transport-Security: max-age=600"),
        "{log}"
    );
    assert_eq!(subject(&log), "CN=a.test");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["path"], "/hello?x=1");
    assert_eq!(
        echoed_header_values(&json, "X-Forwarded-Proto"),
        ["https"],
        "the backend learns the client came over TLS"
    );

    // The proxy's own answer over TLS (no backend for the host) carries HSTS too.
    let (_, _, log) = curl_https(&ca, &proxy, "default.test", "/");
    assert!(log.contains("< HTTP/1.1 4"), "{log}");
    assert!(
        log.contains("< Strict-Transport-Security: max-age=600"),
        "{log}"
    );

    // SNI picks the certificate: exact names, then a wildcard one label deep.
    let (_, _, log) = curl_https(&ca, &proxy, "b.test", "/");
    assert_eq!(subject(&log), "CN=b.test");
    let (_, _, log) = curl_https(&ca, &proxy, "x.w.test", "/");
    assert_eq!(subject(&log), "CN=wildcard");
    // No SNI (an IP literal): the default certificate.
    let url = format!("https://{}/", proxy.https_addr());
    let (ok, _, log) = curl(&["-k", &url]);
    assert!(ok, "{log}");
    assert_eq!(subject(&log), "CN=fallback");

    // The cleartext listener redirects, keeping the target; ACME challenges stay on HTTP.
    let url = format!("http://a.test:{}/p/q?r=1", proxy.addr().port());
    let resolve = format!("a.test:{}:127.0.0.1", proxy.addr().port());
    let (_, _, log) = curl(&["--resolve", &resolve, &url]);
    assert!(log.contains("< HTTP/1.1 308"), "{log}");
    let location = format!(
        "< Location: https://a.test:{}/p/q?r=1",
        proxy.https_addr().port()
    );
    assert!(log.contains(&location), "{log}");
    let url = format!(
        "http://a.test:{}/.well-known/acme-challenge/t",
        proxy.addr().port()
    );
    let (_, _, log) = curl(&["--resolve", &resolve, &url]);
    assert!(log.contains("< HTTP/1.1 200"), "{log}");
}

/// A request body larger than every buffer on the way (rustls', the session's, the backend's, h2's
/// windows) streams through TLS both ways, over HTTP/1.1 and over h2: the echo backend sends it back.
#[test]
fn a_large_upload_comes_back_whole_over_tls_in_both_protocols() {
    let ca = Ca::new();
    ca.issue("a", "a.test", &["a.test"]);
    let proxy = Proxy::start(&config(
        &ca.entry("a", false),
        &echo_backend("a.test", free_port(), "", &[]),
    ));
    let body: Vec<u8> = (0..6u32 << 20).map(|i| (i * 7 % 253) as u8).collect();
    let file = ca.dir.file("upload.bin");
    std::fs::write(&file, &body).unwrap();
    let data = format!("@{}", file.display());
    let port = proxy.https_addr().port();
    for version in ["--http1.1", "--http2"] {
        let out = Command::new("curl")
            .args(["-sS", "--fail", "--max-time", "60", version])
            .args(["--cacert", &ca.pem_path()])
            .args(["--resolve", &format!("a.test:{port}:127.0.0.1")])
            .args(["--data-binary", &data])
            .args(["-w", "%{http_version}", "-o", "-"])
            .arg(format!("https://a.test:{port}/echo"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{version}: {stderr}");
        let (echoed, http_version) = out.stdout.split_at(body.len().min(out.stdout.len()));
        assert!(echoed == body, "{version}: the echoed body differs");
        let expected = if version == "--http2" { "2" } else { "1.1" };
        assert_eq!(String::from_utf8_lossy(http_version), expected);
    }
}

#[test]
fn a_websocket_works_over_tls() {
    let ca = Ca::new();
    ca.issue("a", "a.test", &["a.test"]);
    let proxy = Proxy::start(&config(
        &ca.entry("a", false),
        &echo_backend("a.test", free_port(), "", &[]),
    ));
    let stream = tls_connect(&ca, proxy.https_addr(), "a.test");
    let (mut ws, response) = tungstenite::client::client("wss://a.test/ws", stream)
        .unwrap_or_else(|e| panic!("WebSocket handshake over TLS failed: {e:?}"));
    assert_eq!(response.status(), 101);
    for text in ["one", "two"] {
        ws.send(tungstenite::Message::text(text)).unwrap();
        assert_eq!(ws.read().unwrap(), tungstenite::Message::text(text));
    }
    ws.close(None).unwrap();
}

#[test]
fn a_reload_swaps_the_certificate_while_a_download_over_tls_continues() {
    const TOTAL: u64 = 32 << 20;
    let ca = Ca::new();
    let old = ca.issue("a", "a.test", &["a.test"]);
    let proxy = Proxy::start(&config(
        &ca.entry("a", false),
        &echo_backend("a.test", free_port(), "", &[]),
    ));

    // The download reads its first MiB, then waits for the reload before reading the rest.
    let (started_tx, started) = mpsc::channel();
    let (go_on, go_on_rx) = mpsc::channel::<()>();
    let (client, addr) = (ca.client(), proxy.https_addr());
    let download = std::thread::spawn(move || {
        let socket = TcpStream::connect_timeout(&addr, IO_TIMEOUT).unwrap();
        socket.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let conn = ClientConnection::new(client, "a.test".try_into().unwrap()).unwrap();
        let mut tls = StreamOwned::new(conn, socket);
        let request = format!(
            "GET /stream?bytes={TOTAL} HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"
        );
        tls.write_all(request.as_bytes()).unwrap();
        let served = tls.conn.peer_certificates().unwrap()[0].clone();
        let mut received = Vec::new();
        let mut buf = vec![0; 64 * 1024];
        while received.len() < 1 << 20 {
            let n = tls.read(&mut buf).unwrap();
            assert!(n > 0, "the download ended early");
            received.extend_from_slice(&buf[..n]);
        }
        started_tx.send(served).unwrap();
        go_on_rx.recv().unwrap();
        // TLS truncation without close_notify would be an error here: the proxy ends cleanly.
        tls.read_to_end(&mut received).unwrap();
        received
    });
    let served = started
        .recv_timeout(IO_TIMEOUT)
        .expect("the download began");
    assert_eq!(served, old);

    let new = ca.issue("a", "a.test renewed", &["a.test"]);
    let reloaded = proxy.post_reload();
    assert_eq!(reloaded.status, 200, "{}", reloaded.text());
    let mut fresh = tls_connect(&ca, proxy.https_addr(), "a.test");
    fresh
        .write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(fresh.conn.peer_certificates().unwrap()[0], new);
    let (_, _, log) = curl_https(&ca, &proxy, "a.test", "/");
    assert_eq!(subject(&log), "CN=a.test renewed");

    go_on.send(()).unwrap();
    let received = download.join().unwrap();
    let body_at = received.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let body = &received[body_at..];
    assert_eq!(body.len() as u64, TOTAL, "the whole download arrived");
    assert!((body.iter().enumerate()).all(|(i, &b)| b == pattern_byte(i as u64)));
}

#[test]
fn a_reload_with_a_foreign_key_keeps_the_running_certificate() {
    let ca = Ca::new();
    let old = ca.issue("a", "a.test", &["a.test"]);
    let proxy = Proxy::start(&config(
        &ca.entry("a", false),
        &echo_backend("a.test", free_port(), "", &[]),
    ));
    // A new certificate with the key of another one.
    ca.issue("a", "a.test new", &["a.test"]);
    ca.issue("other", "other", &["other.test"]);
    std::fs::copy(ca.dir.file("other.key"), ca.dir.file("a.key")).unwrap();
    let reloaded = proxy.post_reload();
    assert_eq!(reloaded.status, 400, "{}", reloaded.text());
    let mut tls = tls_connect(&ca, proxy.https_addr(), "a.test");
    tls.write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(tls.conn.peer_certificates().unwrap()[0], old);
}

/// Reads until the peer closes; returns what came and how long the close took.
fn read_until_closed(mut socket: TcpStream) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    socket.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut got = Vec::new();
    match socket.read_to_end(&mut got) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the proxy did not close the connection: {e}"),
    }
    (got, start.elapsed())
}

#[test]
fn garbage_instead_of_a_client_hello_gets_an_alert_and_a_close() {
    let ca = Ca::new();
    ca.issue("a", "a.test", &["a.test"]);
    let proxy = Proxy::start(&config(&ca.entry("a", false), ""));
    let mut socket = TcpStream::connect(proxy.https_addr()).unwrap();
    socket
        .write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .unwrap();
    let (got, _) = read_until_closed(socket);
    assert_eq!(got.first(), Some(&0x15), "a TLS alert record: {got:?}");
    assert!(
        !got.windows(4).any(|w| w == b"HTTP"),
        "no HTTP answer in clear"
    );
}

#[test]
fn a_client_that_never_finishes_the_handshake_is_closed_after_the_timeout() {
    let ca = Ca::new();
    ca.issue("a", "a.test", &["a.test"]);
    let keys = format!("handshake_timeout_ms = 400\n{}", ca.entry("a", false));
    let proxy = Proxy::start(&config(&keys, ""));

    // Silent from the start.
    let socket = TcpStream::connect(proxy.https_addr()).unwrap();
    let (got, took) = read_until_closed(socket);
    assert!(got.is_empty(), "{got:?}");
    assert!(took >= Duration::from_millis(300), "closed after {took:?}");
    assert!(took < Duration::from_secs(5), "closed after {took:?}");

    // Half a ClientHello.
    let mut hello = Vec::new();
    let mut conn = ClientConnection::new(ca.client(), "a.test".try_into().unwrap()).unwrap();
    conn.write_tls(&mut hello).unwrap();
    let mut socket = TcpStream::connect(proxy.https_addr()).unwrap();
    socket.write_all(&hello[..hello.len() / 2]).unwrap();
    let (_, took) = read_until_closed(socket);
    assert!(took < Duration::from_secs(5), "closed after {took:?}");
}

/// h2 over TLS: curl offering `h2` gets it (ALPN), the reactor hands the established session to the h2
/// worker, and the backend hears `X-Forwarded-Proto: https`; responses carry HSTS, the proxy's own
/// error answers too.
#[test]
fn curl_gets_http2_over_tls_with_forwarded_proto_and_hsts() {
    let ca = Ca::new();
    ca.issue("a", "a.test", &["a.test", "unknown.test"]);
    let tls_keys = format!("hsts_max_age_secs = 600\n{}", ca.entry("a", true));
    let proxy = Proxy::start(&config(
        &tls_keys,
        &echo_backend("a.test", free_port(), "", &[]),
    ));
    let (ok, body, log) = curl_https_as("--http2", &ca, &proxy, "a.test", "/h2?x=1");
    assert!(ok, "{log}");
    assert!(log.contains("ALPN: server accepted h2"), "{log}");
    assert!(log.contains("< HTTP/2 200"), "{log}");
    assert!(
        log.contains("< strict-transport-security: max-age=600"),
        "{log}"
    );
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["path"], "/h2?x=1");
    assert_eq!(echoed_header_values(&json, "X-Forwarded-Proto"), ["https"]);

    // A download larger than rustls' buffer and the stream's window: backpressure through the adapter.
    let port = proxy.https_addr().port();
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--http2", "--max-time", "60"])
        .args(["--cacert", &ca.pem_path()])
        .args(["--resolve", &format!("a.test:{port}:127.0.0.1")])
        .args(["-o", "/dev/null", "-w", "%{http_version} %{size_download}"])
        .arg(format!("https://a.test:{port}/stream?bytes={}", 16 << 20))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("2 {}", 16 << 20)
    );

    // The proxy's own answer (no backend for this host) over h2 and TLS: HSTS as well.
    let (_, _, log) = curl_https_as("--http2", &ca, &proxy, "unknown.test", "/");
    assert!(log.contains("< HTTP/2 4"), "{log}");
    assert!(
        log.contains("< strict-transport-security: max-age=600"),
        "{log}"
    );
}

/// A client that offers only `h2` (it used to get a `no_application_protocol` alert) completes the
/// handshake and gets the server's SETTINGS after its preface.
#[test]
fn a_client_offering_only_h2_gets_h2() {
    let ca = Ca::new();
    ca.issue("a", "a.test", &["a.test"]);
    let proxy = Proxy::start(&config(
        &ca.entry("a", false),
        &echo_backend("a.test", free_port(), "", &[]),
    ));
    let socket = TcpStream::connect_timeout(&proxy.https_addr(), IO_TIMEOUT).unwrap();
    socket.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let name = ServerName::try_from("a.test").unwrap();
    let conn = ClientConnection::new(ca.client_offering(&[b"h2"]), name).unwrap();
    let mut tls = StreamOwned::new(conn, socket);
    // The preface and an empty SETTINGS frame.
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .unwrap();
    let mut frame_head = [0u8; 9];
    tls.read_exact(&mut frame_head).unwrap();
    assert_eq!(tls.conn.alpn_protocol(), Some(&b"h2"[..]));
    assert_eq!(frame_head[3], 4, "the server's first frame is SETTINGS");
}

/// `h2load` (nghttp2) over TLS with ALPN: a bounded run of multiplexed requests, none failing.
#[test]
fn h2load_over_tls_completes_every_request() {
    let Some(h2load) = support::debian_tool("/usr/bin/h2load", "nghttp2-client") else {
        return;
    };
    let ca = Ca::new();
    ca.issue("a", "a.test", &["a.test"]);
    let proxy = Proxy::start(&config(
        &ca.entry("a", true),
        &echo_backend("a.test", free_port(), "", &[]),
    ));
    let url = format!("https://127.0.0.1:{}/", proxy.https_addr().port());
    let out = Command::new(h2load)
        .args(["-n", "2000", "-c", "4", "-m", "10", "-T", "30"])
        .args(["-H", ":authority: a.test", &url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Application protocol: h2"), "{text}");
    assert!(
        text.contains("2000 succeeded, 0 failed, 0 errored, 0 timeout"),
        "{text}"
    );
    assert!(text.contains("status codes: 2000 2xx"), "{text}");
}
