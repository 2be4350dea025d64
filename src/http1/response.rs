//! Response heads from a backend, held to the same strictness as requests: a response whose end we
//! might judge differently from the client would desynchronise the pooled connection or the client.
//!
//! Refused (the caller answers 502 and drops the backend connection): bare LF line endings, leading
//! empty lines (a backend sending more body than it declared), status codes outside 100..=599, versions
//! other than HTTP/1.0 and HTTP/1.1, ambiguous framing (see [`super::framing`]; any transfer coding
//! besides plain `chunked` included, since the proxy never asks for one), heads over [`MAX_HEAD`] or
//! with more than [`MAX_HEADERS`] fields.

use std::fmt;
use std::mem::MaybeUninit;
use std::ops::Range;

use super::fields::{ConnectionOptions, FieldName};
use super::framing::{self, BodyFields, Role};
use super::head::{has_bare_lf, range_in};
use super::{Framing, Header, Version, MAX_HEAD, MAX_HEADERS};

/// A parsed response head; every range indexes the buffer it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// Head length including the final CRLF CRLF.
    pub len: usize,
    pub status: u16,
    pub version: Version,
    /// The reason phrase (may be empty).
    pub reason: Range<usize>,
    /// In order, as received.
    pub headers: Vec<Header>,
    /// `None` for 1xx, 204, 304 and responses to HEAD; otherwise `Chunked`, `Length`, or `UntilClose`
    /// when neither field is present.
    pub framing: Framing,
    /// The backend connection can be reused after this response: HTTP/1.1, no `Connection: close`, the
    /// body's end is known, and it is not a 101 (the connection becomes a tunnel).
    pub keep_alive: bool,
}

/// Why a backend's response was refused; the client gets 502.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseError {
    pub reason: &'static str,
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid response from backend: {}", self.reason)
    }
}

impl std::error::Error for ResponseError {}

fn refuse<T>(reason: &'static str) -> Result<T, ResponseError> {
    Err(ResponseError { reason })
}

/// Length of `HTTP/1.x 200`: where the reason phrase (or the line's end) begins.
const STATUS_CODE_END: usize = 12;

/// Parses the response head at the start of `buf`; `Ok(None)` means more bytes are needed.
/// `request_was_head` is whether the request this answers was a HEAD (its response has no body).
pub fn parse_response(
    buf: &[u8],
    request_was_head: bool,
) -> Result<Option<ResponseHead>, ResponseError> {
    if matches!(buf.first(), Some(b'\r' | b'\n')) {
        return refuse("empty line before the status line");
    }
    // Uninitialised slots: zeroing a hundred of them for every head costs more than parsing a typical one.
    let mut slots = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut parsed,
        buf,
        &mut slots,
    ) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            return refuse("response head too large")
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return refuse("too many header fields"),
        Err(httparse::Error::Version) => return refuse("unsupported or malformed HTTP version"),
        Err(_) => return refuse("malformed response head"),
    };
    if len > MAX_HEAD {
        return refuse("response head too large");
    }
    let (Some(minor), Some(status)) = (parsed.version, parsed.code) else {
        return refuse("incomplete status line");
    };
    if !(100..=599).contains(&status) {
        return refuse("status code outside 100..=599");
    }
    let head_bytes = &buf[..len];
    if has_bare_lf(head_bytes) {
        return refuse("bare LF line ending");
    }
    let reason = reason_range(head_bytes)?;
    let version = if minor == 0 {
        Version::Http10
    } else {
        Version::Http11
    };
    let mut headers = Vec::with_capacity(parsed.headers.len());
    let mut body = BodyFields::default();
    let mut connection = ConnectionOptions::default();
    for field in parsed.headers.iter() {
        let kind = FieldName::classify(field.name.as_bytes());
        headers.push(Header {
            name: locate(buf, field.name.as_bytes())?,
            value: locate(buf, field.value)?,
            kind,
        });
        match kind {
            FieldName::ContentLength => body.add_content_length(field.value),
            FieldName::TransferEncoding => body.add_transfer_encoding(field.value),
            FieldName::Connection => connection.add(field.value),
            _ => {}
        }
    }
    let role = Role::Response {
        status,
        request_was_head,
    };
    let framing = framing::decide(&body, version, role).map_err(|fault| ResponseError {
        reason: fault.reason(),
    })?;
    let keep_alive = version == Version::Http11
        && !connection.close
        && framing != Framing::UntilClose
        && status != 101;
    Ok(Some(ResponseHead {
        len,
        status,
        version,
        reason,
        headers,
        framing,
        keep_alive,
    }))
}

/// The reason phrase's range, found by position rather than from httparse, which hands back an empty
/// string (not a slice of the buffer) when the phrase has obs-text in it.
fn reason_range(head: &[u8]) -> Result<Range<usize>, ResponseError> {
    let start = match head.get(STATUS_CODE_END) {
        Some(b' ') => STATUS_CODE_END + 1,
        _ => STATUS_CODE_END,
    };
    match head
        .get(start..)
        .and_then(|rest| rest.iter().position(|&b| b == b'\r'))
    {
        Some(len) => Ok(start..start + len),
        None => refuse("malformed status line"),
    }
}

fn locate(buf: &[u8], part: &[u8]) -> Result<Range<usize>, ResponseError> {
    range_in(buf, part).ok_or(ResponseError {
        reason: "unparseable head",
    })
}

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;
