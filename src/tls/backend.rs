//! The client side of TLS toward a backend (`address = "https://host:port"`): what to connect to, the
//! name to verify, and the roots to verify it against, read once when the config is loaded so a missing
//! or empty CA file is a config error and a reload re-reads it.
//!
//! Roots: the `ca_file` when given; otherwise the system store, read from `SSL_CERT_FILE` or the usual
//! Debian path. Not webpki-roots: a backend behind a private CA is the common case, and the public
//! roots are what the machine already trusts. The release image is `FROM scratch` (no `/etc/ssl`): there a
//! backend over TLS needs its `ca_file`, and the config error says so rather than failing every request.
//!
//! One immutable `ClientConfig` per target, shared by both request threads and the health probe.
//! Resumption is off: a pooled connection is what saves handshakes here, and a ticket store would be
//! one more piece of shared state.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::Resumption;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

/// Where the system's CA bundle is looked for when no `ca_file` is given, after `SSL_CERT_FILE`:
/// Debian and its kin, then Fedora and Alpine.
pub const SYSTEM_CA_FILES: [&str; 3] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// rustls' outgoing buffer per backend connection, as for clients (`session::BUFFER_LIMIT`).
const BUFFER_LIMIT: usize = 64 * 1024;

/// One backend reached over TLS.
pub struct TlsTarget {
    /// The resolved socket address.
    pub addr: SocketAddr,
    /// The name sent as SNI and verified in the certificate (`tls_server_name`, else the address's
    /// host): a DNS name, or an IP address (verified against the certificate's IP SANs, no SNI sent).
    pub server_name: ServerName<'static>,
    /// The roots, kept to tell a reload whether anything changed.
    roots: Vec<CertificateDer<'static>>,
    /// Where they came from, for messages.
    pub roots_from: PathBuf,
    config: Arc<ClientConfig>,
}

impl TlsTarget {
    /// A target at `addr` verified as `server_name` against the certificates in `roots_from`.
    pub fn new(
        addr: SocketAddr,
        server_name: ServerName<'static>,
        roots_from: PathBuf,
        roots: Vec<CertificateDer<'static>>,
    ) -> Result<TlsTarget, String> {
        let mut store = RootCertStore::empty();
        let (added, _ignored) = store.add_parsable_certificates(roots.iter().cloned());
        if added == 0 {
            return Err(format!(
                "\"{}\" holds no usable CA certificate",
                roots_from.display()
            ));
        }
        let mut config = ClientConfig::builder_with_provider(super::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(store)
            .with_no_client_auth();
        // The exchange is HTTP/1.1 (the h2 worker, too, speaks HTTP/1.1 to backends).
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config.resumption = Resumption::disabled();
        Ok(TlsTarget {
            addr,
            server_name,
            roots,
            roots_from,
            config: Arc::new(config),
        })
    }

    /// A new client session for one connection to this target.
    pub fn connection(&self) -> Result<ClientConnection, rustls::Error> {
        let mut conn = ClientConnection::new(self.config.clone(), self.server_name.clone())?;
        conn.set_buffer_limit(Some(BUFFER_LIMIT));
        Ok(conn)
    }

    /// The name verified, as written.
    pub fn name(&self) -> String {
        match &self.server_name {
            ServerName::DnsName(name) => name.as_ref().to_string(),
            ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
            other => format!("{other:?}"),
        }
    }
}

/// Two targets are the same when a connection to one would be verified like one to the other: a reload
/// that re-reads an unchanged CA file changes nothing.
impl PartialEq for TlsTarget {
    fn eq(&self, other: &Self) -> bool {
        self.addr == other.addr
            && self.server_name == other.server_name
            && self.roots == other.roots
    }
}

impl Eq for TlsTarget {}

impl Hash for TlsTarget {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.addr.hash(state);
        self.name().hash(state);
    }
}

impl fmt::Debug for TlsTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTarget")
            .field("addr", &self.addr)
            .field("server_name", &self.name())
            .field("roots_from", &self.roots_from)
            .field("roots", &self.roots.len())
            .finish()
    }
}

/// The CA certificates to verify backends with: `ca_file`, or else the system store
/// (`SSL_CERT_FILE`, then [`SYSTEM_CA_FILES`]). The error names the file, or says none was found.
pub fn load_roots(
    ca_file: Option<&Path>,
) -> Result<(PathBuf, Vec<CertificateDer<'static>>), String> {
    let path = match ca_file {
        Some(path) => path.to_path_buf(),
        None => system_store().ok_or_else(|| {
            format!(
                "no ca_file and no system CA store (SSL_CERT_FILE unset; none of {}): give the \
                 backend's CA as ca_file",
                SYSTEM_CA_FILES.join(", ")
            )
        })?,
    };
    let pem = super::certs::read_pem(&path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("\"{}\": not a PEM file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "\"{}\" holds no certificate (BEGIN CERTIFICATE)",
            path.display()
        ));
    }
    Ok((path, certs))
}

fn system_store() -> Option<PathBuf> {
    if let Some(file) = std::env::var_os("SSL_CERT_FILE").filter(|f| !f.is_empty()) {
        // Set means meant: a wrong path is reported as such, not replaced by another store.
        return Some(PathBuf::from(file));
    }
    SYSTEM_CA_FILES
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
}
