//! The upstream core: what both request paths (the reactor's HTTP/1 and the h2 worker's streams) know about
//! backends, written once. Each thread owns its own [`Upstreams`] and feeds it the same messages.
//!
//! ```text
//!  config ──Upstreams::plan (reactor, once per reload)──▶ Reconcile ──apply──▶ reactor's Upstreams
//!                                                                   └─apply──▶ h2 worker's Upstreams
//!  request ──host, RequestSource──▶ RouteTable::lookup ──RouteMatch──▶ Upstreams::admit ──▶ forward | hold | refuse
//!                                          └──▶ local answer (redirect, respond) | 400 | 404 | 405
//!  supervisor report ──▶ Upstreams::on_event ──▶ Outcome: release held requests, start, drop pool, forget
//! ```
//!
//! * `route_table`: where a request goes (hosts, aliases, wildcards, each host's routes over one
//!   normalised path); pure, immutable, shared (`Arc`) and swapped whole. `answer`: what a route answers
//!   itself.
//! * `route_match`: the conditions of a route and the first-match rule (404, 405 with `Allow`, shadowing).
//! * `backend`: one backend as a request thread sees it (its instances, held requests, ids); `table`: every
//!   backend, and admission, reports, reload and shutdown applied to them.
//! * `view`: the admission rules and the reaction to each lifecycle report (one instance).
//! * `pool_view`: a pool's admission over its instances, its late-binding queue and the demand it
//!   reports; `balance`: which instance a request goes to (every strategy, hashing, sticky slots).
//! * `reconcile`: the reload algorithm; `errors`: the wording of every answer given instead of a backend's.
//! * `addr`, `instance`: where an instance listens; the one place an address is derived from config.
//! * `stream`: a non-blocking connection to an instance's address, TCP or unix-domain (reactor, probe).
//! * `idle_pool`: the keep-alive pool's rules (what stays idle, for how long), for both threads' sockets.

pub mod addr;
pub mod affinity;
mod answer;
pub mod backend;
pub mod balance;
mod errors;
pub mod idle_pool;
pub mod instance;
mod pool_owner;
pub mod pool_view;
mod queue;
pub mod reconcile;
pub mod route_match;
pub mod route_table;
pub mod routing;
pub mod stream;
pub mod table;
pub mod view;

#[cfg(test)]
mod tests;

pub use addr::UpstreamAddr;
pub use affinity::Affinity;
pub use answer::LocalAnswer;
pub use backend::{
    Admission, Backend, BackendId, Instance, InstanceId, Leased, Outcome, Waiter, HOLD_SLACK,
};
pub use errors::TlsFailure;
pub use idle_pool::{IdlePool, PoolLimits};
pub use reconcile::{Change, Reconcile};
pub use route_table::{
    normalize_host, Caller, Explanation, RouteLimits, RouteMatch, RouteScratch, RouteTable,
    RouteVerdict, Routed,
};
pub use routing::{route, Routing};
pub use stream::UpstreamStream;
pub use table::Upstreams;

/// A request that failed on a pooled connection before any response byte arrived is retried once on a
/// new connection, if it has no body: a backend closing an idle keep-alive connection fails exactly like
/// that, and such a request can be sent again without the client's help.
pub fn may_retry(reused: bool, has_body: bool, response_started: bool, retried: bool) -> bool {
    reused && !has_body && !response_started && !retried
}

/// 413 for a request that declares a body over `max` (a body without a declared length is counted as it
/// streams).
pub fn body_too_large(declared: Option<u64>, max: Option<u64>) -> Option<crate::error::ProxyError> {
    match (declared, max) {
        (Some(n), Some(max)) if n > max => Some(crate::error::ProxyError::body_too_large(max)),
        _ => None,
    }
}
