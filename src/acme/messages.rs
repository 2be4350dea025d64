//! What the reactor and the ACME thread say to each other. The ACME thread owns the account, the orders,
//! the storage and the renewal timers; the reactor owns what answers challenges and what serves
//! certificates. Everything between them is one of these messages, so neither reaches into the other.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use rustls::sign::CertifiedKey;

use crate::tls::certs::Certificate;

/// To the ACME thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcmeCmd {
    /// Keep a certificate for these names (lower-case DNS names; the first names its storage). From
    /// storage when a valid one is there, otherwise by ordering one; renewed from then on. Asking again
    /// for the same set changes nothing.
    Obtain { names: Vec<String> },
    /// Stop keeping the certificate for these names (their hosts left the config): no more renewals.
    /// What storage holds stays, so the names coming back reuse it.
    Forget { names: Vec<String> },
    /// The proxy now answers this challenge (an [`AcmeEvent::Http01`] or [`AcmeEvent::TlsAlpn01`] it
    /// applied). The thread tells the CA to validate only after this, so the CA never asks before the
    /// answer is in place: the event goes through the reactor's mailbox, which it reads when it gets to
    /// it, and a CA that finds nothing marks the authorization invalid (and counts a failed validation
    /// against the account's limit).
    Serving(Served),
    /// Stop: abandon an order in progress (its challenges are retracted) and end the thread.
    Shutdown,
}

/// Which published challenge an [`AcmeCmd::Serving`] confirms.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Served {
    Http01 { token: String },
    TlsAlpn01 { name: String },
}

/// From the ACME thread, through the callback it was started with.
#[derive(Clone)]
pub enum AcmeEvent {
    /// Answer `GET /.well-known/acme-challenge/{token}` on the cleartext listener with
    /// `key_authorization` (before routing; any Host), then confirm with [`AcmeCmd::Serving`].
    Http01 {
        token: String,
        key_authorization: String,
    },
    /// Stop answering that token.
    Http01Done { token: String },
    /// A ClientHello with SNI `name` that offers ALPN `acme-tls/1` gets this self-signed certificate
    /// (RFC 8737) and nothing else; then confirm with [`AcmeCmd::Serving`].
    TlsAlpn01 {
        name: String,
        key: Arc<CertifiedKey>,
    },
    /// Stop answering TLS-ALPN-01 for that name.
    TlsAlpn01Done { name: String },
    /// A certificate for `names` to serve from now on (it replaces the previous one for them).
    CertReady {
        names: Vec<String>,
        /// The chain, leaf first.
        cert_pem: String,
        /// Its private key (PKCS#8).
        key_pem: String,
        /// The leaf's `notAfter`, Unix seconds.
        not_after: i64,
        /// `true` when the CA just issued it, `false` when it was loaded from storage.
        issued: bool,
        /// The same pair read back from storage and checked like a `[[tls.certificates]]` file, ready
        /// for the certificate store (`CertStore::build` takes these).
        certificate: Certificate,
    },
    /// Ordering failed; the thread tries again at `retry_at` by itself. A certificate already served
    /// for these names stays in use. `retry_at` is `None` for names that can never be ordered (a
    /// wildcard, which needs DNS-01; not a DNS name): those are not tried again.
    CertFailed {
        names: Vec<String>,
        retry_at: Option<SystemTime>,
        why: String,
    },
}

impl fmt::Debug for AcmeEvent {
    /// Everything but key material: events get logged.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcmeEvent::Http01 { token, .. } => {
                f.debug_struct("Http01").field("token", token).finish()
            }
            AcmeEvent::Http01Done { token } => {
                f.debug_struct("Http01Done").field("token", token).finish()
            }
            AcmeEvent::TlsAlpn01 { name, .. } => {
                f.debug_struct("TlsAlpn01").field("name", name).finish()
            }
            AcmeEvent::TlsAlpn01Done { name } => {
                f.debug_struct("TlsAlpn01Done").field("name", name).finish()
            }
            AcmeEvent::CertReady {
                names,
                not_after,
                issued,
                ..
            } => f
                .debug_struct("CertReady")
                .field("names", names)
                .field("not_after", not_after)
                .field("issued", issued)
                .finish_non_exhaustive(),
            AcmeEvent::CertFailed {
                names,
                retry_at,
                why,
            } => f
                .debug_struct("CertFailed")
                .field("names", names)
                .field("retry_at", retry_at)
                .field("why", why)
                .finish(),
        }
    }
}
