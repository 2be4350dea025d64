//! The pieces an access-log line is written from, sans-IO: client bytes escaped (printable ASCII only,
//! for either format), numbers, the client address, and the time (from `time_text`). A busy log writes a
//! score of these per line, so each is written for speed: plain values tested a word at a time and
//! copied whole, two digits per step.

use std::net::IpAddr;
use std::time::Duration;
#[cfg(test)]
use std::time::UNIX_EPOCH;

use super::out::Out;

/// Client bytes for the combined format: printable ASCII as is except `"` and `\` (backslash-escaped),
/// everything else as `\xHH` (Apache's escaping); `bare` (a `key=value` value) escapes spaces too.
///
/// Inlined (a line has seven of these): the call would cost about as much as the value's test and copy,
/// so only the escaping, which real values rarely need, is a function of its own.
#[inline(always)]
pub(super) fn push_escaped_or_dash(out: &mut impl Out, bytes: &[u8], bare: bool) {
    if bytes.is_empty() {
        out.byte(b'-');
        return;
    }
    // Nearly every real value needs no escaping: one test of the whole, one copy.
    if is_plain(bytes, bare) {
        out.put(bytes);
        return;
    }
    push_escaped(out, bytes, bare);
}

/// [`push_escaped_or_dash`] of a value that needs escaping.
#[inline(never)]
fn push_escaped(out: &mut impl Out, bytes: &[u8], bare: bool) {
    // Runs of printable bytes are copied whole.
    let mut rest = bytes;
    loop {
        let run = plain_run(rest, bare);
        out.put(&rest[..run]);
        let Some(&b) = rest.get(run) else {
            return;
        };
        match b {
            b'"' | b'\\' => out.put(&[b'\\', b]),
            b => push_hex_escape(out, b"\\x", b),
        }
        rest = &rest[run + 1..];
    }
}

fn push_hex_escape(out: &mut impl Out, prefix: &[u8], b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.put(prefix);
    out.byte(HEX[usize::from(b >> 4)]);
    out.byte(HEX[usize::from(b & 0xf)]);
}

/// A JSON field: `open` (its key with the string's opening quote) and client bytes as a JSON string, or
/// `null` (its key with `null`) when they are empty: the key and the quote are one piece of text rather
/// than two. Valid UTF-8 is kept, each invalid byte becomes U+FFFD, control characters and non-ASCII are
/// `\u` escapes so the line stays printable ASCII. Inlined like [`push_escaped_or_dash`], the escaping
/// apart.
#[inline(always)]
pub(super) fn push_json_field(out: &mut impl Out, open: &[u8], null: &[u8], bytes: &[u8]) {
    if bytes.is_empty() {
        out.put(null);
        return;
    }
    if is_plain(bytes, false) {
        out.put(open);
        out.put(bytes);
        out.byte(b'"');
        return;
    }
    // The key without its quote: the escaped string brings its own.
    out.put(&open[..open.len() - 1]);
    push_json_escaped(out, bytes);
}

/// [`push_json_field`]'s string for a value that needs escaping, quotes included.
#[inline(never)]
fn push_json_escaped(out: &mut impl Out, bytes: &[u8]) {
    out.byte(b'"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_json_char(out, c);
        }
        if !chunk.invalid().is_empty() {
            push_json_char(out, char::REPLACEMENT_CHARACTER);
        }
    }
    out.byte(b'"');
}

/// Bytes written as they are: printable ASCII but `"` and `\\` (in a JSON string or a quoted combined
/// field), and, for a bare combined field, not the space either.
static JSON_PLAIN: [bool; 256] = plain_bytes(false);
static BARE_PLAIN: [bool; 256] = plain_bytes(true);

/// How many bytes at the start of `bytes` are written as they are (see [`JSON_PLAIN`]): eight bytes
/// are tested at a time, as one word, then the rest one by one.
fn plain_run(bytes: &[u8], bare: bool) -> usize {
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for word in &mut words {
        if !plain_word(load(word), bare) {
            return at + plain_bytes_run(word, bare);
        }
        at += 8;
    }
    let rest = words.remainder();
    // The last few bytes: as the (overlapping) last word when there is one.
    if rest.is_empty() || (at >= 8 && plain_word(load(&bytes[bytes.len() - 8..]), bare)) {
        return bytes.len();
    }
    at + plain_bytes_run(rest, bare)
}

/// Whether every byte of `bytes` is written as it is (see [`JSON_PLAIN`]): the test of each word is
/// folded into one without a branch per word, the last few bytes tested as the (overlapping) last
/// word, so a value costs a handful of instructions per eight bytes and no more calls.
#[inline]
fn is_plain(bytes: &[u8], bare: bool) -> bool {
    let len = bytes.len();
    if len < 8 {
        let plain = if bare { &BARE_PLAIN } else { &JSON_PLAIN };
        return bytes.iter().all(|&b| plain[usize::from(b)]);
    }
    // The last word only when it is not one of the whole words (it overlaps the one before).
    let mut bad = if len % 8 == 0 {
        0
    } else {
        not_plain_unmasked(load(&bytes[len - 8..]), bare)
    };
    let mut at = 0;
    while at + 8 <= len {
        bad |= not_plain_unmasked(load(&bytes[at..at + 8]), bare);
        at += 8;
    }
    bad & HIGHS == 0
}

/// Eight bytes as one word (a shorter slice reads as not plain, so the caller checks byte by byte).
fn load(word: &[u8]) -> u64 {
    u64::from_le_bytes(word.try_into().unwrap_or([0; 8]))
}

/// [`plain_run`] one byte at a time.
fn plain_bytes_run(bytes: &[u8], bare: bool) -> usize {
    let plain = if bare { &BARE_PLAIN } else { &JSON_PLAIN };
    bytes
        .iter()
        .position(|&b| !plain[usize::from(b)])
        .unwrap_or(bytes.len())
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `w` that is zero, and perhaps of bytes above one that is (exact as a yes
/// or no once masked with `HIGHS`); without branches, so that the tests of a word combine into one.
const fn zero_bytes_unmasked(w: u64) -> u64 {
    w.wrapping_sub(ONES) & !w
}

/// Whether all eight bytes of `w` are plain: from `' '` to `'~'`, not `"` or `\\` (nor `' '` when
/// `bare`).
fn plain_word(w: u64, bare: bool) -> bool {
    not_plain(w, bare) == 0
}

/// The high bits of the bytes of `w` that are not plain (and perhaps of some above them): zero when
/// all eight are.
fn not_plain(w: u64, bare: bool) -> u64 {
    not_plain_unmasked(w, bare) & HIGHS
}

/// [`not_plain`] before its high bits are picked out: only those mean anything, so the tests of several
/// words are combined first and masked once.
#[inline]
fn not_plain_unmasked(w: u64, bare: bool) -> u64 {
    // Below 0x20 (the borrow test, exact for a bound up to 0x80), above 0x7e (adding one sets the high
    // bit of 0x7f; 0x80 and up have it), or one of the bytes that are escaped.
    let below = w.wrapping_sub(ONES * 0x20) & !w;
    let above = w.wrapping_add(ONES) | w;
    let quote = zero_bytes_unmasked(w ^ (ONES * u64::from(b'"')));
    let backslash = zero_bytes_unmasked(w ^ (ONES * u64::from(b'\\')));
    let space = if bare {
        zero_bytes_unmasked(w ^ (ONES * u64::from(b' ')))
    } else {
        0
    };
    below | above | quote | backslash | space
}

const fn plain_bytes(bare: bool) -> [bool; 256] {
    let mut plain = [false; 256];
    let mut b = b' ';
    while b <= b'~' {
        plain[b as usize] = b != b'"' && b != b'\\' && !(bare && b == b' ');
        b += 1;
    }
    plain
}

fn push_json_char(out: &mut impl Out, c: char) {
    match c {
        '"' => out.put(b"\\\""),
        '\\' => out.put(b"\\\\"),
        ' '..='~' => out.byte(c as u8),
        _ => {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let [hi, lo] = unit.to_be_bytes();
                push_hex_escape(out, b"\\u", hi);
                push_hex_escape(out, b"", lo);
            }
        }
    }
}

/// `n` in decimal, two digits per step (a line has a score of numbers; this is most of its cost). The
/// small numbers most fields hold (status, instance, short bodies) are written without the loop.
/// Inlined, those short cuts: a call costs as much as writing a status.
#[inline(always)]
pub(super) fn push_u64(out: &mut impl Out, n: u64) {
    if n < 10 {
        out.byte(b'0' + n as u8);
        return;
    }
    if n < 100 {
        let pair = n as usize * 2;
        out.put(&PAIRS[pair..pair + 2]);
        return;
    }
    if n < 1000 {
        return push_three(out, n);
    }
    push_long(out, n);
}

/// [`push_u64`] of a number of four digits or more.
#[inline(never)]
fn push_long(out: &mut impl Out, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    while n >= 100 {
        i -= 2;
        let pair = (n % 100) as usize * 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        n /= 100;
    }
    if n >= 10 {
        i -= 2;
        let pair = n as usize * 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        digits[i] = b'0' + n as u8;
    }
    out.put(&digits[i..]);
}

/// `n` (below 1000) in exactly three digits, zeros in front.
#[inline]
pub(super) fn push_three(out: &mut impl Out, n: u64) {
    let pair = (n % 100) as usize * 2;
    out.put(&[b'0' + (n / 100 % 10) as u8, PAIRS[pair], PAIRS[pair + 1]]);
}

/// "00" to "99", so two digits are one lookup.
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
                            2021222324252627282930313233343536373839\
                            4041424344454647484950515253545556575859\
                            6061626364656667686970717273747576777879\
                            8081828384858687888990919293949596979899";

pub(super) fn push_ms(out: &mut impl Out, d: Duration) {
    let micros = d.as_micros().min(u128::from(u64::MAX)) as u64;
    push_u64(out, micros / 1000);
    out.byte(b'.');
    push_three(out, micros % 1000);
}

pub(super) fn push_ip(out: &mut impl Out, ip: IpAddr) {
    match ip.to_canonical() {
        // Without the formatting machinery, each octet's text from a table, into one small buffer:
        // this is on every line.
        IpAddr::V4(v4) => {
            let mut text = [0u8; 16];
            let mut len = 0;
            for octet in v4.octets() {
                let (digits, n) = OCTETS[usize::from(octet)];
                // Four bytes whatever the octet's length: what lies past its text and dot is
                // overwritten by the next octet (or cut, after the last).
                text[len..len + 4].copy_from_slice(&digits);
                len += usize::from(n);
            }
            // The last octet's dot is not part of the address.
            out.put(&text[..len - 1]);
        }
        v6 => {
            use std::io::Write;
            // The longest IPv6 text is 45 bytes (with an IPv4 tail), so writing it cannot fail.
            let mut text = [0u8; 48];
            let mut rest = &mut text[..];
            let _ = write!(rest, "{v6}");
            let len = 48 - rest.len();
            out.put(&text[..len]);
        }
    }
}

/// Each octet's decimal text followed by a dot, and how many of its four bytes that is.
static OCTETS: [([u8; 4], u8); 256] = octets();

const fn octets() -> [([u8; 4], u8); 256] {
    let mut table = [([0u8; 4], 0u8); 256];
    let mut i = 0;
    while i < 256 {
        let n = i as u8;
        table[i] = if n >= 100 {
            ([b'0' + n / 100, b'0' + n / 10 % 10, b'0' + n % 10, b'.'], 4)
        } else if n >= 10 {
            ([b'0' + n / 10, b'0' + n % 10, b'.', 0], 3)
        } else {
            ([b'0' + n, b'.', 0, 0], 2)
        };
        i += 1;
    }
    table
}

pub(super) use super::time_text::{push_apache_since, push_rfc3339_since, since_epoch};
#[cfg(test)]
use super::time_text::{push_apache_time, push_padded, push_rfc3339};

#[cfg(test)]
#[path = "text_tests.rs"]
mod tests;
