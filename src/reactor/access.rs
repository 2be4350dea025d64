//! HTTP/1 access-log lines: what the reactor keeps of a request for its line, and the line at each place
//! a request ends. The session carries its current request's [`Seen`] (only when the log is on) until the
//! request is answered by the proxy, or moves it into the exchange, whose report writes the line.

use std::net::SocketAddr;
use std::time::Instant;

use super::session::{Exchange, Phase, Request, Session};
use crate::access_log::{AccessLog, Parts, Protocol, Record, Seen};
use crate::error::ErrorCode;
use crate::http1::exchange::ExchangeEnd;
use crate::http1::request::RequestHead;
use crate::http1::Version;
use crate::msg::Host;

/// What the line of the request whose head is `head` (in `data`) shows; `None` when the log is off.
pub(super) fn capture(
    log: &AccessLog,
    data: &[u8],
    head: &RequestHead,
    now: Instant,
) -> Option<Box<Seen>> {
    if !log.enabled() {
        return None;
    }
    let field = |name: &[u8]| {
        head.headers
            .iter()
            .find(|h| data[h.name.clone()].eq_ignore_ascii_case(name))
            .map_or(&[][..], |h| &data[h.value.clone()])
    };
    let parts = Parts {
        method: &data[head.method.clone()],
        target: &data[head.target.clone()],
        host: head.authority.clone().map_or(&[][..], |r| &data[r]),
        referer: field(b"referer"),
        user_agent: field(b"user-agent"),
    };
    let protocol = match head.version {
        Version::Http10 => Protocol::Http10,
        Version::Http11 => Protocol::Http11,
    };
    Some(Seen::new(parts, protocol, now))
}

/// The request was routed to `backend`; `held` while it starts.
pub(super) fn routed(seen: &mut Option<Box<Seen>>, backend: &Host, held: bool) {
    if let Some(seen) = seen {
        seen.backend = Some(backend.clone());
        seen.held = held;
    }
}

/// The request goes to its backend now: its `Seen` moves into the exchange.
pub(super) fn forwarded(seen: Option<Box<Seen>>, now: Instant) -> Option<Box<Seen>> {
    let mut seen = seen?;
    seen.wait_over(now);
    Some(seen)
}

/// The line of an exchange, from its report.
pub(super) fn exchange(log: &AccessLog, peer: SocketAddr, ex: &Exchange, end: &ExchangeEnd) {
    if !log.enabled() {
        return;
    }
    log.record(&Record {
        seen: ex.seen.as_deref(),
        client: peer.ip(),
        request_id: &ex.meta.request_id,
        status: end.status,
        code: end.code,
        bytes_in: end.bytes_in,
        bytes_out: end.bytes_out,
        backend: Some(&ex.host),
        instance: Some(ex.instance.slot),
    });
}

/// The line of a request the proxy answered itself (`bytes` queued, `code` for its errors) before any
/// exchange; an exchange it gave up is its report's line instead.
pub(super) fn answered(
    log: &AccessLog,
    session: &mut Session,
    left: &Phase,
    request_id: Option<&[u8]>,
    (status, code): (u16, Option<ErrorCode>),
    bytes: usize,
) {
    if !log.enabled() || matches!(left, Phase::Exchanging(_)) {
        return;
    }
    let mut seen = session.seen.take();
    if let Some(seen) = &mut seen {
        seen.wait_over(Instant::now());
    }
    log.record(&Record {
        seen: seen.as_deref(),
        client: session.peer.ip(),
        request_id: request_id.unwrap_or_default(),
        status: Some(status),
        code,
        bytes_in: 0,
        bytes_out: bytes as u64,
        backend: seen.as_ref().and_then(|s| s.backend.as_deref()),
        instance: None,
    });
}

/// The line of a held request whose client left before its backend was ready: no response.
pub(super) fn abandoned(
    log: &AccessLog,
    peer: SocketAddr,
    mut seen: Option<Box<Seen>>,
    request: &Request,
) {
    if !log.enabled() {
        return;
    }
    if let Some(seen) = &mut seen {
        seen.wait_over(Instant::now());
    }
    log.record(&Record {
        seen: seen.as_deref(),
        client: peer.ip(),
        request_id: &request.meta.request_id,
        status: None,
        code: None,
        bytes_in: 0,
        bytes_out: 0,
        backend: Some(&request.host),
        instance: None,
    });
}
