//! Loading PEM pairs: what a good one yields, and each way a pair is refused with the file named.

use super::pki::{Ca, TempDir};
use crate::tls::certs::{load, Which};
use crate::tls::der::cert_facts;

#[test]
fn a_good_pair_lists_its_dns_names_and_expiry() {
    let ca = Ca::new();
    let dir = TempDir::new();
    // rcgen writes UTCTime before 2050 and GeneralizedTime from then on: both encodings are read.
    for ((y, m, d), unix) in [((2031, 5, 6), 1_935_792_000), ((2100, 1, 1), 4_102_444_800)] {
        let issued = ca.issue_until(
            &["WWW.Example.com", "*.apps.example.com", "10.0.0.1"],
            (y, m, d),
        );
        let (cert, key) = dir.write("good", &issued);
        let loaded = load(&cert, &key).unwrap();
        assert_eq!(loaded.names, ["www.example.com", "*.apps.example.com"]);
        assert!(loaded.unusable_names.is_empty());
        assert_eq!(loaded.not_after, unix);
        assert_eq!(cert_facts(&issued.der).unwrap().not_after, unix);
    }
}

#[test]
fn a_key_of_another_certificate_is_refused_at_the_key() {
    let ca = Ca::new();
    let dir = TempDir::new();
    let (cert, _) = dir.write("one", &ca.issue(&["a.example.com"]));
    let (_, other_key) = dir.write("two", &ca.issue(&["a.example.com"]));
    let error = load(&cert, &other_key).unwrap_err();
    assert_eq!(error.which, Which::Key);
    assert!(
        error.message.contains("does not belong"),
        "{}",
        error.message
    );
    assert!(error.message.contains("two.key"), "{}", error.message);
}

#[test]
fn missing_unreadable_and_empty_files_are_named() {
    let ca = Ca::new();
    let dir = TempDir::new();
    let (cert, key) = dir.write("a", &ca.issue(&["a.example.com"]));
    let missing = dir.path().join("missing.pem");

    let error = load(&missing, &key).unwrap_err();
    assert_eq!(error.which, Which::Cert);
    assert!(error.message.contains("cannot read") && error.message.contains("missing.pem"));

    let error = load(&cert, &missing).unwrap_err();
    assert_eq!(error.which, Which::Key);
    assert!(error.message.contains("missing.pem"), "{}", error.message);

    // The key file where the certificate should be: PEM, but no certificate in it.
    let error = load(&key, &key).unwrap_err();
    assert_eq!(error.which, Which::Cert);
    assert!(
        error.message.contains("holds no certificate"),
        "{}",
        error.message
    );

    let error = load(&cert, &cert).unwrap_err();
    assert_eq!(error.which, Which::Key);
    assert!(
        error.message.contains("holds no private key"),
        "{}",
        error.message
    );

    let error = load(dir.path(), &key).unwrap_err();
    assert!(
        error.message.contains("not a regular file"),
        "{}",
        error.message
    );

    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nnot base64!\n").unwrap();
    let error = load(&garbage, &key).unwrap_err();
    assert_eq!(error.which, Which::Cert);
    assert!(error.message.contains("garbage.pem"), "{}", error.message);
}

#[test]
fn the_der_walker_agrees_with_webpki_on_every_name() {
    let ca = Ca::new();
    let names = ["a.example.com", "*.b.example.com", "c.example.org."];
    let issued = ca.issue(&names);
    let facts = cert_facts(&issued.der).unwrap();
    assert_eq!(
        facts.dns_names,
        ["a.example.com", "*.b.example.com", "c.example.org"]
    );
    // Flipping any byte never panics (and any name still listed was confirmed by webpki on load).
    for at in 0..issued.der.len() {
        let mut bytes = issued.der.to_vec();
        bytes[at] ^= 0xFF;
        let _ = cert_facts(&bytes);
        let _ = cert_facts(&bytes[..at]);
    }
}
