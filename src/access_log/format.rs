//! A [`Record`] as one line of text, sans-IO: Apache's combined format with the proxy's fields after it,
//! or one JSON object. Client bytes are escaped so that a line is printable ASCII ending in its only
//! `\n`, whatever the client sent (the pieces are written by `text`).

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::out::Out;
use super::record::{Parts, Protocol, Record, Seen};
use super::text::{
    push_apache_since, push_escaped_or_dash, push_ip, push_json_field, push_ms, push_rfc3339_since,
    push_u64, since_epoch,
};
use crate::config::AccessLogFormat;

/// When the request began and how long it took (read from clocks by the caller).
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub began: SystemTime,
    pub duration: Duration,
}

/// Appends the line for `record` (with its `\n`) to `out`.
pub fn format_line(
    record: &Record<'_>,
    timing: Timing,
    format: AccessLogFormat,
    out: &mut Vec<u8>,
) {
    let began = since_epoch(timing.began);
    format_line_since(record, began, timing.duration, format, out);
}

/// [`format_line`] of a request that began `began` after the epoch (as the thread's clock pairing
/// gives it, without a `SystemTime` on the way).
pub(super) fn format_line_since(
    record: &Record<'_>,
    began: Duration,
    duration: Duration,
    format: AccessLogFormat,
    out: &mut impl Out,
) {
    match format {
        AccessLogFormat::Combined => combined(record, began, duration, out),
        AccessLogFormat::Json => json(record, began, duration, out),
    }
}

/// The most bytes the line of `record` can take in either format: the fixed text with every number
/// and name at its longest (under 500 bytes), and each client value escaped at its longest (six bytes
/// per byte, as JSON's `\u00XX` and `\ufffd`).
pub(super) fn longest_line(record: &Record<'_>) -> usize {
    const FIXED: usize = 1024;
    let values = record.seen.map_or(0, Seen::kept)
        + record.request_id.len()
        + record.backend.map_or(0, str::len);
    FIXED + 6 * values
}

/// `CLIENT - - [TIME] "METHOD TARGET PROTOCOL" STATUS BYTES_OUT "REFERER" "USER_AGENT"` then
/// `host= rid= backend= instance= code= in= ms= cold= wait_ms= woke=`; `-` for what is unknown.
fn combined(r: &Record<'_>, began: Duration, duration: Duration, out: &mut impl Out) {
    let seen = r.seen;
    let part = |f: fn(&Seen) -> &[u8]| seen.map_or(&[][..], f);
    push_ip(out, r.client);
    out.put(b" - - [");
    push_apache_since(out, began);
    out.put(b"] \"");
    push_escaped_or_dash(out, part(Seen::method), false);
    out.byte(b' ');
    push_escaped_or_dash(out, part(Seen::target), false);
    out.byte(b' ');
    out.put(seen.map_or("-", |s| s.protocol.as_str()).as_bytes());
    out.put(b"\" ");
    match r.status {
        Some(status) => push_u64(out, u64::from(status)),
        None => out.byte(b'-'),
    }
    out.byte(b' ');
    push_u64(out, r.bytes_out);
    out.put(b" \"");
    push_escaped_or_dash(out, part(Seen::referer), false);
    out.put(b"\" \"");
    push_escaped_or_dash(out, part(Seen::user_agent), false);
    out.put(b"\" host=");
    push_escaped_or_dash(out, part(Seen::host), true);
    out.put(b" rid=");
    push_escaped_or_dash(out, r.request_id, true);
    out.put(b" backend=");
    push_escaped_or_dash(out, r.backend.unwrap_or("").as_bytes(), true);
    out.put(b" instance=");
    match r.instance {
        Some(slot) => push_u64(out, u64::from(slot)),
        None => out.byte(b'-'),
    }
    out.put(b" code=");
    out.put(r.code.map_or("-", |c| c.as_str()).as_bytes());
    out.put(b" in=");
    push_u64(out, r.bytes_in);
    out.put(b" ms=");
    push_ms(out, duration);
    // The fixed text around the last fields in as few pieces as there are cases.
    match seen.and_then(|s| s.waited) {
        Some(wait) => {
            out.put(b" cold=1 wait_ms=");
            push_ms(out, wait);
        }
        None => out.put(b" cold=0 wait_ms=-"),
    }
    let woke = seen.is_some_and(|s| s.woke);
    out.put(if woke { b" woke=1\n" } else { b" woke=0\n" });
}

/// `$key` (the text before a string field's value: its name and what ends the field before it) and the
/// value as a JSON string or `null`, the fixed text in one piece either way.
macro_rules! json_field {
    ($out:expr, $key:literal, $value:expr) => {
        push_json_field(
            $out,
            concat!($key, "\"").as_bytes(),
            concat!($key, "null").as_bytes(),
            $value,
        )
    };
}

/// [`json_field!`] for a string of the proxy's own (letters, digits, `/`, `.`, `_`): written as it is.
macro_rules! known_field {
    ($out:expr, $key:literal, $value:expr) => {
        match $value {
            Some(text) => {
                $out.put(concat!($key, "\"").as_bytes());
                $out.put(text.as_bytes());
                $out.byte(b'"');
            }
            None => $out.put(concat!($key, "null").as_bytes()),
        }
    };
}

/// One object; strings that are unknown are `null`.
fn json(r: &Record<'_>, began: Duration, duration: Duration, out: &mut impl Out) {
    let seen = r.seen;
    let part = |f: fn(&Seen) -> &[u8]| seen.map_or(&[][..], f);
    out.put(b"{\"time\":\"");
    push_rfc3339_since(out, began);
    json_field!(out, "\",\"request_id\":", r.request_id);
    out.put(b",\"client\":\"");
    push_ip(out, r.client);
    json_field!(out, "\",\"host\":", part(Seen::host));
    json_field!(out, ",\"method\":", part(Seen::method));
    json_field!(out, ",\"target\":", part(Seen::target));
    // The protocol and the code are the proxy's own words, plain ASCII: written without a scan.
    known_field!(out, ",\"protocol\":", seen.map(|s| s.protocol.as_str()));
    out.put(b",\"status\":");
    match r.status {
        Some(status) => push_u64(out, u64::from(status)),
        None => out.put(b"null"),
    }
    known_field!(out, ",\"code\":", r.code.map(|c| c.as_str()));
    out.put(b",\"bytes_in\":");
    push_u64(out, r.bytes_in);
    out.put(b",\"bytes_out\":");
    push_u64(out, r.bytes_out);
    out.put(b",\"duration_ms\":");
    push_ms(out, duration);
    json_field!(out, ",\"backend\":", r.backend.unwrap_or("").as_bytes());
    out.put(b",\"instance\":");
    match r.instance {
        Some(slot) => push_u64(out, u64::from(slot)),
        None => out.put(b"null"),
    }
    // The fixed text around the next fields in as few pieces as there are cases.
    match seen.and_then(|s| s.waited) {
        Some(wait) => {
            out.put(b",\"cold\":true,\"wait_ms\":");
            push_ms(out, wait);
        }
        None => out.put(b",\"cold\":false,\"wait_ms\":null"),
    }
    let referer = part(Seen::referer);
    if seen.is_some_and(|s| s.woke) {
        json_field!(out, ",\"woke\":true,\"referer\":", referer);
    } else {
        json_field!(out, ",\"woke\":false,\"referer\":", referer);
    }
    json_field!(out, ",\"user_agent\":", part(Seen::user_agent));
    out.put(b"}\n");
}

/// The line for a request made of arbitrary client bytes: `data` is split into method, target, host,
/// referer and user agent at its first four `0xFF` bytes (a fuzz target; always exactly one line).
pub fn line_from_bytes(data: &[u8], format: AccessLogFormat) -> Vec<u8> {
    let mut pieces = data.splitn(5, |&b| b == 0xFF);
    let mut next = || pieces.next().unwrap_or(&[]);
    let parts = Parts {
        method: next(),
        target: next(),
        host: next(),
        referer: next(),
        user_agent: next(),
    };
    let seen = Seen::new(parts, Protocol::Http11, std::time::Instant::now());
    let record = Record {
        seen: Some(&seen),
        client: IpAddr::from([127, 0, 0, 1]),
        request_id: parts.host,
        status: Some(200),
        code: None,
        bytes_in: 0,
        bytes_out: 0,
        backend: None,
        instance: None,
    };
    let timing = Timing {
        began: UNIX_EPOCH,
        duration: Duration::ZERO,
    };
    let mut out = Vec::new();
    format_line(&record, timing, format, &mut out);
    out
}
