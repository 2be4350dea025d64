//! The TLS half of a backend connection (feature `tls`, an instance at `address = "https://..."`): rustls'
//! `ClientConnection` as the pump's [`TlsEngine`] (`tls_pump`), the client side of what `client_tls` is
//! for clients. The phases read and write plaintext through [`super::upstream::Upstream`]'s `fill` and
//! `flush` and never see TLS.
//!
//! * The handshake needs no phase of its own: rustls queues the ClientHello when the session is made,
//!   it goes out on the first writable event after the connect, and plaintext written meanwhile (the
//!   request head) waits inside rustls (bounded by its buffer limit) until the handshake is done. Its
//!   time is the exchange's (the response deadline runs from the request).
//! * Every TLS failure is returned as a [`TlsFailure`], which the exchange answers with `BACKEND_TLS`;
//!   so is a backend closing the connection during the handshake.

use std::io::{self, Read, Write};

use rustls::ClientConnection;

use super::tls_pump::TlsEngine;
use crate::upstream::TlsFailure;

/// A newtype, so the engine's methods and rustls' own of the same names never meet.
pub struct BackendTls(pub ClientConnection);

impl TlsEngine for BackendTls {
    /// One `read_tls` (at most one record's worth), then decryption.
    fn feed(&mut self, bytes: &[u8]) -> Result<usize, String> {
        let mut rest = bytes;
        self.0.read_tls(&mut rest).map_err(|e| e.to_string())?;
        let fed = bytes.len() - rest.len();
        self.0.process_new_packets().map_err(|e| e.to_string())?;
        Ok(fed)
    }

    fn feed_eof(&mut self) -> Result<(), String> {
        // Records the end in rustls: a later read says whether close_notify came first.
        let _ = self.0.read_tls(&mut &[][..]);
        if self.0.is_handshaking() {
            return Err("the backend closed the connection during the TLS handshake".into());
        }
        Ok(())
    }

    /// Nothing yet is `WouldBlock`; close_notify and a socket end without it are both 0 (the HTTP
    /// framing tells whether anything was cut off).
    fn read_plaintext(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self.0.reader().read(out) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            other => other,
        }
    }

    /// Plaintext comes only of bytes fed (no hook here), and is taken before the next feed.
    fn plaintext_pending(&self) -> bool {
        false
    }

    /// Whenever the socket is readable: rustls' own `wants_read` is false while a handshake flight
    /// waits for the socket, which would leave a readable socket unread with no event to come back for
    /// it. Its plaintext buffer cannot overflow: the pump takes what waits there before feeding more.
    fn wants_read(&self) -> bool {
        true
    }

    fn wants_write(&self) -> bool {
        self.0.wants_write()
    }

    fn write_tls(&mut self, out: &mut dyn Write) -> io::Result<usize> {
        self.0.write_tls(out)
    }

    /// During the handshake rustls keeps it until it can send it.
    fn write_plaintext(&mut self, data: &[u8]) -> usize {
        self.0.writer().write(data).unwrap_or(0)
    }

    fn send_close_notify(&mut self) {
        self.0.send_close_notify();
    }

    fn is_handshaking(&self) -> bool {
        self.0.is_handshaking()
    }

    /// rustls repeats a failure on later calls but does not say it has one; the pump records it.
    fn has_failed(&self) -> bool {
        false
    }

    fn failure(why: String) -> io::Error {
        TlsFailure::because(why)
    }
}
