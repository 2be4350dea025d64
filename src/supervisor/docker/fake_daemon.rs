//! A scripted stand-in for the Docker daemon on a Unix socket, for tests of the client and the driver's
//! decisions (what it asks, how it reacts to each answer) without a real engine.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::endpoint::Endpoint;
use crate::supervisor::test_support::scratch_file;

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, e.g. "/v1.41/containers/create?name=x".
    pub target: String,
    pub body: String,
}

pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(status: u16, body: &str) -> Answer {
        Answer {
            status,
            headers: vec![("Content-Type", "application/json".to_string())],
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn empty(status: u16) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `/_ping` as a daemon speaking `version` answers it.
    pub fn ping(version: &str) -> Answer {
        Answer {
            status: 200,
            headers: vec![("Api-Version", version.to_string())],
            body: b"OK".to_vec(),
        }
    }
}

type Handler = dyn Fn(&Request) -> Answer + Send + Sync;

pub struct FakeDaemon {
    endpoint: Endpoint,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl FakeDaemon {
    /// Serves every request with `handler` until the test process ends.
    pub fn start(name: &str, handler: impl Fn(&Request) -> Answer + Send + Sync + 'static) -> Self {
        let path: PathBuf = scratch_file(&format!("{name}.sock"));
        let listener = UnixListener::bind(&path).unwrap();
        let daemon = FakeDaemon {
            endpoint: Endpoint::Unix(path),
            requests: Arc::new(Mutex::new(Vec::new())),
        };
        daemon.accept_all(move || listener.accept().map(|(s, _)| s), Arc::new(handler));
        daemon
    }

    /// The same on a TCP port of 127.0.0.1 (`tcp://` daemons).
    pub fn start_tcp(handler: impl Fn(&Request) -> Answer + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let daemon = FakeDaemon {
            endpoint: Endpoint::Tcp(addr.to_string()),
            requests: Arc::new(Mutex::new(Vec::new())),
        };
        daemon.accept_all(move || listener.accept().map(|(s, _)| s), Arc::new(handler));
        daemon
    }

    fn accept_all<S: Read + Write + Send + 'static>(
        &self,
        mut accept: impl FnMut() -> std::io::Result<S> + Send + 'static,
        handler: Arc<Handler>,
    ) {
        let seen = self.requests.clone();
        std::thread::spawn(move || {
            while let Ok(conn) = accept() {
                let seen = seen.clone();
                let handler = handler.clone();
                std::thread::spawn(move || serve(conn, &seen, &*handler));
            }
        });
    }

    pub fn endpoint(&self) -> Endpoint {
        self.endpoint.clone()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// "METHOD target" of every request except the version handshake.
    pub fn calls(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| r.target != "/_ping")
            .map(|r| format!("{} {}", r.method, r.target))
            .collect()
    }
}

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        if let Endpoint::Unix(path) = &self.endpoint {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn serve(conn: impl Read + Write, seen: &Mutex<Vec<Request>>, handler: &Handler) {
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let request = Request {
            method,
            target,
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        seen.lock().unwrap().push(request.clone());
        let answer = handler(&request);
        let mut head = format!("HTTP/1.1 {} X\r\n", answer.status);
        for (name, value) in &answer.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", answer.body.len()));
        let conn = reader.get_mut();
        if conn.write_all(head.as_bytes()).is_err() || conn.write_all(&answer.body).is_err() {
            return;
        }
    }
}
