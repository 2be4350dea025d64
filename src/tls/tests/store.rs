//! Choosing a certificate by SNI, and the warnings a store reports when it is built.

use std::sync::Arc;

use super::pki::{Ca, TempDir};
use super::{load, store};
use crate::tls::store::{new_session_cache, CertStore};

/// Which certificate (by index) the store serves for `sni`.
fn chosen(store: &CertStore, sni: Option<&str>) -> usize {
    let config = store.select(sni).unwrap();
    store
        .entries()
        .iter()
        .position(|entry| Arc::ptr_eq(&entry.config, &config))
        .unwrap()
}

#[test]
fn exact_names_win_over_wildcards_one_label_deep_and_the_rest_get_the_default() {
    let ca = Ca::new();
    let store = store(
        &ca,
        &[
            (&["*.example.com"], false),
            (&["a.example.com"], false),
            (&["fallback.example.net"], true),
        ],
    );
    assert_eq!(
        chosen(&store, Some("a.example.com")),
        1,
        "exact beats wildcard"
    );
    assert_eq!(chosen(&store, Some("b.example.com")), 0);
    assert_eq!(
        chosen(&store, Some("B.Example.COM.")),
        0,
        "case and a trailing dot"
    );
    assert_eq!(chosen(&store, Some("A.EXAMPLE.COM")), 1);
    assert_eq!(
        chosen(&store, Some("x.b.example.com")),
        2,
        "a wildcard covers one label"
    );
    assert_eq!(
        chosen(&store, Some("example.com")),
        2,
        "nor the name itself"
    );
    assert_eq!(chosen(&store, Some(".example.com")), 2);
    assert_eq!(chosen(&store, Some("other.org")), 2);
    assert_eq!(chosen(&store, Some("")), 2);
    assert_eq!(chosen(&store, None), 2);
}

#[test]
fn without_an_explicit_default_the_first_certificate_serves() {
    let ca = Ca::new();
    let store = store(
        &ca,
        &[(&["a.example.com"], false), (&["b.example.com"], false)],
    );
    assert_eq!(chosen(&store, None), 0);
    assert_eq!(chosen(&store, Some("unknown.example.com")), 0);
    assert_eq!(chosen(&store, Some("b.example.com")), 1);
}

#[test]
fn an_empty_store_selects_nothing() {
    let (store, warnings) = CertStore::build(Vec::new(), new_session_cache(), 0).unwrap();
    assert!(store.is_empty() && warnings.is_empty());
    assert!(store.select(Some("a.example.com")).is_none());
    assert!(store.select(None).is_none());
}

#[test]
fn configs_offer_h2_first_refuse_0rtt_and_share_one_session_cache() {
    let ca = Ca::new();
    let store = store(
        &ca,
        &[(&["a.example.com"], false), (&["b.example.com"], false)],
    );
    for entry in store.entries() {
        let config = &entry.config;
        assert_eq!(
            config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        assert_eq!(config.max_early_data_size, 0);
    }
    let [a, b] = store.entries() else { panic!() };
    assert!(Arc::ptr_eq(
        &a.config.session_storage,
        &b.config.session_storage
    ));
}

#[test]
fn duplicate_names_unreachable_and_expired_certificates_are_warned_about() {
    let ca = Ca::new();
    let dir = TempDir::new();
    let first = load(&dir, "first", &ca.issue(&["a.example.com"]));
    let again = load(&dir, "again", &ca.issue(&["a.example.com"]));
    let expired = load(
        &dir,
        "old",
        &ca.issue_until(&["old.example.com"], (2001, 1, 1)),
    );
    let now = 1_700_000_000;
    let certs = vec![(first, false), (again, false), (expired, false)];
    let (store, warnings) = CertStore::build(certs, new_session_cache(), now).unwrap();
    assert_eq!(warnings.len(), 3, "{warnings:#?}");
    assert!(warnings[0].contains("a.example.com is served by an earlier certificate"));
    assert!(warnings[1].contains("no client gets it"));
    assert!(warnings[2].contains("old.example.com") && warnings[2].contains("expired"));
    assert_eq!(
        chosen(&store, Some("a.example.com")),
        0,
        "the first keeps the name"
    );
}

#[test]
fn a_first_certificate_without_names_is_unreachable_when_another_is_the_default() {
    let ca = Ca::new();
    let dir = TempDir::new();
    let nameless = load(&dir, "ip", &ca.issue(&["10.0.0.1"]));
    let named = load(&dir, "a", &ca.issue(&["a.example.com"]));
    let certs = vec![(nameless.clone(), false), (named.clone(), true)];
    let (store, warnings) = CertStore::build(certs, new_session_cache(), 0).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains("without DNS names") && warnings[0].contains("no client gets it"));
    assert_eq!(chosen(&store, None), 1);

    // As the implicit default it serves clients without SNI.
    let certs = vec![(nameless, false), (named, false)];
    let (store, warnings) = CertStore::build(certs, new_session_cache(), 0).unwrap();
    assert!(warnings.is_empty(), "{warnings:#?}");
    assert_eq!(chosen(&store, None), 0);
}

#[test]
fn a_tls_alpn_01_answer_goes_only_to_a_hello_that_offers_acme_tls_for_its_name() {
    let ca = Ca::new();
    let mut store = store(&ca, &[(&["a.example.com"], false)]);
    let answer = store.entries()[0].certificate.key.clone();
    store.answer_challenge("New.Example.com", &answer).unwrap();
    let challenge = store.select_for(Some("new.example.com."), true).unwrap();
    assert_eq!(challenge.alpn_protocols, [b"acme-tls/1".to_vec()]);
    assert!(!Arc::ptr_eq(&challenge, &store.entries()[0].config));
    // Without acme-tls/1 (a browser), or for another name, the usual choice.
    for (sni, acme) in [
        (Some("new.example.com"), false),
        (Some("a.example.com"), true),
    ] {
        let config = store.select_for(sni, acme).unwrap();
        assert!(Arc::ptr_eq(&config, &store.entries()[0].config), "{sni:?}");
    }
}

#[test]
fn covers_matches_exact_names_and_one_wildcard_label() {
    use crate::tls::store::covers;
    assert!(covers("a.example.com", "a.example.com"));
    assert!(covers("*.example.com", "a.example.com"));
    assert!(!covers("*.example.com", "example.com"));
    assert!(!covers("*.example.com", "x.a.example.com"));
    assert!(!covers("*.example.com", ".example.com"));
    assert!(!covers("a.example.com", "b.example.com"));
}
