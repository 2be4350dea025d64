//! A request's part in the balancing choice: the key a hashing strategy hashes ([`request_key`]), the
//! slot a sticky cookie names ([`sticky_slot`]), the cookie and query parsers both read with, and the
//! keyed hash with its seeds. Requests are read through [`RequestSource`], so an HTTP/1 head and an h2
//! stream give the same key for the same request; nothing here knows the candidates.

use std::net::IpAddr;

use super::{HashOn, HashOver};
use crate::http1::rewrite::RequestSource;

/// The seed of the keys a hashing strategy hashes with: the process's secret one for soft affinity (a
/// client cannot aim many keys at one instance), a fixed one for hard affinity (a shard keeps its keys
/// across restarts of the proxy, and any Spawngate agrees).
pub fn key_seed(over: HashOver, process_seed: u64) -> u64 {
    match over {
        HashOver::Ready => process_seed,
        HashOver::Slots => STABLE_SEED,
    }
}

/// The seed of hard-affinity keys. Changing it moves every shard's keys: never change it.
pub const STABLE_SEED: u64 = 0x5370_6177_6e67_6174; // "Spawngat"

/// A random 64-bit value from std's per-process random keys (the source the request ids use). Each call
/// gives another value: draw the process's hash seed once and hand the same one to both threads; draw
/// each thread's [`BalanceState`](super::BalanceState) seed separately.
pub fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(u64::from(std::process::id()));
    hasher.finish()
}

/// The key `on` names in `request`, hashed with `seed` (see [`key_seed`]); `None` when the request does
/// not carry it (no such header, cookie or query parameter).
pub fn request_key<S: RequestSource>(
    on: &HashOn,
    request: &S,
    client_ip: IpAddr,
    seed: u64,
) -> Option<u64> {
    match on {
        HashOn::Ip => Some(match client_ip.to_canonical() {
            IpAddr::V4(v4) => hash_bytes(seed, &v4.octets()),
            IpAddr::V6(v6) => hash_bytes(seed, &v6.octets()),
        }),
        HashOn::Header(name) => {
            let mut fields = request.fields();
            let field = fields.find(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))?;
            Some(hash_bytes(seed, trim_ows(field.value)))
        }
        HashOn::Cookie(name) => cookie(request, name).map(|value| hash_bytes(seed, value)),
        HashOn::Path => {
            let target = request.target();
            let path = match target.iter().position(|&b| b == b'?' || b == b'#') {
                Some(end) => &target[..end],
                None => target,
            };
            // An absolute-form target without a path means `/`.
            let path: &[u8] = if path.is_empty() { b"/" } else { path };
            Some(hash_bytes(seed, path))
        }
        HashOn::Query(name) => {
            query_value(request.target(), name.as_bytes()).map(|value| hash_bytes(seed, value))
        }
    }
}

/// The slot a sticky cookie names: its value is the slot number in decimal, nothing else. `None` when
/// the cookie is missing or its value is not a number; whether that slot exists and may serve is the
/// caller's check ([`soft_target`](super::soft_target)).
pub fn sticky_slot<S: RequestSource>(cookie_name: &str, request: &S) -> Option<u16> {
    let value = cookie(request, cookie_name)?;
    if value.is_empty() || value.len() > 5 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Five ASCII digits at most: valid UTF-8, and `parse` refuses only what exceeds u16.
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// The first value of cookie `name` over every `Cookie` field of `request` (HTTP/1 may send several, h2
/// sends its crumbs as several).
fn cookie<'r, S: RequestSource>(request: &'r S, name: &str) -> Option<&'r [u8]> {
    request
        .fields()
        .filter(|f| f.name.eq_ignore_ascii_case(b"cookie"))
        .find_map(|f| cookie_value(f.value, name.as_bytes()))
}

/// Cookie `name`'s value in one `Cookie` field value (`a=b; c=d`, RFC 6265 section 5.4), without the
/// double quotes a value may be wrapped in; the first pair of that name wins. Pairs are split at `;`
/// with the spaces around them dropped; a pair without `=` is skipped.
pub fn cookie_value<'v>(field_value: &'v [u8], name: &[u8]) -> Option<&'v [u8]> {
    field_value.split(|&b| b == b';').find_map(|pair| {
        let pair = trim_ows(pair);
        let eq = pair.iter().position(|&b| b == b'=')?;
        if trim_ows(&pair[..eq]) != name {
            return None;
        }
        let value = trim_ows(&pair[eq + 1..]);
        Some(match value {
            [b'"', inner @ .., b'"'] => inner,
            _ => value,
        })
    })
}

/// Query parameter `name`'s raw value in `target` (after the first `?`, before any `#`): parameters are
/// split at `&`, name and value at the first `=`; nothing is percent-decoded (`%41` is not `A`, and `+`
/// is not a space). The first parameter of that name wins; one without `=` has the empty value.
pub fn query_value<'t>(target: &'t [u8], name: &[u8]) -> Option<&'t [u8]> {
    let start = target.iter().position(|&b| b == b'?')? + 1;
    let query = &target[start..];
    let query = match query.iter().position(|&b| b == b'#') {
        Some(end) => &query[..end],
        None => query,
    };
    query.split(|&b| b == b'&').find_map(|param| {
        let (key, value) = match param.iter().position(|&b| b == b'=') {
            Some(eq) => (&param[..eq], &param[eq + 1..]),
            None => (param, &param[param.len()..]),
        };
        (key == name).then_some(value)
    })
}

fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

/// 2^64 / φ, splitmix64's increment: its multiples spread evenly over the u64 range. Shared with the
/// choice (the generator's seeding, the HRW score).
pub(super) const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// A keyed hash of `bytes`: 8-byte little-endian words, each folded into the state through the
/// splitmix64 finaliser, the length mixed in first (so padding cannot collide). Not cryptographic; with
/// a secret seed a client cannot predict where its keys land.
pub fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    let mut state = mix(seed ^ (bytes.len() as u64).wrapping_mul(GOLDEN));
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        state = mix(state ^ word).wrapping_add(GOLDEN);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        state = mix(state ^ u64::from_le_bytes(word)).wrapping_add(GOLDEN);
    }
    mix(state)
}

/// The splitmix64 finaliser: a bijection on u64 whose output bits all depend on every input bit.
pub(super) fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
