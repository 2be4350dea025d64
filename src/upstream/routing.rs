//! Where a request goes, across everything that routes: session hostnames first (each decided by the
//! session gate, `crate::sessions::gate`), then the route table. One function for HTTP/1 and h2, so a
//! session host can never be reached one way and refused the other.
//!
//! Sessions come first without cost to other hosts: a session hostname lies in a template's hostname
//! space, which the config keeps apart from every static host, so only wildcard hosts could also match
//! it, and those must not (a name in a template's space never falls through to a wildcard).

use std::sync::{Arc, OnceLock};

use super::answer::LocalAnswer;
use super::route_table::{Caller, RouteMatch, RouteScratch, RouteTable, Routed};
use crate::config::routes::RouteLimits;
use crate::error::ProxyError;
use crate::http1::rewrite::{ForwardPlan, RequestSource};
use crate::sessions::gate::{self, Gate, SessionStamp};
use crate::sessions::route::SessionHosts;

/// The outcome of routing one request.
#[derive(Debug)]
pub enum Routing<'s> {
    /// Forward to `to`; `target` as in [`Routed::Forward`]; `stamp` for a session's backend.
    Forward {
        to: RouteMatch,
        target: Option<&'s [u8]>,
        stamp: Option<SessionStamp>,
    },
    /// The proxy answers itself; `spend`: the request traded this credential of its session's
    /// (the registry must learn it).
    Answer {
        answer: LocalAnswer,
        spend: Option<usize>,
    },
    Refuse(ProxyError),
    /// No host of that name: 404 `UNKNOWN_HOST`.
    UnknownHost,
}

/// Routes one request for `host` (normalised).
pub fn route<'s, S: RequestSource>(
    table: &RouteTable,
    sessions: &SessionHosts,
    host: &str,
    request: &S,
    caller: Caller<'_>,
    scratch: &'s mut RouteScratch,
) -> Routing<'s> {
    if let Some(gate) = gate::check(sessions.find(host), request) {
        return match gate {
            Gate::Forward(stamp) => Routing::Forward {
                to: session_match(&stamp),
                target: None,
                stamp: Some(stamp),
            },
            Gate::Answer { answer, spend } => Routing::Answer { answer, spend },
            Gate::Refuse(err) => Routing::Refuse(err),
        };
    }
    match table.lookup(host, request, caller, scratch) {
        Routed::Forward { to, target } => Routing::Forward {
            to: to.clone(),
            target,
            stamp: None,
        },
        Routed::Answer(answer) => Routing::Answer {
            answer,
            spend: None,
        },
        Routed::Refuse(err) => Routing::Refuse(err),
        Routed::UnknownHost => Routing::UnknownHost,
    }
}

/// A session's backend as a route: the target unedited, the backend's own timeouts and the server's
/// body limit (what the gate adds is in the stamp).
fn session_match(stamp: &SessionStamp) -> RouteMatch {
    static PLAN: OnceLock<Arc<ForwardPlan>> = OnceLock::new();
    RouteMatch {
        backend: stamp.route.backend,
        host: stamp.route.name.clone(),
        plan: PLAN.get_or_init(Arc::default).clone(),
        limits: RouteLimits::default(),
    }
}
