//! The certificates in use, by name: one immutable `Arc<ServerConfig>` per certificate and a lookup from
//! a ClientHello's SNI to one of them.
//!
//! The reactor owns the store and chooses the config itself after reading the ClientHello
//! (`session::TlsSession::accept_with`), so nothing here is shared or locked; a reload builds a new
//! store and swaps it in, and handshakes in progress keep the `Arc` they were given.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert, ServerConfig, ServerSessionMemoryCache};
use rustls::sign::CertifiedKey;

use super::certs::Certificate;

/// Sessions remembered for resumption, shared by every certificate's config (and kept across reloads
/// when the caller passes the old store's cache on). rustls' default; each entry is a few hundred bytes.
pub const SESSION_CACHE_ENTRIES: usize = 256;

/// The session cache configs share.
pub type SessionCache = Arc<ServerSessionMemoryCache>;

pub fn new_session_cache() -> SessionCache {
    ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES)
}

/// One certificate as the store serves it.
pub struct Entry {
    pub certificate: Certificate,
    pub config: Arc<ServerConfig>,
}

pub struct CertStore {
    entries: Vec<Entry>,
    /// Exact names to their entry.
    exact: HashMap<String, usize>,
    /// `*.example.com` kept as `example.com`.
    wildcard: HashMap<String, usize>,
    default: Option<usize>,
    session_cache: SessionCache,
    /// ACME TLS-ALPN-01 answers by name: served only to a ClientHello that offers `acme-tls/1`.
    challenges: HashMap<String, Arc<ServerConfig>>,
}

impl CertStore {
    /// Builds the configs for `certificates` (in config order; `default` marks the one for clients
    /// without a matching SNI, else the first serves). Returns warnings to log: a name claimed by two
    /// certificates (the first keeps it), a certificate no name reaches, one expired at `now_unix`.
    pub fn build(
        certificates: Vec<(Certificate, bool)>,
        session_cache: SessionCache,
        now_unix: i64,
    ) -> Result<(CertStore, Vec<String>), rustls::Error> {
        let provider = super::provider();
        let mut store = CertStore {
            entries: Vec::with_capacity(certificates.len()),
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            default: None,
            session_cache,
            challenges: HashMap::new(),
        };
        let mut warnings = Vec::new();
        // The explicit default, else the first certificate.
        let default = certificates.iter().position(|(_, d)| *d).unwrap_or(0);
        if !certificates.is_empty() {
            store.default = Some(default);
        }
        for (index, (certificate, _)) in certificates.into_iter().enumerate() {
            let label = describe(&certificate);
            for name in &certificate.unusable_names {
                warnings.push(format!(
                    "{label}: its name {name} is not valid for it; ignored"
                ));
            }
            let mut reachable = index == default;
            for name in &certificate.names {
                let (map, key) = match name.strip_prefix("*.") {
                    Some(parent) => (&mut store.wildcard, parent),
                    None => (&mut store.exact, name.as_str()),
                };
                if map.contains_key(key) {
                    warnings.push(format!(
                        "{label}: {name} is served by an earlier certificate"
                    ));
                } else {
                    map.insert(key.to_string(), index);
                    reachable = true;
                }
            }
            if !reachable {
                warnings.push(format!(
                    "{label}: no DNS name of its own and not the default, so no client gets it"
                ));
            }
            if certificate.not_after <= now_unix {
                warnings.push(format!("{label}: expired; clients will refuse it"));
            }
            let config = server_config(
                &provider,
                &certificate.key,
                &store.session_cache,
                &super::ALPN,
            )?;
            store.entries.push(Entry {
                certificate,
                config,
            });
        }
        Ok((store, warnings))
    }

    /// The store for a loaded config's `[[tls.certificates]]` (already read and checked by the loader).
    pub fn from_config(
        tls: &crate::config::TlsConfig,
        session_cache: SessionCache,
        now_unix: i64,
    ) -> Result<(CertStore, Vec<String>), rustls::Error> {
        let certificates = (tls.certificates.iter())
            .map(|file| (file.loaded.clone(), file.default))
            .collect();
        CertStore::build(certificates, session_cache, now_unix)
    }

    /// The config for a ClientHello's SNI: the certificate with that exact name, else one with a
    /// wildcard one label above it (`*.example.com` for `a.example.com`, not for `a.b.example.com` nor
    /// `example.com`), else the default. Case-insensitive; a trailing dot is ignored. `None` only when
    /// the store is empty.
    pub fn select(&self, sni: Option<&str>) -> Option<Arc<ServerConfig>> {
        let index = sni.and_then(|name| self.find(name)).or(self.default)?;
        Some(Arc::clone(&self.entries[index].config))
    }

    /// Answers TLS-ALPN-01 for `name` with `key` (RFC 8737: that certificate, ALPN `acme-tls/1` only).
    pub fn answer_challenge(
        &mut self,
        name: &str,
        key: &Arc<CertifiedKey>,
    ) -> Result<(), rustls::Error> {
        let alpn = [super::ACME_TLS_ALPN];
        let config = server_config(&super::provider(), key, &self.session_cache, &alpn)?;
        self.challenges.insert(name.to_ascii_lowercase(), config);
        Ok(())
    }

    /// The config for a ClientHello: a TLS-ALPN-01 answer when it offers `acme-tls/1` for a name being
    /// validated, else [`CertStore::select`].
    pub fn select_for(&self, sni: Option<&str>, acme_tls: bool) -> Option<Arc<ServerConfig>> {
        if acme_tls {
            let name = sni.map(|n| n.strip_suffix('.').unwrap_or(n).to_ascii_lowercase());
            if let Some(config) = name.and_then(|n| self.challenges.get(&n)) {
                return Some(Arc::clone(config));
            }
        }
        self.select(sni)
    }

    fn find(&self, sni: &str) -> Option<usize> {
        let name = sni.strip_suffix('.').unwrap_or(sni).to_ascii_lowercase();
        if let Some(&index) = self.exact.get(&name) {
            return Some(index);
        }
        match name.split_once('.') {
            Some((first, parent)) if !first.is_empty() && !parent.is_empty() => {
                self.wildcard.get(parent).copied()
            }
            _ => None,
        }
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// For the next store after a reload, so resumption survives it.
    pub fn session_cache(&self) -> SessionCache {
        Arc::clone(&self.session_cache)
    }
}

/// Whether a certificate name (`a.example.com`, or `*.example.com` for exactly one label more) covers
/// the host `name` (lower-case), as [`CertStore::select`] would choose it.
pub fn covers(pattern: &str, name: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(parent) => name
            .split_once('.')
            .is_some_and(|(first, rest)| !first.is_empty() && rest == parent),
        None => pattern == name,
    }
}

/// A certificate's first names, for messages.
fn describe(certificate: &Certificate) -> String {
    match certificate.names.as_slice() {
        [] => "a certificate without DNS names".to_string(),
        [one] => format!("the certificate for {one}"),
        [first, rest @ ..] => format!("the certificate for {first} (+{} names)", rest.len()),
    }
}

/// TLS 1.3 and 1.2 only (1.0 and 1.1 are deprecated, RFC 8996), ALPN `alpn` (in preference), no client
/// certificates, no 0-RTT (replayable, and a replayed request could start a backend), the shared cache.
fn server_config(
    provider: &Arc<rustls::crypto::CryptoProvider>,
    key: &Arc<CertifiedKey>,
    session_cache: &SessionCache,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(Arc::clone(provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(OneCertificate(Arc::clone(key))));
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config.max_early_data_size = 0;
    config.session_storage = session_cache.clone();
    Ok(Arc::new(config))
}

/// Each config serves one certificate: the choice by SNI was made before the config was.
#[derive(Debug)]
struct OneCertificate(Arc<CertifiedKey>);

impl ResolvesServerCert for OneCertificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}
