//! The field names a head's `Connection` fields nominate as hop-by-hop (RFC 9110 section 7.6.1), for
//! every writer that drops them: the request writer, the response writer and the h2 response.

use super::super::fields::{list_elements, FieldName};
use super::super::Header;

/// Field names `Connection` may nominate for removal that we track: real requests name one or two; the
/// bound keeps the check a fixed, small cost per field whatever a peer sends.
pub const MAX_NOMINATED_FIELDS: usize = 32;

/// The connection options of a head other than the ones the proxy itself interprets (`close`,
/// `keep-alive`, `upgrade`), borrowed from the head. Finding them costs no allocation, and nothing at all
/// for the usual head, which nominates no field: the fixed-size list exists only once one is found.
/// Options past [`MAX_NOMINATED_FIELDS`] are ignored (those fields are forwarded).
pub struct Nominated<'a> {
    found: Option<Names<'a>>,
}

struct Names<'a> {
    names: [&'a [u8]; MAX_NOMINATED_FIELDS],
    count: usize,
}

impl<'a> Nominated<'a> {
    /// From a parsed HTTP/1 head whose ranges index `buf`.
    pub fn collect(buf: &'a [u8], headers: &[Header]) -> Nominated<'a> {
        let connection_fields = headers.iter().filter(|h| h.kind == FieldName::Connection);
        Nominated::from_values(connection_fields.map(|field| &buf[field.value.clone()]))
    }

    /// From the values of every `Connection` field of a head.
    pub fn from_values(values: impl Iterator<Item = &'a [u8]>) -> Nominated<'a> {
        let mut found: Option<Names<'a>> = None;
        for value in values {
            for option in list_elements(value) {
                let ignorable = option.is_empty()
                    || option.eq_ignore_ascii_case(b"close")
                    || option.eq_ignore_ascii_case(b"keep-alive")
                    || option.eq_ignore_ascii_case(b"upgrade");
                if ignorable {
                    continue;
                }
                let list = found.get_or_insert(Names {
                    names: [&[]; MAX_NOMINATED_FIELDS],
                    count: 0,
                });
                if list.count < MAX_NOMINATED_FIELDS {
                    list.names[list.count] = option;
                    list.count += 1;
                }
            }
        }
        Nominated { found }
    }

    /// Whether `Connection` names this header's field.
    pub fn names(&self, buf: &[u8], header: &Header) -> bool {
        self.contains(&buf[header.name.clone()])
    }

    /// Whether `Connection` names the field `name` (case-insensitive).
    pub fn contains(&self, name: &[u8]) -> bool {
        self.found.as_ref().is_some_and(|list| {
            list.names[..list.count]
                .iter()
                .any(|nominee| nominee.eq_ignore_ascii_case(name))
        })
    }
}
