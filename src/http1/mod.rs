//! Sans-IO HTTP/1.1: bytes in, a parsed head or a framing decision out. No sockets, no clocks.
//!
//! * [`detect`]: HTTP/2 prior-knowledge preface or HTTP/1 from a connection's first bytes.
//! * [`request`] / [`response`]: heads via `httparse`, plus the RFC 9112 checks `httparse` leaves to us
//!   (bare LF, Host rules, one framing rule for the body length).
//! * [`framing`]: the one RFC 9112 section 6.3 decision (Transfer-Encoding / Content-Length), shared by
//!   requests and responses; [`fields`]: header names we act on and list syntax; [`target`]: request
//!   targets and authorities.
//! * [`body`]: how many of the next bytes belong to the current message body (length, chunked, until close).
//! * [`chunked`]: a strict chunked-coding decoder, one state per byte class.
//! * [`exchange`]: the response half of a forwarded exchange as a machine: heads, interim answers, the
//!   keep-alive decision, the body relayed, the end.
//! * [`rewrite`]: the heads forwarded upstream or downstream, re-serialised from the parsed form; the one
//!   writer of every request head sent to a backend, for HTTP/1 and h2 requests alike, steered by a
//!   route's [`rewrite::ForwardPlan`].
//! * [`head_scan`]: when a growing head is worth parsing, so a trickled head costs its size, not its square.
//! * [`path`]: one spelling for every path (dot-segments, escapes, empty segments), for matching and
//!   forwarding alike.
//! * [`request_id`]: `X-Request-ID` values.
//!
//! Heads keep their fields as byte ranges into the caller's buffer (no copies); the caller keeps that
//! buffer unchanged until it has rewritten the head.

pub mod body;
pub mod chunked;
pub mod detect;
pub mod exchange;
pub mod fields;
pub mod framing;
mod head;
pub mod head_scan;
pub mod path;
pub mod request;
pub mod request_id;
pub mod response;
pub mod rewrite;
pub mod target;

use std::ops::Range;

/// Most header fields accepted in one head (more is 431).
pub const MAX_HEADERS: usize = 100;
/// Longest request line (more is 414): generous for long query strings, small enough to bound memory.
pub const MAX_REQUEST_LINE: usize = 8 * 1024;
/// Largest head, request or response (more is 431 for requests, 502 for responses).
pub const MAX_HEAD: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// One header field as byte ranges into the buffer the head was parsed from, with what the proxy
/// knows its name to be (classified once, at parse time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: Range<usize>,
    pub value: Range<usize>,
    pub kind: fields::FieldName,
}

/// How the body of a message is delimited (RFC 9112 section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body at all.
    None,
    /// Exactly this many bytes (may be 0).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Responses only: everything until the backend closes.
    UntilClose,
}
