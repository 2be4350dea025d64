//! The text forms of a template's keys: `hostname` (one `{id}` or `{key}` in the first label),
//! `public_url` (`http(s)://{hostname}`, an optional `:PORT`) and `host_ports` (`"LOW-HIGH"`), and when
//! two hostname spaces overlap. Pure: each returns the value or the message for the operator.

use super::{HostPattern, HostVar, UrlPattern};
use crate::config::units::normalize_hostname;

/// A session id in a hostname: 26 base32 characters (128 bits).
const ID_LEN: usize = 26;
/// Longest DNS label (RFC 1035).
const MAX_LABEL_LEN: usize = 63;
/// Session ports: the unprivileged range.
const HOST_PORTS: (u16, u16) = (1024, 65_535);

/// `hostname = "{id}.nb.example.com"` or `"nb-{key}.example.com"`.
pub(super) fn host_pattern(text: &str) -> Result<HostPattern, String> {
    let found: Vec<(usize, HostVar, &str)> = [(HostVar::Id, "{id}"), (HostVar::Key, "{key}")]
        .into_iter()
        .flat_map(|(var, placeholder)| {
            text.match_indices(placeholder)
                .map(move |(at, p)| (at, var, p))
        })
        .collect();
    let (at, var, placeholder) = match found.as_slice() {
        [one] => *one,
        [] => {
            return Err(
                "needs {id} (or {key}) in its first label, e.g. \"{id}.nb.example.com\"".into(),
            )
        }
        _ => return Err("must contain exactly one {id} or {key}".into()),
    };
    let (before, after) = (&text[..at], &text[at + placeholder.len()..]);
    if before.contains('.') {
        return Err(format!(
            "{placeholder} must be in the first label (before the first '.')"
        ));
    }
    if let Some(other) = stray_placeholder(before).or_else(|| stray_placeholder(after)) {
        return Err(format!(
            "only one {{id}} or {{key}} may appear in a hostname, found \"{other}\""
        ));
    }
    let Some(dot) = after.find('.') else {
        return Err("needs a domain after its first label, e.g. \"{id}.nb.example.com\"".into());
    };
    // A key's length is the registry's to check (at connect time); an id's is known now.
    let value_len = match var {
        HostVar::Id => ID_LEN,
        HostVar::Key => 1,
    };
    let label_len = before.len() + value_len + dot;
    if label_len > MAX_LABEL_LEN {
        return Err(format!(
            "its first label would be {label_len} characters (with a {value_len}-character \
             {placeholder}); DNS allows {MAX_LABEL_LEN}"
        ));
    }
    // The rest is checked as the hostname a session would have, with a value of the right form.
    let sample = "a".repeat(value_len);
    let host = normalize_hostname(&format!("{before}{sample}{after}"))?;
    Ok(HostPattern {
        before: host[..before.len()].to_string(),
        var,
        after: host[before.len() + value_len..].to_string(),
    })
}

/// The first `{...}` in `text`, if any (a brace at all is never part of a hostname).
fn stray_placeholder(text: &str) -> Option<&str> {
    let open = text.find(['{', '}'])?;
    let end = text[open..]
        .find('}')
        .map_or(text.len(), |close| open + close + 1);
    Some(&text[open..end])
}

/// `public_url = "https://{hostname}"`: the scheme, `{hostname}`, an optional `:PORT`, and nothing
/// else: a session is served at the root of its own hostname (its `/.spawngate/` paths, its host-only
/// cookie), so the URL cannot name another host or a path. A trailing '/' is dropped.
pub(super) fn url_pattern(text: &str) -> Result<UrlPattern, String> {
    let text = text.trim_end_matches('/');
    let lower = text.to_ascii_lowercase();
    let Some(scheme) = ["http://", "https://"]
        .into_iter()
        .find(|scheme| lower.starts_with(scheme))
    else {
        return Err("must start with http:// or https://".into());
    };
    if text.matches("{hostname}").count() != 1 {
        return Err("must contain {hostname} exactly once".into());
    }
    let Some(after) = text[scheme.len()..].strip_prefix("{hostname}") else {
        return Err(format!(
            "{{hostname}} must follow {scheme} at once: a session is served at its own hostname"
        ));
    };
    let port_ok = after.is_empty()
        || after.strip_prefix(':').is_some_and(|port| {
            port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
    if !port_ok {
        return Err(format!(
            "only :PORT may follow {{hostname}}, found \"{after}\" (a session is served at the \
             root of its hostname)"
        ));
    }
    Ok(UrlPattern {
        before: scheme.to_string(),
        after: after.to_string(),
    })
}

/// The `public_url` of a template without one: `http://{hostname}`, then `:{port}` unless it is 80.
/// Port 0 (chosen by the OS at start) gives none: a URL cannot be made of it.
pub(super) fn default_url(port: u16) -> Result<UrlPattern, String> {
    let after =
        match port {
            0 => return Err(
                "required when [server] port = 0 (the port is only known once the proxy listens)"
                    .into(),
            ),
            80 => String::new(),
            port => format!(":{port}"),
        };
    Ok(UrlPattern {
        before: "http://".into(),
        after,
    })
}

/// `host_ports = "20000-20999"`: an inclusive range of unprivileged ports.
pub(super) fn port_range(text: &str) -> Result<(u16, u16), String> {
    let shape = || format!("must be a range of ports like \"20000-20999\", found \"{text}\"");
    let (low, high) = text.split_once('-').ok_or_else(shape)?;
    let port = |part: &str| {
        let part = part.trim();
        let digits =
            !part.is_empty() && part.len() <= 5 && part.bytes().all(|b| b.is_ascii_digit());
        digits.then(|| part.parse::<u32>().ok()).flatten()
    };
    let (Some(low), Some(high)) = (port(low), port(high)) else {
        return Err(shape());
    };
    let (min, max) = HOST_PORTS;
    let in_range = |p: u32| (u32::from(min)..=u32::from(max)).contains(&p);
    if !in_range(low) || !in_range(high) {
        return Err(format!(
            "both ends must be between {min} and {max}, found \"{text}\""
        ));
    }
    if low > high {
        return Err(format!("{low} is above {high}: write the lower port first"));
    }
    // Both are within u16 (checked above).
    Ok((low as u16, high as u16))
}

/// Whether some hostname is in both spaces. A session hostname is `before + value + rest + domain`
/// (`after` split at its first '.'), the value any non-empty text without '.'; so two spaces share a
/// name exactly when the domains are equal, one `before` starts the other and one `rest` ends the other
/// (a long enough value then fits both).
pub(super) fn spaces_overlap(a: &HostPattern, b: &HostPattern) -> bool {
    let (rest_a, domain_a) = split_first_label(&a.after);
    let (rest_b, domain_b) = split_first_label(&b.after);
    domain_a == domain_b
        && (a.before.starts_with(&b.before) || b.before.starts_with(&a.before))
        && (rest_a.ends_with(rest_b) || rest_b.ends_with(rest_a))
}

/// Whether a `[hosts]` wildcard (`*.d`: any one label, then `.d`) names exactly this template's space:
/// then every name of it would be a session's, and the wildcard host would never be reached.
pub(super) fn wildcard_is_space(wildcard: &str, pattern: &HostPattern) -> bool {
    wildcard
        .strip_prefix('*')
        .is_some_and(|domain| pattern.before.is_empty() && pattern.after == domain)
}

fn split_first_label(after: &str) -> (&str, &str) {
    after.split_at(after.find('.').unwrap_or(after.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(before: &str, var: HostVar, after: &str) -> HostPattern {
        HostPattern {
            before: before.into(),
            var,
            after: after.into(),
        }
    }

    #[test]
    fn hostnames_split_around_their_placeholder_lower_cased() {
        assert_eq!(
            host_pattern("{id}.NB.Example.com"),
            Ok(pattern("", HostVar::Id, ".nb.example.com"))
        );
        assert_eq!(
            host_pattern("NB-{key}-x.example.com"),
            Ok(pattern("nb-", HostVar::Key, "-x.example.com"))
        );
    }

    #[test]
    fn bad_hostnames_say_why() {
        let cases = [
            ("nb.example.com", "needs {id} (or {key})"),
            ("{id}.{key}.example.com", "exactly one"),
            ("{id}-{id}.example.com", "exactly one"),
            ("nb.{id}.example.com", "must be in the first label"),
            ("{id}-{port}.example.com", "found \"{port}\""),
            ("{id}.example.{x", "found \"{x\""),
            ("{id}", "needs a domain"),
            ("nb-{id}", "needs a domain"),
            ("{id}.example.com.", "empty label"),
            ("{id}.exa mple.com", "whitespace"),
            ("{id}.example.com:8080", "port"),
            ("-{id}.example.com", "must not start or end with '-'"),
            ("{id}.*.example.com", "wildcard"),
        ];
        for (text, needle) in cases {
            let message = host_pattern(text).expect_err(text);
            assert!(message.contains(needle), "{text}: {message}");
        }
        let long = format!("{}{{id}}.example.com", "a".repeat(38));
        let message = host_pattern(&long).expect_err("too long");
        assert!(message.contains("would be 64 characters"), "{message}");
        assert!(host_pattern(&format!("{}{{id}}.example.com", "a".repeat(37))).is_ok());
    }

    #[test]
    fn public_urls_are_a_scheme_the_hostname_and_a_port() {
        let url = |before: &str, after: &str| UrlPattern {
            before: before.into(),
            after: after.into(),
        };
        assert_eq!(url_pattern("https://{hostname}/"), Ok(url("https://", "")));
        assert_eq!(
            url_pattern("HTTP://{hostname}:8080"),
            Ok(url("http://", ":8080"))
        );
        let cases = [
            ("ftp://{hostname}", "http:// or https://"),
            ("{hostname}", "http:// or https://"),
            ("https://example.com", "exactly once"),
            ("https://{hostname}/{hostname}", "exactly once"),
            ("https://www.{hostname}", "must follow https:// at once"),
            ("https://{hostname}/app", "only :PORT"),
            ("https://{hostname}:0", "only :PORT"),
            ("https://{hostname}:70000", "only :PORT"),
            ("https://{hostname}?a=b", "only :PORT"),
        ];
        for (text, needle) in cases {
            let message = url_pattern(text).expect_err(text);
            assert!(message.contains(needle), "{text}: {message}");
        }
    }

    #[test]
    fn the_default_url_names_the_proxy_port_unless_it_is_80() {
        assert_eq!(
            default_url(8080).map(|u| u.render("h")),
            Ok("http://h:8080".into())
        );
        assert_eq!(
            default_url(80).map(|u| u.render("h")),
            Ok("http://h".into())
        );
        assert!(default_url(0).is_err());
    }

    #[test]
    fn port_ranges() {
        assert_eq!(port_range("20000-20999"), Ok((20000, 20999)));
        assert_eq!(port_range("20000 - 20000"), Ok((20000, 20000)));
        assert_eq!(port_range("1024-65535"), Ok((1024, 65535)));
        for (text, needle) in [
            ("20000", "a range of ports"),
            ("a-b", "a range of ports"),
            ("-1-5", "a range of ports"),
            ("+2000-3000", "a range of ports"),
            ("80-2000", "between 1024 and 65535"),
            ("2000-65536", "between 1024 and 65535"),
            ("3000-2000", "3000 is above 2000"),
            ("999999999999-1", "a range of ports"),
        ] {
            let message = port_range(text).expect_err(text);
            assert!(message.contains(needle), "{text}: {message}");
        }
    }

    #[test]
    fn spaces_overlap_when_some_name_is_in_both() {
        let id = |before: &str, after: &str| pattern(before, HostVar::Id, after);
        let nb = id("", ".nb.example.com");
        assert!(spaces_overlap(&nb, &nb));
        assert!(spaces_overlap(&nb, &id("x-", ".nb.example.com")));
        assert!(spaces_overlap(&nb, &id("", "-x.nb.example.com")));
        assert!(spaces_overlap(&id("a-", "-b.d"), &id("a-c-", ".d")));
        assert!(!spaces_overlap(&nb, &id("", ".example.com")));
        assert!(!spaces_overlap(&id("a-", ".d"), &id("b-", ".d")));
        assert!(!spaces_overlap(&id("", "-a.d"), &id("", "-b.d")));
    }

    #[test]
    fn a_wildcard_is_a_space_only_when_it_is_all_of_it() {
        let space = pattern("", HostVar::Id, ".nb.example.com");
        assert!(wildcard_is_space("*.nb.example.com", &space));
        assert!(!wildcard_is_space("*.example.com", &space));
        assert!(!wildcard_is_space("x.nb.example.com", &space));
        let prefixed = pattern("nb-", HostVar::Id, ".example.com");
        assert!(!wildcard_is_space("*.example.com", &prefixed));
    }
}
