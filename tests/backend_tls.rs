//! Backends over TLS (feature `tls`: `cargo test --features tls --test backend_tls`): a pool instance at
//! `address = "https://..."` behind the real binary, with the real `nginx` as the TLS backend (in front
//! of the echo backend, so WebSocket works too) and certificates a test CA issues at test time; real
//! `curl` as the client, over HTTP/1.1 and h2c (the h2 worker has its own backend connections). Which
//! nginx connection served a request is its `$connection` serial, echoed in a header: the same serial
//! twice is a pooled TLS connection reused without a new handshake. Also: bodies larger than every
//! buffer both ways, certificates refused (by requests and by the health probe), a reload that re-reads
//! the CA file, and backends that answer a ClientHello with anything but TLS.
#![cfg(feature = "tls")]

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use support::https::Ca;
use support::tls_backend::{curl, curl_to_file, tls_pool, Got, Listener, Nginx};
use support::{free_port, wait_until, EchoServer, Proxy, TempDir};

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn http1_h2c_and_websocket_reach_a_backend_over_tls_on_pooled_connections() {
    let ca = Ca::new();
    ca.issue("backend", "backend.test", &["backend.test"]);
    let echo = EchoServer::start(&[]);
    let port = free_port();
    let listener = Listener {
        port,
        ca: &ca,
        cert: "backend",
    };
    let Some(nginx) = Nginx::start(&[listener], &echo) else {
        return;
    };
    let proxy = Proxy::start(&tls_pool(
        "secure",
        port,
        "backend.test",
        &ca.pem_path(),
        "",
    ));

    for h2 in [false, true] {
        let first = curl(&proxy, h2, "secure.test", "/first");
        assert_eq!(first.status, 200, "h2 {h2}: {}", first.body);
        let echoed: serde_json::Value = serde_json::from_str(&first.body).unwrap();
        assert_eq!(echoed["path"], "/first", "h2 {h2}");
        // It describes the client's side of the proxy, which is cleartext here.
        assert_eq!(
            support::echoed_header_values(&echoed, "x-forwarded-proto"),
            vec!["http".to_string()],
            "h2 {h2}"
        );
        let second = curl(&proxy, h2, "secure.test", "/second");
        assert_eq!(second.status, 200, "h2 {h2}: {}", second.body);
        let conn = |got: &Got| got.header("x-backend-connection").map(str::to_string);
        assert!(conn(&first).is_some(), "h2 {h2}: {:?}", first.headers);
        assert_eq!(
            conn(&first),
            conn(&second),
            "h2 {h2}: the second request reuses the pooled TLS connection\n{}",
            nginx.access_log()
        );
    }

    let (mut ws, _) = support::ws::ws_connect(proxy.addr(), "secure.test", "/ws");
    let text = "through a backend over TLS";
    assert_eq!(
        support::ws::ws_echo(&mut ws, tungstenite::Message::text(text)),
        tungstenite::Message::text(text)
    );
    support::ws::ws_close_cleanly(ws);

    // The instance became ready by its health probe, which can only have spoken TLS to this port.
    let log = nginx.access_log();
    assert!(
        log.lines()
            .any(|l| l.contains("\"spawngate-health\" GET /health")),
        "{log}"
    );
}

#[test]
fn bodies_larger_than_every_buffer_cross_a_tls_backend_both_ways() {
    let ca = Ca::new();
    ca.issue("backend", "backend.test", &["backend.test"]);
    let echo = EchoServer::start(&[]);
    let port = free_port();
    let listener = Listener {
        port,
        ca: &ca,
        cert: "backend",
    };
    let Some(_nginx) = Nginx::start(&[listener], &echo) else {
        return;
    };
    let proxy = Proxy::start(&tls_pool("big", port, "backend.test", &ca.pem_path(), ""));
    let dir = TempDir::new("backend-tls-bodies");
    // 3 MiB: many times rustls' buffers, the proxy's and the sockets'.
    const SIZE: u64 = 3 * 1024 * 1024;
    let pattern: Vec<u8> = (0..SIZE).map(support::pattern_byte).collect();
    let upload = dir.file("upload");
    std::fs::write(&upload, &pattern[..]).unwrap();
    for h2 in [false, true] {
        let path = format!("/stream?bytes={SIZE}");
        let (status, body) = curl_to_file(&proxy, h2, "big.test", &path, None, &dir);
        assert_eq!(status, 200, "h2 {h2}");
        assert!(
            body == pattern,
            "h2 {h2}: download of {} bytes differs",
            body.len()
        );

        let (status, body) = curl_to_file(&proxy, h2, "big.test", "/echo", Some(&upload), &dir);
        assert_eq!(status, 200, "h2 {h2}");
        assert!(
            body == pattern,
            "h2 {h2}: echo of {} bytes differs",
            body.len()
        );
    }
}

#[test]
fn a_certificate_for_another_name_or_from_another_ca_is_a_502_backend_tls() {
    let ca = Ca::new();
    let other_ca = Ca::new();
    ca.issue("elsewhere", "elsewhere.test", &["elsewhere.test"]);
    other_ca.issue("stranger", "backend.test", &["backend.test"]);
    let echo = EchoServer::start(&[]);
    let (wrong_name, unknown_ca) = (free_port(), free_port());
    let listeners = [
        Listener {
            port: wrong_name,
            ca: &ca,
            cert: "elsewhere",
        },
        Listener {
            port: unknown_ca,
            ca: &other_ca,
            cert: "stranger",
        },
    ];
    let Some(nginx) = Nginx::start(&listeners, &echo) else {
        return;
    };
    // `health = "tcp"`: the instances count as up once they accept, so the requests meet the
    // certificates (with the HTTP probe they would never become ready: see the next test).
    let tcp = "health = \"tcp\"";
    let config = [
        tls_pool("name", wrong_name, "backend.test", &ca.pem_path(), tcp),
        tls_pool("issuer", unknown_ca, "backend.test", &ca.pem_path(), tcp),
    ]
    .concat();
    let proxy = Proxy::start(&config);
    for h2 in [false, true] {
        for (host, reason) in [
            ("name.test", "not valid for name"),
            ("issuer.test", "invalid peer certificate"),
        ] {
            let started = Instant::now();
            let got = curl(&proxy, h2, host, "/");
            got.assert_error("BACKEND_TLS");
            assert!(got.body.contains(reason), "h2 {h2}: {}", got.body);
            assert!(started.elapsed() < Duration::from_secs(10), "h2 {h2}");
        }
    }
    assert!(proxy.logs("TLS with the backend failed"));
    assert!(
        !nginx.access_log().contains("GET /"),
        "no request reached the backend:\n{}",
        nginx.access_log()
    );
}

#[test]
fn an_instance_whose_certificate_fails_its_health_probe_never_becomes_ready() {
    let ca = Ca::new();
    let other_ca = Ca::new();
    other_ca.issue("stranger", "backend.test", &["backend.test"]);
    let echo = EchoServer::start(&[]);
    let port = free_port();
    let listener = Listener {
        port,
        ca: &other_ca,
        cert: "stranger",
    };
    let Some(nginx) = Nginx::start(&[listener], &echo) else {
        return;
    };
    let keys = "startup_timeout_secs = 2\nhealth_check_interval_ms = 100";
    let proxy = Proxy::start(&tls_pool("p", port, "backend.test", &ca.pem_path(), keys));
    for h2 in [false, true] {
        let got = curl(&proxy, h2, "p.test", "/");
        assert_eq!(got.status, 503, "h2 {h2}: {}", got.body);
        assert_eq!(
            got.header("x-proxy-error"),
            Some("BACKEND_START_FAILED"),
            "h2 {h2}: {}",
            got.body
        );
    }
    // Probed every 100 ms for 2 s, and the same reason logged once.
    let reason = "p: health probe: TLS with the backend failed: invalid peer certificate";
    proxy.log_barrier();
    assert_eq!(proxy.count_log(|line| line.contains(reason)), 1);
    assert!(!nginx.access_log().contains("GET /health"));
}

/// A listener on a port of its own that answers every connection with `answer` (then closes it).
fn hostile_backend(answer: Vec<u8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut hello = [0u8; 512];
            let _ = stream.read(&mut hello);
            let _ = stream.write_all(&answer);
        }
    });
    port
}

#[test]
fn garbage_or_nothing_instead_of_a_server_hello_is_a_prompt_502() {
    let ca = Ca::new();
    // Seeded bytes (xorshift), the same every run.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let answers = [
        // Cleartext HTTP, as a backend on the wrong port would answer.
        (
            "cleartext",
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".to_vec(),
        ),
        ("noise", noise),
        // A close right after the ClientHello.
        ("silent", Vec::new()),
        // A TLS record header announcing a handshake record larger than the protocol allows.
        ("oversized", vec![0x16, 0x03, 0x03, 0xff, 0xff, 0x02]),
    ];
    let config: String = answers
        .iter()
        .map(|(name, answer)| {
            let port = hostile_backend(answer.clone());
            tls_pool(
                name,
                port,
                "backend.test",
                &ca.pem_path(),
                "health = \"tcp\"",
            )
        })
        .collect();
    let proxy = Proxy::start(&config);
    for (name, _) in &answers {
        for h2 in [false, true] {
            let started = Instant::now();
            let got = curl(&proxy, h2, &format!("{name}.test"), "/");
            got.assert_error("BACKEND_TLS");
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{name} h2 {h2}: {:?}",
                started.elapsed()
            );
        }
    }
}

#[test]
fn a_missing_ca_file_is_refused_by_check_with_its_line() {
    let dir = TempDir::new("backend-tls-check");
    let config = dir.file("spawngate.toml");
    let text = format!(
        "[server]\nport = 0\n\n[pools.p]\naddress = \"https://127.0.0.1:9\"\nca_file = \"{}\"\n",
        dir.file("missing.pem").display()
    );
    std::fs::write(&config, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_spawngate"))
        .arg("check")
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains(":6:"), "{stderr}");
    assert!(stderr.contains("missing.pem"), "{stderr}");
}

#[test]
fn a_reload_re_reads_the_ca_file() {
    let ca = Ca::new();
    let other_ca = Ca::new();
    ca.issue("backend", "backend.test", &["backend.test"]);
    let echo = EchoServer::start(&[]);
    let port = free_port();
    let listener = Listener {
        port,
        ca: &ca,
        cert: "backend",
    };
    let Some(_nginx) = Nginx::start(&[listener], &echo) else {
        return;
    };
    // The pool trusts a copy of the wrong CA at first.
    let dir = TempDir::new("backend-tls-reload");
    let ca_file = dir.file("trusted.pem");
    std::fs::copy(other_ca.pem_path(), &ca_file).unwrap();
    let config = tls_pool(
        "r",
        port,
        "backend.test",
        &ca_file.display().to_string(),
        "health = \"tcp\"",
    );
    let proxy = Proxy::start(&config);
    curl(&proxy, false, "r.test", "/").assert_error("BACKEND_TLS");

    // Applied at once, without `reload = "rolling"`: nothing of ours runs at a fixed address.
    std::fs::copy(ca.pem_path(), &ca_file).unwrap();
    assert_eq!(proxy.post_reload().status, 200);
    assert!(proxy.wait_for_log("r: replacing instance 0 with its new settings", WAIT));
    // The request threads learn the new address from the instance's next ready report.
    assert!(wait_until(WAIT, || curl(&proxy, false, "r.test", "/")
        .status
        == 200));
    for h2 in [false, true] {
        let got = curl(&proxy, h2, "r.test", "/after");
        assert_eq!(got.status, 200, "h2 {h2}: {}", got.body);
    }
}
