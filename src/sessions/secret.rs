//! The random values of sessions (ids, tokens, cookies, backend secrets), their text forms, and
//! comparing them without a timing side channel.
//!
//! Randomness comes from the kernel (`/dev/urandom`, which never blocks once the system has booted):
//! these values are credentials, so std's per-process hash keys are not enough.

use std::fs::File;
use std::io::{self, Read};

/// A 256-bit credential: a token, a cookie value or a session's backend secret.
pub type Secret = [u8; 32];

/// Fills `out` with random bytes from the kernel.
pub fn fill(out: &mut [u8]) -> io::Result<()> {
    File::open("/dev/urandom")?.read_exact(out)
}

/// A fresh random credential.
pub fn secret() -> io::Result<Secret> {
    let mut out = [0u8; 32];
    fill(&mut out)?;
    Ok(out)
}

/// A fresh session id: 128 random bits as 26 lower-case base32 characters (DNS-safe).
pub fn session_id() -> io::Result<String> {
    let mut bytes = [0u8; 16];
    fill(&mut bytes)?;
    Ok(base32(&bytes))
}

const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// RFC 4648 base32, lower-case, without padding.
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A credential as text: base64url without padding (43 characters), safe in a URL, a cookie and a
/// header.
pub fn to_text(secret: &Secret) -> String {
    let mut out = String::with_capacity(43);
    for chunk in secret.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(char::from(BASE64URL[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// Reads a credential written by [`to_text`]; `None` for anything else. Runs in time independent of
/// the value (only of its length, which is public).
pub fn from_text(text: &[u8]) -> Option<Secret> {
    if text.len() != 43 {
        return None;
    }
    let mut out = [0u8; 32];
    let mut bad = 0u8;
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut at = 0;
    for &c in text {
        let (value, invalid) = decode64(c);
        bad |= invalid;
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            if at < 32 {
                out[at] = (acc >> bits) as u8;
                at += 1;
            }
        }
    }
    // The last character carries 2 bits of padding, which must be zero for one spelling per value.
    bad |= (acc & ((1 << bits) - 1)) as u8;
    (bad == 0).then_some(out)
}

/// One base64url character's value, and a non-zero flag when it is not one; without branches on the
/// character.
fn decode64(c: u8) -> (u8, u8) {
    let in_range = |lo: u8, hi: u8| -> u8 {
        // 0xff when lo <= c <= hi, else 0.
        let above = (u16::from(c).wrapping_sub(u16::from(lo)) >> 8) as u8 ^ 1;
        let below = (u16::from(hi).wrapping_sub(u16::from(c)) >> 8) as u8 ^ 1;
        (above & below & 1).wrapping_neg()
    };
    let upper = in_range(b'A', b'Z');
    let lower = in_range(b'a', b'z');
    let digit = in_range(b'0', b'9');
    let dash = in_range(b'-', b'-');
    let under = in_range(b'_', b'_');
    let value = (upper & c.wrapping_sub(b'A'))
        | (lower & c.wrapping_sub(b'a').wrapping_add(26))
        | (digit & c.wrapping_sub(b'0').wrapping_add(52))
        | (dash & 62)
        | (under & 63);
    let valid = upper | lower | digit | dash | under;
    (value, !valid)
}

/// Whether two byte strings are equal, in time independent of their contents (their lengths are not
/// secret): for the admin bearer token.
pub fn equal_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Whether two credentials are equal, in time independent of where they differ.
pub fn equal(a: &Secret, b: &Secret) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_of_known_values() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "my");
        assert_eq!(base32(b"foobar"), "mzxw6ytboi");
        assert_eq!(base32(&[0u8; 16]).len(), 26);
    }

    #[test]
    fn ids_are_26_dns_safe_characters_and_differ() {
        let a = session_id().unwrap();
        let b = session_id().unwrap();
        assert_eq!(a.len(), 26);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_lowercase() || (b'2'..=b'7').contains(&c)));
        assert_ne!(a, b);
    }

    #[test]
    fn text_round_trips_and_rejects_other_spellings() {
        for _ in 0..200 {
            let s = secret().unwrap();
            let text = to_text(&s);
            assert_eq!(text.len(), 43);
            assert_eq!(from_text(text.as_bytes()), Some(s));
        }
        let s = [0xffu8; 32];
        let text = to_text(&s);
        assert!(text.ends_with('8'), "{text}");
        // Same bits, non-zero padding: another spelling of the same value, refused.
        let mut other = text.clone().into_bytes();
        *other.last_mut().unwrap() = b'9';
        assert_eq!(from_text(&other), None);
        assert_eq!(from_text(b"short"), None);
        let mut bad = text.into_bytes();
        bad[5] = b'+';
        assert_eq!(from_text(&bad), None);
    }

    #[test]
    fn equal_compares_every_byte() {
        let a = [7u8; 32];
        let mut b = a;
        assert!(equal(&a, &b));
        b[31] ^= 1;
        assert!(!equal(&a, &b));
    }
}
