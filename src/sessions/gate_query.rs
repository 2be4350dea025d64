//! The query of `/.spawngate/auth?token=T&next=P`: its parameters, percent-decoded, and `next` made
//! safe to redirect to.
//!
//! Decoding is RFC 3986 percent-decoding only: `+` stays `+` (the API writes `next` and the token
//! percent-encoded, never form-encoded, and a token never holds `+`).

/// The longest `next` (decoded) that is followed; a longer one redirects to `/`.
pub const MAX_NEXT: usize = 2048;

use crate::http1::path::hex;

/// The query of a request target: what follows the first `?`, empty without one.
pub fn query_of(target: &[u8]) -> &[u8] {
    match target.iter().position(|&b| b == b'?') {
        Some(at) => &target[at + 1..],
        None => &[],
    }
}

/// The first value of parameter `name` (matched as written), percent-decoded. `None` when absent or
/// when its value holds a malformed escape: a value with no single reading is not one.
pub fn param(query: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    let pair = query.split(|&b| b == b'&').find(|pair| {
        let key = pair.split(|&b| b == b'=').next().unwrap_or_default();
        key == name
    })?;
    let value = pair.get(name.len() + 1..).unwrap_or_default();
    percent_decode(value)
}

fn percent_decode(value: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(value.len());
    let mut rest = value;
    while let Some((&b, tail)) = rest.split_first() {
        if b != b'%' {
            out.push(b);
            rest = tail;
            continue;
        }
        let high = tail.first().copied().and_then(hex)?;
        let low = tail.get(1).copied().and_then(hex)?;
        out.push(high << 4 | low);
        rest = &tail[2..];
    }
    Some(out)
}

/// The `Location` of the redirect after `/auth`: `next` when it is a path on this host, else `/`.
///
/// Accepted: starts with one `/` (not `//` nor `/\`, which browsers read as another host), holds no
/// backslash (browsers read it as `/`) and no control character (browsers drop tab and newlines, so
/// `/%09/evil.test` would become `//evil.test`; CR/LF would split the header), at most [`MAX_NEXT`]
/// bytes. What it holds is then written with spaces and non-ASCII bytes percent-encoded, so the field
/// is plain ASCII in both protocols.
pub fn location(query: &[u8]) -> Vec<u8> {
    match param(query, b"next") {
        Some(next) if is_local_path(&next) => encode(&next),
        _ => b"/".to_vec(),
    }
}

fn is_local_path(path: &[u8]) -> bool {
    path.len() <= MAX_NEXT
        && path.first() == Some(&b'/')
        && !matches!(path.get(1), Some(b'/' | b'\\'))
        && !path.iter().any(|&b| b < 0x20 || b == 0x7f || b == b'\\')
}

fn encode(path: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(path.len() + 8);
    for &b in path {
        if b == b' ' || b >= 0x80 {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        } else {
            out.push(b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_found_by_exact_name_and_decoded() {
        let query = b"tokens=x&token=a%2Db&next=%2Fx%3Fy%3D1&empty&token=second";
        assert_eq!(param(query, b"token").as_deref(), Some(&b"a-b"[..]));
        assert_eq!(param(query, b"next").as_deref(), Some(&b"/x?y=1"[..]));
        assert_eq!(param(query, b"empty").as_deref(), Some(&b""[..]));
        assert_eq!(param(query, b"missing"), None);
        assert_eq!(param(b"token=%zz", b"token"), None);
        assert_eq!(param(b"token=%4", b"token"), None);
        assert_eq!(param(b"next=a+b", b"next").as_deref(), Some(&b"a+b"[..]));
    }

    #[test]
    fn query_of_takes_everything_after_the_first_question_mark() {
        assert_eq!(query_of(b"/a?b=1?c"), b"b=1?c");
        assert_eq!(query_of(b"/a"), b"");
    }

    #[test]
    fn location_keeps_local_paths_and_encodes_what_is_not_ascii() {
        assert_eq!(location(b"next=/lab/tree?x=1"), b"/lab/tree?x=1");
        assert_eq!(location(b"next=%2Fa%20b%C3%A9"), b"/a%20b%C3%A9");
        assert_eq!(location(b"x=1"), b"/");
        for bad in [
            &b"next=https://evil.test/"[..],
            b"next=//evil.test",
            b"next=%2F%2Fevil.test",
            b"next=/\\evil.test",
            b"next=/%5Cevil.test",
            b"next=/a%5Cb",
            b"next=/%09/evil.test",
            b"next=/a%0D%0ASet-Cookie:%20x=1",
            b"next=/a%7F",
            b"next=relative",
            b"next=",
            b"next=%",
        ] {
            assert_eq!(location(bad), b"/", "{}", String::from_utf8_lossy(bad));
        }
        let long = format!("next=/{}", "a".repeat(MAX_NEXT - 1));
        assert_eq!(location(long.as_bytes()).len(), MAX_NEXT);
        let too_long = format!("next=/{}", "a".repeat(MAX_NEXT));
        assert_eq!(location(too_long.as_bytes()), b"/");
    }
}
