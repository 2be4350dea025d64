//! The HTTPS listener as an outside scanner sees it (feature `tls`: `cargo test --features tls --test
//! testssl`): Debian's `testssl.sh` checks protocols, cipher categories and the known vulnerabilities
//! against the real binary on 127.0.0.1, offline, in about 20 s; the test reads its JSON.
//!
//! What fails the test:
//! * any finding rated MEDIUM, HIGH or CRITICAL: a weakness a hardened server should not have (testssl
//!   rates an offered TLS 1.0 or an obsolete cipher class this way);
//! * FATAL (the scan could not run) and WARN (testssl could not test something reliably), except the
//!   scanner's own environment notes listed in `SCANNER_NOTES`, which say nothing about the server;
//! * SSLv2, SSLv3, TLS 1.0 or TLS 1.1 anything but "not offered", or TLS 1.2/1.3 not offered;
//! * a scan that ended early (a finding the full run always has is missing).
//!
//! LOW and INFO pass: LOW marks choices that are debatable rather than weak (and none shows today),
//! INFO is a fact (e.g. "ALPN: h2, http/1.1").
#![cfg(feature = "tls")]

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::https::{config, Ca};
use support::{echo_backend, free_port, Proxy};

/// The whole scan's bound: it takes about 20 s on an idle machine.
const SCAN_LIMIT: Duration = Duration::from_secs(180);

/// WARN findings about the machine running testssl, not the server: Debian's OpenSSL 3 has no GOST
/// engine.
const SCANNER_NOTES: &[&str] = &["engine_problem"];

/// Findings a complete run of `--protocols --std --vulnerable` always reports.
const EXPECTED: &[&str] = &[
    "SSLv2",
    "SSLv3",
    "TLS1",
    "TLS1_1",
    "TLS1_2",
    "TLS1_3",
    "cipherlist_NULL",
    "cipherlist_aNULL",
    "cipherlist_EXPORT",
    "cipherlist_LOW",
    "cipherlist_3DES_IDEA",
    "cipherlist_STRONG",
    "heartbleed",
    "CCS",
    "ROBOT",
    "secure_renego",
    "CRIME_TLS",
    "POODLE_SSL",
    "SWEET32",
    "FREAK",
    "DROWN",
    "LOGJAM",
    "BEAST",
    "LUCKY13",
    "RC4",
];

#[test]
fn testssl_finds_nothing_worse_than_low_in_protocols_ciphers_and_vulnerabilities() {
    let Some(testssl) = support::debian_tool("/usr/bin/testssl", "testssl.sh") else {
        return;
    };
    let ca = Ca::new();
    ca.issue("a", "a.test", &["a.test"]);
    let proxy = Proxy::start(&config(
        &format!("hsts_max_age_secs = 600\n{}", ca.entry("a", true)),
        &echo_backend("a.test", free_port(), "", &[]),
    ));
    let json_path = ca.dir.file("testssl.json");
    let target = proxy.https_addr().to_string();
    let child = Command::new(testssl)
        .args(["--protocols", "--std", "--vulnerable"])
        .args(["--quiet", "--color", "0", "--warnings", "off"])
        // Each of its openssl calls bounded too, so one stuck handshake cannot eat the whole limit.
        .args(["--openssl", "/usr/bin/openssl", "--openssl-timeout", "10"])
        .arg("--jsonfile")
        .arg(&json_path)
        .arg(&target)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run testssl");
    // Its output is read to the end on a thread (a full pipe would stall it), and its end awaited
    // with a deadline.
    let pid = child.id();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let out = match finished.recv_timeout(SCAN_LIMIT) {
        Ok(out) => out.expect("testssl's output"),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("testssl took more than {SCAN_LIMIT:?}");
        }
    };
    let screen = String::from_utf8_lossy(&out.stdout);
    let text = std::fs::read_to_string(&json_path)
        .unwrap_or_else(|e| panic!("no JSON from testssl ({e}):\n{screen}"));
    let findings: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let field = |f: &serde_json::Value, name: &str| f[name].as_str().unwrap_or("").to_string();

    let bad: Vec<String> = (findings.iter())
        .filter(|f| match field(f, "severity").as_str() {
            "MEDIUM" | "HIGH" | "CRITICAL" | "FATAL" => true,
            "WARN" => !SCANNER_NOTES.contains(&field(f, "id").as_str()),
            _ => false,
        })
        .map(|f| f.to_string())
        .collect();
    assert!(bad.is_empty(), "findings:\n{}\n{screen}", bad.join("\n"));

    let finding = |id: &str| {
        (findings.iter())
            .find(|f| field(f, "id") == id)
            .map(|f| field(f, "finding"))
            .unwrap_or_else(|| panic!("no {id} finding: the scan ended early\n{screen}"))
    };
    for id in EXPECTED {
        finding(id);
    }
    for old in ["SSLv2", "SSLv3", "TLS1", "TLS1_1"] {
        assert!(
            finding(old).starts_with("not offered"),
            "{old}: {}",
            finding(old)
        );
    }
    for current in ["TLS1_2", "TLS1_3"] {
        assert!(
            finding(current).starts_with("offered"),
            "{current}: {}",
            finding(current)
        );
    }
    assert!(
        finding("ALPN_HTTP2").contains("h2"),
        "{}",
        finding("ALPN_HTTP2")
    );
}
