//! The reactor's side of ACME (feature `acme`): it starts the ACME thread, tells it which names need a
//! certificate, answers the challenges the thread publishes (HTTP-01 before routing, TLS-ALPN-01 in the
//! HTTPS listener's certificate store) and serves the certificates it brings. The thread does every
//! network call; nothing here blocks.
//!
//! Which names: every configured Host (`[backends]` entries, `[hosts]` tables and their aliases) that no
//! `[[tls.certificates]]` file serves, one certificate per name. Not wildcards (they need DNS-01: give
//! them a file), not IP addresses, not session hostnames (made at run time under a template's
//! wildcard: a file again).

use std::collections::HashMap;

use super::Reactor;
use crate::acme::{self, AcmeCmd, AcmeEvent, AcmeHandle, Served};
use crate::config::Config;
use crate::msg::{Mailbox, ReactorMsg};
use crate::upstream::LocalAnswer;

/// Where HTTP-01 challenges are asked for (RFC 8555, 8.3).
const HTTP01_PREFIX: &[u8] = b"/.well-known/acme-challenge/";

pub struct Acme {
    handle: AcmeHandle,
    /// HTTP-01 answers in place: token -> key authorization.
    http01: HashMap<String, String>,
    /// The names asked for, to tell what a reload adds and removes.
    wanted: Vec<String>,
}

impl Acme {
    /// Starts the ACME thread when the config has `[tls.acme]`; its events come back as
    /// `ReactorMsg::Acme` through `mailbox`.
    pub fn start(config: &Config, mailbox: Mailbox<ReactorMsg>) -> std::io::Result<Option<Acme>> {
        let Some(acme_config) = config.tls.as_ref().and_then(|tls| tls.acme.clone()) else {
            return Ok(None);
        };
        let emit = move |event| {
            mailbox.send(ReactorMsg::Acme(Box::new(event)));
        };
        let handle = acme::spawn(acme_config, emit).map_err(std::io::Error::other)?;
        Ok(Some(Acme {
            handle,
            http01: HashMap::new(),
            wanted: Vec::new(),
        }))
    }

    /// The answer to a request for `target` (on either listener, any Host): the key authorization
    /// for a token in progress, 404 for any other challenge path. `None` for every other target,
    /// which is routed as usual. A challenge is never routed, so it never wakes a backend.
    pub fn http01_answer(&self, target: &[u8]) -> Option<LocalAnswer> {
        let found = challenge(&self.http01, target)?;
        Some(match found {
            Some(key_authorization) => LocalAnswer {
                status: 200,
                location: None,
                content_type: Some("application/octet-stream".into()),
                body: key_authorization.as_bytes().to_vec(),
                fields: Vec::new(),
            },
            None => LocalAnswer {
                status: 404,
                location: None,
                content_type: Some("text/plain".into()),
                body: b"no such ACME challenge\n".to_vec(),
                fields: Vec::new(),
            },
        })
    }

    /// Stops the thread without waiting for it (an order in flight may take a while to give up); the
    /// handle, dropped with the reactor, waits for it.
    pub fn stop(&self) {
        self.handle.send(AcmeCmd::Shutdown);
    }
}

/// For a request target: `None` when it is no HTTP-01 challenge path, else the key authorization of
/// its token if that one is in progress.
fn challenge<'a>(http01: &'a HashMap<String, String>, target: &[u8]) -> Option<Option<&'a String>> {
    let token = target.strip_prefix(HTTP01_PREFIX)?;
    Some(
        std::str::from_utf8(token)
            .ok()
            .and_then(|token| http01.get(token)),
    )
}

/// The names `config` wants certificates for, that `file_covers` does not: sorted, no duplicates.
pub fn wanted_names(config: &Config, file_covers: impl Fn(&str) -> bool) -> Vec<String> {
    let backends = (config.backends.iter())
        .filter(|b| b.pool.is_none())
        .map(|b| b.hostname.as_str());
    let hosts = (config.hosts.iter())
        .flat_map(|h| std::iter::once(&h.name).chain(&h.aliases))
        .map(String::as_str);
    let mut names: Vec<String> = backends
        .chain(hosts)
        .filter(|name| orderable(name) && !file_covers(name))
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A name a CA can validate by HTTP-01 or TLS-ALPN-01: a DNS name with a dot, not a wildcard, not an
/// IP address (the ACME thread checks the rest and reports what it refuses).
fn orderable(name: &str) -> bool {
    !name.starts_with("*.")
        && name.contains('.')
        && name.parse::<std::net::IpAddr>().is_err()
        && !name.starts_with('[')
}

/// A reload cannot change `[tls.acme]` (the thread, its account and its storage lock live as long as
/// the process): said, like the `[server]` keys that need a restart.
pub fn warn_if_changed(running: &Config, new: &Config) {
    let acme = |config: &Config| config.tls.as_ref().and_then(|tls| tls.acme.clone());
    if acme(running) != acme(new) {
        log::warn!("reload: [tls.acme] changed; it takes effect after a restart");
    }
}

impl Reactor {
    /// Asks the ACME thread for the names the running config wants, and forgets those it no longer
    /// does. At start and after every reload.
    pub(super) fn acme_configured(&mut self) {
        let (Some(acme), Some(https)) = (self.acme.as_mut(), self.https.as_mut()) else {
            return;
        };
        let wanted = wanted_names(&self.config, |name| https.file_covers(name));
        for name in &acme.wanted {
            if wanted.binary_search(name).is_err() {
                log::info!("ACME: {name} left the config; its certificate is no longer served");
                acme.handle.send(AcmeCmd::Forget {
                    names: vec![name.clone()],
                });
                https.drop_acme_cert(name);
            }
        }
        for name in &wanted {
            if acme.wanted.binary_search(name).is_err() {
                acme.handle.send(AcmeCmd::Obtain {
                    names: vec![name.clone()],
                });
            }
        }
        acme.wanted = wanted;
    }

    /// An event of the ACME thread.
    pub(super) fn acme_event(&mut self, event: AcmeEvent) {
        let (Some(acme), Some(https)) = (self.acme.as_mut(), self.https.as_mut()) else {
            return;
        };
        log::debug!("ACME event: {event:?}");
        match event {
            AcmeEvent::Http01 {
                token,
                key_authorization,
            } => {
                acme.http01.insert(token.clone(), key_authorization);
                acme.handle.send(AcmeCmd::Serving(Served::Http01 { token }));
            }
            AcmeEvent::Http01Done { token } => {
                acme.http01.remove(&token);
            }
            AcmeEvent::TlsAlpn01 { name, key } => {
                https.set_challenge(&name, Some(key));
                acme.handle
                    .send(AcmeCmd::Serving(Served::TlsAlpn01 { name }));
            }
            AcmeEvent::TlsAlpn01Done { name } => https.set_challenge(&name, None),
            AcmeEvent::CertReady {
                names,
                not_after,
                certificate,
                issued,
                ..
            } => {
                if issued {
                    self.metrics.acme_issued.inc();
                }
                // A certificate ordered for a name the config dropped meanwhile is not served.
                if names.iter().any(|n| acme.wanted.binary_search(n).is_ok()) {
                    log::info!(
                        "TLS: serving the ACME certificate for {} (valid until {not_after}, Unix)",
                        names.join(", ")
                    );
                    https.put_acme_cert(certificate);
                }
            }
            // The thread logged it and retries by itself; a certificate in use stays.
            AcmeEvent::CertFailed { .. } => self.metrics.acme_failed.inc(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http01_answers_tokens_in_progress_and_404s_other_challenges() {
        let answer = |http01: &HashMap<String, String>, target: &[u8]| {
            challenge(http01, target).map(|found| found.is_some())
        };
        let mut http01 = HashMap::new();
        http01.insert("tok".to_string(), "tok.thumb".to_string());
        assert_eq!(
            answer(&http01, b"/.well-known/acme-challenge/tok"),
            Some(true)
        );
        assert_eq!(
            answer(&http01, b"/.well-known/acme-challenge/other"),
            Some(false)
        );
        assert_eq!(
            answer(&http01, b"/.well-known/acme-challenge/\xff"),
            Some(false)
        );
        assert_eq!(answer(&http01, b"/index.html"), None);
    }

    #[test]
    fn orderable_names_are_dns_names_without_wildcards() {
        assert!(orderable("app.example.com"));
        for name in ["*.example.com", "localhost", "127.0.0.1", "[::1]", "::1"] {
            assert!(!orderable(name), "{name}");
        }
    }
}
