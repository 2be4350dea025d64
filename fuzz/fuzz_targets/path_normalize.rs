//! Path normalisation: normalising twice changes nothing, and what comes out is one canonical spelling:
//! it starts with `/`, has no empty, `.` or `..` segment (but a trailing slash), no raw `\`, and only
//! upper-case escapes of bytes that are not unreserved. Allowing encoded slashes never refuses what the
//! default accepts, nor changes its result. The first byte chooses whether encoded slashes are allowed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spawngate::http1::path::{normalize, PathRules};

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn assert_canonical(out: &[u8], rules: PathRules) {
    let path = out.split(|&b| b == b'?').next().unwrap_or_default();
    assert_eq!(path.first(), Some(&b'/'), "{out:?}");
    let segments: Vec<&[u8]> = path[1..].split(|&b| b == b'/').collect();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        assert!(!segment.is_empty() || last, "empty segment in {out:?}");
        assert!(
            *segment != b"." && *segment != b"..",
            "dot-segment in {out:?}"
        );
        assert!(!segment.contains(&b'\\'), "backslash in {out:?}");
        let mut rest: &[u8] = segment;
        while let Some(at) = rest.iter().position(|&b| b == b'%') {
            let (high, low) = (rest.get(at + 1).copied(), rest.get(at + 2).copied());
            let (Some(high), Some(low)) = (high.and_then(hex), low.and_then(hex)) else {
                panic!("escape not two upper-case hex digits in {out:?}");
            };
            let byte = high << 4 | low;
            assert!(
                !is_unreserved(byte),
                "unreserved byte left escaped in {out:?}"
            );
            assert!(
                rules.allow_encoded_slashes || !matches!(byte, b'/' | b'\\'),
                "encoded slash kept in {out:?}"
            );
            rest = &rest[at + 3..];
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, input)) = data.split_first() else {
        return;
    };
    if input.first() != Some(&b'/') {
        return;
    }
    let rules = PathRules {
        allow_encoded_slashes: flags & 1 == 1,
    };
    let mut once = Vec::new();
    if normalize(input, rules, &mut once).is_err() {
        return;
    }
    assert_canonical(&once, rules);
    let mut twice = Vec::new();
    assert!(
        normalize(&once, rules, &mut twice).is_ok(),
        "{once:?} refused"
    );
    assert_eq!(once, twice, "not idempotent for {input:?}");
    if !rules.allow_encoded_slashes {
        let mut allowed = Vec::new();
        let lenient = PathRules {
            allow_encoded_slashes: true,
        };
        assert!(normalize(input, lenient, &mut allowed).is_ok());
        assert_eq!(allowed, once);
    }
});
