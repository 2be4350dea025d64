//! Tests of the balancing choice, split as the module is: `choice` (every strategy, HRW and bounded
//! load, hard and soft affinity) and `keys` (request keys, sticky cookies, the cookie and query parsers,
//! the keyed hash and its seeds). This file holds the fixtures they are built from: candidates with
//! given loads, and requests as each protocol presents them (a parsed HTTP/1 head, an h2 stream's
//! fields).

mod choice;
mod keys;

use super::Candidate;
use crate::http1::fields::FieldName;
use crate::http1::request::parse_request;
use crate::http1::rewrite::{FieldLine, Http1Source, RequestSource};
use crate::http1::{Framing, Version};

/// Eligible candidates, one per slot, with these loads and weight 1.
fn loads(in_flight: &[u32]) -> Vec<Candidate> {
    in_flight
        .iter()
        .enumerate()
        .map(|(slot, &in_flight)| Candidate {
            slot: slot as u16,
            in_flight,
            weight: 1,
            eligible: true,
        })
        .collect()
}

/// Eligible idle candidates, slots `0..slots`.
fn idle(slots: usize) -> Vec<Candidate> {
    loads(&vec![0; slots])
}

/// `candidates` with `slots` marked not eligible.
fn without(mut candidates: Vec<Candidate>, slots: &[u16]) -> Vec<Candidate> {
    for c in &mut candidates {
        if slots.contains(&c.slot) {
            c.eligible = false;
        }
    }
    candidates
}

/// Parses an HTTP/1 head (without the final empty line) and runs `f` on it.
fn with_head<T>(head: &str, f: impl FnOnce(&Http1Source<'_>) -> T) -> T {
    let raw = format!("{head}\r\n\r\n");
    let parsed = match parse_request(raw.as_bytes()) {
        Ok(Some(parsed)) => parsed,
        other => panic!("{other:?} for {head:?}"),
    };
    f(&Http1Source {
        buf: raw.as_bytes(),
        head: &parsed,
    })
}

/// A request as the h2 worker presents one: lower-case names, a cookie split into crumbs. Written out
/// rather than borrowed: `H2Source` needs an `http::request::Parts` and an inspection, and admin's
/// `ExplainRequest` (the other hand-written source) is production code that never marks a crumb as
/// joining.
struct Fields {
    target: &'static str,
    fields: Vec<(&'static str, &'static str)>,
}

impl RequestSource for Fields {
    fn method(&self) -> &[u8] {
        b"GET"
    }
    fn target(&self) -> &[u8] {
        self.target.as_bytes()
    }
    fn version(&self) -> Version {
        Version::Http11
    }
    fn authority(&self) -> Option<&[u8]> {
        None
    }
    fn host_from_authority(&self) -> bool {
        true
    }
    fn framing(&self) -> Framing {
        Framing::None
    }
    fn upgrade(&self) -> bool {
        false
    }
    fn connection_values(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::empty()
    }
    fn fields(&self) -> impl Iterator<Item = FieldLine<'_>> {
        let mut previous = "";
        self.fields.iter().map(move |&(name, value)| {
            let joins_previous = name == "cookie" && previous == "cookie";
            previous = name;
            FieldLine {
                name: name.as_bytes(),
                value: value.as_bytes(),
                kind: FieldName::classify(name.as_bytes()),
                joins_previous,
            }
        })
    }
}
