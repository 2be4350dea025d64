//! How an HTTP/1 request ends up in the metrics and the access log: what the reactor keeps of a request
//! for its line, and the one record at each place a request ends, which feeds both from one
//! [`ExchangeEnd`]. The session carries its current request's [`Seen`] (only when the log is on) until the
//! request is answered by the proxy, or moves it into the exchange, whose report records it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::metrics::Routed;
use super::session::Exchange;
use super::Reactor;
use crate::access_log::{AccessLog, Parts, Protocol, Record, Seen};
use crate::error::ErrorCode;
use crate::http1::fields::FieldName;
use crate::http1::request::RequestHead;
use crate::http1::Version;
use crate::metrics::{ExchangeEnd, Protocol as MetricsProtocol};
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
    // Both fields in one pass over the head's fields, the first of each name as before.
    let (mut referer, mut user_agent) = (None, None);
    for h in head.headers.iter().filter(|h| h.kind == FieldName::Other) {
        let name = &data[h.name.clone()];
        let slot = match name.len() {
            7 if referer.is_none() && is_name(name, b"referer") => &mut referer,
            10 if user_agent.is_none() && is_name(name, b"user-agent") => &mut user_agent,
            _ => continue,
        };
        *slot = Some(&data[h.value.clone()]);
        if referer.is_some() && user_agent.is_some() {
            break;
        }
    }
    let parts = Parts {
        method: &data[head.method.clone()],
        target: &data[head.target.clone()],
        host: head.authority.clone().map_or(&[][..], |r| &data[r]),
        referer: referer.unwrap_or_default(),
        user_agent: user_agent.unwrap_or_default(),
    };
    let protocol = match head.version {
        Version::Http10 => Protocol::Http10,
        Version::Http11 => Protocol::Http11,
    };
    Some(Seen::new(parts, protocol, now))
}

/// Whether the field name `name` (a token, as the parser checked) is `lower`, which is lower-case letters
/// and `-`: setting bit 5 lowers a token's letters and maps no other token byte onto a letter or `-`,
/// so this needs no case table and no branch per byte.
fn is_name(name: &[u8], lower: &[u8]) -> bool {
    name.len() == lower.len()
        && name
            .iter()
            .zip(lower)
            .fold(0, |diff, (&a, &b)| diff | ((a | 0x20) ^ b))
            == 0
}

/// The request was routed to `backend`; `held` while it starts, which it `woke` (began).
pub(super) fn routed(seen: &mut Option<Box<Seen>>, backend: &Host, (held, woke): (bool, bool)) {
    if let Some(seen) = seen {
        seen.backend = Some(backend.clone());
        seen.held = held;
        seen.woke = woke;
    }
}

/// The request goes to its backend now: its `Seen` moves into the exchange.
pub(super) fn forwarded(seen: Option<Box<Seen>>, now: Instant) -> Option<Box<Seen>> {
    let mut seen = seen?;
    seen.wait_over(now);
    Some(seen)
}

impl Reactor {
    /// Counts and logs an exchange that ended as `end` says (from `report_exchange`).
    pub(super) fn record_exchange(&self, peer: SocketAddr, ex: &Exchange, end: &ExchangeEnd) {
        self.record_request(Some(ex.instance.backend), end);
        if !self.access_log.enabled() {
            return;
        }
        self.access_log.record(
            &Record {
                seen: ex.seen.as_deref(),
                client: peer.ip(),
                request_id: &ex.meta.request_id,
                status: end.status,
                code: end.code,
                bytes_in: end.bytes_in,
                bytes_out: end.bytes_out,
                backend: Some(&ex.host),
                instance: Some(ex.instance.slot),
            },
            self.now,
        );
    }

    /// Counts and logs a request that ended without an exchange: answered by the proxy, or left by its
    /// client while held. An exchange the proxy gave up is `record_exchange`'s instead.
    pub(super) fn record_unexchanged(&self, ended: Unexchanged<'_>) {
        let (status, code, bytes) = match ended.answer {
            Some((status, code, bytes)) => (Some(status), code, bytes as u64),
            None => (None, None, 0),
        };
        let end = ExchangeEnd {
            protocol: MetricsProtocol::Http1,
            status,
            code,
            bytes_in: 0,
            bytes_out: bytes,
            duration: ended.routed.map_or(Duration::ZERO, |(_, since)| {
                self.now.saturating_duration_since(since)
            }),
            head_wait: None,
            cold: None,
        };
        self.record_request(ended.routed.map(|(id, _)| id), &end);
        if !self.access_log.enabled() {
            return;
        }
        // No `Seen` with the log on: the head never parsed, and the line says what is known.
        let mut seen = ended.seen;
        if let Some(seen) = &mut seen {
            seen.wait_over(self.now);
        }
        self.access_log.record(
            &Record {
                seen: seen.as_deref(),
                client: ended.peer.ip(),
                request_id: ended.request_id,
                status: end.status,
                code: end.code,
                bytes_in: 0,
                bytes_out: end.bytes_out,
                backend: seen.as_ref().and_then(|s| s.backend.as_deref()),
                instance: None,
            },
            self.now,
        );
    }
}

/// A request that ended without an exchange, as [`Reactor::record_unexchanged`] takes it.
pub(super) struct Unexchanged<'a> {
    pub peer: SocketAddr,
    /// What its access-log line shows (`None` when the log is off).
    pub seen: Option<Box<Seen>>,
    pub request_id: &'a [u8],
    /// The backend it was routed to, and since when: it counts there, for that long.
    pub routed: Option<Routed>,
    /// The proxy's answer (status, its error code, bytes queued); `None` when the client left first.
    pub answer: Option<(u16, Option<ErrorCode>, usize)>,
}
