//! An HTTP/2 request as the HTTP/1.1 request head forwarded to a backend.
//!
//! The h2 crate has already refused connection-specific fields (RFC 9113 section 8.2.2), malformed
//! pseudo-fields and field values with CR, LF or NUL, so what is left is routing and rewriting:
//! * the authority comes from `:authority`, else from `Host`; both present and different is a 400;
//! * `Host` is written from the authority, `Cookie` fields are joined with `; ` (RFC 9113 section
//!   8.2.3), `TE` is dropped, framing is ours: `Content-Length` when the client declared one, else
//!   `Transfer-Encoding: chunked` when a body follows;
//! * the proxy fields are added exactly as for HTTP/1 (`X-Forwarded-For` appended to the client's chain,
//!   `X-Forwarded-Host`, `X-Forwarded-Proto: http`, `X-Request-ID` kept or generated).

use std::io::Write;

use http::header::{self, HeaderName};
use http::request::Parts;
use http::Method;

use super::routes::normalize_host;
use crate::error::{ErrorCode, ProxyError};
use crate::http1::request_id::{is_acceptable_client_id, RequestIdGenerator};
use crate::http1::target::parse_authority;
use crate::http1::MAX_REQUEST_LINE;

/// How the forwarded request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyPlan {
    None,
    Length(u64),
    Chunked,
}

impl BodyPlan {
    /// Whether body bytes follow the head.
    pub fn has_body(self) -> bool {
        !matches!(self, BodyPlan::None | BodyPlan::Length(0))
    }
}

/// What routing and forwarding need to know about a stream's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspected {
    /// The routing key: lower-case host, no port.
    pub host: String,
    /// The authority as the client sent it (host and port), for `Host` and `X-Forwarded-Host`.
    pub authority: String,
    pub body: BodyPlan,
    pub is_head: bool,
}

/// The request id a stream's answer carries: the client's `X-Request-ID` when there is exactly one and
/// it is acceptable, otherwise a new one.
pub fn request_id(parts: &Parts, ids: &mut RequestIdGenerator) -> Vec<u8> {
    let mut values = parts.headers.get_all("x-request-id").iter();
    match (values.next(), values.next()) {
        (Some(only), None) if is_acceptable_client_id(only.as_bytes()) => only.as_bytes().to_vec(),
        _ => ids.next_id().to_vec(),
    }
}

/// Checks a request and finds where it goes. `has_body` is false when the HEADERS frame ended the stream.
pub fn inspect(
    parts: &Parts,
    has_body: bool,
    max_body: Option<u64>,
) -> Result<Inspected, ProxyError> {
    let bad = |why: &str| ProxyError::new(ErrorCode::BadRequest, why);
    if parts.method == Method::CONNECT {
        return Err(ProxyError::new(
            ErrorCode::NotImplemented,
            "CONNECT is not supported",
        ));
    }
    let target_len = parts.uri.path_and_query().map_or(1, |p| p.as_str().len());
    if parts.method.as_str().len() + target_len + " HTTP/1.1".len() > MAX_REQUEST_LINE {
        return Err(ProxyError::new(
            ErrorCode::UriTooLong,
            "request target too long",
        ));
    }

    let mut host_fields = parts.headers.get_all(header::HOST).iter();
    let host_field = host_fields.next();
    if host_fields.next().is_some() {
        return Err(bad("more than one Host field"));
    }
    let authority: &[u8] = match (parts.uri.authority(), host_field) {
        (Some(pseudo), Some(field))
            if !pseudo
                .as_str()
                .as_bytes()
                .eq_ignore_ascii_case(field.as_bytes()) =>
        {
            return Err(bad("Host disagrees with :authority"));
        }
        (Some(pseudo), _) => pseudo.as_str().as_bytes(),
        (None, Some(field)) => field.as_bytes(),
        (None, None) => {
            return Err(ProxyError::new(
                ErrorCode::MissingHostHeader,
                "the request has neither :authority nor Host",
            ))
        }
    };
    let parsed = parse_authority(authority).ok_or_else(|| bad("invalid Host"))?;
    let host = normalize_host(&authority[parsed.host]).ok_or_else(|| bad("invalid Host"))?;
    // parse_authority accepts ASCII only, so this cannot fail; stay total anyway.
    let authority = String::from_utf8(authority.to_vec()).map_err(|_| bad("invalid Host"))?;

    let mut declared: Option<u64> = None;
    for value in parts.headers.get_all(header::CONTENT_LENGTH) {
        let length = std::str::from_utf8(value.as_bytes())
            .ok()
            .filter(|text| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|text| text.parse::<u64>().ok())
            .ok_or_else(|| bad("invalid Content-Length"))?;
        if declared.is_some_and(|d| d != length) {
            return Err(bad("conflicting Content-Length fields"));
        }
        declared = Some(length);
    }
    let body = match declared {
        Some(length) => BodyPlan::Length(length),
        None if has_body => BodyPlan::Chunked,
        None => BodyPlan::None,
    };
    if let (BodyPlan::Length(n), Some(max)) = (body, max_body) {
        if n > max {
            return Err(ProxyError::new(
                ErrorCode::PayloadTooLarge,
                format!("request body over {max} bytes"),
            ));
        }
    }
    Ok(Inspected {
        host,
        authority,
        body,
        is_head: parts.method == Method::HEAD,
    })
}

/// Writes the HTTP/1.1 request head for `parts` into `out`.
pub fn write_head(
    parts: &Parts,
    inspected: &Inspected,
    client_ip: &str,
    request_id: &[u8],
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    if !target.starts_with(['/', '*']) {
        out.push(b'/');
    }
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    write_field(out, b"Host", inspected.authority.as_bytes());

    let mut forwarded_for: Vec<&[u8]> = Vec::new();
    let mut cookies: Vec<&[u8]> = Vec::new();
    for (name, value) in &parts.headers {
        if is_replaced(name) {
            if name == "x-forwarded-for" && !value.is_empty() {
                forwarded_for.push(value.as_bytes());
            }
            continue;
        }
        if name == header::COOKIE {
            cookies.push(value.as_bytes());
            continue;
        }
        write_field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    if !cookies.is_empty() {
        out.extend_from_slice(b"Cookie: ");
        out.extend_from_slice(&cookies.join(&b"; "[..]));
        out.extend_from_slice(b"\r\n");
    }
    match inspected.body {
        BodyPlan::None => {}
        // Writing into a Vec cannot fail.
        BodyPlan::Length(n) => {
            let _ = write!(out, "Content-Length: {n}\r\n");
        }
        BodyPlan::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"X-Forwarded-For: ");
    for chain in forwarded_for {
        out.extend_from_slice(chain);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(client_ip.as_bytes());
    out.extend_from_slice(b"\r\n");
    write_field(out, b"X-Forwarded-Host", inspected.authority.as_bytes());
    write_field(out, b"X-Forwarded-Proto", b"http");
    write_field(out, b"X-Request-ID", request_id);
    out.extend_from_slice(b"\r\n");
}

/// Fields never copied from the client: written by the proxy from its own knowledge, or hop-by-hop.
fn is_replaced(name: &HeaderName) -> bool {
    const REPLACED: [&str; 12] = [
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "upgrade",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-request-id",
    ];
    REPLACED.contains(&name.as_str())
}

fn write_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
