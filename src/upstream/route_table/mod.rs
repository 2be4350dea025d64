//! Where a request goes: a pure, immutable table built from the config and swapped whole on reload,
//! shared by the reactor and the h2 worker (`Arc`). Each protocol hands [`RouteTable::lookup`] its host
//! and its parsed head (a [`RequestSource`]), so both are routed by the same code.
//!
//! A host is found by its exact name or alias, then by a wildcard one label up (`*.example.com` matches
//! `a.example.com`, not `a.b.example.com`). A `[backends]` host without a table has one catch-all route
//! that forwards the target unedited, and costs one hash lookup. A host with a table (`[hosts]`) has its
//! path normalised once (`http1::path`): that one spelling is matched, edited and forwarded, so no route
//! can be bypassed by writing a path another way. Its routes are tried in file order (`route_match`).

mod build;
mod explain;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use super::answer::LocalAnswer;
use super::backend::BackendId;
use super::route_match::{select, Conditions, PathCond, Selection};
use crate::config::routes::LocalRoute;
use crate::error::{ErrorCode, ProxyError};
use crate::http1::path::{self, PathRules};
use crate::http1::rewrite::{ForwardPlan, PathEdit, RequestSource, Vars};
use crate::msg::Host;

pub use crate::config::routes::RouteLimits;
pub use explain::{action_text, Explanation, RouteVerdict};

/// Where a matched request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    pub backend: BackendId,
    /// The backend's name, for logs and error messages.
    pub host: Host,
    /// How the request head is edited on its way to the backend; shared by every request the route takes.
    pub plan: Arc<ForwardPlan>,
    pub limits: RouteLimits,
}

impl RouteLimits {
    /// The body limit of a request the route takes: its own (unlimited is `u64::MAX`), or the server's.
    pub fn max_body(&self, server: Option<u64>) -> Option<u64> {
        self.max_request_body_bytes.or(server)
    }

    /// When a hold of a request the route takes ends, if the route says (else the backend's rule).
    pub fn hold_until(&self, now: Instant) -> Option<Instant> {
        self.hold_timeout.map(|limit| now + limit)
    }
}

/// What a route does with the requests it matches.
#[derive(Debug, Clone)]
pub enum Action {
    Forward(RouteMatch),
    /// The route answers itself (as the config read it; `LocalRoute::answer` renders it).
    Answer(LocalRoute),
}

impl Action {
    /// Whether the action reads the route's regex captures.
    fn uses_captures(&self) -> bool {
        match self {
            Action::Forward(to) => matches!(to.plan.path, PathEdit::Rewrite(_)),
            Action::Answer(LocalRoute::Redirect { location, .. }) => !location.is_literal(),
            Action::Answer(LocalRoute::Respond { body, .. }) => !body.is_literal(),
        }
    }
}

/// Who asked, for the placeholders of a route's own answers (`{request_id}`, `{client_ip}`).
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub request_id: &'a [u8],
    pub client_ip: IpAddr,
}

/// One route of a host's table.
#[derive(Debug, Clone)]
pub struct Route {
    /// Where the route is written, for `/routes/explain`.
    pub line: usize,
    pub conditions: Conditions,
    pub action: Action,
}

/// A host with a route table.
#[derive(Debug, Clone)]
pub struct HostRoutes {
    /// The table's name as configured (its key), for the admin views.
    pub name: String,
    pub aliases: Vec<String>,
    pub rules: PathRules,
    pub routes: Vec<Route>,
}

#[derive(Debug, Clone)]
enum HostEntry {
    /// A `[backends]` host: every request, target unedited.
    CatchAll(RouteMatch),
    Table(HostRoutes),
}

/// The outcome of routing one request.
#[derive(Debug)]
pub enum Routed<'t, 's> {
    /// Forward to `to`. `target` is the request target to send (the normalised, edited path and the
    /// query) for a host with a table; `None` forwards the client's target unedited.
    Forward {
        to: &'t RouteMatch,
        target: Option<&'s [u8]>,
    },
    /// The route answers itself.
    Answer(LocalAnswer),
    /// 400 for a path with no single reading, 404 `NO_ROUTE`, 405 with `Allow`.
    Refuse(ProxyError),
    /// No host of that name: 404 `UNKNOWN_HOST`.
    UnknownHost,
}

/// Buffers a lookup writes into, kept by each thread so routing allocates nothing in the steady state.
#[derive(Debug, Default)]
pub struct RouteScratch {
    normal: Vec<u8>,
    target: Vec<u8>,
}

impl RouteScratch {
    /// The target the last [`Routed::Forward`] gave.
    pub fn target(&self) -> &[u8] {
        &self.target
    }
}

#[derive(Debug, Default)]
pub struct RouteTable {
    names: HashMap<Box<str>, usize>,
    /// `example.com` for a host named `*.example.com`.
    wildcards: HashMap<Box<str>, usize>,
    hosts: Vec<HostEntry>,
}

impl RouteTable {
    /// Routes one request for `host` (normalised with [`normalize_host`]).
    pub fn lookup<'t, 's, S: RequestSource>(
        &'t self,
        host: &str,
        request: &S,
        caller: Caller<'_>,
        scratch: &'s mut RouteScratch,
    ) -> Routed<'t, 's> {
        match self.find(host) {
            None => Routed::UnknownHost,
            Some(HostEntry::CatchAll(to)) => Routed::Forward { to, target: None },
            Some(HostEntry::Table(table)) => table.route(host, request, caller, scratch),
        }
    }

    fn find(&self, host: &str) -> Option<&HostEntry> {
        let index = match self.names.get(host) {
            Some(&index) => index,
            None => {
                let (_, parent) = host.split_once('.')?;
                *self.wildcards.get(parent)?
            }
        };
        self.hosts.get(index)
    }

    /// How many hosts (each with its aliases) the table routes.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Every host with a table, in the order they were configured.
    pub fn tables(&self) -> impl Iterator<Item = &HostRoutes> {
        self.hosts.iter().filter_map(|h| match h {
            HostEntry::Table(table) => Some(table),
            HostEntry::CatchAll(_) => None,
        })
    }

    /// Every catch-all host and where it goes.
    pub fn catch_alls(&self) -> impl Iterator<Item = &RouteMatch> {
        self.hosts.iter().filter_map(|h| match h {
            HostEntry::CatchAll(to) => Some(to),
            HostEntry::Table(_) => None,
        })
    }
}

/// A request path split for matching: the normalised path without its query, and the query with its `?`.
struct Normalised<'a> {
    path: &'a str,
    query: &'a [u8],
}

impl HostRoutes {
    fn route<'t, 's, S: RequestSource>(
        &'t self,
        host: &str,
        request: &S,
        caller: Caller<'_>,
        scratch: &'s mut RouteScratch,
    ) -> Routed<'t, 's> {
        let RouteScratch { normal, target } = scratch;
        let normalised = match normalise(request.target(), self.rules, normal) {
            Ok(normalised) => normalised,
            Err(err) => return Routed::Refuse(err),
        };
        let conditions = self.routes.iter().map(|r| &r.conditions);
        let route = match select(conditions, normalised.path, request) {
            Selection::Route(index) => &self.routes[index],
            Selection::MethodNotAllowed(allow) => {
                return Routed::Refuse(ProxyError::method_not_allowed(&allow))
            }
            Selection::NoRoute => return Routed::Refuse(ProxyError::no_route(host)),
        };
        let captures = match (&route.conditions.path, route.action.uses_captures()) {
            (PathCond::Regex(pattern), true) => pattern.captures(normalised.path),
            _ => None,
        };
        let vars = Vars {
            host: host.as_bytes(),
            path: normalised.path.as_bytes(),
            query: normalised.query,
            captures: captures.as_ref(),
            request_id: caller.request_id,
            ..Vars::default()
        };
        match &route.action {
            Action::Forward(to) => {
                target.clear();
                let path = normalised.path.as_bytes();
                if path == b"*" {
                    // `OPTIONS *` names the server, not a path: nothing to edit.
                    target.push(b'*');
                } else {
                    to.plan.path.edit_path(path, captures.as_ref(), target);
                }
                target.extend_from_slice(normalised.query);
                Routed::Forward {
                    to,
                    target: Some(target.as_slice()),
                }
            }
            Action::Answer(local) => Routed::Answer(local.answer(&vars, caller.client_ip)),
        }
    }
}

/// The one reading of a request target: normalised into `out`, then split. An absolute-form target
/// without a path stands for `/`; `*` stays `*` (it matches only routes without a path condition).
fn normalise<'a>(
    target: &[u8],
    rules: PathRules,
    out: &'a mut Vec<u8>,
) -> Result<Normalised<'a>, ProxyError> {
    let bad = |why: &str| ProxyError::new(ErrorCode::BadRequest, why);
    path::normalize(target, rules, out).map_err(|e| bad(e.reason()))?;
    if out.first().is_some_and(|&b| b != b'/' && b != b'*') || out.is_empty() {
        out.insert(0, b'/');
    }
    let at = out.iter().position(|&b| b == b'?').unwrap_or(out.len());
    let (path, query) = out.split_at(at);
    let path = std::str::from_utf8(path).map_err(|_| bad("the path is not UTF-8"))?;
    Ok(Normalised { path, query })
}

/// The routing key of a Host field or `:authority` host part: lower-case, without a trailing dot, written
/// into `scratch` so a lookup allocates nothing. `None` when it is not UTF-8.
pub fn normalize_host<'a>(raw: &[u8], scratch: &'a mut String) -> Option<&'a str> {
    let text = std::str::from_utf8(raw).ok()?;
    scratch.clear();
    scratch.push_str(text.trim_end_matches('.'));
    scratch.make_ascii_lowercase();
    Some(scratch.as_str())
}
