//! One ACME order with instant-acme over the ureq adapter ([`super::http`]): the account (loaded from
//! storage or created with `email`), a new order for the names, each pending authorization's challenge
//! published to the proxy and set ready once the proxy confirms it serves it, polling with bounded
//! back-off, finalization with a fresh key (instant-acme's `finalize()`: rcgen, P-256), the chain
//! downloaded and stored. The thread ([`super::thread`]) decides when; this file only knows how.
//!
//! Why wait for the proxy's confirmation rather than publish and set ready at once: the event reaches
//! the reactor through its mailbox, and a CA that validates before the token is in the reactor's map
//! marks the authorization invalid for good and counts a failed validation (5 per name per hour at
//! Let's Encrypt). The confirmation is one message back; it costs the reactor a line.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use super::messages::{AcmeEvent, Served};
use super::schedule::Lifetime;
use super::storage::{LoadedCert, Storage, StoredCert};
use crate::config::{AcmeChallenge, AcmeConfig};

/// How long the proxy has to confirm it serves a challenge: it applies a message, so anything near
/// this means it is not reading its mailbox.
pub const SERVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Polling the order: 250 ms, doubling, for at most two minutes (a CA validates in seconds; Pebble
/// with its default random sleeps takes up to 15 s per challenge).
fn poll_policy() -> RetryPolicy {
    RetryPolicy::new()
        .initial_delay(Duration::from_millis(250))
        .backoff(2.0)
        .timeout(Duration::from_secs(120))
}

/// Where the order publishes challenge answers: the ACME thread, which passes them on as events and
/// hears the proxy's confirmations.
pub trait ChallengeHost {
    /// Sends `event` to the proxy and remembers `served` to retract it after the order.
    fn publish(&self, event: AcmeEvent, served: Served);
    /// Waits until the proxy confirmed `served`; `false` after `timeout`.
    fn confirmed(&self, served: &Served, timeout: Duration) -> impl Future<Output = bool>;
}

/// The account and what it is for; the account is made or loaded at the first order.
pub struct Client {
    config: AcmeConfig,
    account: Option<Account>,
}

impl Client {
    pub fn new(config: AcmeConfig) -> Client {
        Client {
            config,
            account: None,
        }
    }

    pub fn config(&self) -> &AcmeConfig {
        &self.config
    }

    /// The account: once made, kept for the life of the thread.
    async fn account(&mut self, storage: &Storage) -> Result<Account, String> {
        if let Some(account) = &self.account {
            return Ok(account.clone());
        }
        let http = super::http::client(self.config.ca_file.as_deref())?;
        let builder = Account::builder_with_http(http);
        let directory = &self.config.directory;
        let account = match storage.load_account(directory).map_err(|e| e.0)? {
            Some(credentials) => builder
                .from_credentials(credentials)
                .await
                .map_err(|e| format!("ACME account from storage at {directory}: {e}"))?,
            None => {
                let contact = self.config.email.as_ref().map(|e| format!("mailto:{e}"));
                let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
                let new = NewAccount {
                    contact: &contact,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                };
                let (account, credentials) = builder
                    .create(&new, directory.clone(), None)
                    .await
                    .map_err(|e| format!("creating an ACME account at {directory}: {e}"))?;
                storage.save_account(&credentials).map_err(|e| e.0)?;
                log::info!("ACME: account {} created at {directory}", account.id());
                account
            }
        };
        self.account = Some(account.clone());
        Ok(account)
    }

    /// Orders a certificate for `names`, stores it and reads it back. The caller holds the storage lock and
    /// retracts what was published (whatever the outcome).
    pub async fn order(
        &mut self,
        storage: &Storage,
        names: &[String],
        host: &impl ChallengeHost,
    ) -> Result<LoadedCert, String> {
        let account = self.account(storage).await?;
        let identifiers: Vec<Identifier> =
            names.iter().map(|n| Identifier::Dns(n.clone())).collect();
        let mut order = account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .map_err(|e| format!("new order: {e}"))?;
        let kind = match self.config.challenge {
            AcmeChallenge::Http01 => ChallengeType::Http01,
            AcmeChallenge::TlsAlpn01 => ChallengeType::TlsAlpn01,
        };

        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization.map_err(|e| format!("authorization: {e}"))?;
            let name = authorization.identifier().to_string();
            match authorization.status {
                AuthorizationStatus::Pending => {}
                // The CA reuses a recent validation (Pebble does half the time).
                AuthorizationStatus::Valid => continue,
                status => return Err(format!("authorization for {name} is {status:?}")),
            }
            let Some(mut challenge) = authorization.challenge(kind.clone()) else {
                return Err(format!("the CA offers no {kind:?} challenge for {name}"));
            };
            let key_authorization = challenge.key_authorization();
            let (event, served) = match kind {
                ChallengeType::TlsAlpn01 => {
                    let key = super::alpn::answer(&name, key_authorization.digest().as_ref())?;
                    let event = AcmeEvent::TlsAlpn01 {
                        name: name.clone(),
                        key,
                    };
                    (event, Served::TlsAlpn01 { name: name.clone() })
                }
                _ => {
                    let token = challenge.token.clone();
                    let event = AcmeEvent::Http01 {
                        token: token.clone(),
                        key_authorization: key_authorization.as_str().to_string(),
                    };
                    (event, Served::Http01 { token })
                }
            };
            host.publish(event, served.clone());
            if !host.confirmed(&served, SERVE_TIMEOUT).await {
                return Err(format!(
                    "the proxy did not confirm serving the challenge for {name} within {} s",
                    SERVE_TIMEOUT.as_secs()
                ));
            }
            challenge
                .set_ready()
                .await
                .map_err(|e| format!("challenge for {name}: {e}"))?;
        }

        let status = order
            .poll_ready(&poll_policy())
            .await
            .map_err(|e| format!("waiting for validation: {e}"))?;
        if status != OrderStatus::Ready {
            return Err(why_invalid(&mut order).await);
        }
        let key_pem = order
            .finalize()
            .await
            .map_err(|e| format!("finalize: {e}"))?;
        let cert_pem = order
            .poll_certificate(&poll_policy())
            .await
            .map_err(|e| format!("downloading the certificate: {e}"))?;
        let not_after = leaf_not_after(&cert_pem)?;
        let cert = StoredCert {
            names: names.to_vec(),
            cert_pem,
            key_pem,
            lifetime: Lifetime {
                not_before: unix_now(),
                not_after,
            },
        };
        storage.save_cert(&cert).map_err(|e| e.0)?;
        // Read back and checked like a configured certificate: what is served is what a restart
        // will load.
        storage
            .load_cert(names)
            .map_err(|e| e.0)?
            .ok_or_else(|| format!("ACME storage: {names:?} not found after storing it"))
    }
}

/// What the CA said about the authorizations of an invalid order (refreshed: the order's copies are
/// from before validation).
async fn why_invalid(order: &mut instant_acme::Order) -> String {
    let mut reasons = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(Ok(mut authorization)) = authorizations.next().await {
        let name = authorization.identifier().to_string();
        if let Ok(state) = authorization.refresh().await {
            for challenge in &state.challenges {
                if let Some(problem) = &challenge.error {
                    let detail = problem.detail.as_deref().unwrap_or("no detail");
                    reasons.push(format!("{name}: {detail}"));
                }
            }
        }
    }
    if reasons.is_empty() {
        "the CA found the order invalid".to_string()
    } else {
        format!("validation failed: {}", reasons.join("; "))
    }
}

/// `notAfter` of the first certificate of a PEM chain.
fn leaf_not_after(chain: &str) -> Result<i64, String> {
    let leaf = CertificateDer::pem_slice_iter(chain.as_bytes())
        .next()
        .ok_or("the CA sent no certificate")?
        .map_err(|e| format!("the CA sent a chain that is not PEM: {e}"))?;
    crate::tls::der::cert_facts(leaf.as_ref())
        .map(|facts| facts.not_after)
        .map_err(|e| format!("the CA sent a certificate that cannot be read: {e}"))
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
