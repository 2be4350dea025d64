//! The HTTPS listener (feature `tls`): bound beside the cleartext one when `https_port` is set, with the
//! certificate store its connections choose from; a reload swaps the store, never the listener, and so
//! does a certificate or a TLS-ALPN-01 answer from ACME.
//!
//! Also the two answers only HTTPS brings: the cleartext listener's redirect (`redirect_http`) and the
//! HSTS field on responses over TLS.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use mio::net::TcpListener;
use mio::{Interest, Registry};

use super::HTTPS_LISTENER;
use crate::config::{Config, TlsConfig};
use crate::metrics::page::CertificateNow;
use crate::tls::certs::Certificate;
use crate::tls::store::{new_session_cache, CertStore, SessionCache};
use crate::upstream::LocalAnswer;
use rustls::sign::CertifiedKey;

/// Where ACME HTTP-01 challenges are asked for: never redirected (the CA asks over cleartext).
const ACME_CHALLENGE_PREFIX: &[u8] = b"/.well-known/acme-challenge/";

pub struct Https {
    pub listener: TcpListener,
    /// The port bound (the one asked for, or the OS's choice for 0), for redirects.
    pub port: u16,
    /// Shared by `Arc` with connections whose ClientHello has not come yet; replaced whenever what it
    /// is built from changes.
    pub store: Arc<CertStore>,
    /// What the store is built from: the running config's `[[tls.certificates]]` (with their `default`
    /// marks), then what ACME brought, then the TLS-ALPN-01 answers in progress.
    files: Vec<(Certificate, bool)>,
    acme_certs: Vec<Certificate>,
    challenges: HashMap<String, Arc<CertifiedKey>>,
}

/// A reload's certificates, checked before anything of the reload applies.
pub struct NextStore {
    files: Vec<(Certificate, bool)>,
    store: CertStore,
}

impl Https {
    /// Binds the HTTPS listener when the config has one; its certificates were loaded and checked
    /// with the config.
    pub fn bind(config: &Config, registry: &Registry) -> io::Result<Option<Https>> {
        let Some(tls) = config.tls.as_ref() else {
            return Ok(None);
        };
        let files = file_certificates(tls);
        let store = build_store(&files, &[], &HashMap::new(), new_session_cache())
            .map_err(|e| io::Error::other(format!("TLS certificates: {e}")))?;
        log_warnings(&store.1);
        // With ACME the store may start empty: the handshakes before the first certificate fail.
        if store.0.is_empty() && tls.acme.is_none() {
            return Err(io::Error::other("TLS: no certificate configured"));
        }
        let addr = SocketAddr::new(tls.https_bind, tls.https_port);
        let mut listener = TcpListener::bind(addr).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot listen on {addr} (https): {e}"))
        })?;
        super::bound::raise_backlog(&listener);
        registry.register(&mut listener, HTTPS_LISTENER, Interest::READABLE)?;
        let bound = listener.local_addr()?;
        log::info!("https listening on {bound}");
        Ok(Some(Https {
            listener,
            port: bound.port(),
            store: Arc::new(store.0),
            files,
            acme_certs: Vec::new(),
            challenges: HashMap::new(),
        }))
    }

    /// For a reload: the store of the new config's certificates (with what ACME brought; the session
    /// cache kept, so resumption survives), built before anything of the reload applies so a failure
    /// rejects it whole. `None` when the new config has no `[tls]`: the listener stays until a restart,
    /// and its certificates too.
    pub fn next_store(&self, new: &Config) -> Result<Option<NextStore>, String> {
        let Some(tls) = new.tls.as_ref() else {
            return Ok(None);
        };
        let files = file_certificates(tls);
        let cache = self.store.session_cache();
        let (store, warnings) = build_store(&files, &self.acme_certs, &self.challenges, cache)
            .map_err(|e| format!("TLS certificates: {e}"))?;
        if store.is_empty() && tls.acme.is_none() {
            return Err("TLS: no certificate configured".to_string());
        }
        log_warnings(&warnings);
        Ok(Some(NextStore { files, store }))
    }

    /// Serves a reload's certificates from now on; those past their ClientHello keep the config they
    /// were given, those before it (already accepted) still choose from the store they were given.
    pub fn swap(&mut self, next: NextStore) {
        self.files = next.files;
        self.store = Arc::new(next.store);
        log::info!("TLS: {} certificates in use", self.store.entries().len());
    }

    /// The certificates served, for `/metrics`.
    pub fn certificates_now(&self) -> Vec<CertificateNow> {
        let files = self.files.iter().map(|(c, _)| (c, "file"));
        let acme = self.acme_certs.iter().map(|c| (c, "acme"));
        (files.chain(acme))
            .map(|(c, source)| CertificateNow {
                name: c.names.first().cloned().unwrap_or_default(),
                source,
                not_after: c.not_after,
            })
            .collect()
    }
}

/// What ACME changes in the store: its certificates and its TLS-ALPN-01 answers.
#[cfg(feature = "acme")]
impl Https {
    /// Whether a `[[tls.certificates]]` file serves `name` (exact or wildcard), so ACME need not.
    pub fn file_covers(&self, name: &str) -> bool {
        let names = self.files.iter().flat_map(|(c, _)| &c.names);
        names
            .into_iter()
            .any(|pattern| crate::tls::store::covers(pattern, name))
    }

    /// Serves `certificate` (from ACME) from now on, in place of the one for the same first name.
    pub fn put_acme_cert(&mut self, certificate: Certificate) {
        let first = certificate.names.first().cloned();
        self.acme_certs
            .retain(|c| c.names.first() != first.as_ref());
        self.acme_certs.push(certificate);
        self.rebuild();
    }

    /// Stops serving the ACME certificate whose first name is `name` (its host left the config).
    pub fn drop_acme_cert(&mut self, name: &str) {
        let before = self.acme_certs.len();
        self.acme_certs
            .retain(|c| c.names.first().map(String::as_str) != Some(name));
        if self.acme_certs.len() != before {
            self.rebuild();
        }
    }

    /// Answers TLS-ALPN-01 for `name` with `key` (`None`: stops answering).
    pub fn set_challenge(&mut self, name: &str, key: Option<Arc<CertifiedKey>>) {
        match key {
            Some(key) => self.challenges.insert(name.to_string(), key),
            None => self.challenges.remove(name),
        };
        self.rebuild();
    }

    /// A new store from what it is built from now. Everything in it was served before (the files were
    /// checked with the config, ACME's pairs when they were stored), so a failure is unexpected: the
    /// store in use stays and the failure is logged.
    fn rebuild(&mut self) {
        let cache = self.store.session_cache();
        match build_store(&self.files, &self.acme_certs, &self.challenges, cache) {
            Ok((store, _)) => self.store = Arc::new(store),
            Err(e) => log::error!("TLS: the certificates in use stay: {e}"),
        }
    }
}

/// Keeps what a reload cannot change: the HTTPS listener's address (`https_port`, `https_bind`).
pub fn keep_listener(running: Option<&TlsConfig>, new: &mut Config) {
    if let (Some(running), Some(next)) = (running, new.tls.as_mut()) {
        next.https_port = running.https_port;
        next.https_bind = running.https_bind;
    }
}

fn file_certificates(tls: &TlsConfig) -> Vec<(Certificate, bool)> {
    (tls.certificates.iter())
        .map(|file| (file.loaded.clone(), file.default))
        .collect()
}

/// The store: file certificates first (a name they serve stays theirs), then ACME's, then the
/// challenge answers. Returns the warnings too (name clashes, unreachable or expired certificates).
fn build_store(
    files: &[(Certificate, bool)],
    acme: &[Certificate],
    challenges: &HashMap<String, Arc<CertifiedKey>>,
    cache: SessionCache,
) -> Result<(CertStore, Vec<String>), rustls::Error> {
    let now_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let all = (files.iter().cloned())
        .chain(acme.iter().map(|c| (c.clone(), false)))
        .collect();
    let (mut store, warnings) = CertStore::build(all, cache, now_unix)?;
    for (name, key) in challenges {
        store.answer_challenge(name, key)?;
    }
    Ok((store, warnings))
}

fn log_warnings(warnings: &[String]) {
    for warning in warnings {
        log::warn!("TLS: {warning}");
    }
}

/// The cleartext listener's answer when `redirect_http` is on: 308 to the same target on HTTPS (the
/// method and body are kept by the client), unless the target is an ACME HTTP-01 challenge. `host` is
/// the request's normalised Host field.
pub fn redirect(host: &str, target: &[u8], https_port: u16) -> Option<LocalAnswer> {
    if target.starts_with(ACME_CHALLENGE_PREFIX) {
        return None;
    }
    // The Host field's port is the cleartext one: dropped (`[v6]:port` keeps its brackets).
    let host = match host.strip_prefix('[') {
        Some(rest) => rest
            .split_once(']')
            .map_or(host, |(inside, _)| &host[..inside.len() + 2]),
        None => host.split_once(':').map_or(host, |(name, _)| name),
    };
    let mut location = Vec::with_capacity(16 + host.len() + target.len());
    location.extend_from_slice(b"https://");
    location.extend_from_slice(host.as_bytes());
    if https_port != 443 {
        location.extend_from_slice(format!(":{https_port}").as_bytes());
    }
    // An absolute-form or asterisk target has no path to keep: the root then.
    if target.starts_with(b"/") {
        location.extend_from_slice(target);
    } else {
        location.push(b'/');
    }
    Some(LocalAnswer {
        status: 308,
        location: Some(location),
        content_type: None,
        body: Vec::new(),
        fields: Vec::new(),
    })
}

/// Adds `Strict-Transport-Security` to the response head that starts at `head_at` in `out` (before its
/// blank line; a body may follow, as in the proxy's own answers), unless the head has its own.
pub fn add_hsts(out: &mut Vec<u8>, head_at: usize, max_age_secs: u64) {
    const NAME: &[u8] = b"\r\nstrict-transport-security:";
    let from = head_at.min(out.len());
    let Some(blank) = out[from..].windows(4).position(|w| w == b"\r\n\r\n") else {
        return;
    };
    let head = &out[from..from + blank + 4];
    if head
        .windows(NAME.len())
        .any(|w| w.eq_ignore_ascii_case(NAME))
    {
        return;
    }
    let at = from + blank + 2;
    let field = format!("Strict-Transport-Security: max-age={max_age_secs}\r\n");
    out.splice(at..at, field.into_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(answer: Option<LocalAnswer>) -> Option<String> {
        answer.map(|a| String::from_utf8(a.location.unwrap_or_default()).unwrap_or_default())
    }

    #[test]
    fn redirects_keep_the_target_and_name_a_port_other_than_443() {
        assert_eq!(
            location(redirect("a.test", b"/x?y=1", 443)).as_deref(),
            Some("https://a.test/x?y=1")
        );
        assert_eq!(
            location(redirect("a.test:8080", b"/", 8443)).as_deref(),
            Some("https://a.test:8443/")
        );
        assert_eq!(
            location(redirect("[::1]:8080", b"/p", 443)).as_deref(),
            Some("https://[::1]/p")
        );
        assert_eq!(
            location(redirect("a.test", b"*", 443)).as_deref(),
            Some("https://a.test/")
        );
    }

    #[test]
    fn acme_challenges_are_not_redirected() {
        assert!(redirect("a.test", b"/.well-known/acme-challenge/tok", 443).is_none());
        assert!(redirect("a.test", b"/.well-known/other", 443).is_some());
    }

    #[test]
    fn hsts_goes_before_the_blank_line() {
        let mut out = b"xxHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec();
        add_hsts(&mut out, 2, 60);
        assert_eq!(
            out,
            b"xxHTTP/1.1 200 OK\r\nContent-Length: 0\r\nStrict-Transport-Security: max-age=60\r\n\r\n"
        );
        // The backend's own wins.
        let own = b"HTTP/1.1 200 OK\r\nstrict-transport-security: max-age=1\r\n\r\n".to_vec();
        let mut out = own.clone();
        add_hsts(&mut out, 0, 60);
        assert_eq!(out, own);
        // A proxy answer's body follows its head; a field in the body is not the head's.
        let mut out =
            b"HTTP/1.1 404 x\r\nA: b\r\n\r\n{\"e\":\"\r\nstrict-transport-security:\"}".to_vec();
        add_hsts(&mut out, 0, 5);
        let want = b"HTTP/1.1 404 x\r\nA: b\r\nStrict-Transport-Security: max-age=5\r\n\r\n{";
        assert!(out.starts_with(want), "{}", String::from_utf8_lossy(&out));
    }
}
