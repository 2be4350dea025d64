//! The h2 worker's adapter over the upstream core ([`crate::upstream`]): a held stream waits on a oneshot
//! channel, and an admitted stream takes a [`Target`], the few facts it needs without borrowing the table
//! across awaits. Admission, holding, reload and the reaction to reports are the core's, shared with the
//! reactor.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::error::ProxyError;
use crate::http1::rewrite::ForwardPlan;
use crate::http1::rewrite::RequestSource;
use crate::msg::{Command, Host, Lease};
use crate::sessions::gate::SessionStamp;
use crate::sessions::route::SessionHosts;
use crate::upstream::affinity::RequestAffinity;
use crate::upstream::{
    self, BackendId, Caller, InstanceId, Leased, LocalAnswer, RouteLimits, RouteScratch, Routing,
    UpstreamAddr, Waiter,
};

/// The outcome of a held stream's wait: go ahead to the instance leased to it, or the error to answer
/// with.
pub type Release = Result<Leased, ProxyError>;

impl Waiter for oneshot::Sender<Release> {
    /// A stream that gave up waiting has dropped its receiver.
    fn is_gone(&self) -> bool {
        self.is_closed()
    }
}

/// Every backend as the worker sees it; it keeps nothing of its own per backend (its pool is keyed by id).
pub type Routes = upstream::Upstreams<oneshot::Sender<Release>, ()>;

/// Where an admitted stream goes, taken when it is forwarded.
#[derive(Debug, Clone)]
pub struct Target {
    pub instance: InstanceId,
    pub host: Host,
    pub addr: UpstreamAddr,
    pub request_timeout: Duration,
}

/// What an admitted stream's route says about forwarding it, taken along while it is held.
#[derive(Debug, Clone)]
pub struct Forwarding {
    /// How the head is edited: the route's plan at arrival (a reload while the stream waits does not
    /// re-route it).
    pub plan: Arc<ForwardPlan>,
    /// The target to send (normalised and edited) for a host with a route table.
    pub target: Option<Box<[u8]>>,
    pub limits: RouteLimits,
    /// What the proxy adds for a session's backend (and strips from the request).
    pub session: Option<SessionStamp>,
}

pub enum Admission {
    /// Forward now; the lease counts the stream in flight on its instance.
    Forward(Target, Lease, Forwarding),
    /// Wait on `release` for at most `limit`, then take the target of `id` afresh: the instance that
    /// became ready may listen elsewhere than the one there was when the stream arrived.
    Hold {
        id: BackendId,
        host: Host,
        release: oneshot::Receiver<Release>,
        limit: Duration,
        forwarding: Forwarding,
    },
    /// The route answers itself; `spend`: the request traded this credential of its session's, which
    /// the reactor's registry must learn.
    Answer {
        answer: LocalAnswer,
        spend: Option<usize>,
    },
    /// Refused, before or after routing to a backend (the one its metrics count it under).
    Reject(ProxyError, Option<BackendId>),
}

/// Decides what happens to a stream for `host` (already normalised) whose body declares `declared`
/// bytes, under the server's body limit `max_body` (a route may set its own). A command for the
/// supervisor (a start, a pool's demand) comes back alongside when one must be sent now.
pub fn admit<S: RequestSource>(
    routes: &mut Routes,
    sessions: &SessionHosts,
    host: &str,
    request: &S,
    caller: Caller<'_>,
    (declared, max_body): (Option<u64>, Option<u64>),
    now: Instant,
) -> (Admission, Option<Command>) {
    let mut scratch = RouteScratch::default();
    let routing = upstream::route(
        routes.routes(),
        sessions,
        host,
        request,
        caller,
        &mut scratch,
    );
    let (to, forwarding) = match routing {
        Routing::Forward { to, target, stamp } => {
            let forwarding = Forwarding {
                plan: to.plan,
                target: target.map(Box::from),
                limits: to.limits,
                session: stamp,
            };
            ((to.backend, to.host), forwarding)
        }
        Routing::Answer { answer, spend } => return (Admission::Answer { answer, spend }, None),
        Routing::Refuse(err) => return (Admission::Reject(err, None), None),
        Routing::UnknownHost => {
            return (
                Admission::Reject(ProxyError::unknown_host(host), None),
                None,
            );
        }
    };
    let (id, backend_host) = to;
    let max_body = forwarding.limits.max_body(max_body);
    if let Some(err) = upstream::body_too_large(declared, max_body) {
        return (Admission::Reject(err, Some(id)), None);
    }
    let affinity = RequestAffinity {
        request,
        client_ip: caller.client_ip,
    };
    match routes.admit(Some(id), host, now, &affinity, oneshot::channel) {
        upstream::Admission::Forward { to, ask } => {
            match target(routes, id, to.slot, &forwarding.limits) {
                Some(target) => (Admission::Forward(target, to.lease, forwarding), ask),
                None => (
                    Admission::Reject(ProxyError::unknown_host(host), Some(id)),
                    ask,
                ),
            }
        }
        upstream::Admission::Hold {
            ask,
            until,
            receipt,
        } => {
            let until = forwarding.limits.hold_until(now).unwrap_or(until);
            let hold = Admission::Hold {
                id,
                host: backend_host,
                release: receipt,
                limit: until.saturating_duration_since(now),
                forwarding,
            };
            (hold, ask)
        }
        upstream::Admission::Refuse(err) => (Admission::Reject(err, Some(id)), None),
    }
}

/// The target of an instance of a backend, if it is still configured.
pub fn target(routes: &Routes, id: BackendId, slot: u32, limits: &RouteLimits) -> Option<Target> {
    let backend = routes.get(id)?;
    let instance = backend.instance(slot)?;
    Some(Target {
        instance: InstanceId { backend: id, slot },
        host: backend.host.clone(),
        addr: instance.addr.clone(),
        request_timeout: limits
            .request_timeout
            .unwrap_or(backend.config.timings.request_timeout),
    })
}

/// The routing key for an authority's host part (the core's rule), owned: an h2 request keeps it.
pub fn normalize_host(raw: &[u8]) -> Option<String> {
    let mut host = String::new();
    upstream::normalize_host(raw, &mut host)?;
    Some(host)
}
