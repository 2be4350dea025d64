//! The pieces an access-log line is written from, sans-IO: client bytes escaped (printable ASCII only,
//! for either format), numbers, the client address and the time. A busy log writes a score of these
//! per line, so each is written for speed: runs of printable bytes copied whole, two digits per step,
//! the calendar worked out once a second per thread.

use std::cell::Cell;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// Client bytes as a JSON string (`null` when empty): valid UTF-8 is kept, each invalid byte becomes
/// U+FFFD, control characters and non-ASCII are `\u` escapes so the line stays printable ASCII.
///
/// Inlined like [`push_escaped_or_dash`], the escaping apart.
#[inline(always)]
pub(super) fn push_json_or_null(out: &mut impl Out, bytes: &[u8]) {
    if bytes.is_empty() {
        out.put(b"null");
        return;
    }
    // Printable ASCII without quotes or backslashes (nearly every real value) needs no escaping.
    if is_plain(bytes, false) {
        out.byte(b'"');
        out.put(bytes);
        out.byte(b'"');
        return;
    }
    push_json_escaped(out, bytes);
}

/// [`push_json_or_null`] of a value that needs escaping.
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
fn push_three(out: &mut impl Out, n: u64) {
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

/// `n` in at least `width` digits, zeros in front (`n` is below `10^width` everywhere it is used).
fn push_padded(out: &mut impl Out, n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut at = digits.len();
    let mut n = n;
    while n > 0 {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.put(&digits[at.min(digits.len() - width)..]);
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

/// UTC calendar fields of a second since the epoch: (year, month 1-12, day, hour, minute, second).
fn civil(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = crate::civil::civil_from_days(days);
    let (h, m, s) = (
        (rem / 3600) as u32,
        (rem / 60 % 60) as u32,
        (rem % 60) as u32,
    );
    (year, month, day, h, m, s)
}

/// `10/Oct/2000:13:55:36 +0000`.
#[cfg(test)]
pub(super) fn push_apache_time(out: &mut impl Out, time: SystemTime) {
    push_apache_since(out, since_epoch(time));
}

/// [`push_apache_time`] of the time `since` the epoch.
pub(super) fn push_apache_since(out: &mut impl Out, since: Duration) {
    with_second(since.as_secs(), |text| out.put(&text.apache));
}

/// `2000-10-10T13:55:36.123Z`.
#[cfg(test)]
pub(super) fn push_rfc3339(out: &mut impl Out, time: SystemTime) {
    push_rfc3339_since(out, since_epoch(time));
}

/// [`push_rfc3339`] of the time `since` the epoch.
pub(super) fn push_rfc3339_since(out: &mut impl Out, since: Duration) {
    with_second(since.as_secs(), |text| out.put(&text.rfc3339));
    out.byte(b'.');
    push_three(out, u64::from(since.subsec_millis()));
    out.byte(b'Z');
}

/// A time as what the line writes: time since the epoch (none before it).
pub(super) fn since_epoch(time: SystemTime) -> Duration {
    time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO)
}

/// One second as both formats write it (without the milliseconds).
#[derive(Clone, Copy)]
struct SecondText {
    secs: u64,
    apache: [u8; 26],
    rfc3339: [u8; 19],
}

thread_local! {
    /// The second last formatted on this thread: a busy log works out the calendar once a second.
    static LAST_SECOND: Cell<Option<SecondText>> = const { Cell::new(None) };
}

/// Calls `f` with the text of `secs` (seconds since the epoch), worked out once a second per thread.
fn with_second(secs: u64, f: impl FnOnce(&SecondText)) {
    LAST_SECOND.with(|last| match last.get() {
        Some(text) if text.secs == secs => f(&text),
        _ => {
            let text = second_text(secs);
            last.set(Some(text));
            f(&text);
        }
    })
}

fn second_text(secs: u64) -> SecondText {
    const MONTHS: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let (year, month, day, h, m, s) = civil(secs);
    let mut apache = Vec::with_capacity(26);
    push_padded(&mut apache, u64::from(day), 2);
    apache.push(b'/');
    apache.extend_from_slice(MONTHS[(month as usize - 1) % 12]);
    apache.push(b'/');
    push_padded(&mut apache, year.clamp(0, 9999) as u64, 4);
    for n in [h, m, s] {
        apache.push(b':');
        push_padded(&mut apache, u64::from(n), 2);
    }
    apache.extend_from_slice(b" +0000");
    let mut rfc3339 = Vec::with_capacity(19);
    push_padded(&mut rfc3339, year.clamp(0, 9999) as u64, 4);
    for (sep, n) in [(b'-', month), (b'-', day), (b'T', h), (b':', m), (b':', s)] {
        rfc3339.push(sep);
        push_padded(&mut rfc3339, u64::from(n), 2);
    }
    SecondText {
        secs,
        // Fixed widths: four-digit years (clamped), two-digit fields.
        apache: apache.try_into().unwrap_or([b'-'; 26]),
        rfc3339: rfc3339.try_into().unwrap_or([b'-'; 19]),
    }
}

#[cfg(test)]
#[path = "text_tests.rs"]
mod tests;
