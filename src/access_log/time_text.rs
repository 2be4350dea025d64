//! A line's time, sans-IO: Apache's `10/Oct/2000:13:55:36 +0000` and RFC 3339 with milliseconds. The
//! calendar is worked out once a second per thread; a busy log copies the same text for every line of
//! that second.

use std::cell::Cell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::out::Out;
use super::text::push_three;

/// `n` in at least `width` digits, zeros in front (`n` is below `10^width` everywhere it is used).
pub(super) fn push_padded(out: &mut impl Out, n: u64, width: usize) {
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
