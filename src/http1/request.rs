//! Request heads: `httparse` does the tokenising, this file closes the gaps it leaves to RFC 9112.
//!
//! What `httparse` accepts that we refuse (400 unless noted):
//! * bare LF line endings anywhere in the head (it accepts `\n` for `\r\n`);
//! * leading empty lines are skipped only as CRLF (RFC 9112 section 2.2 allows ignoring them, and clients
//!   that send a stray CRLF after a body exist); they count towards [`MAX_REQUEST_LINE`];
//! * a version other than HTTP/1.0 and HTTP/1.1: 505 if it is well-formed (`HTTP/<digit>.<digit>`), else
//!   400 (`HTTP/1.1x` is malformed, not a version we lack);
//! * a method with anything but upper-case letters, `-` and `_` (nginx refuses the same): methods are
//!   case-sensitive, and a backend that reads `head` as HEAD would answer without the body we wait for,
//!   desynchronising the pooled connection;
//! * targets that are not origin-form, absolute-form (`http`/`https`) or `*` with OPTIONS, non-ASCII or
//!   fragments in targets (see [`super::target`]); CONNECT (authority-form) is 501;
//! * a Host field that is repeated, empty or not an authority, or that disagrees with an absolute-form
//!   target (host compared case-insensitively, port compared as written);
//! * ambiguous framing (see [`super::framing`]; unsupported transfer codings are 501).
//!
//! What it already refuses for us: whitespace between a field name and its colon, obs-fold, control
//! characters (NUL, bare CR, DEL...) in field values, spaces or control characters in the target.

use std::fmt;
use std::mem::MaybeUninit;
use std::ops::Range;

use super::fields::{list_contains, ConnectionOptions, FieldName};
use super::framing::{self, BodyFields, FramingFault, Role};
use super::head::{has_bare_lf, range_in};
use super::request_id::is_acceptable_client_id;
use super::target::{parse_authority, parse_target, TargetForm};
use super::{Framing, Header, Version, MAX_HEAD, MAX_HEADERS, MAX_REQUEST_LINE};
use crate::error::ErrorCode;

/// A parsed request head; every range indexes the buffer it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// Head length including the final CRLF CRLF (and any leading empty lines skipped).
    pub len: usize,
    pub method: Range<usize>,
    pub target: Range<usize>,
    /// The target as it is forwarded: `target` itself, except for absolute-form, where it is the part
    /// after the authority (empty or starting with `?` means a `/` must be written before it).
    pub origin_form: Range<usize>,
    pub version: Version,
    /// In order, as received.
    pub headers: Vec<Header>,
    /// The host part of the authority (no port; brackets kept for IPv6), original case: from the
    /// absolute-form target if any, else from the Host field. `None` when HTTP/1.1 has no Host field
    /// (the caller answers 400 MISSING_HOST_HEADER), even with an absolute-form target (RFC 9112
    /// section 3.2 requires Host in every HTTP/1.1 request).
    pub host: Option<Range<usize>>,
    /// The authority as the client sent it (host and port), for X-Forwarded-Host: the Host field's value,
    /// or the absolute-form target's authority when there is no Host field (HTTP/1.0).
    pub authority: Option<Range<usize>>,
    /// `None`, `Length(n)` or `Chunked`; never `UntilClose`.
    pub framing: Framing,
    /// HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive` (and no close).
    pub keep_alive: bool,
    /// HTTP/1.1, Connection has the `upgrade` option, an Upgrade field is present, and no offered
    /// protocol is h2c (which is answered over HTTP/1.1 instead).
    pub upgrade: bool,
    /// `Expect: 100-continue` in an HTTP/1.1 request (RFC 9110 section 10.1.1 says to ignore it in 1.0).
    pub expect_continue: bool,
    /// The method is HEAD, so the response has no body.
    pub is_head: bool,
    /// The client's X-Request-ID, if there is exactly one and it is acceptable.
    pub request_id: Option<Header>,
    /// Any X-Forwarded-For field is present (the rewrite merges them and appends the client).
    pub x_forwarded_for: bool,
}

/// Why a request head was refused; the connection is answered with `code` and closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestError {
    pub code: ErrorCode,
    pub reason: &'static str,
}

impl RequestError {
    fn bad(reason: &'static str) -> Self {
        RequestError {
            code: ErrorCode::BadRequest,
            reason,
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.code.status(), self.reason)
    }
}

impl std::error::Error for RequestError {}

/// Length of `HTTP/1.x` followed by CRLF: the request line's tail after the target and its space.
const VERSION_AND_CRLF: usize = 10;

/// Parses the request head at the start of `buf`. `Ok(None)` means more bytes are needed; bytes after
/// the head (a body, pipelined requests) are left alone.
pub fn parse_request(buf: &[u8]) -> Result<Option<RequestHead>, RequestError> {
    // Uninitialised slots: zeroing a hundred of them for every head costs more than parsing a typical one.
    let mut slots = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut []);
    let len = match parsed.parse_with_uninit_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return partial_limits(buf, parsed.version.is_some()).map(|()| None)
        }
        Err(httparse::Error::Version) => {
            return match version_shape(buf, parsed.path) {
                VersionShape::Incomplete => partial_limits(buf, false).map(|()| None),
                VersionShape::Unsupported => Err(RequestError {
                    code: ErrorCode::VersionNotSupported,
                    reason: "only HTTP/1.0 and HTTP/1.1 are supported",
                }),
                VersionShape::Malformed => Err(RequestError::bad("malformed HTTP version")),
            }
        }
        Err(error) => return Err(map_parse_error(error)),
    };
    let (Some(method), Some(target), Some(minor)) = (parsed.method, parsed.path, parsed.version)
    else {
        return Err(RequestError::bad("incomplete request line"));
    };
    if len > MAX_HEAD {
        return Err(too_large());
    }
    let target = locate(buf, target.as_bytes())?;
    if target.end + 1 + VERSION_AND_CRLF > MAX_REQUEST_LINE {
        return Err(uri_too_long());
    }
    if has_bare_lf(&buf[..len]) {
        return Err(RequestError::bad("bare LF line ending"));
    }
    if !method.bytes().all(is_method_byte) {
        return Err(RequestError::bad(
            "method is not upper-case letters, '-' and '_'",
        ));
    }
    let method = locate(buf, method.as_bytes())?;
    let version = if minor == 0 {
        Version::Http10
    } else {
        Version::Http11
    };
    let mut head = RequestHead {
        len,
        is_head: &buf[method.clone()] == b"HEAD",
        method,
        origin_form: target.clone(),
        target,
        version,
        headers: Vec::with_capacity(parsed.headers.len()),
        host: None,
        authority: None,
        framing: Framing::None,
        keep_alive: false,
        upgrade: false,
        expect_continue: false,
        request_id: None,
        x_forwarded_for: false,
    };
    let form = check_target(buf, &head)?;
    let fields = scan_headers(buf, parsed.headers, &mut head)?;
    resolve_host(buf, &mut head, form, fields.host)?;
    head.framing =
        framing::decide(&fields.body, version, Role::Request).map_err(|fault| match fault {
            FramingFault::Malformed(reason) => RequestError::bad(reason),
            FramingFault::Unsupported(reason) => RequestError {
                code: ErrorCode::NotImplemented,
                reason,
            },
        })?;
    let options = fields.connection;
    head.keep_alive = !options.close && (version == Version::Http11 || options.keep_alive);
    head.upgrade = version == Version::Http11 && options.upgrade && fields.upgrade_offered;
    head.upgrade &= !fields.h2c_offered;
    head.expect_continue &= version == Version::Http11;
    Ok(Some(head))
}

/// Limits that apply while the head is still incomplete. Both are also checked on complete heads, so
/// the answer does not depend on how the bytes were split across reads.
fn partial_limits(buf: &[u8], request_line_done: bool) -> Result<(), RequestError> {
    if !request_line_done && buf.len() >= MAX_REQUEST_LINE {
        return Err(uri_too_long());
    }
    if buf.len() >= MAX_HEAD {
        return Err(too_large());
    }
    Ok(())
}

fn map_parse_error(error: httparse::Error) -> RequestError {
    match error {
        httparse::Error::TooManyHeaders => RequestError {
            code: ErrorCode::HeaderFieldsTooLarge,
            reason: "too many header fields",
        },
        httparse::Error::Version => RequestError::bad("malformed HTTP version"),
        httparse::Error::NewLine => RequestError::bad("malformed line ending"),
        httparse::Error::HeaderName => RequestError::bad("malformed header field name"),
        httparse::Error::HeaderValue => RequestError::bad("malformed header field value"),
        httparse::Error::Token | httparse::Error::Status => {
            RequestError::bad("malformed request line")
        }
    }
}

/// What a version httparse refused looks like, judged on the whole `HTTP/<digit>.<digit>` CRLF so the
/// answer does not depend on how the request line was split across reads.
#[derive(Debug, PartialEq, Eq)]
enum VersionShape {
    /// A prefix of a well-formed version: wait for more bytes.
    Incomplete,
    /// Well-formed, just not 1.0 or 1.1 (505).
    Unsupported,
    /// Anything else (400).
    Malformed,
}

fn version_shape(buf: &[u8], target: Option<&str>) -> VersionShape {
    let Some(target) = target.and_then(|t| range_in(buf, t.as_bytes())) else {
        return VersionShape::Malformed;
    };
    let version = buf.get(target.end + 1..).unwrap_or_default();
    let fits = |(i, &b): (usize, &u8)| match i {
        0..=4 => b == b"HTTP/"[i],
        5 | 7 => b.is_ascii_digit(),
        6 => b == b'.',
        8 => b == b'\r',
        _ => b == b'\n',
    };
    const WELL_FORMED_LEN: usize = 10;
    let checked = version.len().min(WELL_FORMED_LEN);
    if !version[..checked].iter().enumerate().all(fits) {
        VersionShape::Malformed
    } else if checked < WELL_FORMED_LEN {
        VersionShape::Incomplete
    } else {
        VersionShape::Unsupported
    }
}

/// The method bytes nginx accepts (`ngx_http_parse_request_line`): a strict subset of `tchar`.
fn is_method_byte(b: u8) -> bool {
    b.is_ascii_uppercase() || b == b'-' || b == b'_'
}

fn check_target(buf: &[u8], head: &RequestHead) -> Result<TargetForm, RequestError> {
    let method = &buf[head.method.clone()];
    if method == b"CONNECT" {
        return Err(RequestError {
            code: ErrorCode::NotImplemented,
            reason: "CONNECT is not supported",
        });
    }
    let form = parse_target(&buf[head.target.clone()]).map_err(RequestError::bad)?;
    if form == TargetForm::Asterisk && method != b"OPTIONS" {
        return Err(RequestError::bad("asterisk-form target without OPTIONS"));
    }
    Ok(form)
}

/// What the header scan found besides what it writes straight into the head.
#[derive(Default)]
struct Scanned<'b> {
    host: Option<Range<usize>>,
    body: BodyFields<'b>,
    connection: ConnectionOptions,
    upgrade_offered: bool,
    h2c_offered: bool,
}

fn scan_headers<'b>(
    buf: &'b [u8],
    parsed: &[httparse::Header<'b>],
    head: &mut RequestHead,
) -> Result<Scanned<'b>, RequestError> {
    let mut found = Scanned::default();
    let mut request_ids = 0usize;
    for field in parsed {
        let header = Header {
            name: locate(buf, field.name.as_bytes())?,
            value: locate(buf, field.value)?,
            kind: FieldName::classify(field.name.as_bytes()),
        };
        let value = field.value;
        match header.kind {
            FieldName::Host if found.host.is_some() => {
                return Err(RequestError::bad("more than one Host field"))
            }
            FieldName::Host => found.host = Some(header.value.clone()),
            FieldName::ContentLength => found.body.add_content_length(value),
            FieldName::TransferEncoding => found.body.add_transfer_encoding(value),
            FieldName::Connection => found.connection.add(value),
            FieldName::Upgrade => {
                found.upgrade_offered = true;
                found.h2c_offered |= list_contains(value, b"h2c");
            }
            FieldName::Expect => {
                head.expect_continue |= value.eq_ignore_ascii_case(b"100-continue")
            }
            FieldName::XRequestId => {
                request_ids += 1;
                head.request_id = Some(header.clone()).filter(|_| is_acceptable_client_id(value));
            }
            FieldName::XForwardedFor => head.x_forwarded_for = true,
            _ => {}
        }
        head.headers.push(header);
    }
    if request_ids > 1 {
        head.request_id = None;
    }
    Ok(found)
}

/// Validates the Host field and reconciles it with an absolute-form target.
fn resolve_host(
    buf: &[u8],
    head: &mut RequestHead,
    form: TargetForm,
    host_field: Option<Range<usize>>,
) -> Result<(), RequestError> {
    let from_field = match &host_field {
        Some(value) => {
            let authority = parse_authority(&buf[value.clone()])
                .ok_or(RequestError::bad("Host is empty or not a valid authority"))?;
            Some((value.start, authority))
        }
        None => None,
    };
    head.authority = host_field;
    head.host = from_field
        .as_ref()
        .map(|(at, a)| at + a.host.start..at + a.host.end);
    let TargetForm::Absolute {
        authority,
        host,
        port,
        path,
    } = form
    else {
        return Ok(());
    };
    let at = head.target.start;
    head.origin_form = at + path.start..at + path.end;
    let Some((field_at, field)) = from_field else {
        if head.version == Version::Http10 {
            head.host = Some(at + host.start..at + host.end);
            head.authority = Some(at + authority.start..at + authority.end);
        }
        return Ok(());
    };
    let target = &buf[head.target.clone()];
    let field_value = &buf[field_at..];
    let same_host = target[host].eq_ignore_ascii_case(&field_value[field.host.clone()]);
    let same_port = port.map(|p| &target[p]) == field.port.map(|p| &field_value[p]);
    if !(same_host && same_port) {
        return Err(RequestError::bad("Host disagrees with the request target"));
    }
    Ok(())
}

fn locate(buf: &[u8], part: &[u8]) -> Result<Range<usize>, RequestError> {
    range_in(buf, part).ok_or(RequestError::bad("unparseable head"))
}

fn uri_too_long() -> RequestError {
    RequestError {
        code: ErrorCode::UriTooLong,
        reason: "request line too long",
    }
}

fn too_large() -> RequestError {
    RequestError {
        code: ErrorCode::HeaderFieldsTooLarge,
        reason: "request head too large",
    }
}

#[cfg(test)]
#[path = "request_tests/mod.rs"]
mod tests;
