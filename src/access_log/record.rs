//! What one access-log line says: the request as the client sent it ([`Seen`], captured once when the log
//! is on) and how it ended ([`Record`], borrowed from the thread that served it).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::error::ErrorCode;
use crate::msg::Host;
use crate::sessions::gate;

/// The protocol a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http10,
    Http11,
    Http2,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http10 => "HTTP/1.0",
            Protocol::Http11 => "HTTP/1.1",
            Protocol::Http2 => "HTTP/2",
        }
    }
}

/// Longest target kept; a longer one is cut (heads may be 64 KiB, a log line should not).
pub const MAX_TARGET: usize = 4_096;
/// Longest method, host, referer or user agent kept.
pub const MAX_FIELD: usize = 512;
/// What replaces the query of a request to the proxy's own paths (`/.spawngate/...`), whose query may
/// carry a session token.
pub const REDACTED_QUERY: &[u8] = b"?REDACTED";

/// The parts of a request a log line shows, copied out of the head in one allocation (made only when the
/// log is on). Client bytes are kept as they came; the formatter escapes them.
#[derive(Debug, Clone)]
pub struct Seen {
    bytes: Vec<u8>,
    /// Where method, target, host, referer and user agent end in `bytes`.
    ends: [usize; 5],
    pub protocol: Protocol,
    /// When the request head was complete.
    pub started: Instant,
    /// How long it was held while its backend started; `None` when it did not wait.
    pub waited: Option<Duration>,
    /// The backend it was routed to, once routed.
    pub backend: Option<Host>,
    /// It was held for its backend to start (`waited` is set when that wait ends).
    pub held: bool,
    /// Its arrival is what started the backend: the proxy's log names its request id with the start.
    pub woke: bool,
}

/// The request's parts, as the client sent them (empty when absent).
#[derive(Debug, Clone, Copy, Default)]
pub struct Parts<'a> {
    pub method: &'a [u8],
    pub target: &'a [u8],
    pub host: &'a [u8],
    pub referer: &'a [u8],
    pub user_agent: &'a [u8],
}

impl Seen {
    /// Copies `parts`, each cut to its bound, with the query of a target (or referer) on the proxy's own
    /// paths replaced by [`REDACTED_QUERY`].
    pub fn new(parts: Parts<'_>, protocol: Protocol, started: Instant) -> Box<Seen> {
        Box::new(Seen::capture(parts, protocol, started))
    }

    /// [`Seen::new`] without the box, for a holder that keeps it in place (an h2 stream's record).
    pub fn capture(parts: Parts<'_>, protocol: Protocol, started: Instant) -> Seen {
        let mut bytes = Vec::with_capacity(
            parts.method.len().min(MAX_FIELD)
                + parts.target.len().min(MAX_TARGET + REDACTED_QUERY.len())
                + parts.host.len().min(MAX_FIELD)
                + parts.referer.len().min(MAX_FIELD + REDACTED_QUERY.len())
                + parts.user_agent.len().min(MAX_FIELD),
        );
        let mut ends = [0; 5];
        push_capped(&mut bytes, parts.method, MAX_FIELD);
        ends[0] = bytes.len();
        push_redacted(&mut bytes, parts.target, MAX_TARGET);
        ends[1] = bytes.len();
        push_capped(&mut bytes, parts.host, MAX_FIELD);
        ends[2] = bytes.len();
        push_redacted(&mut bytes, parts.referer, MAX_FIELD);
        ends[3] = bytes.len();
        push_capped(&mut bytes, parts.user_agent, MAX_FIELD);
        ends[4] = bytes.len();
        Seen {
            bytes,
            ends,
            protocol,
            started,
            waited: None,
            backend: None,
            held: false,
            woke: false,
        }
    }

    /// Bytes of client text kept, all parts together.
    pub fn kept(&self) -> usize {
        self.bytes.len()
    }

    fn part(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    pub fn method(&self) -> &[u8] {
        self.part(0)
    }
    pub fn target(&self) -> &[u8] {
        self.part(1)
    }
    pub fn host(&self) -> &[u8] {
        self.part(2)
    }
    pub fn referer(&self) -> &[u8] {
        self.part(3)
    }
    pub fn user_agent(&self) -> &[u8] {
        self.part(4)
    }

    /// The request stops waiting now (forwarded, or answered by the proxy): a held one waited since it
    /// began.
    pub fn wait_over(&mut self, now: Instant) {
        if self.held && self.waited.is_none() {
            self.waited = Some(now.saturating_duration_since(self.started));
        }
    }
}

fn push_capped(out: &mut Vec<u8>, bytes: &[u8], max: usize) {
    out.extend_from_slice(&bytes[..bytes.len().min(max)]);
}

/// A target (origin- or absolute-form) or a referer URL, its query replaced when its path is (or may be)
/// the proxy's own.
fn push_redacted(out: &mut Vec<u8>, url: &[u8], max: usize) {
    let Some(query_at) = url.iter().position(|&b| b == b'?') else {
        return push_capped(out, url, max);
    };
    if gate::may_be_proxy_path(path_of(&url[..query_at])) {
        push_capped(out, &url[..query_at], max);
        out.extend_from_slice(REDACTED_QUERY);
    } else {
        push_capped(out, url, max);
    }
}

/// The path of an absolute URL (after `scheme://authority`), or the input itself.
fn path_of(url: &[u8]) -> &[u8] {
    let Some(scheme_end) = url.windows(3).position(|w| w == b"://") else {
        return url;
    };
    let rest = &url[scheme_end + 3..];
    match rest.iter().position(|&b| b == b'/') {
        Some(at) => &rest[at..],
        None => b"/",
    }
}

/// How one request ended, borrowed from the thread that served it. Unknown parts are `None` (or an
/// empty `request_id`); without `seen` the request line was never read.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub seen: Option<&'a Seen>,
    pub client: IpAddr,
    pub request_id: &'a [u8],
    /// The status sent; `None` when the client got no response head.
    pub status: Option<u16>,
    /// Set when the proxy answered itself (or gave up) with one of its errors.
    pub code: Option<ErrorCode>,
    /// Request body bytes taken from the client.
    pub bytes_in: u64,
    /// Bytes sent to the client (HTTP/1: head and body; HTTP/2: body).
    pub bytes_out: u64,
    /// The backend's name, once the request was routed to one.
    pub backend: Option<&'a str>,
    /// The instance (its slot in the backend) that served it.
    pub instance: Option<u32>,
}
