//! The h2 worker's adapter over the upstream core ([`crate::upstream`]): a held stream waits on a oneshot
//! channel, and an admitted stream takes a [`Target`], the few facts it needs without borrowing the table
//! across awaits. Admission, holding, reload and the reaction to reports are the core's, shared with the
//! reactor.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::error::ProxyError;
use crate::http1::rewrite::ForwardPlan;
use crate::msg::{Activity, Host};
use crate::upstream::{self, BackendId, RequestView, UpstreamAddr, Waiter};

/// The outcome of a held stream's wait: go ahead, or the error to answer with.
pub type Release = Result<(), ProxyError>;

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
    pub id: BackendId,
    pub host: Host,
    pub addr: UpstreamAddr,
    pub activity: Arc<Activity>,
    pub request_timeout: Duration,
}

pub enum Admission {
    /// Forward now, with the matched route's plan for the head.
    Forward(Target, Arc<ForwardPlan>),
    /// Wait on `release` for at most `limit`, then take the target of `id` afresh: the instance that
    /// became ready may listen elsewhere than the one there was when the stream arrived. The plan is the
    /// route's at arrival: a reload while the stream waits does not re-route it.
    Hold {
        id: BackendId,
        host: Host,
        release: oneshot::Receiver<Release>,
        limit: Duration,
        plan: Arc<ForwardPlan>,
    },
    Reject(ProxyError),
}

/// Decides what happens to a stream for `request.host` (already normalised). `true` comes back alongside
/// when a `Command::Start` must be sent now for the backend it is held for.
pub fn admit(routes: &mut Routes, request: &RequestView, now: Instant) -> (Admission, bool) {
    let matched = routes.routes().lookup(request);
    let matched = matched.map(|m| (m.backend, m.plan.clone()));
    let id = matched.as_ref().map(|m| m.0);
    let admission = routes.admit(id, request.host, now, oneshot::channel);
    match (admission, matched) {
        (upstream::Admission::Forward, Some((id, plan))) => match target(routes, id) {
            Some(target) => (Admission::Forward(target, plan), false),
            None => (
                Admission::Reject(ProxyError::unknown_host(request.host)),
                false,
            ),
        },
        (
            upstream::Admission::Hold {
                start,
                until,
                receipt,
            },
            Some((id, plan)),
        ) => {
            let host = routes
                .get(id)
                .map_or_else(|| Host::from(request.host), |b| b.host.clone());
            let hold = Admission::Hold {
                id,
                host,
                release: receipt,
                limit: until.saturating_duration_since(now),
                plan,
            };
            (hold, start)
        }
        (upstream::Admission::Refuse(err), _) => (Admission::Reject(err), false),
        // The core admits only what the route table matched.
        (_, None) => (
            Admission::Reject(ProxyError::unknown_host(request.host)),
            false,
        ),
    }
}

/// The target of a backend, if it is still configured.
pub fn target(routes: &Routes, id: BackendId) -> Option<Target> {
    routes.get(id).map(|backend| Target {
        id,
        host: backend.host.clone(),
        addr: backend.addr.clone(),
        activity: backend.activity.clone(),
        request_timeout: backend.config.timings.request_timeout,
    })
}

/// The routing key for an authority's host part (the core's rule), owned: an h2 request keeps it.
pub fn normalize_host(raw: &[u8]) -> Option<String> {
    let mut host = String::new();
    upstream::normalize_host(raw, &mut host)?;
    Some(host)
}
