//! The heads the proxy forwards, re-serialised from their parsed form: always CRLF, one field per line,
//! field names in the case they arrived in, values unchanged except the two framing fields, which are
//! written in their canonical form (`Transfer-Encoding: chunked`, `Content-Length` without leading
//! zeros): the parser accepted `Chunked` or `007` as RFC 9112 allows, but a lax or case-sensitive
//! peer could read them differently, so the peer gets the one spelling every parser agrees on.
//!
//! Hop-by-hop fields (RFC 9110 section 7.6.1) are dropped: `Connection`, every field it names,
//! `Keep-Alive`, `Proxy-Connection`, `TE` and `Upgrade` (kept, with `Connection: Upgrade`, for an
//! upgrade). `Trailer` is not hop-by-hop in RFC 9110 and stays, as the trailer section is relayed
//! verbatim. `Transfer-Encoding` stays for the same reason, and neither it, `Content-Length` nor `Host`
//! is ever dropped because `Connection` names it: a client must not be able to strip the framing of a
//! body we forward. `Connection` may name at most [`MAX_NOMINATED_FIELDS`] other fields; further names are
//! ignored (those fields are forwarded).

use std::io::Write;
use std::net::IpAddr;
use std::ops::Range;

use super::fields::{list_elements, FieldName};
use super::head::range_in;
use super::request::RequestHead;
use super::response::ResponseHead;
use super::{Framing, Header, Version};

/// Field names `Connection` may nominate for removal that we track: real requests name one or two; the
/// bound keeps the check a fixed, small cost per field whatever a peer sends.
pub const MAX_NOMINATED_FIELDS: usize = 32;

/// What the proxy adds to a forwarded request.
#[derive(Debug, Clone, Copy)]
pub struct ForwardInfo<'a> {
    pub client_ip: IpAddr,
    pub request_id: &'a [u8],
    /// `X-Forwarded-Proto`: `http` (or `https` behind a TLS terminator).
    pub proto: &'a str,
}

/// Writes the request head forwarded to a backend. The request line keeps the method and the client's
/// version; an absolute-form target is sent in origin form. `X-Forwarded-For` (the client's chain with
/// the client appended), `X-Forwarded-Host` (the authority as the client sent it), `X-Forwarded-Proto`
/// and `X-Request-ID` replace whatever the client sent under those names. A request without a Host
/// field (HTTP/1.0 with an absolute-form target) gets one from its target.
pub fn write_request(buf: &[u8], head: &RequestHead, info: &ForwardInfo, out: &mut Vec<u8>) {
    out.reserve(head.len + 256);
    out.extend_from_slice(&buf[head.method.clone()]);
    out.push(b' ');
    let target = &buf[head.origin_form.clone()];
    if !matches!(target.first(), Some(b'/' | b'*')) {
        out.push(b'/');
    }
    out.extend_from_slice(target);
    out.push(b' ');
    out.extend_from_slice(version_text(head.version));
    out.extend_from_slice(b"\r\n");

    let nominated = Nominated::collect(buf, &head.headers);
    let mut has_host = false;
    let mut forwarded_for: Vec<Range<usize>> = Vec::new();
    for header in &head.headers {
        let keep = match header.kind {
            FieldName::Host => {
                has_host = true;
                true
            }
            FieldName::ContentLength | FieldName::TransferEncoding => {
                write_framing_field(out, buf, header);
                false
            }
            FieldName::Upgrade => head.upgrade,
            FieldName::XForwardedFor => {
                if !nominated.names(buf, header) && !buf[header.value.clone()].is_empty() {
                    forwarded_for.push(header.value.clone());
                }
                false
            }
            FieldName::XForwardedHost | FieldName::XForwardedProto | FieldName::XRequestId => false,
            FieldName::Expect | FieldName::Other => !nominated.names(buf, header),
            hop_by_hop => !hop_by_hop.is_hop_by_hop(),
        };
        if keep {
            write_field(out, &buf[header.name.clone()], &buf[header.value.clone()]);
        }
    }
    if head.upgrade {
        out.extend_from_slice(b"Connection: Upgrade\r\n");
    }
    if let (false, Some(authority)) = (has_host, &head.authority) {
        write_field(out, b"Host", &buf[authority.clone()]);
    }
    out.extend_from_slice(b"X-Forwarded-For: ");
    for chain in &forwarded_for {
        out.extend_from_slice(&buf[chain.clone()]);
        out.extend_from_slice(b", ");
    }
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{}\r\n", info.client_ip.to_canonical());
    if let Some(authority) = &head.authority {
        write_field(out, b"X-Forwarded-Host", &buf[authority.clone()]);
    }
    write_field(out, b"X-Forwarded-Proto", info.proto.as_bytes());
    write_field(out, b"X-Request-ID", info.request_id);
    out.extend_from_slice(b"\r\n");
}

/// Writes the response head forwarded to the client: `HTTP/1.1 {status} {reason}`, hop-by-hop fields
/// dropped, the backend's X-Request-ID replaced by ours, then the connection's fate: `Connection: close`
/// when `close`, else `Connection: keep-alive` for an HTTP/1.0 client (HTTP/1.1 needs nothing).
/// A 101 keeps `Upgrade` and says `Connection: Upgrade`; other 1xx heads are interim and get no
/// connection or id fields. `Transfer-Encoding` is kept except where RFC 9112 section 6.1 forbids it
/// (1xx, 204); a response to HEAD keeps it to describe the body it would have had.
pub fn write_response(
    buf: &[u8],
    head: &ResponseHead,
    request_id: &[u8],
    client_version: Version,
    close: bool,
    out: &mut Vec<u8>,
) {
    out.reserve(head.len + 128);
    // Writing into a Vec cannot fail.
    let _ = write!(out, "HTTP/1.1 {} ", head.status);
    out.extend_from_slice(&buf[head.reason.clone()]);
    out.extend_from_slice(b"\r\n");

    let switching = head.status == 101;
    let interim = (100..200).contains(&head.status) && !switching;
    let transfer_encoding_allowed =
        head.framing == Framing::Chunked || !(interim || switching || head.status == 204);
    let nominated = Nominated::collect(buf, &head.headers);
    for header in &head.headers {
        let keep = match header.kind {
            FieldName::TransferEncoding => {
                if transfer_encoding_allowed {
                    write_framing_field(out, buf, header);
                }
                false
            }
            FieldName::ContentLength => {
                write_framing_field(out, buf, header);
                false
            }
            FieldName::Upgrade => switching,
            FieldName::XRequestId => false,
            hop_by_hop if hop_by_hop.is_hop_by_hop() => false,
            _ => !nominated.names(buf, header),
        };
        if keep {
            write_field(out, &buf[header.name.clone()], &buf[header.value.clone()]);
        }
    }
    if !interim {
        write_field(out, b"X-Request-ID", request_id);
        if switching {
            out.extend_from_slice(b"Connection: Upgrade\r\n");
        } else if close {
            out.extend_from_slice(b"Connection: close\r\n");
        } else if client_version == Version::Http10 {
            out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
}

fn version_text(version: Version) -> &'static [u8] {
    match version {
        Version::Http10 => b"HTTP/1.0",
        Version::Http11 => b"HTTP/1.1",
    }
}

/// Writes a `Transfer-Encoding` or `Content-Length` field the head's parser already validated (exactly
/// `chunked` in any case, or digits) in canonical form, keeping the name's case.
fn write_framing_field(out: &mut Vec<u8>, buf: &[u8], header: &Header) {
    let name = &buf[header.name.clone()];
    let value = &buf[header.value.clone()];
    let canonical = match FieldName::classify(name) {
        FieldName::TransferEncoding => &b"chunked"[..],
        _ => {
            let significant = value.iter().position(|&b| b != b'0').unwrap_or(value.len());
            match &value[significant..] {
                [] => b"0",
                digits => digits,
            }
        }
    };
    write_field(out, name, canonical);
}

fn write_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The field names a head's `Connection` fields nominate as hop-by-hop (its connection options other
/// than the ones the proxy itself interprets), as ranges into the head's buffer. Fixed-size, so finding
/// them costs no allocation per message.
pub struct Nominated {
    names: [Range<usize>; MAX_NOMINATED_FIELDS],
    count: usize,
}

impl Nominated {
    pub fn collect(buf: &[u8], headers: &[Header]) -> Nominated {
        let mut nominated = Nominated {
            names: std::array::from_fn(|_| 0..0),
            count: 0,
        };
        let connection_fields = headers.iter().filter(|h| h.kind == FieldName::Connection);
        for field in connection_fields {
            let value = &buf[field.value.clone()];
            for option in list_elements(value) {
                let ignorable = option.is_empty()
                    || option.eq_ignore_ascii_case(b"close")
                    || option.eq_ignore_ascii_case(b"keep-alive")
                    || option.eq_ignore_ascii_case(b"upgrade");
                if ignorable || nominated.count == MAX_NOMINATED_FIELDS {
                    continue;
                }
                if let Some(within) = range_in(value, option) {
                    let start = field.value.start + within.start;
                    nominated.names[nominated.count] = start..start + option.len();
                    nominated.count += 1;
                }
            }
        }
        nominated
    }

    /// Whether `Connection` names this header's field.
    pub fn names(&self, buf: &[u8], header: &Header) -> bool {
        let name = &buf[header.name.clone()];
        self.names[..self.count]
            .iter()
            .any(|nominee| buf[nominee.clone()].eq_ignore_ascii_case(name))
    }
}

#[cfg(test)]
#[path = "rewrite_tests.rs"]
mod tests;
