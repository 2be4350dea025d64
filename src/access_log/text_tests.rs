//! The text pieces against plain reference rules and known values.

use super::*;

fn text(f: impl Fn(&mut Vec<u8>)) -> String {
    let mut out = Vec::new();
    f(&mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn numbers_as_decimal_text() {
    for n in [
        0,
        7,
        9,
        10,
        42,
        99,
        100,
        101,
        999,
        1000,
        12345,
        1_000_000,
        u64::MAX,
    ] {
        assert_eq!(text(|o| push_u64(o, n)), n.to_string());
    }
    assert_eq!(text(|o| push_padded(o, 5, 3)), "005");
    assert_eq!(text(|o| push_padded(o, 0, 2)), "00");
    assert_eq!(text(|o| push_padded(o, 2026, 4)), "2026");
    assert_eq!(text(|o| push_padded(o, 12345, 3)), "12345");
    assert_eq!(
        text(|o| push_ms(o, Duration::from_micros(1_234_567))),
        "1234.567"
    );
    assert_eq!(text(|o| push_ms(o, Duration::from_micros(42))), "0.042");
}

/// The word-at-a-time scan and the short cuts give the bytes the plain byte-by-byte rules give.
#[test]
fn fast_paths_write_what_the_plain_rules_write() {
    let mut rng = crate::test_rng::XorShift::new(0x5eed_1095);
    for round in 0..5_000 {
        let len = round % 41;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                let r = rng.next_u64();
                // Mostly printable, with the bytes at the edges of the plain range mixed in.
                let edges = [
                    b' ', b'!', b'"', b'#', b'[', b'\\', b']', b'~', 0x7f, 0x80, 0x1f,
                ];
                if r % 4 == 0 {
                    edges[(r >> 8) as usize % edges.len()]
                } else {
                    (r >> 16) as u8
                }
            })
            .collect();
        for bare in [false, true] {
            let plain = if bare { &BARE_PLAIN } else { &JSON_PLAIN };
            let expect = bytes
                .iter()
                .position(|&b| !plain[usize::from(b)])
                .unwrap_or(len);
            assert_eq!(plain_run(&bytes, bare), expect, "{bytes:?} bare={bare}");
            let mut slow = Vec::new();
            for &b in &bytes {
                match b {
                    b'"' | b'\\' => slow.extend_from_slice(&[b'\\', b]),
                    b if plain[usize::from(b)] => slow.push(b),
                    b => slow.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
                }
            }
            if slow.is_empty() {
                slow.push(b'-');
            }
            assert_eq!(
                text(|o| push_escaped_or_dash(o, &bytes, bare)).as_bytes(),
                slow
            );
        }
        let n = rng.next_u64() >> (rng.next_u64() % 64);
        assert_eq!(text(|o| push_u64(o, n)), n.to_string());
        let ip = IpAddr::from((rng.next_u64() as u32).to_be_bytes());
        assert_eq!(text(|o| push_ip(o, ip)), ip.to_string());
    }
    for n in 0..1000 {
        assert_eq!(text(|o| push_three(o, n)), format!("{n:03}"));
    }
}

#[test]
fn the_cached_second_follows_the_clock() {
    let at = |secs: u64, ms: u64| UNIX_EPOCH + Duration::from_millis(secs * 1000 + ms);
    let rfc = |t| text(|o| push_rfc3339(o, t));
    let apache = |t| text(|o| push_apache_time(o, t));
    assert_eq!(rfc(at(971_186_136, 123)), "2000-10-10T13:55:36.123Z");
    assert_eq!(rfc(at(971_186_136, 999)), "2000-10-10T13:55:36.999Z");
    assert_eq!(rfc(at(971_186_137, 0)), "2000-10-10T13:55:37.000Z");
    assert_eq!(apache(at(971_186_137, 5)), "10/Oct/2000:13:55:37 +0000");
    assert_eq!(rfc(at(0, 1)), "1970-01-01T00:00:00.001Z");
    assert_eq!(apache(at(971_186_136, 0)), "10/Oct/2000:13:55:36 +0000");
}

/// The whole-value test, on plain values of every length up to a few words with one byte at each place
/// replaced by each byte that is not plain: it finds it wherever it is, the overlapping last word too.
#[test]
fn a_value_is_plain_unless_one_byte_is_not() {
    for bare in [false, true] {
        let plain = if bare { &BARE_PLAIN } else { &JSON_PLAIN };
        for len in 0..40 {
            let value: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            assert!(is_plain(&value, bare), "{len}");
            for at in 0..len {
                for b in (0..=255u8).filter(|&b| !plain[usize::from(b)]) {
                    let mut bad = value.clone();
                    bad[at] = b;
                    assert!(!is_plain(&bad, bare), "{bad:?} bare={bare}");
                }
            }
        }
    }
}
