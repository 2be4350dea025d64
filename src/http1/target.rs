//! Request targets and authorities (RFC 9112 section 3.2, RFC 3986 section 3.2).
//!
//! Stricter than the grammar where the grammar invites trouble, each choice documented here:
//! * Targets are visible ASCII only (no obs-text) and carry no fragment (`#`).
//! * Absolute-form is accepted for `http` and `https` only, without userinfo (RFC 9110 section 4.2.4
//!   advises treating userinfo as an error) and with a non-empty host.
//! * A host is an `[IPv6]` literal or a reg-name of unreserved characters and percent-escapes. RFC 3986
//!   also allows sub-delims (`!$&'()*+,;=`) in a reg-name, but no DNS name contains them and `,`/`;` would
//!   confuse consumers of list-valued `X-Forwarded-Host`. IPvFuture literals and zone ids are refused.
//! * A port, when its `:` is present, is 1 to 5 digits no larger than 65535 (RFC 3986 allows it empty).

use std::net::Ipv6Addr;
use std::ops::Range;

/// The host and optional port of an authority, as ranges relative to the authority's first byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    /// The host as written, brackets included for an IPv6 literal.
    pub host: Range<usize>,
    /// The digits after `:`, if a port was given.
    pub port: Option<Range<usize>>,
}

/// Parses `host [ ":" port ]`; `None` when it is not a valid authority for an `http` URI.
pub fn parse_authority(authority: &[u8]) -> Option<Authority> {
    let host_end = if authority.first() == Some(&b'[') {
        let close = authority.iter().position(|&b| b == b']')?;
        let literal = std::str::from_utf8(&authority[1..close]).ok()?;
        literal.parse::<Ipv6Addr>().ok()?;
        close + 1
    } else {
        let end = authority
            .iter()
            .position(|&b| b == b':')
            .unwrap_or(authority.len());
        if end == 0 || !is_reg_name(&authority[..end]) {
            return None;
        }
        end
    };
    let port = match &authority[host_end..] {
        [] => None,
        [b':', digits @ ..] if is_port(digits) => Some(host_end + 1..authority.len()),
        _ => return None,
    };
    Some(Authority {
        host: 0..host_end,
        port,
    })
}

fn is_reg_name(name: &[u8]) -> bool {
    let mut rest = name;
    while let [b, tail @ ..] = rest {
        rest = match (b, tail) {
            (b'%', [high, low, after @ ..])
                if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() =>
            {
                after
            }
            (b, _) if b.is_ascii_alphanumeric() || b"-._~".contains(b) => tail,
            _ => return false,
        };
    }
    true
}

fn is_port(digits: &[u8]) -> bool {
    (1..=5).contains(&digits.len())
        && digits.iter().all(u8::is_ascii_digit)
        && digits
            .iter()
            .fold(0u32, |port, &d| port * 10 + u32::from(d - b'0'))
            <= u32::from(u16::MAX)
}

/// The shape of a request target, with ranges relative to the target's first byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetForm {
    /// `/path?query`.
    Origin,
    /// `*`, for `OPTIONS` only.
    Asterisk,
    /// `http://authority/path?query`: `path` is what follows the authority (may be empty or start with
    /// `?`), which is forwarded in origin form.
    Absolute {
        authority: Range<usize>,
        host: Range<usize>,
        port: Option<Range<usize>>,
        path: Range<usize>,
    },
}

/// Classifies a request target; `Err` carries why it was refused (400).
pub fn parse_target(target: &[u8]) -> Result<TargetForm, &'static str> {
    if !target.iter().all(|&b| (0x21..=0x7e).contains(&b)) {
        return Err("request target is not visible ASCII");
    }
    if target.contains(&b'#') {
        return Err("request target contains a fragment");
    }
    match target.first() {
        Some(b'/') => return Ok(TargetForm::Origin),
        Some(b'*') if target.len() == 1 => return Ok(TargetForm::Asterisk),
        _ => {}
    }
    let after_scheme = strip_http_scheme(target).ok_or("unsupported request target form")?;
    let start = target.len() - after_scheme.len();
    let authority_len = after_scheme
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(after_scheme.len());
    let authority = &after_scheme[..authority_len];
    if authority.contains(&b'@') {
        return Err("request target has userinfo");
    }
    let parsed = parse_authority(authority).ok_or("request target has an invalid authority")?;
    let shift = |r: Range<usize>| r.start + start..r.end + start;
    Ok(TargetForm::Absolute {
        authority: start..start + authority_len,
        host: shift(parsed.host),
        port: parsed.port.map(shift),
        path: start + authority_len..target.len(),
    })
}

/// The rest of `target` after a case-insensitive `http://` or `https://`.
fn strip_http_scheme(target: &[u8]) -> Option<&[u8]> {
    let colon = target.iter().position(|&b| b == b':')?;
    let scheme = &target[..colon];
    if !scheme.eq_ignore_ascii_case(b"http") && !scheme.eq_ignore_ascii_case(b"https") {
        return None;
    }
    target[colon + 1..].strip_prefix(b"//")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authority(text: &str) -> Option<(String, Option<String>)> {
        let bytes = text.as_bytes();
        parse_authority(bytes).map(|a| {
            (
                text[a.host].to_string(),
                a.port.map(|p| text[p].to_string()),
            )
        })
    }

    #[test]
    fn valid_authorities() {
        let some = |h: &str, p: Option<&str>| Some((h.to_string(), p.map(str::to_string)));
        assert_eq!(authority("example.com"), some("example.com", None));
        assert_eq!(
            authority("My-App.localhost:8080"),
            some("My-App.localhost", Some("8080"))
        );
        assert_eq!(authority("127.0.0.1:1"), some("127.0.0.1", Some("1")));
        assert_eq!(authority("[::1]"), some("[::1]", None));
        assert_eq!(
            authority("[2001:db8::7]:65535"),
            some("[2001:db8::7]", Some("65535"))
        );
        assert_eq!(authority("a%2Db_c~"), some("a%2Db_c~", None));
    }

    #[test]
    fn invalid_authorities() {
        for bad in [
            "",
            ":80",
            "a:",
            "a:65536",
            "a:123456",
            "a:8o",
            "a b",
            "a,b",
            "a;b",
            "a/b",
            "a@b",
            "a:80:80",
            "[::1",
            "[::1]x",
            "[v1.x]",
            "[fe80::1%25eth0]",
            "[1.2.3.4]",
            "a%2",
            "a%zz",
            "é.com",
            "a\0b",
        ] {
            assert_eq!(authority(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn target_forms() {
        assert_eq!(parse_target(b"/"), Ok(TargetForm::Origin));
        assert_eq!(parse_target(b"/a/b?c=d&e=%20"), Ok(TargetForm::Origin));
        assert_eq!(parse_target(b"*"), Ok(TargetForm::Asterisk));
        assert_eq!(
            parse_target(b"http://a.b:8/x?y"),
            Ok(TargetForm::Absolute {
                authority: 7..12,
                host: 7..10,
                port: Some(11..12),
                path: 12..16,
            })
        );
        assert_eq!(
            parse_target(b"HTTPS://a.b?q"),
            Ok(TargetForm::Absolute {
                authority: 8..11,
                host: 8..11,
                port: None,
                path: 11..13,
            })
        );
        assert_eq!(
            parse_target(b"http://a"),
            Ok(TargetForm::Absolute {
                authority: 7..8,
                host: 7..8,
                port: None,
                path: 8..8,
            })
        );
    }

    #[test]
    fn refused_targets() {
        for bad in [
            &b"**"[..],
            b"a.b:80",
            b"ftp://a.b/",
            b"http:/a.b/",
            b"http:a.b",
            b"http:///x",
            b"http://u@a.b/",
            b"http://a.b:x/",
            b"/a#frag",
            b"/\xc3\xa9",
            b"/a\x7f",
            b"",
        ] {
            assert!(parse_target(bad).is_err(), "{bad:?}");
        }
    }
}
