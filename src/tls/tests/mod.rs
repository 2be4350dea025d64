//! Tests of the TLS pieces without sockets: a rustls client in memory against the session wrapper, with
//! a CA and certificates made at test time.

mod certs;
pub(crate) mod pki;
mod session;
mod session_limits;
mod store;

use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::ClientConnection;

use super::certs::{self as loader, Certificate};
use super::session::{TlsError, TlsSession};
use super::store::{new_session_cache, CertStore};
use pki::{Ca, TempDir};

/// Loads `issued` through the real loader (PEM files on disk).
fn load(dir: &TempDir, name: &str, issued: &pki::Issued) -> Certificate {
    let (cert, key) = dir.write(name, issued);
    loader::load(&cert, &key).unwrap()
}

/// A store of `certs` (each `(names, default)`), all issued by `ca`.
fn store(ca: &Ca, certs: &[(&[&str], bool)]) -> CertStore {
    let dir = TempDir::new();
    let loaded = certs
        .iter()
        .enumerate()
        .map(|(i, (names, default))| (load(&dir, &format!("c{i}"), &ca.issue(names)), *default))
        .collect();
    let (store, warnings) = CertStore::build(loaded, new_session_cache(), 0).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    store
}

/// A client and the server session it talks to, joined by two in-memory byte queues.
struct Link {
    client: ClientConnection,
    server: TlsSession,
    /// Bytes on their way to the server that it has not taken yet.
    to_server: Vec<u8>,
    /// Plaintext the client decrypted (taken as it comes: rustls holds only 16 KiB).
    from_server: Vec<u8>,
}

impl Link {
    fn new(client: rustls::ClientConfig, server_name: &str) -> Link {
        let name = ServerName::try_from(server_name.to_string()).unwrap();
        Link {
            client: ClientConnection::new(Arc::new(client), name).unwrap(),
            server: TlsSession::default(),
            to_server: Vec::new(),
            from_server: Vec::new(),
        }
    }

    /// Moves bytes both ways until neither side has anything to send; the server's config comes from
    /// `store` by SNI. Stops at the server's first error.
    fn pump(&mut self, store: &CertStore) -> Result<(), TlsError> {
        for _ in 0..1_000 {
            let mut moved = false;
            while self.client.wants_write() {
                self.client.write_tls(&mut self.to_server).unwrap();
            }
            if !self.to_server.is_empty() {
                let n = self.server.feed(&self.to_server)?;
                self.to_server.drain(..n);
                moved |= n > 0;
            }
            if self.server.awaiting_config() {
                let sni = self.server.client_hello().unwrap().server_name.clone();
                self.server
                    .accept_with(store.select(sni.as_deref()).unwrap())?;
                moved = true;
            }
            moved |= self.deliver_to_client();
            if !moved {
                return Ok(());
            }
        }
        panic!("the link never settled");
    }

    /// Moves what the server wrote to the client; false when there was nothing.
    fn deliver_to_client(&mut self) -> bool {
        let mut out = Vec::new();
        while self.server.wants_write() {
            self.server.pending_tls_out(&mut out).unwrap();
        }
        let mut rest = &out[..];
        while !rest.is_empty() {
            self.client.read_tls(&mut rest).unwrap();
            self.client.process_new_packets().unwrap();
            let _ = std::io::Read::read_to_end(&mut self.client.reader(), &mut self.from_server);
        }
        !out.is_empty()
    }

    /// Everything the server has decrypted so far.
    fn server_plaintext(&mut self) -> Vec<u8> {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        while let super::session::Plaintext::Bytes(n) = self.server.take_plaintext(&mut buf) {
            all.extend_from_slice(&buf[..n]);
        }
        all
    }

    /// Everything the client has decrypted so far.
    fn client_plaintext(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.from_server)
    }

    /// The certificate the server presented.
    fn served(&self) -> Vec<u8> {
        self.client.peer_certificates().unwrap()[0].to_vec()
    }
}
