//! The ACME thread against Debian's real Pebble, offline (shared/design/tls.md, 2.5): Pebble with a
//! listener certificate made here, `pebble-challtestsrv` as its DNS only (every name is 127.0.0.1), and
//! the challenge answered by this test where the reactor will answer it later: a tiny HTTP server on
//! Pebble's `httpPort` serving the tokens the thread publishes, confirming each as the reactor will.
//! Checks: a certificate obtained, stored 0600, verified by `openssl verify` against Pebble's root and
//! covering the name; a second start on the same storage reuses it without an order; with 60-second
//! certificates the thread renews by itself. TLS-ALPN-01 the same way through a rustls responder on
//! Pebble's `tlsPort` that presents the `acme-tls/1` certificate from the event.
//!
//! Then the whole proxy: the real binary with `[tls.acme]` listening on Pebble's `httpPort` and
//! `tlsPort`, answering the challenges itself, serving what it obtained to curl (which checks the chain
//! against Pebble's root), renewing it, and reusing it from storage after a restart.
#![cfg(feature = "acme")]

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::sign::CertifiedKey;
use spawngate::acme::{self, AcmeCmd, AcmeEvent, AcmeHandle, Served};
use spawngate::config::{AcmeChallenge, AcmeConfig};
use support::{debian_tool, echo_backend, free_port, wait_until, Proxy as Spawngate, TempDir};

const NAME: &str = "demo.spawngate.test";
/// Pebble's certificate lifetime here: renewal comes a third before the end, 40 s after issue.
const VALIDITY_SECS: u64 = 60;

/// Pebble and its DNS, stopped on drop.
struct Pebble {
    children: Vec<Child>,
    dir: TempDir,
    directory: String,
    ca_file: PathBuf,
    management: u16,
    http_port: u16,
    tls_port: u16,
}

impl Pebble {
    fn start(label: &str) -> Option<Pebble> {
        let pebble = debian_tool("/usr/bin/pebble", "pebble")?;
        let challtestsrv = debian_tool("/usr/bin/pebble-challtestsrv", "pebble")?;
        let dir = TempDir::new(label);
        // The listener certificate of Pebble's API, from a CA made here (Debian ships none).
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "acme test listener CA");
        let ca = ca_params.self_signed(&ca_key).expect("CA cert");
        let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
        let leaf_params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .expect("leaf");
        let leaf = leaf_params
            .signed_by(&leaf_key, &ca, &ca_key)
            .expect("leaf cert");
        let ca_file = dir.file("ca.pem");
        std::fs::write(&ca_file, ca.pem()).expect("write ca.pem");
        std::fs::write(dir.file("cert.pem"), leaf.pem()).expect("write cert.pem");
        std::fs::write(dir.file("key.pem"), leaf_key.serialize_pem()).expect("write key.pem");

        let [listen, management, http_port, tls_port, dns, dns_management] =
            [(); 6].map(|_| free_port());
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{listen}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": dir.file("cert.pem"),
            "privateKey": dir.file("key.pem"),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
            "certificateValidityPeriod": VALIDITY_SECS,
        }});
        std::fs::write(dir.file("pebble.json"), config.to_string()).expect("write pebble.json");

        let log = |name: &str| {
            let file = std::fs::File::create(dir.file(name)).expect("log file");
            let err = file.try_clone().expect("log file");
            (Stdio::from(file), Stdio::from(err))
        };
        let mut children = Vec::new();
        let (out, err) = log("challtestsrv.log");
        let dns_addr = format!("127.0.0.1:{dns}");
        children.push(
            Command::new(challtestsrv)
                .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
                .args([
                    "-dns01",
                    &dns_addr,
                    "-http01",
                    "",
                    "-https01",
                    "",
                    "-tlsalpn01",
                    "",
                ])
                .args(["-management", &format!("127.0.0.1:{dns_management}")])
                .stdout(out)
                .stderr(err)
                .spawn()
                .expect("start pebble-challtestsrv"),
        );
        let (out, err) = log("pebble.log");
        children.push(
            Command::new(pebble)
                .arg("-config")
                .arg(dir.file("pebble.json"))
                .args(["-dnsserver", &dns_addr, "-strict=false"])
                // No random 0-15 s sleep before each validation; Pebble's 5% bad-nonce rejections
                // and 50% authorization reuse stay on, so the client's retries and skips are exercised.
                .env("PEBBLE_VA_NOSLEEP", "1")
                .stdout(out)
                .stderr(err)
                .spawn()
                .expect("start pebble"),
        );
        let pebble = Pebble {
            children,
            directory: format!("https://127.0.0.1:{listen}/dir"),
            ca_file,
            management,
            http_port,
            tls_port,
            dir,
        };
        let up = wait_until(Duration::from_secs(20), || {
            TcpStream::connect(("127.0.0.1", listen)).is_ok()
                && TcpStream::connect(("127.0.0.1", management)).is_ok()
                && TcpStream::connect(("127.0.0.1", dns)).is_ok()
        });
        assert!(up, "pebble did not start:\n{}", pebble.log());
        Some(pebble)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.file("pebble.log")).unwrap_or_default()
    }

    /// Pebble's root, which issued chains verify against (`/roots/0` on the management port).
    fn root_pem(&self) -> String {
        let output = Command::new("openssl")
            .args(["s_client", "-quiet", "-verify_return_error", "-CAfile"])
            .arg(&self.ca_file)
            .args(["-connect", &format!("127.0.0.1:{}", self.management)])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .and_then(|mut child| {
                let request =
                    "GET /roots/0 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
                child
                    .stdin
                    .take()
                    .expect("stdin")
                    .write_all(request.as_bytes())?;
                child.wait_with_output()
            })
            .expect("openssl s_client");
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        let start = text.find("-----BEGIN CERTIFICATE-----").expect("a root");
        let end = text.find("-----END CERTIFICATE-----").expect("a root") + 25;
        format!("{}\n", &text[start..end])
    }

    fn acme_config(&self, storage: &Path, challenge: AcmeChallenge) -> AcmeConfig {
        AcmeConfig {
            email: Some("ops@spawngate.test".to_string()),
            directory: self.directory.clone(),
            ca_file: Some(self.ca_file.clone()),
            challenge,
            storage: storage.to_path_buf(),
        }
    }

    /// How many orders Pebble has created: its log has a line per order added (not the requests,
    /// which a rejected nonce repeats).
    fn orders(&self) -> usize {
        self.log().matches("Added order").count()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What the reactor will do with the thread's events: challenge answers go into a map the responder
/// serves, confirmed with `AcmeCmd::Serving`; the rest is kept for the test to look at.
struct Proxy {
    handle: AcmeHandle,
    events: Receiver<AcmeEvent>,
    tokens: Arc<Mutex<HashMap<String, String>>>,
    alpn: Arc<Mutex<HashMap<String, Arc<CertifiedKey>>>>,
    seen: Vec<AcmeEvent>,
}

impl Proxy {
    fn start(
        config: AcmeConfig,
        tokens: &Arc<Mutex<HashMap<String, String>>>,
        alpn: &Arc<Mutex<HashMap<String, Arc<CertifiedKey>>>>,
    ) -> Proxy {
        let (sender, events) = mpsc::channel();
        let handle = acme::spawn(config, move |event| {
            let _ = sender.send(event);
        })
        .expect("start the ACME thread");
        Proxy {
            handle,
            events,
            tokens: tokens.clone(),
            alpn: alpn.clone(),
            seen: Vec::new(),
        }
    }

    /// Applies challenge events until a certificate event arrives, and returns it.
    fn next_cert_event(&mut self, timeout: Duration, pebble: &Pebble) -> AcmeEvent {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = self.events.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "no certificate event in {timeout:?}; events {:?}\npebble:\n{}",
                    self.seen,
                    pebble.log()
                )
            });
            self.seen.push(event.clone());
            match event {
                AcmeEvent::Http01 {
                    token,
                    key_authorization,
                } => {
                    self.tokens
                        .lock()
                        .expect("tokens")
                        .insert(token.clone(), key_authorization);
                    self.handle.send(AcmeCmd::Serving(Served::Http01 { token }));
                }
                AcmeEvent::Http01Done { token } => {
                    self.tokens.lock().expect("tokens").remove(&token);
                }
                AcmeEvent::TlsAlpn01 { name, key } => {
                    self.alpn.lock().expect("alpn").insert(name.clone(), key);
                    self.handle
                        .send(AcmeCmd::Serving(Served::TlsAlpn01 { name }));
                }
                AcmeEvent::TlsAlpn01Done { name } => {
                    self.alpn.lock().expect("alpn").remove(&name);
                }
                other => return other,
            }
        }
    }

    fn count(&self, what: fn(&AcmeEvent) -> bool) -> usize {
        self.seen.iter().filter(|e| what(e)).count()
    }
}

/// A one-request-per-connection HTTP server answering `/.well-known/acme-challenge/{token}` from
/// `tokens`, as the reactor's cleartext listener will; stops on drop.
fn http01_responder(port: u16, tokens: Arc<Mutex<HashMap<String, String>>>) -> Responder {
    Responder::start(port, move |mut stream| {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let head = String::from_utf8_lossy(&head);
        let path = head.split_whitespace().nth(1).unwrap_or("");
        let answer = path
            .strip_prefix("/.well-known/acme-challenge/")
            .and_then(|token| tokens.lock().ok()?.get(token).cloned());
        let response = match answer {
            Some(body) => format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
            None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_string(),
        };
        let _ = stream.write_all(response.as_bytes());
    })
}

/// A server on `port` whose thread hands each connection in turn to `serve`, until dropped.
struct Responder {
    stop: Arc<AtomicBool>,
    port: u16,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Responder {
    fn start(port: u16, mut serve: impl FnMut(TcpStream) + Send + 'static) -> Responder {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind a Pebble port");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                serve(stream);
            }
        });
        Responder {
            stop,
            port,
            thread: Some(thread),
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept so the thread sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// `openssl verify` of the chain in `cert_pem` against `root_pem`, for `name`.
fn openssl_verify(dir: &Path, root_pem: &str, cert_pem: &str, name: &str) {
    let certs: Vec<&str> = cert_pem
        .split_inclusive("-----END CERTIFICATE-----")
        .filter(|c| c.contains("BEGIN CERTIFICATE"))
        .collect();
    assert!(certs.len() >= 2, "a leaf and its intermediate: {cert_pem}");
    std::fs::write(dir.join("root.pem"), root_pem).expect("write");
    std::fs::write(dir.join("leaf.pem"), format!("{}\n", certs[0].trim())).expect("write");
    std::fs::write(dir.join("chain.pem"), certs[1..].join("\n")).expect("write");
    let output = Command::new("openssl")
        .arg("verify")
        .args(["-verify_hostname", name, "-CAfile"])
        .arg(dir.join("root.pem"))
        .arg("-untrusted")
        .arg(dir.join("chain.pem"))
        .arg(dir.join("leaf.pem"))
        .output()
        .expect("run openssl");
    assert!(
        output.status.success(),
        "openssl verify: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The certificate of a `CertReady`, checked to agree with the pair that was loaded for the store.
fn expect_ready(event: AcmeEvent) -> (Vec<String>, String, i64, bool) {
    match event {
        AcmeEvent::CertReady {
            names,
            cert_pem,
            not_after,
            issued,
            certificate,
            ..
        } => {
            assert_eq!(
                certificate.names, names,
                "the checked pair covers the names"
            );
            assert_eq!(certificate.not_after, not_after);
            (names, cert_pem, not_after, issued)
        }
        other => panic!("expected CertReady, got {other:?}"),
    }
}

#[test]
fn http01_obtains_stores_reuses_and_renews() {
    let Some(pebble) = Pebble::start("acme-http01") else {
        return;
    };
    let tokens = Arc::new(Mutex::new(HashMap::new()));
    let alpn = Arc::new(Mutex::new(HashMap::new()));
    let _responder = http01_responder(pebble.http_port, tokens.clone());
    let work = TempDir::new("acme-http01-work");
    let storage = work.file("storage");
    let config = pebble.acme_config(&storage, AcmeChallenge::Http01);
    let names = vec![NAME.to_string()];

    // First start: nothing stored, so an order, validated through the responder.
    let started = Instant::now();
    let mut proxy = Proxy::start(config.clone(), &tokens, &alpn);
    proxy.handle.send(AcmeCmd::Obtain {
        names: names.clone(),
    });
    let (got, cert_pem, not_after, issued) =
        expect_ready(proxy.next_cert_event(Duration::from_secs(60), &pebble));
    let issued_at = Instant::now();
    eprintln!("issued in {:?}", issued_at - started);
    assert_eq!(got, names);
    assert!(issued, "a new certificate, not one from storage");
    assert_eq!(proxy.count(|e| matches!(e, AcmeEvent::Http01 { .. })), 1);
    assert_eq!(pebble.orders(), 1, "{}", pebble.log());
    // The challenge is retracted when the order ends, before the certificate is announced.
    assert_eq!(
        proxy.count(|e| matches!(e, AcmeEvent::Http01Done { .. })),
        1
    );
    assert!(tokens.lock().expect("tokens").is_empty());

    // Stored privately, and what was stored is what was announced.
    let cert_dir = storage.join("certs").join(NAME);
    assert_eq!(mode(&storage), 0o700);
    for file in ["key.pem", "cert.pem", "meta.json"] {
        assert_eq!(mode(&cert_dir.join(file)), 0o600, "{file}");
    }
    assert_eq!(mode(&storage.join("account.json")), 0o600);
    assert_eq!(
        std::fs::read_to_string(cert_dir.join("cert.pem")).expect("read"),
        cert_pem
    );
    // Issued by Pebble's CA for the name, as openssl sees it.
    openssl_verify(work.path(), &pebble.root_pem(), &cert_pem, NAME);
    proxy.handle.shutdown();

    // Second start on the same storage: the stored certificate, no order.
    let mut proxy = Proxy::start(config, &tokens, &alpn);
    proxy.handle.send(AcmeCmd::Obtain {
        names: names.clone(),
    });
    let (_, reused_pem, reused_not_after, issued) =
        expect_ready(proxy.next_cert_event(Duration::from_secs(10), &pebble));
    assert!(!issued, "from storage");
    assert_eq!(reused_pem, cert_pem);
    assert_eq!(reused_not_after, not_after);
    assert_eq!(pebble.orders(), 1, "no new order: {}", pebble.log());

    // Renewal by itself, a third of the lifetime before the end (40 s after the issue).
    let (_, renewed_pem, renewed_not_after, issued) =
        expect_ready(proxy.next_cert_event(Duration::from_secs(VALIDITY_SECS), &pebble));
    let renewed_after = issued_at.elapsed();
    eprintln!("renewed {renewed_after:?} after the first issue");
    assert!(issued, "a new certificate");
    assert_ne!(renewed_pem, cert_pem);
    assert!(renewed_not_after > not_after);
    assert!(
        renewed_after >= Duration::from_secs(VALIDITY_SECS * 2 / 3 - 5),
        "renewed too early: {renewed_after:?}"
    );
    assert_eq!(pebble.orders(), 2, "{}", pebble.log());
    assert_eq!(
        std::fs::read_to_string(cert_dir.join("cert.pem")).expect("read"),
        renewed_pem
    );
    openssl_verify(work.path(), &pebble.root_pem(), &renewed_pem, NAME);
    proxy.handle.shutdown();
}

/// Answers TLS-ALPN-01 on Pebble's `tlsPort` as the reactor's ClientHello hook will: the
/// certificate published for the SNI name, ALPN `acme-tls/1` only, then the connection ends.
fn alpn_responder(port: u16, keys: Arc<Mutex<HashMap<String, Arc<CertifiedKey>>>>) -> Responder {
    let mut config = rustls::ServerConfig::builder_with_provider(spawngate::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(ByName(keys)));
    config.alpn_protocols = vec![spawngate::tls::ACME_TLS_ALPN.to_vec()];
    let config = Arc::new(config);
    Responder::start(port, move |mut stream| {
        let Ok(mut connection) = rustls::ServerConnection::new(config.clone()) else {
            return;
        };
        while connection.is_handshaking() {
            if connection.complete_io(&mut stream).is_err() {
                break;
            }
        }
        connection.send_close_notify();
        let _ = connection.complete_io(&mut stream);
    })
}

#[derive(Debug)]
struct ByName(Arc<Mutex<HashMap<String, Arc<CertifiedKey>>>>);

impl rustls::server::ResolvesServerCert for ByName {
    fn resolve(&self, hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name()?.to_string();
        self.0.lock().ok()?.get(&name).cloned()
    }
}

#[test]
fn tls_alpn01_obtains_a_certificate() {
    let Some(pebble) = Pebble::start("acme-alpn") else {
        return;
    };
    let tokens = Arc::new(Mutex::new(HashMap::new()));
    let alpn = Arc::new(Mutex::new(HashMap::new()));
    let _responder = alpn_responder(pebble.tls_port, alpn.clone());
    let work = TempDir::new("acme-alpn-work");
    let storage = work.file("storage");
    let config = pebble.acme_config(&storage, AcmeChallenge::TlsAlpn01);
    let name = "alpn.spawngate.test";

    let mut proxy = Proxy::start(config, &tokens, &alpn);
    proxy.handle.send(AcmeCmd::Obtain {
        names: vec![name.to_string()],
    });
    let (names, cert_pem, _, issued) =
        expect_ready(proxy.next_cert_event(Duration::from_secs(60), &pebble));
    assert_eq!(names, [name]);
    assert!(issued);
    assert_eq!(proxy.count(|e| matches!(e, AcmeEvent::TlsAlpn01 { .. })), 1);
    assert_eq!(proxy.count(|e| matches!(e, AcmeEvent::Http01 { .. })), 0);
    // The answer is retracted when the order ends, before the certificate is announced.
    assert_eq!(
        proxy.count(|e| matches!(e, AcmeEvent::TlsAlpn01Done { .. })),
        1,
        "{:?}",
        proxy.seen
    );
    assert!(alpn.lock().expect("alpn").is_empty());
    openssl_verify(work.path(), &pebble.root_pem(), &cert_pem, name);
    proxy.handle.shutdown();
}

/// A name set that can never be ordered is refused at once, without a retry, and without an order.
#[test]
fn wildcards_are_refused_without_an_order() {
    let work = TempDir::new("acme-wildcard");
    let config = AcmeConfig {
        email: None,
        // Nothing listens there: the refusal must come before any network.
        directory: format!("https://127.0.0.1:{}/dir", free_port()),
        ca_file: None,
        challenge: AcmeChallenge::Http01,
        storage: work.file("storage"),
    };
    let (sender, events) = mpsc::channel();
    let handle = acme::spawn(config, move |event| {
        let _ = sender.send(event);
    })
    .expect("start the ACME thread");
    handle.send(AcmeCmd::Obtain {
        names: vec!["*.spawngate.test".to_string()],
    });
    match events.recv_timeout(Duration::from_secs(10)) {
        Ok(AcmeEvent::CertFailed { retry_at, why, .. }) => {
            assert_eq!(retry_at, None);
            assert!(why.contains("DNS-01"), "{why}");
        }
        other => panic!("expected CertFailed, got {other:?}"),
    }
    let stopped = Instant::now();
    handle.shutdown();
    assert!(
        stopped.elapsed() < Duration::from_secs(2),
        "prompt shutdown"
    );
}

/// Two proxies on one storage directory (the lock): one orders, the other waits for it and then
/// serves what it stored, so the CA sees one order.
#[test]
fn two_threads_on_one_storage_order_once() {
    let Some(pebble) = Pebble::start("acme-shared") else {
        return;
    };
    let tokens = Arc::new(Mutex::new(HashMap::new()));
    let alpn = Arc::new(Mutex::new(HashMap::new()));
    let _responder = http01_responder(pebble.http_port, tokens.clone());
    let work = TempDir::new("acme-shared-work");
    let config = pebble.acme_config(&work.file("storage"), AcmeChallenge::Http01);
    let names = vec!["shared.spawngate.test".to_string()];
    let mut proxies = [
        Proxy::start(config.clone(), &tokens, &alpn),
        Proxy::start(config, &tokens, &alpn),
    ];
    for proxy in &proxies {
        proxy.handle.send(AcmeCmd::Obtain {
            names: names.clone(),
        });
    }
    // Each answers its own challenges at the same time, as two reactors would.
    let results: Vec<_> = std::thread::scope(|scope| {
        let pebble = &pebble;
        let waits: Vec<_> = proxies
            .iter_mut()
            .map(|proxy| {
                scope.spawn(move || {
                    expect_ready(proxy.next_cert_event(Duration::from_secs(60), pebble))
                })
            })
            .collect();
        waits
            .into_iter()
            .map(|wait| wait.join().expect("a certificate event"))
            .collect()
    });
    let issued: Vec<bool> = results.iter().map(|r| r.3).collect();
    assert_eq!(issued.iter().filter(|i| **i).count(), 1, "{issued:?}");
    assert_eq!(results[0].1, results[1].1, "the same certificate");
    assert_eq!(pebble.orders(), 1, "{}", pebble.log());
    for proxy in proxies {
        proxy.handle.shutdown();
    }
}

/// A proxy config with `[tls.acme]` against `pebble`, listening where Pebble validates (`httpPort` for
/// cleartext, `tlsPort` for HTTPS), with the echo backend for `NAME`.
fn proxy_config(pebble: &Pebble, storage: &Path, challenge: &str) -> String {
    format!(
        "[server]\nport = {http}\nadmin_port = 0\nbind = \"127.0.0.1\"\nhttps_port = {tls}\n\n\
         [tls]\n[tls.acme]\nemail = \"ops@spawngate.test\"\ndirectory = \"{directory}\"\n\
         ca_file = \"{ca}\"\nchallenge = \"{challenge}\"\nstorage = \"{storage}\"\n\n{backend}",
        http = pebble.http_port,
        tls = pebble.tls_port,
        directory = pebble.directory,
        ca = pebble.ca_file.display(),
        storage = storage.display(),
        backend = echo_backend(NAME, free_port(), "", &[]),
    )
}

/// curl to `https://NAME/` through the proxy, verifying against `root` (a file); returns (ok, body,
/// verbose log).
fn curl_name(pebble: &Pebble, root: &Path) -> (bool, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "-v", "--max-time", "20", "--http1.1", "--cacert"])
        .arg(root)
        .args([
            "--resolve",
            &format!("{NAME}:{}:127.0.0.1", pebble.tls_port),
        ])
        .arg(format!("https://{NAME}:{}/hello", pebble.tls_port))
        .output()
        .expect("run curl");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// The `start date:` curl prints for the certificate it was served.
fn start_date(curl_log: &str) -> String {
    let line = curl_log.lines().find(|l| l.contains("start date:"));
    line.unwrap_or_else(|| panic!("no certificate in {curl_log}"))
        .to_string()
}

const SERVING: &str = "TLS: serving the ACME certificate for demo.spawngate.test";

#[test]
fn the_proxy_answers_http01_itself_serves_the_certificate_and_reuses_it_after_a_restart() {
    let Some(pebble) = Pebble::start("acme-proxy-http01") else {
        return;
    };
    let work = TempDir::new("acme-proxy-http01-work");
    let storage = work.file("storage");
    let root = work.file("root.pem");
    std::fs::write(&root, pebble.root_pem()).expect("write root");
    let config = proxy_config(&pebble, &storage, "http-01");

    let proxy = Spawngate::start(&config);
    assert!(
        proxy.wait_for_log(SERVING, Duration::from_secs(90)),
        "no certificate; pebble:\n{}",
        pebble.log()
    );
    // The challenge was answered before routing: the backend was never started for it.
    assert!(!proxy.log_contains("starting on demand"));
    assert!(proxy
        .log_lines()
        .iter()
        .any(|l| l.contains("ACME: ordering")));
    let (ok, body, log) = curl_name(&pebble, &root);
    assert!(ok, "curl: {log}");
    assert!(log.contains("< HTTP/1.1 200"), "{log}");
    assert!(body.contains("\"path\":\"/hello\""), "{body}");
    let served = start_date(&log);
    // The certificate's expiry and the order are in the metrics.
    let metrics = proxy.admin_get("/metrics").text();
    let expiry = format!(
        "spawngate_tls_certificate_expiry_timestamp_seconds{{name=\"{NAME}\",source=\"acme\"}} "
    );
    assert!(metrics.contains(&expiry), "{metrics}");
    assert!(
        metrics.contains("spawngate_acme_orders_total{result=\"issued\"} 1\n"),
        "{metrics}"
    );
    // A challenge path is never routed, whatever the token: 404 from the proxy, no backend woken.
    let url = format!(
        "http://{NAME}:{}/.well-known/acme-challenge/nope",
        pebble.http_port
    );
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
        .args([
            "--resolve",
            &format!("{NAME}:{}:127.0.0.1", pebble.http_port),
        ])
        .arg(url)
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "404");
    let orders = pebble.orders();
    assert!(orders >= 1);
    drop(proxy);

    // A restart on the same storage serves the stored certificate without a new order.
    let proxy = Spawngate::start(&config);
    assert!(
        proxy.wait_for_log(SERVING, Duration::from_secs(30)),
        "stored certificate not served"
    );
    assert!(proxy.logs("from storage"));
    let (ok, _, log) = curl_name(&pebble, &root);
    assert!(ok, "curl after restart: {log}");
    assert_eq!(start_date(&log), served, "the same certificate");
    assert_eq!(pebble.orders(), orders, "no new order after a restart");

    // A reload that adds a host orders a certificate for it; one that removes the host stops it.
    let two = "two.spawngate.test";
    let with_two = format!("{config}\n{}", echo_backend(two, free_port(), "", &[]));
    proxy.rewrite_config(&with_two);
    assert_eq!(proxy.post_reload().status, 200);
    let serving_two = format!("TLS: serving the ACME certificate for {two}");
    assert!(
        proxy.wait_for_log(&serving_two, Duration::from_secs(60)),
        "no certificate for the added host; pebble:\n{}",
        pebble.log()
    );
    proxy.rewrite_config(&config);
    assert_eq!(proxy.post_reload().status, 200);
    assert!(proxy.logs(&format!("ACME: {two} left the config")));
}

#[test]
fn the_proxy_answers_tls_alpn01_in_its_handshake_and_renews_without_a_restart() {
    let Some(pebble) = Pebble::start("acme-proxy-alpn") else {
        return;
    };
    let work = TempDir::new("acme-proxy-alpn-work");
    let storage = work.file("storage");
    let root = work.file("root.pem");
    std::fs::write(&root, pebble.root_pem()).expect("write root");
    let proxy = Spawngate::start(&proxy_config(&pebble, &storage, "tls-alpn-01"));
    assert!(
        proxy.wait_for_log(SERVING, Duration::from_secs(90)),
        "no certificate; pebble:\n{}",
        pebble.log()
    );
    let (ok, _, log) = curl_name(&pebble, &root);
    assert!(ok, "curl: {log}");
    let first = start_date(&log);

    // Certificates live 60 s here: a third before the end (40 s after issue) a new one is ordered
    // and served, with the listener and the proxy as they were.
    let renewed = wait_until(Duration::from_secs(120), || {
        (proxy.log_lines().iter())
            .filter(|l| l.contains(SERVING))
            .count()
            >= 2
    });
    assert!(renewed, "no renewal; pebble:\n{}", pebble.log());
    let (ok, _, log) = curl_name(&pebble, &root);
    assert!(ok, "curl after renewal: {log}");
    assert_ne!(start_date(&log), first, "the renewed certificate is served");
}
