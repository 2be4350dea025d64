//! Building a [`RouteTable`] from the config: each `[hosts]` table compiled under its name and aliases,
//! each `[backends]` host not claimed by a table as a catch-all.

use std::sync::Arc;

use super::{Action, HostEntry, HostRoutes, Route, RouteLimits, RouteMatch, RouteTable};
use crate::config::hosts::HostConfig;
use crate::config::pools::Sticky;
use crate::config::routes::RouteAction;
use crate::http1::path::PathRules;
use crate::http1::rewrite::FieldEdit;
use crate::http1::rewrite::ForwardPlan;
use crate::msg::Host;
use crate::upstream::BackendId;

impl RouteTable {
    /// `catch_alls` are backends by their (normalised) hostname; `hosts` the route tables, whose `to`
    /// names `target_of` resolves to a backend and, for a pool with sticky cookies, its cookie (the
    /// config has checked that every one names a backend). A table named like a backend replaces that
    /// backend's catch-all.
    pub fn build(
        catch_alls: impl IntoIterator<Item = (Host, BackendId)>,
        hosts: &[HostConfig],
        target_of: impl Fn(&str) -> Option<(BackendId, Option<Sticky>)>,
    ) -> RouteTable {
        let mut table = RouteTable::default();
        for host in hosts {
            let index = table.hosts.len();
            table
                .hosts
                .push(HostEntry::Table(compile(host, &target_of)));
            for name in std::iter::once(&host.name).chain(&host.aliases) {
                match name.strip_prefix("*.") {
                    Some(parent) => table.wildcards.insert(parent.into(), index),
                    None => table.names.insert(name.as_str().into(), index),
                };
            }
        }
        // A catch-all route forwards the head unedited: all of them share the one empty plan.
        let unedited = Arc::new(ForwardPlan::default());
        for (host, backend) in catch_alls {
            if table.names.contains_key(&*host) {
                continue;
            }
            table.names.insert(Box::from(&*host), table.hosts.len());
            table.hosts.push(HostEntry::CatchAll(RouteMatch {
                backend,
                host,
                plan: unedited.clone(),
                limits: RouteLimits::default(),
            }));
        }
        table
    }
}

fn compile(
    host: &HostConfig,
    target_of: &impl Fn(&str) -> Option<(BackendId, Option<Sticky>)>,
) -> HostRoutes {
    let routes = host
        .routes
        .iter()
        .filter_map(|route| {
            let action = match &route.action {
                RouteAction::To { target, plan } => {
                    let Some((backend, sticky)) = target_of(target) else {
                        log::error!(
                            "{}: the route on line {} names no backend ({target}); left out",
                            host.name,
                            route.line
                        );
                        return None;
                    };
                    let mut plan = plan.clone();
                    plan.response
                        .add
                        .extend(sticky.as_ref().and_then(sticky_cookie));
                    Action::Forward(RouteMatch {
                        backend,
                        host: Host::from(target.as_str()),
                        plan: Arc::new(plan),
                        limits: route.limits,
                    })
                }
                RouteAction::Answer(local) => Action::Answer(local.clone()),
            };
            Some(Route {
                line: route.line,
                conditions: route.conditions.clone(),
                action,
            })
        })
        .collect();
    HostRoutes {
        name: host.name.clone(),
        aliases: host.aliases.clone(),
        rules: PathRules {
            allow_encoded_slashes: host.allow_encoded_slashes,
        },
        routes,
    }
}

/// The response field a sticky pool's answers carry: the cookie names the slot that served (`{slot}`),
/// so the client's next request prefers it while it is ready.
fn sticky_cookie(sticky: &Sticky) -> Option<FieldEdit> {
    let mut value = format!("{}={{slot}}; Path=/; HttpOnly; SameSite=Lax", sticky.cookie);
    if sticky.max_age_secs > 0 {
        value.push_str(&format!("; Max-Age={}", sticky.max_age_secs));
    }
    // The config allows only letters, digits, '_', '-' and '.' in the name, so this does not fail.
    FieldEdit::response("Set-Cookie", &value)
        .map_err(|e| log::error!("sticky cookie {}: {e:?}; left out", sticky.cookie))
        .ok()
}
