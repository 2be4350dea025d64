//! `/routes/explain`: how the table routes one request, route by route, from the same lookup the
//! request path uses (so the explanation cannot drift from what happens).

use std::net::{IpAddr, Ipv4Addr};

use crate::config::routes::LocalRoute;

use super::{normalise, Action, Caller, HostEntry, RouteScratch, RouteTable, Routed};
use crate::http1::rewrite::RequestSource;

/// How one request is routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The table's name (a host key) or the backend whose catch-all takes the host; `None`: unknown host.
    pub host: Option<String>,
    /// Whether the host has a route table (else it is a `[backends]` catch-all).
    pub table: bool,
    /// The normalised path, or why the path was refused.
    pub path: Result<String, String>,
    /// Each route tried, in order, up to the one that matched.
    pub routes: Vec<RouteVerdict>,
    /// What happens, in words: `forward to app as /x`, `redirect 308 to ...`, `404 NO_ROUTE`, ...
    pub outcome: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteVerdict {
    /// 1-based position in the host's table.
    pub index: usize,
    pub line: usize,
    /// `None`: it matched.
    pub why_not: Option<String>,
}

impl RouteTable {
    pub fn explain<S: RequestSource>(&self, host: &str, request: &S) -> Explanation {
        let mut scratch = RouteScratch::default();
        let caller = Caller {
            request_id: b"explain",
            client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        let outcome = describe(self.lookup(host, request, caller, &mut scratch));
        let entry = self.find(host);
        let mut explanation = Explanation {
            host: None,
            table: false,
            path: Ok(String::from_utf8_lossy(request.target()).into_owned()),
            routes: Vec::new(),
            outcome,
        };
        let table = match entry {
            None => return explanation,
            Some(HostEntry::CatchAll(to)) => {
                explanation.host = Some(to.host.to_string());
                return explanation;
            }
            Some(HostEntry::Table(table)) => table,
        };
        explanation.host = Some(table.name.clone());
        explanation.table = true;
        let mut normal = Vec::new();
        let normalised = match normalise(request.target(), table.rules, &mut normal) {
            Ok(normalised) => normalised,
            Err(err) => {
                explanation.path = Err(err.message);
                return explanation;
            }
        };
        explanation.path = Ok(normalised.path.to_string());
        for (i, route) in table.routes.iter().enumerate() {
            let why_not = route.conditions.explain(normalised.path, request);
            let matched = why_not.is_none();
            explanation.routes.push(RouteVerdict {
                index: i + 1,
                line: route.line,
                why_not,
            });
            if matched {
                break;
            }
        }
        explanation
    }
}

fn describe(routed: Routed<'_, '_>) -> String {
    match routed {
        Routed::Forward { to, target } => match target {
            Some(target) => format!(
                "forward to {} as {}",
                to.host,
                String::from_utf8_lossy(target)
            ),
            None => format!("forward to {} unedited", to.host),
        },
        Routed::Answer(answer) => match &answer.location {
            Some(location) => format!(
                "redirect {} to {}",
                answer.status,
                String::from_utf8_lossy(location)
            ),
            None => format!("respond {} ({} bytes)", answer.status, answer.body.len()),
        },
        Routed::Refuse(err) => format!("{} {}: {}", err.code.status(), err.code, err.message),
        Routed::UnknownHost => "404 UNKNOWN_HOST".to_string(),
    }
}

/// What a route does, in words, for `/hosts`.
pub fn action_text(action: &Action) -> String {
    match action {
        Action::Forward(to) => format!("to {}", to.host),
        Action::Answer(LocalRoute::Redirect {
            location, status, ..
        }) => format!("redirect {status} {}", location.as_str()),
        Action::Answer(LocalRoute::Respond { status, body, .. }) => {
            format!("respond {status} {:?}", body.as_str())
        }
    }
}
