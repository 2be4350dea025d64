//! [`RequestSource`]: a request as the forwarded-head writer reads it, whichever protocol it came in
//! over; and [`Http1Source`], the one for HTTP/1 heads. (The h2 one lives with the h2 worker, in
//! `h2::request`, beside the checks that make its answers valid.) The writer is generic over the source,
//! so each source gets its own monomorphic copy: no dynamic dispatch on the per-request path.

use super::super::fields::FieldName;
use super::super::request::RequestHead;
use super::super::{Framing, Version};

/// What the writer needs to know about a request. Everything borrowed is borrowed from the request.
pub trait RequestSource {
    fn method(&self) -> &[u8];
    /// The target as the client sent it, in origin form or `*`; an absolute-form target's path part,
    /// which may be empty or start with `?`.
    fn target(&self) -> &[u8];
    fn version(&self) -> Version;
    /// The authority the client addressed, as sent (host and port), for `X-Forwarded-Host`.
    fn authority(&self) -> Option<&[u8]>;
    /// Whether the writer writes `Host` itself, from [`authority`](Self::authority) and first, instead
    /// of forwarding the request's own Host fields: for h2, where `:authority` wins (RFC 9113 section
    /// 8.3.1), and for an HTTP/1.0 request that named its authority only in its target.
    fn host_from_authority(&self) -> bool;
    /// How the body that follows is delimited, as the proxy decided it (never `UntilClose`).
    fn framing(&self) -> Framing;
    /// The request is an upgrade the proxy relays: `Upgrade` is kept and `Connection: Upgrade` added.
    fn upgrade(&self) -> bool;
    /// The values of every `Connection` field.
    fn connection_values(&self) -> impl Iterator<Item = &[u8]>;
    /// The header fields in the order they are forwarded.
    fn fields(&self) -> impl Iterator<Item = FieldLine<'_>>;
}

/// One header field of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldLine<'a> {
    pub name: &'a [u8],
    pub value: &'a [u8],
    pub kind: FieldName,
    /// Another value of the field just before, written on its line after `; `: the crumbs of an h2
    /// `Cookie` (RFC 9113 section 8.2.3). Never the first field, always the same name as the one before.
    pub joins_previous: bool,
}

/// An HTTP/1 request head with the buffer its ranges index.
#[derive(Debug, Clone, Copy)]
pub struct Http1Source<'a> {
    pub buf: &'a [u8],
    pub head: &'a RequestHead,
}

impl RequestSource for Http1Source<'_> {
    fn method(&self) -> &[u8] {
        &self.buf[self.head.method.clone()]
    }

    fn target(&self) -> &[u8] {
        &self.buf[self.head.origin_form.clone()]
    }

    fn version(&self) -> Version {
        self.head.version
    }

    fn authority(&self) -> Option<&[u8]> {
        self.head.authority.clone().map(|range| &self.buf[range])
    }

    fn host_from_authority(&self) -> bool {
        // The parser takes the authority from the target only when there is no Host field.
        let target = &self.head.target;
        self.head
            .authority
            .as_ref()
            .is_some_and(|a| a.start >= target.start && a.end <= target.end)
    }

    fn framing(&self) -> Framing {
        self.head.framing
    }

    fn upgrade(&self) -> bool {
        self.head.upgrade
    }

    fn connection_values(&self) -> impl Iterator<Item = &[u8]> {
        let fields = self.head.headers.iter();
        let connection = fields.filter(|field| field.kind == FieldName::Connection);
        connection.map(|field| &self.buf[field.value.clone()])
    }

    fn fields(&self) -> impl Iterator<Item = FieldLine<'_>> {
        self.head.headers.iter().map(|field| FieldLine {
            name: &self.buf[field.name.clone()],
            value: &self.buf[field.value.clone()],
            kind: field.kind,
            joins_previous: false,
        })
    }
}
