//! The `sg_s` access cookie: finding it in a request's `Cookie` fields (the gate), writing those fields
//! without it (the forwarded head: the backend never sees a credential), and the `Set-Cookie` a token
//! trade answers with.
//!
//! A `Cookie` value (an HTTP/1 line or one h2 crumb) is pairs separated by `;` with optional spaces
//! (RFC 6265 section 4.2.1); browsers send `a=1; b=2`, but pairs are split leniently, on every `;`.

use crate::http1::fields::trim_ows;

/// The cookie's name, as set and as read.
pub const NAME: &[u8] = b"sg_s";

/// The pairs of one `Cookie` value, trimmed; empty ones (`a=1;;b=2`) included.
pub fn pairs(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b';').map(trim_ows)
}

/// A pair's name and value, each trimmed; a pair without `=` is all name.
fn split_pair(pair: &[u8]) -> (&[u8], &[u8]) {
    match pair.iter().position(|&b| b == b'=') {
        Some(at) => (trim_ows(&pair[..at]), trim_ows(&pair[at + 1..])),
        None => (trim_ows(pair), &[]),
    }
}

/// The values of the `sg_s` pairs of one `Cookie` value, in order. Only the exact name counts as a
/// credential: it is what the proxy sets and what a browser returns.
pub fn session_values(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    pairs(value).filter_map(|pair| {
        let (name, value) = split_pair(pair);
        (name == NAME).then_some(value)
    })
}

/// Whether a pair is removed before forwarding: its name is `sg_s` in any case, so no spelling of it
/// carries a credential (or something that looks like one) to the backend.
fn is_stripped(pair: &[u8]) -> bool {
    split_pair(pair).0.eq_ignore_ascii_case(NAME)
}

/// Writes one `Cookie` field (`append == false`: a new line `name: value`) or h2 crumb (`append ==
/// true`: joined with `; ` to the line just written) without its `sg_s` pairs. A value holding none is
/// written unchanged; one that held some is rebuilt from its other non-empty pairs joined with `; `,
/// and nothing at all is written when none is left. Returns whether a line of this field is now the
/// last one in `out` (what a following crumb appends to).
pub fn write_without_session(out: &mut Vec<u8>, name: &[u8], value: &[u8], append: bool) -> bool {
    let unchanged = !pairs(value).any(is_stripped);
    let mut kept = pairs(value).filter(|pair| !pair.is_empty() && !is_stripped(pair));
    let first = match (unchanged, kept.next()) {
        (true, _) => value,
        (false, Some(first)) => first,
        (false, None) => return append,
    };
    if append {
        // The line just written is this field's: reopen it.
        out.truncate(out.len().saturating_sub(2));
        out.extend_from_slice(b"; ");
    } else {
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
    }
    out.extend_from_slice(first);
    if !unchanged {
        for pair in kept {
            out.extend_from_slice(b"; ");
            out.extend_from_slice(pair);
        }
    }
    out.extend_from_slice(b"\r\n");
    true
}

/// The `Set-Cookie` value a trade answers with: host-only (no `Domain`), for the whole host, out of
/// scripts' reach, sent on top-level navigations from other sites but not on their subrequests.
pub fn set_cookie(text: &str, secure: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(96);
    out.extend_from_slice(NAME);
    out.push(b'=');
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"; Path=/; HttpOnly; SameSite=Lax");
    if secure {
        out.extend_from_slice(b"; Secure");
    }
    out
}

/// Whether `name` is a `Cookie` field.
#[inline]
pub fn is_cookie_field(name: &[u8]) -> bool {
    name.len() == 6 && name.eq_ignore_ascii_case(b"cookie")
}
