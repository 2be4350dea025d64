//! A client connection and the phase it is in.
//!
//! ```text
//!            ┌──────────── keep-alive / pipelined ───────────────┐
//!            ▼                                                   │
//!  ReadingHead ──head──▶ Holding ──backend ready──▶ Exchanging ──┤──▶ Tunnel (after a 101)
//!            │            │                          │           │
//!            └─error──────┴──────────error───────────┴──────▶ Closing (flush, then close)
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::buffer::Buffer;
use super::client_stream::ClientStream;
use super::timers::Deadline;
use crate::access_log::Seen;
pub use crate::http1::exchange::ResponsePhase;
use crate::http1::exchange::{HeadReader, RequestHalf};
use crate::http1::rewrite::ResponseContext;
use crate::http1::{Framing, Version};
use crate::msg::{Host, Lease};
use crate::upstream::{BackendId, InstanceId};

/// Room for one request head plus the start of its body; also the most that is read ahead from a client.
pub const CLIENT_BUFFER: usize = 64 * 1024;

pub struct Session {
    pub serial: u64,
    pub client: ClientStream,
    pub peer: SocketAddr,
    pub inbuf: Buffer,
    /// Bytes for the client that the proxy produced (response heads, error responses), written before any
    /// body bytes that follow them.
    pub out: Vec<u8>,
    pub out_pos: usize,
    pub phase: Phase,
    pub deadline: Deadline,
    /// Requests served on this connection so far.
    pub served: u64,
    /// What the access log shows of the current request, until its line is written or its exchange
    /// takes it (`None` when the log is off).
    pub seen: Option<Box<Seen>>,
}

pub enum Phase {
    /// Waiting for a request head; `since` is when the connection went idle or the head began; `reader`
    /// finds the head in the bytes.
    ReadingHead {
        since: Instant,
        head_started: bool,
        reader: HeadReader,
    },
    /// Parsed, waiting for its backend to become ready until `until`. (The request is boxed, like
    /// `Exchanging`, so an idle keep-alive connection costs only the small phases' size.)
    Holding {
        request: Box<Request>,
        until: Instant,
    },
    Exchanging(Box<Exchange>),
    Tunnel(Tunnel),
    /// Flush `out`, half-close (`shut`), then close once the client is done (or `LINGER` after `since`).
    Closing {
        since: Instant,
        shut: bool,
    },
}

impl Phase {
    /// Waiting for the next request head, idle since `now`.
    pub fn reading(now: Instant) -> Phase {
        Phase::ReadingHead {
            since: now,
            head_started: false,
            reader: HeadReader::default(),
        }
    }

    /// Closing from `now`: what is queued goes out, then the connection ends.
    pub fn closing(now: Instant) -> Phase {
        Phase::Closing {
            since: now,
            shut: false,
        }
    }

    /// After a proxy-made answer: closing, or waiting for the next request.
    pub fn after_answer(close: bool, now: Instant) -> Phase {
        if close {
            Phase::closing(now)
        } else {
            Phase::reading(now)
        }
    }
}

/// A parsed request, re-serialised for the backend and not yet sent.
pub struct Request {
    pub backend: BackendId,
    /// The backend's name, for logs and error messages.
    pub host: Host,
    /// The forwarded head, already rewritten.
    pub head: Vec<u8>,
    pub meta: RequestMeta,
}

/// What the proxy must remember about a request while it is forwarded.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub version: Version,
    pub framing: Framing,
    pub keep_alive: bool,
    pub upgrade: bool,
    pub is_head: bool,
    pub request_id: Vec<u8>,
    pub started: Instant,
    /// Held while its backend started (a cold start, for the exchange's report).
    pub cold: bool,
    /// The largest body forwarded (the route's limit, or the server's).
    pub max_body: Option<u64>,
    /// The route's own time for the response head, over the backend's.
    pub request_timeout: Option<Duration>,
    /// The route's response edits and what they read (`None` for routes without).
    pub editing: Option<Box<ResponseContext>>,
}

impl RequestMeta {
    pub fn has_body(&self) -> bool {
        !matches!(self.framing, Framing::None | Framing::Length(0))
    }

    /// Whether answering this request instead of forwarding it closes the connection (none of its
    /// body has been read: [`close_after_answer`]).
    pub fn close_after_refusal(&self) -> bool {
        close_after_answer(self.has_body(), self.keep_alive, false)
    }
}

pub struct Exchange {
    pub instance: InstanceId,
    pub host: Host,
    /// Counts the exchange in flight on its instance; a tunnel takes it over.
    pub lease: Option<Lease>,
    pub upstream: usize,
    /// The connection came from the pool: if it turns out dead before any response byte, one retry on a
    /// fresh connection is safe for a request without a body.
    pub reused: bool,
    pub meta: RequestMeta,
    /// The forwarded head and the client's body on their way to the backend.
    pub request: RequestHalf,
    pub response: ResponsePhase,
    /// Where the final response head starts in the session's `out`, to take it back if the body breaks
    /// before anything was sent.
    pub response_head_at: usize,
    /// The client connection goes on after this exchange.
    pub client_keep_alive: bool,
    /// Until the response head arrives: when to answer 504.
    pub response_deadline: Option<Instant>,
    /// While the request body streams: the last time the client sent some of it (a client that stalls
    /// longer than the header read timeout is cut off, so a trickled body cannot pin a connection).
    pub client_progress: Instant,
    /// The final (or 101) status once its head is queued for the client.
    pub status: Option<u16>,
    /// Bytes written to the client during this exchange.
    pub bytes_out: u64,
    /// The request as its access-log line shows it (`None` when the log is off).
    pub seen: Option<Box<Seen>>,
    /// From the request head to the backend's response head, once it came.
    pub head_wait: Option<Duration>,
    /// How long the request was held while its backend started.
    pub cold: Option<Duration>,
    /// The backend's `server_timing`: say `cold` in the response head.
    pub server_timing: bool,
}

impl Exchange {
    pub fn request_complete(&self) -> bool {
        self.request.is_complete()
    }
}

pub struct Tunnel {
    pub instance: InstanceId,
    pub host: Host,
    /// Counts the tunnel in flight on its instance until it closes.
    pub lease: Option<Lease>,
    pub upstream: usize,
    pub client_shut: bool,
    pub upstream_shut: bool,
}

impl Session {
    pub fn new(serial: u64, client: ClientStream, peer: SocketAddr, now: Instant) -> Self {
        Session {
            serial,
            client,
            peer,
            inbuf: Buffer::new(CLIENT_BUFFER),
            out: Vec::new(),
            out_pos: 0,
            phase: Phase::reading(now),
            deadline: Deadline::default(),
            served: 0,
            seen: None,
        }
    }

    /// Every phase change goes through here: `next` takes the current phase's place, and the phase left
    /// is handed back by value, so its parts (a backend connection to release, a held request to forward)
    /// are moved on rather than copied or forgotten.
    pub fn enter(&mut self, next: Phase) -> Phase {
        std::mem::replace(&mut self.phase, next)
    }

    /// Queues a proxy-made answer (`bytes`) and moves on after it: closing when `close`, otherwise waiting
    /// for the next request. Returns the phase left. Over TLS, `hsts` (`hsts_max_age_secs`) adds
    /// `Strict-Transport-Security` as on the backends' responses: every proxy-made HTTP/1 answer passes
    /// here.
    pub fn answer(&mut self, bytes: &[u8], close: bool, now: Instant, hsts: Option<u64>) -> Phase {
        let at = self.out.len();
        self.out.extend_from_slice(bytes);
        #[cfg(feature = "tls")]
        if let (true, Some(age)) = (self.client.is_tls(), hsts) {
            super::https::add_hsts(&mut self.out, at, age);
        }
        #[cfg(not(feature = "tls"))]
        let _ = (at, hsts);
        self.enter(Phase::after_answer(close, now))
    }

    pub fn out_pending(&self) -> &[u8] {
        &self.out[self.out_pos..]
    }

    pub fn consume_out(&mut self, n: usize) {
        consume_out(&mut self.out, &mut self.out_pos, n);
    }
}

/// Marks `n` more proxy-made bytes as written (a free function so callers can hold other fields borrowed).
pub fn consume_out(out: &mut Vec<u8>, pos: &mut usize, n: usize) {
    *pos += n;
    if *pos >= out.len() {
        out.clear();
        *pos = 0;
    }
}

/// The one rule for a request the proxy answers itself (refused, timed out, or an exchange given up):
/// the connection closes when the client asked for that, when it has stopped sending, or when request
/// body bytes are left unread (they cannot be told from the next request's).
pub fn close_after_answer(body_unread: bool, keep_alive: bool, client_done: bool) -> bool {
    body_unread || !keep_alive || client_done
}
