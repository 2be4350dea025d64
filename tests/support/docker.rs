//! Docker test helpers: a small Engine API client of the tests' own (so the proxy's client is not
//! checked against itself), the test image (the `spawngate-echo` backend compiled as a static binary,
//! `FROM scratch`, built through the API), backend config snippets, and a guard that removes test
//! containers whatever happens.
//!
//! Included by the `docker_*` test files with `#[path = "support/docker.rs"] mod docker;` beside
//! `mod support;`. With no daemon the tests print why and pass, except under `CI`, where they fail.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use crate::support::{compile_std_program, toml_str};

/// The API version the tests speak: old enough for any engine they will meet (Docker 17.06+).
const API: &str = "/v1.30";
/// Longest a call may take; an image build from a local tar context is the slowest.
const IO_TIMEOUT: Duration = Duration::from_secs(120);
const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";

/// The daemon's socket (tests only use local sockets).
pub fn socket_path() -> PathBuf {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if host.starts_with("unix://") => PathBuf::from(&host["unix://".len()..]),
        _ => PathBuf::from("/var/run/docker.sock"),
    }
}

/// An answer from the daemon.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request on a fresh connection, read to the end.
pub fn call(method: &str, path: &str, body: Option<(&str, &[u8])>) -> std::io::Result<Reply> {
    let mut stream = UnixStream::connect(socket_path())?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let (content_type, bytes) = body.unwrap_or(("application/json", b""));
    let head = format!(
        "{method} {API}{path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        bytes.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(bytes)?;
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line)?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut chunked = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line)?;
            let size_text = size_line.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size_text, 16).unwrap_or(0);
            if size == 0 {
                break;
            }
            let mut chunk = vec![0u8; size + 2];
            reader.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        reader.read_to_end(&mut body)?;
    }
    Ok(Reply { status, body })
}

/// True when a daemon answers. Without one: skip (false) with a message, or fail under `CI`.
pub fn docker_available(test: &str) -> bool {
    match call("GET", "/_ping", None) {
        Ok(reply) if reply.status == 200 => true,
        outcome => {
            let why = format!(
                "no Docker daemon answers at {} ({outcome:?})",
                socket_path().display()
            );
            if std::env::var_os("CI").is_some() {
                panic!("{test}: {why}; CI must run the Docker tests");
            }
            eprintln!("skipping {test}: {why}");
            false
        }
    }
}

pub fn inspect(container: &str) -> Option<Value> {
    let reply = call("GET", &format!("/containers/{container}/json"), None).ok()?;
    (reply.status == 200).then(|| reply.json())
}

/// True once no container of this name or id exists.
pub fn container_gone(container: &str) -> bool {
    matches!(call("GET", &format!("/containers/{container}/json"), None), Ok(r) if r.status == 404)
}

pub fn remove_container(container: &str) {
    let _ = call("DELETE", &format!("/containers/{container}?force=1"), None);
}

/// A container name for one test, unique across parallel tests and runs; removed on drop.
pub struct TestContainer {
    pub name: String,
}

impl TestContainer {
    pub fn new(label: &str) -> TestContainer {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "spawngate-test-{label}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        remove_container(&name);
        TestContainer { name }
    }
}

impl Drop for TestContainer {
    fn drop(&mut self) {
        remove_container(&self.name);
    }
}

/// A `type = "docker"` backend table running the test image. `keys` adds TOML lines to the table, `env`
/// adds variables (the echo backend listens on 0.0.0.0 inside the container in any case).
pub fn docker_backend(
    host: &str,
    image: &str,
    container: &str,
    port: u16,
    keys: &str,
    env: &[(&str, &str)],
) -> String {
    let mut out = format!(
        "[backends.\"{host}\"]\ntype = \"docker\"\nimage = {}\ncontainer_name = {}\n\
         pull_policy = \"never\"\nport = {port}\nshutdown_grace_period_secs = 1\n{keys}\n\
         [backends.\"{host}\".env]\nECHO_BIND = \"0.0.0.0\"\n",
        toml_str(image),
        toml_str(container)
    );
    for (key, value) in env {
        out.push_str(&format!("{key} = {}\n", toml_str(value)));
    }
    out
}

/// The test image's tag, built once per test process (and reused across runs: the tag is the binary's
/// hash, and the compile is deterministic).
pub fn echo_image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let binary = static_echo_binary();
        let bytes = std::fs::read(&binary).expect("read the static echo binary");
        let tag = format!("spawngate-test-echo:{:016x}", fnv1a(&bytes));
        let present = call("GET", &format!("/images/{tag}/json"), None)
            .map(|r| r.status == 200)
            .unwrap_or(false);
        if !present {
            build_image(&tag, &bytes);
            remove_older_images(&tag);
        }
        tag
    })
}

/// `spawngate-echo` as a static binary: musl where the target is installed (or can be), else glibc
/// linked statically.
fn static_echo_binary() -> PathBuf {
    let target = if musl_installed() {
        MUSL_TARGET
    } else {
        "x86_64-unknown-linux-gnu"
    };
    let mut args = vec!["-O", "-C", "strip=symbols", "--target", target];
    if target != MUSL_TARGET {
        args.extend(["-C", "target-feature=+crt-static"]);
    }
    compile_std_program(
        "src/bin/spawngate_echo.rs",
        &format!("spawngate-echo-{target}"),
        &args,
    )
}

fn musl_installed() -> bool {
    let installed =
        |out: std::process::Output| String::from_utf8_lossy(&out.stdout).contains(MUSL_TARGET);
    let list = || {
        Command::new("rustup")
            .args(["target", "list", "--installed"])
            .output()
    };
    if list().map(installed).unwrap_or(false) {
        return true;
    }
    let added = Command::new("rustup")
        .args(["target", "add", MUSL_TARGET])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    added && list().map(installed).unwrap_or(false)
}

fn build_image(tag: &str, binary: &[u8]) {
    let dockerfile =
        b"FROM scratch\nCOPY spawngate-echo /spawngate-echo\nENTRYPOINT [\"/spawngate-echo\"]\n";
    let mut context = Vec::new();
    tar_entry(&mut context, "Dockerfile", dockerfile, 0o644);
    tar_entry(&mut context, "spawngate-echo", binary, 0o755);
    context.extend_from_slice(&[0u8; 1024]);
    let reply = call(
        "POST",
        &format!("/build?t={tag}&rm=1&forcerm=1"),
        Some(("application/x-tar", &context)),
    )
    .expect("talk to the daemon to build the test image");
    let text = reply.text();
    assert!(
        reply.status == 200 && !text.contains("\"error\""),
        "building {tag} failed: {} {text}",
        reply.status
    );
}

/// Deletes earlier builds of the test image (from older sources) so they do not pile up; one still used
/// by a container is refused by the daemon and stays.
fn remove_older_images(current: &str) {
    let (repository, _) = current.split_once(':').unwrap_or((current, ""));
    let filters = format!(r#"{{"reference":["{repository}"]}}"#);
    let path = format!("/images/json?filters={}", percent_encode(&filters));
    let Ok(reply) = call("GET", &path, None) else {
        return;
    };
    let images = reply.json();
    let tags = images
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|image| image["RepoTags"].as_array())
        .flatten()
        .filter_map(Value::as_str);
    for tag in tags.filter(|t| *t != current && t.starts_with(repository)) {
        let _ = call("DELETE", &format!("/images/{tag}"), None);
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One file of a ustar archive.
fn tar_entry(out: &mut Vec<u8>, name: &str, data: &[u8], mode: u32) {
    let mut header = [0u8; 512];
    let mut put = |at: usize, field: &[u8]| header[at..at + field.len()].copy_from_slice(field);
    put(0, name.as_bytes());
    put(100, format!("{mode:07o}\0").as_bytes());
    put(108, b"0000000\0");
    put(116, b"0000000\0");
    put(124, format!("{:011o}\0", data.len()).as_bytes());
    put(136, b"00000000000\0");
    put(156, b"0");
    put(257, b"ustar\0");
    put(263, b"00");
    // The checksum is computed with its own field read as spaces.
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    let padding = (512 - data.len() % 512) % 512;
    out.extend(std::iter::repeat_n(0u8, padding));
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
