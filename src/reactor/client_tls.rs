//! The TLS half of a client stream (feature `tls`): the server side's [`TlsEngine`] for the pump
//! (`tls_pump`), over [`TlsSession`], which reads the ClientHello before a certificate is chosen. What
//! only this side has: choosing the certificate (or the TLS-ALPN-01 answer) from the ClientHello, the
//! handshake's time bound, ALPN `h2`, and the hand-off of an established session to the h2 worker.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Instant;

use super::tls_pump::{TlsEngine, TlsPump};
use crate::tls::session::TlsSession;
use crate::tls::store::CertStore;

pub struct ClientTls {
    session: TlsSession,
    /// The certificates to choose from once the ClientHello is in; dropped then (a reload's new store
    /// serves the next connections, this one keeps the config it was given).
    store: Option<Arc<CertStore>>,
    /// When the connection was accepted, for the handshake's time bound.
    pub accepted: Instant,
}

impl ClientTls {
    pub fn new(store: Arc<CertStore>, accepted: Instant) -> ClientTls {
        ClientTls {
            session: TlsSession::default(),
            store: Some(store),
            accepted,
        }
    }

    /// Whether ALPN chose `h2`: the connection belongs to the h2 worker once its handshake is done.
    pub fn is_h2(&self) -> bool {
        self.session.alpn() == Some(b"h2")
    }

    /// Picks the certificate for the ClientHello's SNI (or the TLS-ALPN-01 answer, for an ACME
    /// validation) and continues the handshake with it.
    fn choose_config(&mut self) -> Result<(), String> {
        let hello = self.session.client_hello();
        let sni = hello.and_then(|hello| hello.server_name.clone());
        let acme_tls = hello.is_some_and(|hello| hello.offers_acme_tls());
        let config =
            (self.store.take()).and_then(|store| store.select_for(sni.as_deref(), acme_tls));
        let Some(config) = config else {
            // An empty store cannot happen with a checked config; refuse rather than hang.
            return Err("TLS: no certificate to serve".into());
        };
        self.session.accept_with(config).map_err(|e| e.to_string())
    }
}

/// The session and the socket bytes rustls has not taken yet, for the h2 worker. `None` when the
/// session never got established or failed (nothing to continue).
pub fn into_handoff(pump: TlsPump<ClientTls>) -> Option<(rustls::ServerConnection, Vec<u8>)> {
    let (engine, raw) = pump.into_parts();
    Some((engine.session.into_connection()?, raw))
}

impl TlsEngine for ClientTls {
    fn feed(&mut self, bytes: &[u8]) -> Result<usize, String> {
        self.session.feed(bytes).map_err(|e| e.to_string())
    }

    fn after_feed(&mut self) -> Result<(), String> {
        if self.session.awaiting_config() {
            return self.choose_config();
        }
        Ok(())
    }

    fn feed_eof(&mut self) -> Result<(), String> {
        self.session.feed_eof();
        Ok(())
    }

    fn read_plaintext(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.session.read(out)
    }

    /// Accepting the ClientHello's config decrypts records that came behind it, with nothing fed.
    fn plaintext_pending(&self) -> bool {
        self.session.plaintext_pending()
    }

    /// False while a ClientHello waits for its config, while decrypted bytes wait to be taken, and
    /// after the end (close_notify or failure).
    fn wants_read(&self) -> bool {
        self.session.wants_read()
    }

    fn wants_write(&self) -> bool {
        self.session.wants_write()
    }

    fn write_tls(&mut self, out: &mut dyn Write) -> io::Result<usize> {
        self.session.pending_tls_out(out)
    }

    fn write_plaintext(&mut self, data: &[u8]) -> usize {
        self.session.write_plaintext(data)
    }

    fn send_close_notify(&mut self) {
        self.session.send_close_notify();
    }

    fn is_handshaking(&self) -> bool {
        self.session.is_handshaking()
    }

    fn has_failed(&self) -> bool {
        self.session.has_failed()
    }

    fn failure(why: String) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, why)
    }
}
