//! Which backend a request goes to: a pure, immutable table built from the config and swapped whole on
//! reload, shared by the reactor and the h2 worker (`Arc`). Each protocol builds a [`RequestView`] from its
//! own head type; today every Host has one catch-all route, and route tables per host extend
//! [`RouteTable::lookup`] without touching either protocol.

use std::collections::HashMap;
use std::sync::Arc;

use super::table::BackendId;
use crate::http1::rewrite::ForwardPlan;
use crate::msg::Host;

/// What routing may look at in a request, borrowed from either protocol's parsed head.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// Normalised with [`normalize_host`].
    pub host: &'a str,
    pub method: &'a [u8],
    /// The path and query as the client sent them (origin form).
    pub path: &'a [u8],
}

/// Where a matched request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    pub backend: BackendId,
    /// The backend's name, for logs and error messages.
    pub host: Host,
    /// How the request head is edited on its way to the backend; shared by every request the route takes.
    pub plan: Arc<ForwardPlan>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct RouteTable {
    hosts: HashMap<Box<str>, RouteMatch>,
}

impl RouteTable {
    /// One catch-all route per backend, keyed by its (already normalised) hostname. A catch-all route
    /// forwards the head unedited: all of them share the one empty plan.
    pub fn build(backends: impl IntoIterator<Item = (Host, BackendId)>) -> RouteTable {
        let unedited = Arc::new(ForwardPlan::default());
        let hosts = backends
            .into_iter()
            .map(|(host, backend)| {
                let plan = unedited.clone();
                (
                    Box::from(&*host),
                    RouteMatch {
                        backend,
                        host,
                        plan,
                    },
                )
            })
            .collect();
        RouteTable { hosts }
    }

    pub fn lookup(&self, request: &RequestView) -> Option<&RouteMatch> {
        self.hosts.get(request.host)
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn view(host: &str) -> RequestView<'_> {
        RequestView {
            host,
            method: b"GET",
            path: b"/",
        }
    }

    #[test]
    fn a_host_maps_to_its_backend_whatever_the_path_or_method() {
        let a = BackendId::new(0, 1);
        let table = RouteTable::build([(Host::from("a.test"), a)]);
        let matched = table.lookup(&view("a.test")).map(|m| m.backend);
        assert_eq!(matched, Some(a));
        let post = RequestView {
            method: b"POST",
            path: b"/deep/path?q=1",
            ..view("a.test")
        };
        assert_eq!(table.lookup(&post).map(|m| m.backend), Some(a));
        assert!(table.lookup(&view("b.test")).is_none());
        let plan = table.lookup(&view("a.test")).map(|m| m.plan.clone());
        assert_eq!(
            plan.as_deref(),
            Some(&ForwardPlan::default()),
            "a catch-all edits nothing"
        );
    }

    #[test]
    fn hosts_are_normalised_to_one_key() {
        let mut scratch = String::new();
        assert_eq!(normalize_host(b"App.Test.", &mut scratch), Some("app.test"));
        assert_eq!(normalize_host(b"[::1]", &mut scratch), Some("[::1]"));
        assert_eq!(normalize_host(b"\xff", &mut scratch), None);
    }
}
