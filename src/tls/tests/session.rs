//! Handshakes through the session wrapper: ALPN, SNI, the ClientHello facts, data both ways, closing.

use std::io::Write;

use super::pki::{Ca, TempDir};
use super::{load, store, Link};
use crate::tls::session::{Plaintext, TlsSession};
use crate::tls::store::{new_session_cache, CertStore};

const NAMES: &[&str] = &["a.example.com"];

/// `h2` goes first: a client offering both gets it (and the reactor hands the session to the h2 worker).
#[test]
fn handshake_agrees_on_h2_over_http1_and_carries_data_both_ways() {
    let ca = Ca::new();
    let store = store(&ca, &[(NAMES, false)]);
    let mut link = Link::new(ca.client(&[b"http/1.1", b"h2"]), "a.example.com");
    link.pump(&store).unwrap();
    assert!(!link.server.is_handshaking());
    assert_eq!(link.server.alpn(), Some(&b"h2"[..]));
    assert_eq!(link.client.alpn_protocol(), Some(&b"h2"[..]));
    assert!(link.server.client_hello().unwrap().will_be_h2());

    link.client.writer().write_all(b"GET / HTTP/1.1").unwrap();
    link.pump(&store).unwrap();
    assert_eq!(link.server_plaintext(), b"GET / HTTP/1.1");
    assert_eq!(link.server.write_plaintext(b"HTTP/1.1 200"), 12);
    link.pump(&store).unwrap();
    assert_eq!(link.client_plaintext(), b"HTTP/1.1 200");
}

#[test]
fn an_http1_client_gets_http1_and_one_without_alpn_gets_none() {
    let ca = Ca::new();
    let store = store(&ca, &[(NAMES, false)]);
    let mut link = Link::new(ca.client(&[b"http/1.1"]), "a.example.com");
    link.pump(&store).unwrap();
    assert_eq!(link.server.alpn(), Some(&b"http/1.1"[..]));

    let mut link = Link::new(ca.client(&[]), "a.example.com");
    link.pump(&store).unwrap();
    assert!(!link.server.is_handshaking());
    assert_eq!(link.server.alpn(), None);
    assert!(link.server.client_hello().unwrap().alpn.is_empty());
}

#[test]
fn tls12_still_works() {
    let ca = Ca::new();
    let store = store(&ca, &[(NAMES, false)]);
    let client = ca.client_with_versions(&[b"http/1.1"], &[&rustls::version::TLS12]);
    let mut link = Link::new(client, "a.example.com");
    link.pump(&store).unwrap();
    assert!(!link.server.is_handshaking());
    assert_eq!(
        link.client.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
}

#[test]
fn sni_picks_exact_names_then_wildcards_and_clients_without_sni_get_the_default() {
    let ca = Ca::new();
    let dir = TempDir::new();
    let a = ca.issue(&["a.example.com"]);
    let b = ca.issue(&["b.example.com", "127.0.0.1"]);
    let w = ca.issue(&["*.w.example.com"]);
    let certs = vec![
        (load(&dir, "a", &a), false),
        (load(&dir, "b", &b), true),
        (load(&dir, "w", &w), false),
    ];
    let (store, warnings) = CertStore::build(certs, new_session_cache(), 0).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");

    for (name, expected) in [
        ("a.example.com", &a),
        ("b.example.com", &b),
        ("x.w.example.com", &w),
    ] {
        let mut link = Link::new(ca.client(&[b"http/1.1"]), name);
        link.pump(&store).unwrap();
        assert_eq!(link.served(), expected.der.to_vec(), "{name}");
        let hello = link.server.client_hello().unwrap();
        assert_eq!(hello.server_name.as_deref(), Some(name));
    }

    // An IP-literal URL sends no SNI: the explicit default answers.
    let mut link = Link::new(ca.client(&[b"http/1.1"]), "127.0.0.1");
    link.pump(&store).unwrap();
    assert_eq!(link.server.client_hello().unwrap().server_name, None);
    assert_eq!(link.served(), b.der.to_vec());
}

#[test]
fn a_client_hello_split_into_single_bytes_is_read_and_kept_for_a_hand_off() {
    let ca = Ca::new();
    let mut client = rustls::ClientConnection::new(
        std::sync::Arc::new(ca.client(&[b"h2", b"http/1.1"])),
        "a.example.com".try_into().unwrap(),
    )
    .unwrap();
    let mut hello = Vec::new();
    client.write_tls(&mut hello).unwrap();

    let mut session = TlsSession::default();
    for (i, byte) in hello.iter().enumerate() {
        assert!(session.client_hello().is_none(), "complete after {i} bytes");
        assert_eq!(session.feed(std::slice::from_ref(byte)).unwrap(), 1);
    }
    let facts = session.client_hello().unwrap();
    assert_eq!(facts.server_name.as_deref(), Some("a.example.com"));
    assert_eq!(facts.alpn, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    // Offered by the client and first in `tls::ALPN`.
    assert!(facts.will_be_h2());
    assert!(!facts.offers_acme_tls());
    assert!(session.awaiting_config());
    assert!(
        !session.wants_read(),
        "nothing more is read before the config is chosen"
    );
    assert_eq!(session.feed(b"more").unwrap(), 0);
    assert_eq!(session.hello_bytes(), &hello[..]);

    // Handshaking here instead of handing off: the copy is no longer needed.
    let store = store(&ca, &[(NAMES, false)]);
    session
        .accept_with(store.select(Some("a.example.com")).unwrap())
        .unwrap();
    assert!(session.hello_bytes().is_empty());
    assert!(session.wants_write(), "the server's first flight");
}

#[test]
fn an_acme_tls_alpn_offer_is_seen_before_any_certificate() {
    let ca = Ca::new();
    let store = store(&ca, &[(NAMES, false)]);
    let mut link = Link::new(ca.client(&[b"acme-tls/1"]), "a.example.com");
    // Without a challenge config the ordinary one refuses the ALPN: an error and an alert, no panic.
    let error = link.pump(&store).unwrap_err();
    assert!(link.server.client_hello().unwrap().offers_acme_tls());
    assert!(error.to_string().contains("TLS"), "{error}");
    assert!(link.server.has_failed());
    // TLS 1.3 finds no common ALPN after its ServerHello, so the alert goes out encrypted behind it.
    assert!(link.server.wants_write(), "the alert waits to be sent");
    let mut out = Vec::new();
    while link.server.wants_write() {
        link.server.pending_tls_out(&mut out).unwrap();
    }
    link.client.read_tls(&mut &out[..]).unwrap();
    let seen = link.client.process_new_packets().unwrap_err();
    assert_eq!(
        seen,
        rustls::Error::AlertReceived(rustls::AlertDescription::NoApplicationProtocol)
    );
}

#[test]
fn close_notify_is_a_clean_end_and_a_bare_eof_a_truncated_one() {
    let ca = Ca::new();
    let store = store(&ca, &[(NAMES, false)]);
    let mut link = Link::new(ca.client(&[b"http/1.1"]), "a.example.com");
    link.pump(&store).unwrap();
    link.client.writer().write_all(b"bye").unwrap();
    link.client.send_close_notify();
    link.pump(&store).unwrap();
    assert_eq!(link.server_plaintext(), b"bye");
    let mut buf = [0u8; 16];
    assert_eq!(link.server.take_plaintext(&mut buf), Plaintext::End);
    assert!(!link.server.wants_read());

    link.server.send_close_notify();
    assert!(link.server.wants_write());
    link.deliver_to_client();
    assert_eq!(
        std::io::Read::read(&mut link.client.reader(), &mut buf).unwrap(),
        0
    );

    let mut link = Link::new(ca.client(&[b"http/1.1"]), "a.example.com");
    link.pump(&store).unwrap();
    assert_eq!(link.server.take_plaintext(&mut buf), Plaintext::Nothing);
    link.server.feed_eof();
    assert_eq!(link.server.take_plaintext(&mut buf), Plaintext::Truncated);
}
