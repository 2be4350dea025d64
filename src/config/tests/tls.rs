//! `https_port`, `https_bind` and `[tls]`: their shape and checks in every build, the certificate files
//! in a `tls` build, and the error a build without the feature gives.

use super::{assert_error, errors};

/// A certificate and key to name in a config: real files in a `tls` build (they are loaded), any path
/// otherwise (they are not). The first value keeps the files alive.
#[cfg(feature = "tls")]
fn files() -> (crate::tls::tests::pki::TempDir, String, String) {
    let ca = crate::tls::tests::pki::Ca::new();
    let dir = crate::tls::tests::pki::TempDir::new();
    let (cert, key) = dir.write("site", &ca.issue(&["a.example.com", "*.b.example.com"]));
    (dir, cert.display().to_string(), key.display().to_string())
}

#[cfg(not(feature = "tls"))]
fn files() -> ((), String, String) {
    ((), "site.pem".into(), "site.key".into())
}

fn https(cert: &str, key: &str, extra: &str) -> String {
    format!(
        "[server]\nhttps_port = 8443\n[tls]\n{extra}\n\
         [[tls.certificates]]\ncert = \"{cert}\"\nkey = \"{key}\"\n"
    )
}

#[cfg(not(feature = "tls"))]
#[test]
fn a_build_without_tls_names_the_line_and_the_feature() {
    let (_dir, cert, key) = files();
    let found = errors(&https(&cert, &key, ""));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_error(&found, 2, "server.https_port", "build with --features tls");

    let found = errors("[tls]\nredirect_http = true\n");
    assert_error(&found, 1, "tls", "build with --features tls");
}

#[cfg(feature = "tls")]
#[test]
fn a_full_tls_config_loads_its_certificates() {
    let (_dir, cert, key) = files();
    let extra = "redirect_http = true\nhsts_max_age_secs = 63072000\nhandshake_timeout_ms = 5000";
    let text = format!(
        "{}default = true\n[[tls.certificates]]\ncert = \"{cert}\"\nkey = \"{key}\"\n",
        https(&cert, &key, extra)
    );
    let config = super::ok(&text);
    let tls = config.tls.unwrap();
    assert_eq!(tls.https_port, 8443);
    assert_eq!(
        tls.https_bind, config.server.bind,
        "https_bind defaults to bind"
    );
    assert!(tls.redirect_http);
    assert_eq!(
        tls.hsts_max_age,
        Some(std::time::Duration::from_secs(63_072_000))
    );
    assert_eq!(
        tls.handshake_timeout,
        std::time::Duration::from_millis(5000)
    );
    assert_eq!(tls.certificates.len(), 2);
    assert!(tls.certificates[0].default && !tls.certificates[1].default);
    assert_eq!(
        tls.certificates[0].loaded.names,
        ["a.example.com", "*.b.example.com"]
    );
    let cache = crate::tls::store::new_session_cache();
    let (store, warnings) = crate::tls::store::CertStore::from_config(&tls, cache, 0).unwrap();
    assert_eq!(store.entries().len(), 2);
    // The second file is the first again: its names are taken, so nothing reaches it.
    assert_eq!(warnings.len(), 3, "{warnings:#?}");
}

#[cfg(feature = "tls")]
#[test]
fn the_defaults_and_no_tls_at_all() {
    let (_dir, cert, key) = files();
    let config = super::ok(&format!(
        "[server]\nbind = \"0.0.0.0\"\nhttps_port = 0\nhttps_bind = \"::1\"\n\
         [[tls.certificates]]\ncert = \"{cert}\"\nkey = \"{key}\"\n"
    ));
    let tls = config.tls.unwrap();
    assert_eq!(tls.https_bind, "::1".parse::<std::net::IpAddr>().unwrap());
    assert!(!tls.redirect_http);
    assert_eq!(tls.hsts_max_age, None);
    assert_eq!(tls.handshake_timeout, std::time::Duration::from_secs(10));
    assert!(tls.acme.is_none());
    assert!(super::ok("").tls.is_none());
}

#[cfg(feature = "tls")]
#[test]
fn an_unreadable_certificate_or_a_foreign_key_is_an_error_at_its_key() {
    let (_dir, cert, key) = files();
    let missing = format!("{cert}.missing");
    let found = errors(&https(&missing, &key, ""));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_error(&found, 6, "tls.certificates[0].cert", "cannot read");
    assert!(found[0].message.contains(&missing));

    let (_other, _, other_key) = files();
    let found = errors(&https(&cert, &other_key, ""));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_error(&found, 7, "tls.certificates[0].key", "does not belong");
}

#[cfg(all(feature = "tls", not(feature = "acme")))]
#[test]
fn acme_in_a_build_without_it_names_the_feature() {
    let (_dir, cert, key) = files();
    let acme = "[tls.acme]\ndirectory = \"https://ca.test/dir\"\nstorage = \"/var/lib/sg\"\n";
    let found = errors(&format!("{}{acme}", https(&cert, &key, "")));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_error(&found, 8, "tls.acme", "build with --features acme");
}

#[test]
fn two_defaults_are_an_error_at_the_second() {
    let (_dir, cert, key) = files();
    let text = format!(
        "{}default = true\n[[tls.certificates]]\ncert = \"{cert}\"\nkey = \"{key}\"\ndefault = true\n",
        https(&cert, &key, "")
    );
    let found = errors(&text);
    assert_error(
        &found,
        12,
        "tls.certificates[1].default",
        "only one certificate can be the default (tls.certificates[0] is)",
    );
}

#[test]
fn https_needs_a_port_and_a_certificate() {
    let found = errors("[server]\nhttps_port = 8443\n");
    assert_error(&found, 2, "server.https_port", "HTTPS needs a certificate");
    let found = errors("[tls]\nredirect_http = true\n");
    assert_error(
        &found,
        1,
        "server.https_port",
        "needs `https_port` in [server]",
    );
    let found = errors("[server]\nhttps_bind = \"0.0.0.0\"\n");
    assert_error(
        &found,
        2,
        "server.https_port",
        "needs `https_port` in [server]",
    );
}

#[test]
fn the_https_port_must_be_free() {
    let found = errors("[server]\nport = 8443\nhttps_port = 8443\n");
    assert_error(
        &found,
        3,
        "server.https_port",
        "the proxy already listens on port 8443",
    );
    let found = errors("[server]\nhttps_port = 9999\n");
    assert_error(
        &found,
        2,
        "server.https_port",
        "the admin API already listens",
    );
    // Different addresses may share a port number.
    let found = errors(
        "[server]\nbind = \"127.0.0.1\"\nport = 80\nhttps_port = 80\nhttps_bind = \"127.0.0.2\"\n",
    );
    assert!(
        !found.iter().any(|e| e.message.contains("already listens")),
        "{found:#?}"
    );
}

#[test]
fn values_and_unknown_keys_are_checked() {
    let (_dir, cert, key) = files();
    let extra = "hsts_max_age_secs = -1\nhandshake_timeout_ms = 5\nredirect = true";
    let found = errors(&format!("{}colour = 1\n", https(&cert, &key, extra)));
    assert_error(&found, 4, "tls.hsts_max_age_secs", "must not be negative");
    assert_error(
        &found,
        5,
        "tls.handshake_timeout_ms",
        "between 100 and 300000",
    );
    assert_error(&found, 6, "tls.redirect", "did you mean `redirect_http`?");
    assert_error(&found, 10, "tls.certificates[0].colour", "unknown key");

    let found = errors("[server]\nhttps_port = 1\n[[tls.certificates]]\ncert = \"a\"\n");
    assert_error(
        &found,
        3,
        "tls.certificates[0].key",
        "required key is missing",
    );
}

#[test]
fn acme_settings_have_a_shape() {
    let (_dir, cert, key) = files();
    let acme = "[tls.acme]\ndirectory = \"http://ca.test/dir\"\nchallenge = \"dns-01\"\n";
    let found = errors(&format!("{}{acme}", https(&cert, &key, "")));
    assert_error(&found, 9, "tls.acme.directory", "must be an https:// URL");
    assert_error(
        &found,
        10,
        "tls.acme.challenge",
        "\"http-01\" or \"tls-alpn-01\"",
    );
    assert_error(&found, 8, "tls.acme.storage", "required key is missing");
}

#[cfg(feature = "tls")]
#[test]
fn the_https_listener_is_restart_only_in_a_reload_diff() {
    let (_dir, cert, key) = files();
    let old = super::ok(&https(&cert, &key, ""));
    let moved = https(&cert, &key, "").replace("https_port = 8443", "https_port = 8444");
    let d = crate::config::diff(&old, &super::ok(&moved));
    assert_eq!(d.server_changed, ["https_port"]);
    // Other [tls] keys and the certificates take effect on reload.
    let d = crate::config::diff(
        &old,
        &super::ok(&https(&cert, &key, "redirect_http = true")),
    );
    assert!(d.server_changed.is_empty(), "{d:?}");
}
