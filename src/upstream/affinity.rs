//! What a pool's choice reads from a request: its hash key and its sticky cookie, through one trait
//! both protocols' request sources implement the same way ([`RequestAffinity`]).

use super::balance;
use crate::config::pools::{HashOn, HashOver};
use crate::http1::rewrite::RequestSource;

/// What a pool's choice needs to know of the request: its hash key, its sticky cookie.
pub trait Affinity {
    /// The key `on` names in the request, hashed for `over`; `None` when the request has none.
    fn hash_key(&self, _on: &HashOn, _over: HashOver) -> Option<u64> {
        None
    }

    /// The slot the request's cookie `name` names.
    fn sticky_slot(&self, _name: &str) -> Option<u32> {
        None
    }
}

/// The secret that soft-affinity keys are hashed with: one per process, so a key lands on the same
/// instance whichever thread (protocol) admits it, and clients cannot aim keys at an instance.
fn process_seed() -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(balance::random_seed)
}

/// A request with no affinity at all (and every `[backends]` entry, which has one instance).
impl Affinity for () {}

/// A request as either protocol's source presents it, with its client's address.
pub struct RequestAffinity<'a, S> {
    pub request: &'a S,
    pub client_ip: std::net::IpAddr,
}

impl<S: RequestSource> Affinity for RequestAffinity<'_, S> {
    fn hash_key(&self, on: &HashOn, over: HashOver) -> Option<u64> {
        let seed = balance::key_seed(over, process_seed());
        balance::request_key(on, self.request, self.client_ip, seed)
    }

    fn sticky_slot(&self, name: &str) -> Option<u32> {
        balance::sticky_slot(name, self.request).map(u32::from)
    }
}
