//! The heads the proxy forwards, re-serialised from their parsed form. This module owns every request
//! head sent to a backend, whether the request came over HTTP/1 ([`Http1Source`]) or HTTP/2
//! (`h2::request::H2Source`): both are read through [`RequestSource`] by the one writer,
//! [`write_head`], steered by the route's [`ForwardPlan`] and the request's [`ForwardInfo`]. It also
//! writes the response heads sent to HTTP/1 clients ([`write_response`]), applies a route's
//! response edits to HTTP/2 ones ([`apply_to_header_map`]), and holds the route [`Template`]s
//! (redirect locations, fixed bodies, rewrites, header edit values) every protocol renders alike.
//!
//! The forwarded request head is always CRLF, one field per line, names in the case they arrived in,
//! values unchanged except:
//! * framing: exactly one framing field, written from the framing the proxy decided (the body is
//!   relayed by that decision, so the backend must read the same one): `Transfer-Encoding: chunked` or
//!   `Content-Length` without leading zeros, in place of the client's own framing field, or after the
//!   client's fields when it sent none (an h2 body without `content-length`). The parser accepted
//!   `Chunked` or `007` as RFC 9112 allows, but a lax or case-sensitive peer could read them
//!   differently, so the peer gets the one spelling every parser agrees on;
//! * h2 `Cookie` crumbs, joined into one line with `; ` (RFC 9113 section 8.2.3);
//! * a session's request ([`ForwardInfo::session`]): no `X-Spawngate-*` field and no `sg_s` cookie pair
//!   (a `Cookie` line or crumb left empty is not written), the proxy's session lines added last.
//!
//! Hop-by-hop fields (RFC 9110 section 7.6.1) are dropped: `Connection`, every field it names,
//! `Keep-Alive`, `Proxy-Connection`, `TE` and `Upgrade` (kept, with `Connection: Upgrade`, for an
//! upgrade). `Trailer` is not hop-by-hop in RFC 9110 and stays, as the trailer section is relayed
//! verbatim. Neither the framing fields nor `Host` are ever dropped because `Connection` names them: a
//! client must not be able to strip the framing of a body we forward. `Connection` may name at most
//! [`MAX_NOMINATED_FIELDS`] other fields; further names are ignored (those fields are forwarded).

mod edits;
mod nominated;
mod plan;
mod response;
mod server_timing;
mod source;
mod template;

use std::net::{IpAddr, Ipv4Addr};

use super::fields::FieldName;
use super::request::RequestHead;
use super::{Framing, Version};
use crate::sessions::gate::{cookie, is_spawngate_field, SessionStamp};

pub use edits::{
    apply_to_header_map, EditableName, FieldEdit, HeaderEdits, ResponseContext, ResponseEdits,
};
pub use nominated::{Nominated, MAX_NOMINATED_FIELDS};
pub use plan::{ForwardPlan, PathEdit, PathPrefix, PlanError, Proto};
pub use response::{write_response, Ending};
pub use server_timing::{cold_start_value, SERVER_TIMING};
pub use source::{FieldLine, Http1Source, RequestSource};
pub use template::{CaptureNames, Form, Template, Vars};

/// The facts of one request the proxy adds to it; what a route adds is its [`ForwardPlan`].
#[derive(Debug, Clone, Copy)]
pub struct ForwardInfo<'a> {
    pub client_ip: ClientIp<'a>,
    pub request_id: &'a [u8],
    /// The request target to send, written exactly as given: a route table's normalised, edited path
    /// with the query ([`PathEdit::edit_path`]); the plan's path edit is then not applied again (its
    /// `X-Forwarded-Prefix` still is). `None`: the client's target, with the plan's path edit.
    pub target: Option<&'a [u8]>,
    /// A session's request, as the gate let it through: its `X-Spawngate-*` fields and `sg_s` cookie
    /// pairs are removed and the proxy's session lines written ([`SessionStamp::write_fields`]).
    pub session: Option<&'a SessionStamp>,
    /// How the client reached the proxy: `Https` over TLS. `X-Forwarded-Proto` says `https` when this
    /// or the route's plan does (one rule for HTTP/1 and h2, whichever thread forwards).
    pub proto: Proto,
}

impl<'a> ForwardInfo<'a> {
    /// A request forwarded with its own target and no session.
    pub fn new(client_ip: ClientIp<'a>, request_id: &'a [u8]) -> ForwardInfo<'a> {
        ForwardInfo {
            client_ip,
            request_id,
            target: None,
            session: None,
            proto: Proto::Http,
        }
    }
}

/// The client's address for `X-Forwarded-For`, in either form an adapter has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientIp<'a> {
    /// Written in canonical form: an IPv4-mapped IPv6 address as IPv4.
    Addr(IpAddr),
    /// Already written that way (the h2 worker does it once per connection).
    Text(&'a str),
}

impl From<IpAddr> for ClientIp<'_> {
    fn from(ip: IpAddr) -> Self {
        ClientIp::Addr(ip)
    }
}

impl<'a> From<&'a str> for ClientIp<'a> {
    fn from(text: &'a str) -> Self {
        ClientIp::Text(text)
    }
}

/// Writes the request head forwarded to a backend for an HTTP/1 head parsed from `buf`.
pub fn write_request(
    buf: &[u8],
    head: &RequestHead,
    plan: &ForwardPlan,
    info: &ForwardInfo,
    out: &mut Vec<u8>,
) {
    out.reserve(head.len + 256);
    write_head(&Http1Source { buf, head }, plan, info, out);
}

/// Writes the request head forwarded to a backend. The request line keeps the method and the source's
/// version; the target is [`ForwardInfo::target`] or else the client's, sent in origin form with the
/// plan's path edit. A `Host` the source asks for comes first. The client's fields follow (see the
/// module doc), minus those the plan sets or removes; then the plan's set and added fields (their
/// templates rendered with the client's address, the request id and the host the client addressed,
/// without port); then `X-Forwarded-For` (the client's chain with the client appended),
/// `X-Forwarded-Host` (the authority as the client sent it), `X-Forwarded-Prefix` (a stripped prefix),
/// `X-Forwarded-Proto` and `X-Request-ID`, which replace whatever the client sent under those names
/// (a client's `X-Forwarded-Prefix` is dropped even when the proxy writes none: a backend that
/// builds links from it must not take one from the client).
pub fn write_head<S: RequestSource>(
    source: &S,
    plan: &ForwardPlan,
    info: &ForwardInfo,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(source.method());
    out.push(b' ');
    let prefix_edited = match info.target {
        Some(target) => {
            out.extend_from_slice(target);
            true
        }
        None => plan.path.write_target(source.target(), out),
    };
    out.extend_from_slice(match source.version() {
        Version::Http10 => b" HTTP/1.0\r\n",
        Version::Http11 => b" HTTP/1.1\r\n",
    });
    let authority = source.authority();
    let host_from_authority = source.host_from_authority();
    if let (true, Some(authority)) = (host_from_authority, authority) {
        out.extend_from_slice(b"Host: ");
        out.extend_from_slice(authority);
        out.extend_from_slice(b"\r\n");
    }

    let upgrade = source.upgrade();
    let framing = source.framing();
    let nominated = Nominated::from_values(source.connection_values());
    // The session rules are chosen once per head, not tested per field: a request without a session
    // runs the loop compiled without them.
    let client = ClientFields {
        plan,
        nominated: &nominated,
        framing,
        upgrade,
        host_from_authority,
    };
    let (framing_seen, forwarded_for) = match info.session {
        None => client.write::<S, false>(source, out),
        Some(_) => client.write::<S, true>(source, out),
    };
    if !framing_seen {
        write_framing(out, framing, None);
    }
    if upgrade {
        out.extend_from_slice(b"Connection: Upgrade\r\n");
    }
    if !(plan.set_headers.is_empty() && plan.add_headers.is_empty()) {
        write_request_edits(plan, info, authority, out);
    }

    out.extend_from_slice(b"X-Forwarded-For: ");
    if forwarded_for {
        // A second pass, only for requests that carry a chain, spares every request a list.
        for field in source.fields() {
            let chain = field.kind == FieldName::XForwardedFor && !field.value.is_empty();
            if chain && !nominated.contains(field.name) {
                out.extend_from_slice(field.value);
                out.extend_from_slice(b", ");
            }
        }
    }
    write_client_ip(out, info.client_ip);
    // The proxy's own lines are written in as few pieces as their constant parts allow: every piece
    // is a capacity check and a copy, and these lines are in every forwarded head.
    if let Some(authority) = authority {
        out.extend_from_slice(b"\r\nX-Forwarded-Host: ");
        out.extend_from_slice(authority);
    }
    if let (true, Some(prefix)) = (prefix_edited, plan.path.forwarded_prefix()) {
        out.extend_from_slice(b"\r\nX-Forwarded-Prefix: ");
        out.extend_from_slice(prefix.as_bytes());
    }
    out.extend_from_slice(match (plan.proto, info.proto) {
        (Proto::Http, Proto::Http) => b"\r\nX-Forwarded-Proto: http\r\nX-Request-ID: ",
        _ => b"\r\nX-Forwarded-Proto: https\r\nX-Request-ID: ",
    });
    out.extend_from_slice(info.request_id);
    match info.session {
        None => out.extend_from_slice(b"\r\n\r\n"),
        Some(stamp) => {
            out.extend_from_slice(b"\r\n");
            stamp.write_fields(out);
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// What decides the fate of each client field.
struct ClientFields<'p> {
    plan: &'p ForwardPlan,
    nominated: &'p Nominated<'p>,
    framing: Framing,
    upgrade: bool,
    host_from_authority: bool,
}

impl ClientFields<'_> {
    /// Writes the client's fields that are forwarded, and the framing field in place of the client's;
    /// returns whether the client sent a framing field and an `X-Forwarded-For`. With `SESSION`,
    /// `X-Spawngate-*` fields are dropped and `Cookie` fields and crumbs written without `sg_s` pairs
    /// (one left empty is not written; a crumb whose field's line was not written starts the line).
    #[inline(always)]
    fn write<S: RequestSource, const SESSION: bool>(
        &self,
        source: &S,
        out: &mut Vec<u8>,
    ) -> (bool, bool) {
        let mut framing_seen = false;
        let mut forwarded_for = false;
        // Whether the current field is forwarded (its crumbs follow its fate) and, with `SESSION`,
        // whether its line is the last one in `out` (what a crumb joins).
        let mut previous_written = false;
        let mut line_open = false;
        for field in source.fields() {
            if field.joins_previous {
                if SESSION && previous_written && cookie::is_cookie_field(field.name) {
                    line_open =
                        cookie::write_without_session(out, field.name, field.value, line_open);
                } else if previous_written {
                    // A crumb follows its field's fate; the line just written is that field's.
                    out.truncate(out.len().saturating_sub(2));
                    out.extend_from_slice(b"; ");
                    out.extend_from_slice(field.value);
                    out.extend_from_slice(b"\r\n");
                }
                continue;
            }
            let write = match field.kind {
                FieldName::Host => !self.host_from_authority,
                FieldName::ContentLength | FieldName::TransferEncoding => {
                    if !framing_seen {
                        framing_seen = true;
                        write_framing(out, self.framing, Some(&field));
                    }
                    false
                }
                FieldName::Upgrade => self.upgrade,
                FieldName::XForwardedFor => {
                    forwarded_for = true;
                    false
                }
                FieldName::XForwardedHost | FieldName::XForwardedProto | FieldName::XRequestId => {
                    false
                }
                FieldName::Expect | FieldName::Other => {
                    let proxys = SESSION && is_spawngate_field(field.name);
                    !proxys
                        && !self.nominated.contains(field.name)
                        && !self.plan.replaces(field.name)
                        && !is_forwarded_prefix(field.name)
                }
                hop_by_hop => !hop_by_hop.is_hop_by_hop(),
            };
            if SESSION && write && cookie::is_cookie_field(field.name) {
                line_open = cookie::write_without_session(out, field.name, field.value, false);
            } else if write {
                write_field(out, field.name, field.value);
                line_open = true;
            } else {
                line_open = false;
            }
            previous_written = write;
        }
        (framing_seen, forwarded_for)
    }
}

/// `X-Forwarded-Prefix`, which the proxy owns like the other `X-Forwarded-*` it writes. Not a
/// [`FieldName`]: only this writer acts on it, and its length test keeps other names at one comparison.
#[inline]
fn is_forwarded_prefix(name: &[u8]) -> bool {
    name.len() == 18 && name.eq_ignore_ascii_case(b"x-forwarded-prefix")
}

/// The plan's set and added fields, rendered. Out of line: most plans have none.
#[cold]
fn write_request_edits(
    plan: &ForwardPlan,
    info: &ForwardInfo,
    authority: Option<&[u8]>,
    out: &mut Vec<u8>,
) {
    let edits = plan.set_headers.iter().chain(&plan.add_headers);
    let mut client_ip = Vec::new();
    if edits.clone().any(|e| e.value().uses_client_ip()) {
        write_client_ip(&mut client_ip, info.client_ip);
    }
    let vars = Vars {
        host: authority.map_or(&b""[..], host_of_authority),
        client_ip: &client_ip,
        request_id: info.request_id,
        ..Vars::default()
    };
    for edit in edits {
        edit.write(&vars, out);
    }
}

/// The host of an authority, without its port (`[::1]:8080` is `[::1]`).
fn host_of_authority(authority: &[u8]) -> &[u8] {
    let end = match authority.first() {
        Some(b'[') => authority.iter().position(|&b| b == b']').map(|at| at + 1),
        _ => authority.iter().position(|&b| b == b':'),
    };
    &authority[..end.unwrap_or(authority.len())]
}

/// Writes the one framing field the backend sees for `framing`: under the name the client used when
/// `sent` is the same field, else under its usual name. Nothing for a request without a body.
#[inline]
fn write_framing(out: &mut Vec<u8>, framing: Framing, sent: Option<&FieldLine>) {
    let sent_as = |kind: FieldName, usual: &'static [u8]| match sent {
        Some(field) if field.kind == kind => field.name,
        _ => usual,
    };
    match framing {
        Framing::Length(length) => {
            out.extend_from_slice(sent_as(FieldName::ContentLength, b"Content-Length"));
            out.extend_from_slice(b": ");
            write_decimal(out, length);
            out.extend_from_slice(b"\r\n");
        }
        Framing::Chunked => {
            let name = sent_as(FieldName::TransferEncoding, b"Transfer-Encoding");
            write_field(out, name, b"chunked");
        }
        Framing::None | Framing::UntilClose => {}
    }
}

/// The client's address as `X-Forwarded-For` and `{client_ip}` write it (canonical: an IPv4-mapped IPv6
/// address as IPv4).
#[inline]
pub(crate) fn write_client_ip(out: &mut Vec<u8>, client_ip: ClientIp) {
    match client_ip {
        ClientIp::Text(text) => out.extend_from_slice(text.as_bytes()),
        ClientIp::Addr(ip) => match ip.to_canonical() {
            IpAddr::V4(v4) => write_ipv4(out, v4),
            IpAddr::V6(v6) => {
                use std::io::Write;
                // Writing into a Vec cannot fail.
                let _ = write!(out, "{v6}");
            }
        },
    }
}

/// Dotted decimal by hand: this runs for every HTTP/1 request, and `Display` costs several times more.
fn write_ipv4(out: &mut Vec<u8>, ip: Ipv4Addr) {
    let [a, b, c, d] = ip.octets();
    write_decimal(out, a.into());
    for octet in [b, c, d] {
        out.push(b'.');
        write_decimal(out, octet.into());
    }
}

fn write_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

fn write_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod plan_tests;

#[cfg(test)]
mod edits_tests;

#[cfg(test)]
mod session_tests;
