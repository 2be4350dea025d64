//! Value syntaxes with rules of their own: memory sizes, CPU counts, hostnames and container names.
//!
//! Each parser returns the message to show the operator; the caller adds file, line and key.

use std::net::Ipv6Addr;

/// Longest memory or CPU string accepted; real values are a handful of characters, and the bound keeps the
/// arithmetic below far from overflow.
const MAX_NUMBER_TEXT: usize = 32;

/// Memory size in bytes: a number (fraction allowed, as Docker allows) and an optional unit, any case:
/// `b`, `k`/`kb`/`kib`, `m`/`mb`/`mib`, `g`/`gb`/`gib`, `t`/`tb`/`tib`, all binary multiples
/// (`"512m"` = 512 × 2^20). A bare number is bytes.
pub(super) fn parse_memory(text: &str) -> Result<u64, String> {
    let invalid = |why: &str| format!("invalid memory size \"{text}\": {why}");
    if text.len() > MAX_NUMBER_TEXT {
        return Err(invalid("too long"));
    }
    let lower = text.to_ascii_lowercase();
    let number_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(number_end);
    let shift = match unit.trim_start_matches(' ') {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        other => {
            return Err(invalid(&format!(
                "unknown unit \"{other}\" (use b, k, m, g or t, e.g. \"512m\")"
            )))
        }
    };
    if number.is_empty() {
        return Err(invalid(
            "expected a number and an optional unit, e.g. \"512m\"",
        ));
    }
    let (whole, fraction) = split_decimal(number).ok_or_else(|| invalid("expected a number"))?;
    let too_large = || invalid("too large");
    let multiplier = 1u128 << shift;
    let fraction_bytes = if fraction.is_empty() {
        0
    } else {
        let digits: u128 = fraction.parse().map_err(|_| invalid("expected a number"))?;
        let scale = 10u128
            .checked_pow(fraction.len() as u32)
            .ok_or_else(too_large)?;
        // Fractions of a byte are dropped, as Docker does.
        digits.checked_mul(multiplier).ok_or_else(too_large)? / scale
    };
    let whole: u128 = whole.parse().map_err(|_| too_large())?;
    let bytes = whole
        .checked_mul(multiplier)
        .and_then(|b| b.checked_add(fraction_bytes))
        .ok_or_else(too_large)?;
    // Docker stores the limit as a signed 64-bit integer.
    u64::try_from(bytes)
        .ok()
        .filter(|b| *b <= i64::MAX as u64)
        .ok_or_else(too_large)
}

/// Largest CPU count accepted; far above any real host, it only rejects typos like `cpus = "20000"`.
pub(super) const MAX_CPUS: u64 = 4096;

/// CPU count as billionths of a CPU (Docker's `NanoCpus`): a plain decimal with at most nine fractional
/// digits, greater than 0 and at most [`MAX_CPUS`]. `"0.5"` = 500_000_000.
pub(super) fn parse_cpus(text: &str) -> Result<u64, String> {
    const NANOS_PER_CPU: u64 = 1_000_000_000;
    let invalid = |why: &str| format!("invalid CPU count \"{text}\": {why}");
    if text.len() > MAX_NUMBER_TEXT {
        return Err(invalid("too long"));
    }
    let (whole, fraction) =
        split_decimal(text).ok_or_else(|| invalid("expected a decimal number like 0.5 or 2"))?;
    if fraction.len() > 9 {
        return Err(invalid("at most 9 decimal places"));
    }
    let whole: u64 = whole
        .parse()
        .map_err(|_| invalid("expected a decimal number like 0.5 or 2"))?;
    if whole > MAX_CPUS {
        return Err(invalid(&format!("must be at most {MAX_CPUS}")));
    }
    let fraction_nanos = if fraction.is_empty() {
        0
    } else {
        let digits: u64 = fraction
            .parse()
            .map_err(|_| invalid("expected a decimal number like 0.5 or 2"))?;
        digits * 10u64.pow(9 - fraction.len() as u32)
    };
    let nanos = whole * NANOS_PER_CPU + fraction_nanos;
    if nanos == 0 {
        Err(invalid("must be greater than 0"))
    } else if nanos > MAX_CPUS * NANOS_PER_CPU {
        Err(invalid(&format!("must be at most {MAX_CPUS}")))
    } else {
        Ok(nanos)
    }
}

/// `"12.5"` -> `("12", "5")`, `"12"` -> `("12", "")`; `None` unless both parts are ASCII digits and the
/// whole part is present.
fn split_decimal(text: &str) -> Option<(&str, &str)> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let has_dot = text.contains('.');
    let valid =
        !whole.is_empty() && digits(whole) && digits(fraction) && !(has_dot && fraction.is_empty());
    valid.then_some((whole, fraction))
}

/// Longest hostname DNS allows (RFC 1035).
const MAX_HOSTNAME_LEN: usize = 253;
/// Longest DNS label (RFC 1035).
const MAX_LABEL_LEN: usize = 63;

/// Validates a backend's hostname (the `[backends."..."]` key) and returns it lower-cased, the form the
/// reactor compares against the request's `Host` with its port removed.
///
/// Accepted: DNS names (labels of ASCII letters, digits, `-` and `_`, not starting or ending with `-`),
/// IPv4 addresses, and IPv6 addresses in brackets (`[::1]`, as they appear in a `Host` header).
pub(super) fn normalize_hostname(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        return Err("hostname must not be empty".into());
    }
    if raw.chars().any(char::is_whitespace) {
        return Err("hostname must not contain whitespace".into());
    }
    let host = raw.to_ascii_lowercase();
    if let Some(inner) = host.strip_prefix('[') {
        return match inner.split_once(']') {
            Some((address, "")) if address.parse::<Ipv6Addr>().is_ok() => Ok(host),
            Some((_, rest)) if rest.starts_with(':') => Err(port_message()),
            _ => Err(format!("\"{raw}\" is not a valid bracketed IPv6 address")),
        };
    }
    if host.contains(':') {
        if host.parse::<Ipv6Addr>().is_ok() {
            return Err(format!(
                "write IPv6 addresses in brackets, like \"[{host}]\""
            ));
        }
        return Err(port_message());
    }
    if host.contains('*') {
        return Err("wildcard hostnames are not supported; list each host".into());
    }
    if let Some(bad) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return Err(if bad.is_ascii() {
            format!("hostname contains the invalid character {bad:?}")
        } else {
            "hostname must be ASCII (write internationalised names in their xn-- form)".into()
        });
    }
    if host.len() > MAX_HOSTNAME_LEN {
        return Err(format!(
            "hostname is longer than {MAX_HOSTNAME_LEN} characters"
        ));
    }
    for label in host.split('.') {
        if label.is_empty() {
            return Err("hostname has an empty label (leading, trailing or doubled '.')".into());
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(format!(
                "hostname label \"{label}\" is longer than {MAX_LABEL_LEN} characters"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "hostname label \"{label}\" must not start or end with '-'"
            ));
        }
    }
    Ok(host)
}

fn port_message() -> String {
    "hostname must not include a port (the port in the Host header is ignored)".into()
}

/// Longest container name accepted; Docker has no documented limit, this only stops runaway values.
const MAX_CONTAINER_NAME_LEN: usize = 255;

fn container_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// The default container name, `spawngate-{hostname}`, with every character Docker rejects replaced by
/// `-` (only IPv6 hostnames have any).
pub(super) fn default_container_name(hostname: &str) -> String {
    let sanitized: String = hostname
        .chars()
        .map(|c| if container_name_char(c) { c } else { '-' })
        .collect();
    format!("spawngate-{sanitized}")
}

/// Checks a configured container name against Docker's rule `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub(super) fn check_container_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_ok {
        return Err("must start with a letter or digit".into());
    }
    if name.len() < 2 {
        return Err("must be at least 2 characters long (Docker's rule)".into());
    }
    if name.len() > MAX_CONTAINER_NAME_LEN {
        return Err(format!(
            "must be at most {MAX_CONTAINER_NAME_LEN} characters long"
        ));
    }
    match chars.find(|c| !container_name_char(*c)) {
        Some(bad) => Err(format!(
            "contains {bad:?}; Docker allows only letters, digits, '_', '.' and '-'"
        )),
        None => Ok(()),
    }
}

/// A pool's or session template's name: `[a-z0-9_-]{1,63}`, safe in a URL path and a container name.
pub(super) fn check_name(name: &str, what: &str) -> Result<(), String> {
    let ok = (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    match ok {
        true => Ok(()),
        false => Err(format!("a {what} name is 1 to 63 of a-z, 0-9, '_' and '-'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn memory_sizes() {
        let table: &[(&str, u64)] = &[
            ("1024", 1024),
            ("1024b", 1024),
            ("512k", 512 << 10),
            ("512KB", 512 << 10),
            ("256m", 256 * MIB),
            ("256M", 256 * MIB),
            ("256mb", 256 * MIB),
            ("256MiB", 256 * MIB),
            ("1g", 1 << 30),
            ("2gb", 2 << 30),
            ("2GB", 2 << 30),
            ("1.5g", 3 << 29),
            ("512 m", 512 * MIB),
            ("1t", 1 << 40),
            ("3TB", 3 << 40),
            ("0.5k", 512),
        ];
        for (text, bytes) in table {
            assert_eq!(parse_memory(text), Ok(*bytes), "{text}");
        }
    }

    #[test]
    fn bad_memory_sizes() {
        for text in [
            "12q",
            "",
            "m",
            "1..5g",
            "1.g",
            ".5g",
            "-1m",
            "1e3",
            "1 g b",
            "99999999999t",
            "0x10",
        ] {
            assert!(parse_memory(text).is_err(), "{text:?} should be rejected");
        }
        let message = parse_memory("12q").unwrap_err();
        assert!(message.contains("unknown unit \"q\""), "{message}");
        assert!(parse_memory(&"9".repeat(100)).is_err());
    }

    #[test]
    fn cpu_counts() {
        let table: &[(&str, u64)] = &[
            ("0.5", 500_000_000),
            ("1", 1_000_000_000),
            ("1.0", 1_000_000_000),
            ("2", 2_000_000_000),
            ("0.000000001", 1),
            ("1.25", 1_250_000_000),
            ("4096", 4_096_000_000_000),
        ];
        for (text, nanos) in table {
            assert_eq!(parse_cpus(text), Ok(*nanos), "{text}");
        }
    }

    #[test]
    fn bad_cpu_counts() {
        for text in [
            "0",
            "0.0",
            "-1",
            "",
            "abc",
            "1e3",
            "inf",
            "nan",
            ".5",
            "1.",
            "0.0000000001",
            "4097",
            "4096.5",
        ] {
            assert!(parse_cpus(text).is_err(), "{text:?} should be rejected");
        }
    }

    #[test]
    fn hostnames_are_lower_cased_and_checked() {
        assert_eq!(
            normalize_hostname("MyApp.LocalHost").as_deref(),
            Ok("myapp.localhost")
        );
        assert_eq!(normalize_hostname("localhost").as_deref(), Ok("localhost"));
        assert_eq!(normalize_hostname("127.0.0.1").as_deref(), Ok("127.0.0.1"));
        assert_eq!(normalize_hostname("[::1]").as_deref(), Ok("[::1]"));
        assert_eq!(normalize_hostname("[FE80::1]").as_deref(), Ok("[fe80::1]"));
        assert_eq!(
            normalize_hostname("my_app.internal").as_deref(),
            Ok("my_app.internal")
        );
    }

    #[test]
    fn bad_hostnames_say_why() {
        let cases = [
            ("", "empty"),
            ("a b", "whitespace"),
            (" a", "whitespace"),
            ("app.localhost:8080", "port"),
            ("[::1]:80", "port"),
            ("::1", "brackets"),
            ("[nope]", "IPv6"),
            ("*.example.com", "wildcard"),
            ("a/b", "invalid character"),
            ("héllo", "xn--"),
            (".example.com", "empty label"),
            ("example.com.", "empty label"),
            ("a..b", "empty label"),
            ("-a.com", "'-'"),
        ];
        for (host, why) in cases {
            let message = normalize_hostname(host).unwrap_err();
            assert!(message.contains(why), "{host:?}: {message}");
        }
        assert!(normalize_hostname(&"a".repeat(64)).is_err());
        assert!(normalize_hostname(&["a"; 200].join(".")).is_err());
    }

    #[test]
    fn container_names() {
        assert_eq!(
            default_container_name("myapp.localhost"),
            "spawngate-myapp.localhost"
        );
        assert_eq!(default_container_name("[::1]"), "spawngate----1-");
        assert!(check_container_name("myapp").is_ok());
        assert!(check_container_name("my_app.v2-x").is_ok());
        for bad in ["", "a", "-app", "_app", "my app", "my/app", "é1"] {
            assert!(check_container_name(bad).is_err(), "{bad:?}");
        }
    }
}
