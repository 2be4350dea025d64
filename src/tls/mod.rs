//! TLS termination (feature `tls`), in three pieces that know nothing of sockets, so the reactor's
//! client stream can put them beside its socket (decrypt in `fill`, encrypt in `flush`):
//!
//! * [`certs`] reads a `[[tls.certificates]]` PEM pair into a checked [`certs::Certificate`] (the key
//!   matches, the names are known); config loading calls it, so a bad file is a config error.
//! * [`store`] turns the loaded certificates into one immutable `Arc<ServerConfig>` each and picks one per
//!   ClientHello by SNI. Plain data owned by the reactor: no resolver callback, no lock; a reload builds a
//!   new store while handshakes in progress keep the config they were given.
//! * [`session`] is one connection: ClientHello first (the caller chooses the config from its facts),
//!   then the rustls connection, with rustls' full plaintext buffer turned into backpressure.
//! * [`backend`] is the other direction: a backend at `address = "https://..."`, its verified name and
//!   its roots (a `ca_file` or the system store), read when the config is loaded.
//!
//! rustls is used only here (its 0.24 API changes shape; this keeps the move to one module), with the
//! `ring` provider passed explicitly, never installed process-wide.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

pub mod backend;
pub mod certs;
pub mod der;
pub mod session;
pub mod store;
#[cfg(test)]
pub(crate) mod tests;

/// ALPN protocols offered, in server preference (rustls picks the first the client also offers): `h2`
/// first, so a client that can goes to the h2 worker (the reactor hands the established session over
/// when it sees the preface), then `http/1.1` (and WebSocket), served in the reactor.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The ALPN protocol of an ACME TLS-ALPN-01 validation (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// The crypto provider: ring (about 2 MiB smaller than aws-lc-rs in the static binary). Its suites are
/// all AEAD with forward secrecy (TLS 1.3: AES-GCM, ChaCha20; TLS 1.2: ECDHE with the same).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
