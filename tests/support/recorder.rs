//! A recording backend: a std `TcpListener` in the test process that the proxy forwards to. It answers
//! the proxy's health probes itself and records every byte of every other connection, so a test can
//! assert exactly what reached the backend (or that nothing did) and how many connections were opened.
//!
//! The proxy still "starts" the backend: the config runs a `sh` that touches a flag file and sleeps. The
//! proxy refuses to start a backend whose port is already taken, so the recorder binds its port only
//! once the flag appears, and the health probe then finds it listening.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::client::get;
use super::proxy::Proxy;
use super::{free_port, wait_until, TempDir};

/// Longest head the recorder reads before giving up on a connection.
const MAX_HEAD: usize = 256 * 1024;
/// How long the recorder waits for the proxy to start its backend before it gives up binding.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// What the recorder does with one request, decided from its head.
#[derive(Clone)]
pub enum Reply {
    /// Read the whole body, then write these bytes and wait for the next request.
    After(Vec<u8>),
    /// Write these bytes as soon as the head is in, without reading the body first; then read on.
    Early(Vec<u8>),
    /// Read the body, write these bytes, then close the connection.
    AndClose(Vec<u8>),
    /// Read the body and never answer.
    Silence,
}

/// One request as the backend received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Which backend connection (0 for the first) carried it.
    pub connection: usize,
    pub head: String,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn request_line(&self) -> &str {
        self.head.split("\r\n").next().unwrap_or("")
    }

    /// Every value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Vec<&str> {
        self.head
            .split("\r\n")
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .collect()
    }
}

type Responder = Arc<dyn Fn(&str) -> Reply + Send + Sync>;

#[derive(Default)]
struct Log {
    connections: usize,
    /// Counted connections that have ended (the proxy closed them, or the recorder gave up on them).
    closed: usize,
    raw: Vec<Vec<u8>>,
    /// Every head as it arrived (connection, head), before its body was read.
    heads: Vec<(usize, String)>,
    /// Requests whose body was read in full, or whose connection ended first (body then empty).
    requests: Vec<Recorded>,
}

pub struct Recorder {
    pub port: u16,
    log: Arc<Mutex<Log>>,
    dir: TempDir,
}

/// "HTTP/1.1 200 OK" with a short body, keep-alive.
pub fn ok_reply() -> Reply {
    Reply::After(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec())
}

impl Recorder {
    /// A recorder that answers every request with [`ok_reply`].
    pub fn ok() -> Recorder {
        Recorder::start(|_| ok_reply())
    }

    /// A recorder whose answer to each request is chosen from its head by `responder`.
    pub fn start(responder: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Recorder {
        let port = free_port();
        let dir = TempDir::new("recorder");
        let flag = dir.file("started");
        let log = Arc::new(Mutex::new(Log::default()));
        let responder: Responder = Arc::new(responder);
        let accept_log = log.clone();
        std::thread::spawn(move || {
            if !wait_until(START_DEADLINE, || flag.exists()) {
                return;
            }
            let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the recorder");
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let log = accept_log.clone();
                let responder = responder.clone();
                std::thread::spawn(move || serve(stream, log, responder));
            }
        });
        Recorder { port, log, dir }
    }

    /// A `[backends."host"]` table that "runs" this recorder: a process that raises the flag, then sleeps.
    /// The proxy in front of this recorder as `host`, with `server_keys` added to its `[server]` table.
    pub fn proxy(&self, host: &str, server_keys: &str) -> Proxy {
        Proxy::start(&format!(
            "[server]\nport = 0\nadmin_port = 0\nbind = \"127.0.0.1\"\n{server_keys}\n\n{}",
            self.backend_table(host, "")
        ))
    }

    pub fn backend_table(&self, host: &str, keys: &str) -> String {
        self.backend_table_starting_after(host, keys, Duration::ZERO)
    }

    /// Like [`Recorder::backend_table`], with a backend that takes `delay` to start listening.
    pub fn backend_table_starting_after(&self, host: &str, keys: &str, delay: Duration) -> String {
        let script = format!(
            "sleep {:.3} && touch '{}' && exec sleep 3600",
            delay.as_secs_f64(),
            self.dir.file("started").display()
        );
        format!(
            "[backends.\"{host}\"]\ncommand = \"sh\"\nargs = [\"-c\", {}]\nport = {}\n{keys}\n",
            super::toml_str(&script),
            self.port
        )
    }

    /// Backend connections opened by the proxy (health probes not counted).
    pub fn connections(&self) -> usize {
        self.log.lock().unwrap().connections
    }

    /// Backend connections opened by the proxy and not closed yet.
    pub fn open_connections(&self) -> usize {
        let log = self.log.lock().unwrap();
        log.connections - log.closed
    }

    /// Every byte received on each backend connection, in order of connection.
    pub fn raw(&self) -> Vec<Vec<u8>> {
        self.log.lock().unwrap().raw.clone()
    }

    pub fn total_bytes(&self) -> usize {
        self.raw().iter().map(Vec::len).sum()
    }

    /// Every request head received, as (connection, head), including those whose body never completed.
    pub fn heads(&self) -> Vec<(usize, String)> {
        self.log.lock().unwrap().heads.clone()
    }

    /// Requests whose body was read whole, or whose connection ended first (then `body` is empty).
    pub fn requests(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().requests.clone()
    }

    /// Waits until at least `n` requests were recorded.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<Recorded> {
        wait_until(timeout, || self.requests().len() >= n);
        self.requests()
    }
}

fn is_probe(head: &str) -> bool {
    head.lines()
        .any(|l| l.eq_ignore_ascii_case("user-agent: spawngate-health"))
}

fn serve(stream: TcpStream, log: Arc<Mutex<Log>>, responder: Responder) {
    let mut connection: Option<usize> = None;
    serve_requests(stream, &log, &responder, &mut connection);
    if connection.is_some() {
        log.lock().unwrap().closed += 1;
    }
}

/// Serves one connection until it ends; `connection` is set once it counts (its first request is not a
/// health probe).
fn serve_requests(
    mut stream: TcpStream,
    log: &Arc<Mutex<Log>>,
    responder: &Responder,
    connection: &mut Option<usize>,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let head_end = loop {
            if let Some(end) = find(&pending, b"\r\n\r\n") {
                break Some(end + 4);
            }
            if pending.len() > MAX_HEAD {
                break None;
            }
            match read_more(&mut stream, &mut chunk, &mut pending, log, *connection) {
                Some(()) => {}
                None => break None,
            }
        };
        let Some(head_end) = head_end else { return };
        let head = String::from_utf8_lossy(&pending[..head_end]).into_owned();
        if connection.is_none() {
            if is_probe(&head) {
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                return;
            }
            let mut log = log.lock().unwrap();
            *connection = Some(log.connections);
            log.connections += 1;
            log.raw.push(pending.clone());
        }
        let index = connection.unwrap_or_default();
        log.lock().unwrap().heads.push((index, head.clone()));
        let reply = responder(&head);
        if let Reply::Early(bytes) = &reply {
            let _ = stream.write_all(bytes);
        }
        pending.drain(..head_end);
        let Some(body) = read_body(&head, &mut stream, &mut chunk, &mut pending, log, index) else {
            record(log, index, head, Vec::new());
            return;
        };
        record(log, index, head, body);
        match reply {
            Reply::After(bytes) => {
                if stream.write_all(&bytes).is_err() {
                    return;
                }
            }
            Reply::Early(_) => {}
            Reply::AndClose(bytes) => {
                let _ = stream.write_all(&bytes);
                return;
            }
            Reply::Silence => {}
        }
    }
}

fn record(log: &Mutex<Log>, connection: usize, head: String, body: Vec<u8>) {
    log.lock().unwrap().requests.push(Recorded {
        connection,
        head,
        body,
    });
}

/// Reads once more into `pending`, logging the bytes; `None` at EOF or on an error.
fn read_more(
    stream: &mut TcpStream,
    chunk: &mut [u8],
    pending: &mut Vec<u8>,
    log: &Mutex<Log>,
    connection: Option<usize>,
) -> Option<()> {
    match stream.read(chunk) {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            pending.extend_from_slice(&chunk[..n]);
            if let Some(index) = connection {
                log.lock().unwrap().raw[index].extend_from_slice(&chunk[..n]);
            }
            Some(())
        }
    }
}

/// The body of the request whose head is `head`, read from `pending` and the stream (simple framing:
/// the proxy only forwards what it already validated). `None` if the connection ends first.
fn read_body(
    head: &str,
    stream: &mut TcpStream,
    chunk: &mut [u8],
    pending: &mut Vec<u8>,
    log: &Mutex<Log>,
    index: usize,
) -> Option<Vec<u8>> {
    let header = |name: &str| {
        head.split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_ascii_lowercase())
    };
    if header("transfer-encoding").is_some() {
        // Up to and including the last chunk and the empty trailer line.
        loop {
            if let Some(end) = find(pending, b"0\r\n\r\n").filter(|&at| {
                at == 0 || pending[at - 1] == b'\n' && pending[..at].ends_with(b"\r\n")
            }) {
                return Some(pending.drain(..end + 5).collect());
            }
            read_more(stream, chunk, pending, log, Some(index))?;
        }
    }
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while pending.len() < length {
        read_more(stream, chunk, pending, log, Some(index))?;
    }
    Some(pending.drain(..length).collect())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One request on a fresh connection, so the backend is started: the proxy is warm.
pub fn warm(proxy: &Proxy, host: &str) {
    let response = get(proxy.addr(), host, "/warm");
    assert_eq!(response.status, 200, "{}", response.text());
}
