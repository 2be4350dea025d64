//! The adapter against a blocking rustls client over a loopback socket pair: the handshake, data both
//! ways larger than every buffer, bytes read ahead (as the reactor hands them over) and close_notify.

use std::io::{Read, Write};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, ServerConnection, StreamOwned};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::TlsIo;
use crate::tls::store::{new_session_cache, CertStore};
use crate::tls::tests::pki::{Ca, TempDir};

/// 300 KiB: several times rustls' 64 KiB buffer and the socket's, so backpressure is exercised.
const BIG: usize = 300 * 1024;

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn server_config(ca: &Ca) -> Arc<rustls::ServerConfig> {
    let dir = TempDir::new();
    let (cert, key) = dir.write("leaf", &ca.issue(&["h2.test"]));
    let loaded = crate::tls::certs::load(&cert, &key).unwrap();
    let (store, _) = CertStore::build(vec![(loaded, true)], new_session_cache(), 0).unwrap();
    store.select(Some("h2.test")).unwrap()
}

/// Runs `server` on a current-thread runtime against a client thread that sends `BIG` bytes, reads
/// `BIG` back and then expects close_notify. `read_ahead` bytes of the client's first flight are read
/// from the socket before the adapter starts and given to it as `raw`.
fn exchange(read_ahead: bool) {
    let ca = Ca::new();
    let config = server_config(&ca);
    let client_config = Arc::new(ca.client(&[b"h2"]));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = std::thread::spawn(move || {
        let name = ServerName::try_from("h2.test").unwrap();
        let conn = ClientConnection::new(client_config, name).unwrap();
        let socket = std::net::TcpStream::connect(addr).unwrap();
        let mut tls = StreamOwned::new(conn, socket);
        tls.write_all(&pattern(BIG)).unwrap();
        tls.flush().unwrap();
        let mut back = Vec::new();
        // Ok only with close_notify: a bare socket end is `UnexpectedEof` for a rustls client.
        tls.read_to_end(&mut back).unwrap();
        assert_eq!(tls.conn.alpn_protocol(), Some(&b"h2"[..]));
        back
    });
    let (mut socket, _) = listener.accept().unwrap();
    let mut raw = Vec::new();
    if read_ahead {
        let mut first = vec![0u8; 64 * 1024];
        let n = socket.read(&mut first).unwrap();
        raw.extend_from_slice(&first[..n]);
    }
    socket.set_nonblocking(true).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let socket = tokio::net::TcpStream::from_std(socket).unwrap();
        let mut conn = ServerConnection::new(config).unwrap();
        conn.set_buffer_limit(Some(crate::tls::session::BUFFER_LIMIT));
        let mut io = TlsIo::new(socket, conn, raw);
        let mut got = vec![0u8; BIG];
        io.read_exact(&mut got).await.unwrap();
        assert!(got == pattern(BIG));
        io.write_all(&pattern(BIG)).await.unwrap();
        io.shutdown().await.unwrap();
    });
    let back = client.join().unwrap();
    assert!(back == pattern(BIG), "{} bytes came back", back.len());
}

#[test]
fn a_rustls_client_talks_through_the_adapter_and_gets_close_notify() {
    exchange(false);
}

#[test]
fn bytes_read_ahead_of_the_adapter_are_fed_first() {
    exchange(true);
}

#[test]
fn a_client_that_sends_garbage_gets_an_error_not_a_hang() {
    let ca = Ca::new();
    let config = server_config(&ca);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = std::thread::spawn(move || {
        let mut socket = std::net::TcpStream::connect(addr).unwrap();
        socket.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let mut rest = Vec::new();
        let _ = socket.read_to_end(&mut rest);
        rest
    });
    let (socket, _) = listener.accept().unwrap();
    socket.set_nonblocking(true).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let socket = tokio::net::TcpStream::from_std(socket).unwrap();
        let mut io = TlsIo::new(socket, ServerConnection::new(config).unwrap(), Vec::new());
        let mut buf = [0u8; 16];
        let err = io.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    });
    // The alert went out before the close: a TLS record of type 21.
    let rest = client.join().unwrap();
    assert_eq!(rest.first(), Some(&21));
}
