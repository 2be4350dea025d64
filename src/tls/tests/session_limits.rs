//! The session's bounds and refusals: plaintext backpressure both ways, old protocol versions, bytes
//! that are not TLS, an endless ClientHello.

use std::io::Write;

use super::pki::Ca;
use super::{store, Link};
use crate::tls::session::{Plaintext, TlsError, TlsSession, BUFFER_LIMIT, MAX_HELLO_BYTES};

const NAMES: &[&str] = &["a.example.com"];

#[test]
fn unread_plaintext_is_backpressure_not_an_error_and_reading_resumes_it() {
    let ca = Ca::new();
    let store = store(&ca, &[(NAMES, false)]);
    let mut link = Link::new(ca.client(&[b"http/1.1"]), "a.example.com");
    link.pump(&store).unwrap();

    let sent: Vec<u8> = (0..256 * 1024u32).map(|i| (i % 251) as u8).collect();
    link.client.set_buffer_limit(None);
    link.client.writer().write_all(&sent).unwrap();
    while link.client.wants_write() {
        link.client.write_tls(&mut link.to_server).unwrap();
    }
    let offered = link.to_server.len();
    let taken = link.server.feed(&link.to_server).unwrap();
    assert!(
        taken < offered,
        "rustls holds at most ~16 KiB of plaintext: took {taken}"
    );
    link.to_server.drain(..taken);
    assert!(link.server.plaintext_pending());
    assert!(
        !link.server.wants_read(),
        "a full plaintext buffer stops reading"
    );
    assert_eq!(link.server.feed(&link.to_server).unwrap(), 0, "still full");

    let mut received = Vec::new();
    let mut buf = vec![0u8; 5000];
    for _ in 0..10_000 {
        while let Plaintext::Bytes(n) = link.server.take_plaintext(&mut buf) {
            received.extend_from_slice(&buf[..n]);
        }
        assert!(!link.server.plaintext_pending());
        if link.to_server.is_empty() {
            break;
        }
        assert!(link.server.wants_read());
        let n = link.server.feed(&link.to_server).unwrap();
        assert!(n > 0);
        link.to_server.drain(..n);
    }
    assert_eq!(received.len(), sent.len());
    assert!(received == sent, "the bytes arrive whole and in order");
}

#[test]
fn written_plaintext_is_bounded_until_flushed() {
    let ca = Ca::new();
    let store = store(&ca, &[(NAMES, false)]);
    let mut link = Link::new(ca.client(&[b"http/1.1"]), "a.example.com");
    link.pump(&store).unwrap();

    let big = vec![7u8; 1 << 20];
    let first = link.server.write_plaintext(&big);
    assert!(first > 0 && first <= BUFFER_LIMIT, "{first}");
    assert_eq!(link.server.write_plaintext(&big), 0, "full until flushed");
    assert!(link.server.wants_write());
    link.deliver_to_client();
    assert!(link.server.write_plaintext(&big) > 0, "flushing made room");
    assert_eq!(link.client_plaintext().len(), first);
}

#[test]
fn a_session_refuses_plaintext_before_its_handshake_has_a_config() {
    let mut session = TlsSession::default();
    assert_eq!(session.write_plaintext(b"early"), 0);
    assert!(session.wants_read());
    assert!(!session.wants_write());
    assert!(session.is_handshaking());
    assert_eq!(session.alpn(), None);
}

/// A ClientHello of `version` with no extensions (so no `supported_versions`): what a TLS 1.0 or 1.1
/// client sends.
fn legacy_client_hello(version: [u8; 2]) -> Vec<u8> {
    let mut body = version.to_vec();
    body.extend_from_slice(&[0x42; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&[0, 4, 0xC0, 0x13, 0x00, 0x2F]); // ECDHE-RSA-AES128-SHA, AES128-SHA
    body.extend_from_slice(&[1, 0]); // null compression
    let mut handshake = vec![1, 0, (body.len() >> 8) as u8, body.len() as u8];
    handshake.extend_from_slice(&body);
    let mut record = vec![
        0x16,
        3,
        1,
        (handshake.len() >> 8) as u8,
        handshake.len() as u8,
    ];
    record.extend_from_slice(&handshake);
    record
}

#[test]
fn tls10_and_tls11_are_refused_with_an_alert() {
    let ca = Ca::new();
    let store = store(&ca, &[(NAMES, true)]);
    for version in [[3, 1], [3, 2]] {
        let mut session = TlsSession::default();
        let result = session.feed(&legacy_client_hello(version)).and_then(|_| {
            match session.awaiting_config() {
                true => session.accept_with(store.select(None).unwrap()),
                false => Ok(()),
            }
        });
        let error = result.expect_err("an old version must be refused");
        assert!(matches!(error, TlsError::Protocol(_)), "{error:?}");
        assert!(session.has_failed());
        let mut alert = Vec::new();
        while session.wants_write() {
            session.pending_tls_out(&mut alert).unwrap();
        }
        // An alert record (21), fatal (2): rustls says handshake_failure.
        assert_eq!(
            alert.first(),
            Some(&21),
            "{version:?}: an alert record: {alert:?}"
        );
        assert_eq!(
            alert.get(5),
            Some(&2),
            "{version:?}: a fatal alert: {alert:?}"
        );
    }
}

#[test]
fn bytes_that_are_not_tls_are_a_clean_error() {
    for garbage in [
        &b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        &[0x16, 3, 1, 0, 4, 2, 0, 0, 0], // a handshake that is no ClientHello
        &[0x17, 3, 3, 0, 3, 1, 2, 3],    // application data first
        &[0x16, 3, 3, 0xFF, 0xFF, 1, 0, 0], // a record larger than TLS allows
    ] {
        let mut session = TlsSession::default();
        let error = session.feed(garbage).expect_err("not TLS");
        assert!(!error.to_string().is_empty());
        assert!(session.has_failed(), "{garbage:?}");
        assert!(!session.wants_read());
        assert_eq!(
            session.feed(garbage).unwrap(),
            0,
            "a failed session takes nothing more"
        );
        assert!(session.client_hello().is_none());
    }
}

#[test]
fn a_client_hello_that_never_ends_is_cut_off() {
    // A ClientHello announcing 60 000 bytes, sent as full records: legal framing, endless patience.
    let mut stream = Vec::new();
    let mut first = true;
    while stream.len() < 2 * MAX_HELLO_BYTES {
        stream.extend_from_slice(&[0x16, 3, 1, 0x40, 0x00]);
        let mut payload = vec![0u8; 0x4000];
        if first {
            payload[..4].copy_from_slice(&[1, 0, 0xEA, 0x60]);
            first = false;
        }
        stream.extend_from_slice(&payload);
    }
    let mut session = TlsSession::default();
    let mut at = 0;
    let error = loop {
        match session.feed(&stream[at..(at + 1000).min(stream.len())]) {
            Ok(n) => at += n,
            Err(e) => break e,
        }
        assert!(at < stream.len(), "never refused");
    };
    assert!(matches!(error, TlsError::HelloTooLarge), "{error:?}");
    assert!(at <= MAX_HELLO_BYTES);
}
