//! One template's own keys, wrong: each error with its line and key path.

use super::super::{assert_error, errors, single_error};
use super::{with, MINIMAL};

/// `MINIMAL` with another hostname (line 3) and `extra` from line 6.
fn hostname(hostname: &str, extra: &str) -> String {
    MINIMAL.replace("{id}.nb.example.com", hostname) + extra
}

#[test]
fn a_template_name_is_lower_case_letters_digits_dash_and_underscore() {
    single_error(
        &MINIMAL.replace("sessions.nb", "sessions.NB"),
        2,
        "sessions.NB",
        "a template name is 1 to 63 of a-z, 0-9",
    );
    single_error(
        &MINIMAL.replace("sessions.nb", "sessions.\"n.b\""),
        2,
        "sessions.\"n.b\"",
        "a template name",
    );
    // Still read: its other problems show at once.
    let found = errors(
        &MINIMAL
            .replace("sessions.nb", "sessions.NB")
            .replace("20000-", "10-"),
    );
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_error(
        &found,
        4,
        "sessions.NB.host_ports",
        "between 1024 and 65535",
    );
    single_error("[sessions]\nnb = 5\n", 2, "sessions.nb", "must be a table");
}

#[test]
fn hostname_and_host_ports_are_required() {
    single_error(
        &MINIMAL.replace("hostname = \"{id}.nb.example.com\"\n", ""),
        2,
        "sessions.nb.hostname",
        "required key is missing",
    );
    single_error(
        &MINIMAL.replace("host_ports = \"20000-20999\"\n", ""),
        2,
        "sessions.nb.host_ports",
        "required key is missing",
    );
}

#[test]
fn a_hostname_has_one_placeholder_in_its_first_label_and_a_domain() {
    let key = "sessions.nb.hostname";
    for (text, needle) in [
        ("nb.example.com", "needs {id} (or {key}) in its first label"),
        ("{id}.{key}.example.com", "exactly one {id} or {key}"),
        ("nb.{id}.example.com", "{id} must be in the first label"),
        ("{id}-{port}.example.com", r#"found "{port}""#),
        ("{id}", "needs a domain after its first label"),
        ("{id}.example.com:80", "must not include a port"),
        ("{id}..example.com", "empty label"),
        ("{id}.exam!ple.com", "invalid character '!'"),
    ] {
        single_error(&hostname(text, ""), 3, key, needle);
    }
    single_error(&hostname("", ""), 3, key, "must not be empty");
    single_error(
        &MINIMAL.replace("\"{id}.nb.example.com\"", "5"),
        3,
        key,
        "must be a string",
    );
    let long = format!("{}{{id}}.example.com", "a".repeat(40));
    single_error(&hostname(&long, ""), 3, key, "DNS allows 63");
}

#[test]
fn public_url_is_a_scheme_the_hostname_and_a_port() {
    let key = "sessions.nb.public_url";
    for (url, needle) in [
        ("ftp://{hostname}", "must start with http:// or https://"),
        (
            "https://example.com",
            "must contain {hostname} exactly once",
        ),
        ("https://app.{hostname}", "must follow https:// at once"),
        ("https://{hostname}/app", "only :PORT may follow {hostname}"),
        ("https://{hostname}:99999", "only :PORT"),
    ] {
        single_error(&with(&format!("public_url = \"{url}\"\n")), 6, key, needle);
    }
    // A port chosen at start cannot be in a URL made now.
    single_error(
        &format!("[server]\nport = 0\n{MINIMAL}"),
        4,
        key,
        "required when [server] port = 0",
    );
}

#[test]
fn access_with_key_hostnames_is_token_only() {
    let key_host = "{key}.nb.example.com";
    for access in ["hostname", "none"] {
        single_error(
            &hostname(key_host, &format!("access = \"{access}\"\n")),
            6,
            "sessions.nb.access",
            "{key} in hostname needs access = \"token\"",
        );
    }
    single_error(
        &with("access = \"open\"\n"),
        6,
        "sessions.nb.access",
        "must be \"token\", \"hostname\" or \"none\", found \"open\"",
    );
}

#[test]
fn start_evict_and_unhealthy_name_their_values() {
    for (line, needle) in [
        (
            "start = \"lazy\"",
            "must be \"on_create\" or \"on_request\", found \"lazy\"",
        ),
        (
            "evict = \"oldest\"",
            "must be \"idle_lru\", \"lru\" or \"never\"",
        ),
        ("unhealthy = \"ignore\"", "must be \"end\" or \"restart\""),
        ("evict = 1", "must be a string, found an integer"),
    ] {
        let key = format!("sessions.nb.{}", line.split(' ').next().unwrap_or_default());
        single_error(&with(&format!("{line}\n")), 6, &key, needle);
    }
}

#[test]
fn key_pattern_is_a_valid_expression_of_sane_length() {
    let key = "sessions.nb.key_pattern";
    single_error(
        &with("key_pattern = \"[a-z\"\n"),
        6,
        key,
        "not a valid regular expression",
    );
    single_error(
        &with("key_pattern = \"a)|(b\"\n"),
        6,
        key,
        "not a valid regular expression",
    );
    let long = format!("key_pattern = \"{}\"\n", "a".repeat(1025));
    single_error(&with(&long), 6, key, "at most 1024 bytes");
}

#[test]
fn allow_env_names_variables_a_connect_may_set() {
    let found = errors(&with(
        "allow_env = [\n  \"OK\",\n  \"1X\",\n  \"PORT\",\n  \"SPAWNGATE_SESSION_ID\",\n  \"OK\",\n  \"A-B\",\n  \"SERVERLESS_PROXY_READY_URL\",\n]\n",
    ));
    assert_eq!(found.len(), 6, "{found:#?}");
    assert_error(
        &found,
        8,
        "sessions.nb.allow_env[1]",
        "\"1X\" is no variable name",
    );
    assert_error(
        &found,
        9,
        "sessions.nb.allow_env[2]",
        "PORT is set by spawngate for every session",
    );
    assert_error(
        &found,
        10,
        "sessions.nb.allow_env[3]",
        "SPAWNGATE_SESSION_ID is set by spawngate",
    );
    assert_error(&found, 11, "sessions.nb.allow_env[4]", "OK is listed twice");
    assert_error(
        &found,
        12,
        "sessions.nb.allow_env[5]",
        "\"A-B\" is no variable name",
    );
    assert_error(
        &found,
        13,
        "sessions.nb.allow_env[6]",
        "SERVERLESS_PROXY_READY_URL is set",
    );
    single_error(
        &with("allow_env = [\"A\", 1]\n"),
        6,
        "sessions.nb.allow_env[1]",
        "must be a string",
    );
    single_error(
        &with("allow_env = \"A\"\n"),
        6,
        "sessions.nb.allow_env",
        "an array of strings",
    );
}

#[test]
fn numbers_in_their_ranges() {
    for (line, key, needle) in [
        (
            "idle_timeout_secs = 0",
            "idle_timeout_secs",
            "between 1 and 31536000",
        ),
        (
            "lifetime_secs = 0",
            "lifetime_secs",
            "between 1 and 31536000",
        ),
        (
            "lifetime_secs = 31536001",
            "lifetime_secs",
            "between 1 and 31536000",
        ),
        ("max_running = 0", "max_running", "between 1 and 10000"),
        ("max_running = 10001", "max_running", "between 1 and 10000"),
        (
            "tombstone_secs = 86401",
            "tombstone_secs",
            "between 0 and 86400",
        ),
        (
            "tombstone_secs = -1",
            "tombstone_secs",
            "must not be negative",
        ),
        ("max_running = \"5\"", "max_running", "must be an integer"),
    ] {
        single_error(
            &with(&format!("{line}\n")),
            6,
            &format!("sessions.nb.{key}"),
            needle,
        );
    }
}

#[test]
fn host_ports_is_an_unprivileged_range() {
    let key = "sessions.nb.host_ports";
    for (range, needle) in [
        ("20000", "must be a range of ports like \"20000-20999\""),
        ("a-b", "must be a range of ports"),
        ("80-1100", "both ends must be between 1024 and 65535"),
        ("60000-70000", "both ends must be between 1024 and 65535"),
        ("21000-20000", "21000 is above 20000"),
    ] {
        single_error(&MINIMAL.replace("20000-20999", range), 4, key, needle);
    }
    single_error(
        &MINIMAL.replace("\"20000-20999\"", "20000"),
        4,
        key,
        "must be a string",
    );
}

#[test]
fn unknown_keys_are_reported_with_a_suggestion() {
    single_error(
        &with("idle_timeout = 5\n"),
        6,
        "sessions.nb.idle_timeout",
        "unknown key (did you mean `idle_timeout_secs`?)",
    );
    single_error(
        &with("replicas = 2\n"),
        6,
        "sessions.nb.replicas",
        "unknown key",
    );
}
