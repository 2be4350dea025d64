//! One non-blocking HTTP health probe: connect, send `GET {health_path}`, read the status line.
//!
//! The probe is driven by readiness events on its own token and never blocks, so a backend that accepts
//! and then hangs only costs its own probe timeout, never another backend's probes or starts.
//!
//! An instance at an `https://` address (feature `tls`) is probed over TLS, verified as its requests
//! are: a certificate the proxy would refuse makes the instance unhealthy, not just its requests fail.

use std::io::{self, Read, Write};
use std::time::Duration;

use mio::{Interest, Registry, Token};

use super::lifecycle::Input;
use crate::upstream::{UpstreamAddr, UpstreamStream};

/// Shortest probe timeout: a loaded machine can take a while to accept, even with a 100 ms interval.
const MIN_PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest probe timeout: beyond this a backend counts as unhealthy, whatever its probe interval.
const MAX_PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// "HTTP/1.1 200" is all the probe needs to read.
const STATUS_PREFIX_LEN: usize = 12;

/// How long one probe may take when probes go out every `interval`.
pub fn probe_timeout(interval: Duration) -> Duration {
    interval.clamp(MIN_PROBE_TIMEOUT, MAX_PROBE_TIMEOUT)
}

/// What one probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A 2xx status line.
    Healthy,
    /// Anything else once answering: another status, garbage, a close or reset part-way through.
    Unhealthy,
    /// Accepted, then closed or reset before one byte of an answer. A port forwarder does this for a
    /// program that does not listen yet: Docker's `docker-proxy` accepts on a container's published port
    /// from the moment the container starts, finds nothing behind it, and closes.
    Dropped,
    /// The connection was refused: nothing listens at the address yet (for a unix socket, also: its
    /// file is not there yet).
    Refused,
}

impl Verdict {
    /// The lifecycle's input for it.
    pub fn input(self) -> Input {
        match self {
            Verdict::Healthy => Input::ProbeResult(true),
            Verdict::Unhealthy => Input::ProbeResult(false),
            // Starting, nothing behind the port yet either way: knock again as soon as for a refusal
            // (a dropped connection read as a failed answer waited a growing gap, tens of ms late
            // for a container). Ready, the lifecycle counts both as a failed probe.
            Verdict::Refused | Verdict::Dropped => Input::ProbeRefused,
        }
    }

    /// How a connection attempt that failed outright is judged. A program that has not bound its
    /// unix socket yet leaves no file (`ENOENT`), or the stale file of its last run (`ECONNREFUSED`):
    /// both mean "nothing listens yet", as a refused TCP port does.
    pub fn of_connect_error(e: &io::Error) -> Verdict {
        match e.kind() {
            io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound => Verdict::Refused,
            _ => Verdict::Unhealthy,
        }
    }
}

#[derive(Debug)]
enum Phase {
    Connecting,
    Sending {
        sent: usize,
    },
    Receiving {
        head: [u8; STATUS_PREFIX_LEN],
        len: usize,
    },
}

pub struct Probe {
    stream: UpstreamStream,
    request: Vec<u8>,
    phase: Phase,
    /// Clock milliseconds after which the probe counts as failed.
    deadline_ms: u64,
    /// The TLS session of an `https://` instance: the request goes through it.
    #[cfg(feature = "tls")]
    tls: Option<Box<rustls::ClientConnection>>,
    /// Why TLS failed, once it did (for the supervisor's log).
    #[cfg(feature = "tls")]
    tls_failure: Option<String>,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe")
            .field("stream", &self.stream)
            .field("phase", &self.phase)
            .field("deadline_ms", &self.deadline_ms)
            .finish_non_exhaustive()
    }
}

impl Probe {
    /// Opens the connection to the instance at `addr` and registers it under `token`. With a `path` the
    /// probe asks `GET path` and wants a 2xx; without one, an accepted connection is the verdict (`health =
    /// "tcp"`). An error means the probe failed at once (e.g. the connection was refused synchronously).
    pub fn start(
        registry: &Registry,
        token: Token,
        addr: &UpstreamAddr,
        hostname: &str,
        path: Option<&str>,
        deadline_ms: u64,
    ) -> io::Result<Probe> {
        #[cfg(feature = "tls")]
        let tls = match addr {
            UpstreamAddr::Tls(target) => {
                Some(Box::new(target.connection().map_err(io::Error::other)?))
            }
            _ => None,
        };
        // A unix-domain connect fails here when nothing listens (no file, or a stale one).
        let mut stream = UpstreamStream::connect(addr)?;
        // On loopback a port nobody listens on answers the handshake with a reset before `connect`
        // returns: the refusal is known now, without a trip through the poll (half the system calls
        // of a knock on a starting instance).
        if let Some(e) = stream.take_error()? {
            return Err(e);
        }
        registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
        let request = match path {
            Some(path) => format!(
                "GET {path} HTTP/1.1\r\nHost: {hostname}\r\nUser-Agent: spawngate-health\r\n\
                 Connection: close\r\n\r\n"
            ),
            None => String::new(),
        };
        Ok(Probe {
            stream,
            request: request.into_bytes(),
            phase: Phase::Connecting,
            deadline_ms,
            #[cfg(feature = "tls")]
            tls,
            #[cfg(feature = "tls")]
            tls_failure: None,
        })
    }

    /// Why TLS with the instance failed, if that is what ended this probe.
    #[cfg(feature = "tls")]
    pub fn tls_failure(&self) -> Option<&str> {
        self.tls_failure.as_deref()
    }

    pub fn deadline_ms(&self) -> u64 {
        self.deadline_ms
    }

    /// Makes all the progress the socket allows; the verdict once the probe has one.
    pub fn advance(&mut self) -> Option<Verdict> {
        self.step().map(|healthy| match healthy {
            Ok(true) => Verdict::Healthy,
            Ok(false) => Verdict::Unhealthy,
            Err(refused) => refused,
        })
    }

    /// `Some(Ok(healthy))` once answered, `Some(Err(verdict))` when the connection itself failed or
    /// ended before any answer.
    fn step(&mut self) -> Option<Result<bool, Verdict>> {
        #[cfg(feature = "tls")]
        if self.tls.is_some() && !matches!(self.phase, Phase::Connecting) {
            return self.step_tls();
        }
        loop {
            match &mut self.phase {
                Phase::Connecting => {
                    match self.stream.take_error() {
                        Ok(None) => {}
                        Ok(Some(e)) | Err(e) => return Some(Err(Verdict::of_connect_error(&e))),
                    }
                    match self.stream.is_connected() {
                        // A connection check only: accepted is healthy.
                        Ok(true) if self.request.is_empty() => return Some(Ok(true)),
                        #[cfg(feature = "tls")]
                        Ok(true) if self.tls.is_some() => return self.step_tls(),
                        Ok(true) => self.phase = Phase::Sending { sent: 0 },
                        Ok(false) => return None,
                        Err(e) => return Some(Err(Verdict::of_connect_error(&e))),
                    }
                }
                Phase::Sending { sent } => match self.stream.write(&self.request[*sent..]) {
                    Ok(0) => return Some(Err(Verdict::Dropped)),
                    Ok(n) => {
                        *sent += n;
                        if *sent >= self.request.len() {
                            self.phase = Phase::Receiving {
                                head: [0; STATUS_PREFIX_LEN],
                                len: 0,
                            };
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Some(Err(Verdict::Dropped)),
                },
                Phase::Receiving { head, len } => match self.stream.read(&mut head[*len..]) {
                    Ok(0) if *len == 0 => return Some(Err(Verdict::Dropped)),
                    // Closed before a full status line: not a healthy answer.
                    Ok(0) => return Some(Ok(false)),
                    Ok(n) => {
                        *len += n;
                        match parse_status(&head[..*len]) {
                            StatusLine::Incomplete => {}
                            StatusLine::Status(code) => {
                                return Some(Ok((200..300).contains(&code)))
                            }
                            StatusLine::Invalid => return Some(Ok(false)),
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) if *len == 0 => return Some(Err(Verdict::Dropped)),
                    Err(_) => return Some(Ok(false)),
                },
            }
        }
    }

    /// Over TLS: the request is given to rustls once (it holds it through the handshake), then TLS output
    /// goes out and plaintext comes in until the status line is read, the socket would block, or the
    /// session fails (unhealthy: the proxy's requests would fail the same way).
    #[cfg(feature = "tls")]
    fn step_tls(&mut self) -> Option<Result<bool, Verdict>> {
        let tls = self.tls.as_mut()?;
        if let Phase::Connecting = self.phase {
            if tls.writer().write_all(&self.request).is_err() {
                return Some(Ok(false));
            }
            self.phase = Phase::Receiving {
                head: [0; STATUS_PREFIX_LEN],
                len: 0,
            };
        }
        let Phase::Receiving { head, len } = &mut self.phase else {
            return Some(Ok(false));
        };
        loop {
            while tls.wants_write() {
                match tls.write_tls(&mut self.stream) {
                    Ok(_) => {}
                    // A writable event brings the probe back for the rest.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Some(Ok(false)),
                }
            }
            match tls.reader().read(&mut head[*len..]) {
                Ok(0) => return Some(Ok(false)),
                Ok(n) => {
                    *len += n;
                    match parse_status(&head[..*len]) {
                        StatusLine::Incomplete => continue,
                        StatusLine::Status(code) => return Some(Ok((200..300).contains(&code))),
                        StatusLine::Invalid => return Some(Ok(false)),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return Some(Ok(false)),
            }
            match tls.read_tls(&mut self.stream) {
                Ok(0) => return Some(Ok(false)),
                Ok(_) => {
                    if let Err(e) = tls.process_new_packets() {
                        let _ = tls.write_tls(&mut self.stream);
                        self.tls_failure = Some(e.to_string());
                        return Some(Ok(false));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Some(Ok(false)),
            }
        }
    }

    /// Takes the socket out of the poll before it is closed.
    pub fn close(mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.stream);
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum StatusLine {
    Incomplete,
    Status(u16),
    Invalid,
}

/// Reads the status code from the start of an HTTP/1.x response.
pub fn parse_status(bytes: &[u8]) -> StatusLine {
    const VERSION: &[u8] = b"HTTP/1.";
    let shape_ok = bytes.iter().enumerate().all(|(i, &b)| match i {
        0..=6 => b == VERSION[i],
        7 => b.is_ascii_digit(),
        8 => b == b' ',
        9..=11 => b.is_ascii_digit(),
        _ => true,
    });
    if !shape_ok {
        return StatusLine::Invalid;
    }
    if bytes.len() < STATUS_PREFIX_LEN {
        return StatusLine::Incomplete;
    }
    let code = bytes[9..12]
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    StatusLine::Status(code)
}

#[cfg(test)]
#[path = "probe_tests.rs"]
mod tests;
