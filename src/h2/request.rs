//! An HTTP/2 request on its way to a backend: the checks and routing facts ([`inspect`]), its request
//! id, and [`H2Source`], the view of it that `http1::rewrite` (the one forwarded-head writer) reads.
//!
//! The h2 crate has already refused connection-specific fields (RFC 9113 section 8.2.2; it lets only
//! `te: trailers` through), malformed pseudo-fields and field values with CR, LF or NUL, so what is
//! left is routing and the translation to HTTP/1.1:
//! * the authority comes from `:authority`, else from `Host`; both present and different is a 400;
//! * `Host` is written first from that authority, `Cookie` crumbs are joined with `; ` (RFC 9113
//!   section 8.2.3), framing is ours: `Content-Length` when the client declared one, else
//!   `Transfer-Encoding: chunked` when a body follows;
//! * everything else (hop-by-hop fields, `X-Forwarded-*`, `X-Request-ID`, the route's edits) is the
//!   writer's, exactly as for HTTP/1.

use http::header::{self, HeaderValue};
use http::request::Parts;
use http::Method;

use super::routes::normalize_host;
use crate::error::{ErrorCode, ProxyError};
use crate::http1::fields::FieldName;
use crate::http1::request_id::{is_acceptable_client_id, RequestIdGenerator};
use crate::http1::rewrite::{self, FieldLine, ForwardInfo, ForwardPlan, RequestSource};
use crate::http1::target::parse_authority;
use crate::http1::{Framing, Version, MAX_REQUEST_LINE};

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
    /// Which of the request's fields holds the authority the client addressed.
    pub authority: AuthorityFrom,
    pub body: BodyPlan,
    pub is_head: bool,
}

/// Where a request's authority is: read from the request when its head is written rather than copied
/// for every stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorityFrom {
    /// `:authority`.
    Pseudo,
    /// `Host`, for a request without `:authority`.
    HostField,
}

impl Inspected {
    /// The authority as the client sent it (host and port), for `Host` and `X-Forwarded-Host`. `parts`
    /// is the request this was inspected from (empty for any other without that field).
    pub fn authority<'p>(&self, parts: &'p Parts) -> &'p [u8] {
        match self.authority {
            AuthorityFrom::Pseudo => parts.uri.authority().map(|a| a.as_str().as_bytes()),
            AuthorityFrom::HostField => parts.headers.get(header::HOST).map(|v| v.as_bytes()),
        }
        .unwrap_or_default()
    }
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
    let (authority, from): (&[u8], _) = match (parts.uri.authority(), host_field) {
        (Some(pseudo), Some(field))
            if !pseudo
                .as_str()
                .as_bytes()
                .eq_ignore_ascii_case(field.as_bytes()) =>
        {
            return Err(bad("Host disagrees with :authority"));
        }
        (Some(pseudo), _) => (pseudo.as_str().as_bytes(), AuthorityFrom::Pseudo),
        (None, Some(field)) => (field.as_bytes(), AuthorityFrom::HostField),
        (None, None) => {
            return Err(ProxyError::new(
                ErrorCode::MissingHostHeader,
                "the request has neither :authority nor Host",
            ))
        }
    };
    let parsed = parse_authority(authority).ok_or_else(|| bad("invalid Host"))?;
    let host = normalize_host(&authority[parsed.host]).ok_or_else(|| bad("invalid Host"))?;

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
        authority: from,
        body,
        is_head: parts.method == Method::HEAD,
    })
}

/// Writes the HTTP/1.1 request head forwarded to the backend for this request: the one writer,
/// `http1::rewrite`, fed through [`H2Source`].
pub fn write_forwarded(
    parts: &Parts,
    inspected: &Inspected,
    plan: &ForwardPlan,
    info: &ForwardInfo,
    out: &mut Vec<u8>,
) {
    rewrite::write_head(&H2Source { parts, inspected }, plan, info, out);
}

/// An h2 request as the forwarded-head writer reads it: always HTTP/1.1, `Host` written from the
/// authority [`inspect`] chose (`:authority` over `Host`, RFC 9113 section 8.3.1), the framing it
/// decided, and `Cookie` crumbs joined.
#[derive(Debug, Clone, Copy)]
pub struct H2Source<'a> {
    pub parts: &'a Parts,
    pub inspected: &'a Inspected,
}

impl RequestSource for H2Source<'_> {
    fn method(&self) -> &[u8] {
        self.parts.method.as_str().as_bytes()
    }

    fn target(&self) -> &[u8] {
        // Empty (written as "/") only for a URI without a path, which h2 does not produce.
        self.parts
            .uri
            .path_and_query()
            .map_or(&b""[..], |target| target.as_str().as_bytes())
    }

    fn version(&self) -> Version {
        Version::Http11
    }

    fn authority(&self) -> Option<&[u8]> {
        Some(self.inspected.authority(self.parts))
    }

    fn host_from_authority(&self) -> bool {
        true
    }

    fn framing(&self) -> Framing {
        match self.inspected.body {
            BodyPlan::None => Framing::None,
            BodyPlan::Length(length) => Framing::Length(length),
            BodyPlan::Chunked => Framing::Chunked,
        }
    }

    fn upgrade(&self) -> bool {
        // HTTP/2 has no Upgrade (RFC 9113 section 8.6).
        false
    }

    fn connection_values(&self) -> impl Iterator<Item = &[u8]> {
        // An h2 request has no Connection field: the h2 crate refuses one as malformed (RFC 9113
        // section 8.2.2). Looking for one anyway cost a tenth of this writer's time per stream.
        std::iter::empty()
    }

    fn fields(&self) -> impl Iterator<Item = FieldLine<'_>> {
        H2Fields {
            fields: self.parts.headers.iter(),
            previous_was_cookie: false,
        }
    }
}

/// The fields of a `HeaderMap`, which yields every value of a name together, after the first value of
/// that name, in the order names first arrived: so a cookie crumb after a cookie is one to join.
struct H2Fields<'a> {
    fields: header::Iter<'a, HeaderValue>,
    previous_was_cookie: bool,
}

impl<'a> Iterator for H2Fields<'a> {
    type Item = FieldLine<'a>;

    fn next(&mut self) -> Option<FieldLine<'a>> {
        let (name, value) = self.fields.next()?;
        let cookie = name == header::COOKIE;
        let joins_previous = cookie && self.previous_was_cookie;
        self.previous_was_cookie = cookie;
        let name = name.as_str();
        Some(FieldLine {
            name: name.as_bytes(),
            value: value.as_bytes(),
            kind: classify_lowercase(name),
            joins_previous,
        })
    }
}

/// [`FieldName::classify`] for a name known to be lower case, as HTTP/2 requires (RFC 9113 section
/// 8.2.1) and the h2 crate ensures: an exact match, which compiles to a few integer comparisons, where
/// the case-insensitive one cost as much as the rest of a field's way through the writer. A test checks
/// that the two agree.
fn classify_lowercase(name: &str) -> FieldName {
    match name {
        "te" => FieldName::Te,
        "host" => FieldName::Host,
        "expect" => FieldName::Expect,
        "upgrade" => FieldName::Upgrade,
        "connection" => FieldName::Connection,
        "keep-alive" => FieldName::KeepAlive,
        "x-request-id" => FieldName::XRequestId,
        "content-length" => FieldName::ContentLength,
        "x-forwarded-for" => FieldName::XForwardedFor,
        "proxy-connection" => FieldName::ProxyConnection,
        "x-forwarded-host" => FieldName::XForwardedHost,
        "transfer-encoding" => FieldName::TransferEncoding,
        "x-forwarded-proto" => FieldName::XForwardedProto,
        _ => FieldName::Other,
    }
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "request_source_tests.rs"]
mod source_tests;
