//! `[hosts."HOST"]`: a host's names (its key, one leading wildcard label allowed, and `aliases`), whether
//! its paths may carry encoded slashes, its host-wide header edits and its routes in file order
//! (`routes.rs` reads each). Checked across routes and hosts: a route that an earlier one shadows (both
//! lines named), a `to` that names no backend, a name claimed twice: by two hosts, or by a host's alias
//! and a `[backends]` entry. A host's key may name a `[backends]` entry: its routes then replace that
//! backend's implicit catch-all. Pool names are no hostnames (a pool answers only what routes send it),
//! so a host key or alias equal to one is an ordinary name.
//!
//! The host-wide edits are merged into every route when it is read (the host's first, then the
//! route's: `HeaderEdits::then`), so a request applies one list; the host keeps its own for the admin
//! view and for what no route answers (404, 405).

use std::collections::HashMap;

use super::reader::{Ctx, Item, Section};
use super::routes::{self, RouteAction, RouteConfig};
use super::units::normalize_hostname;
use crate::http1::rewrite::{HeaderEdits, ResponseEdits};

/// A host with a route table.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The table's key, normalised (lower-case; `*.example.com` matches exactly one label).
    pub name: String,
    /// More names for the same table, normalised like `name`.
    pub aliases: Vec<String>,
    /// `%2F` and `%5C` in a path are kept (encoded) instead of refused with 400.
    pub allow_encoded_slashes: bool,
    /// Tried in this order; the first that matches wins.
    pub routes: Vec<RouteConfig>,
    /// Host-wide request edits (already merged into each `to` route's plan).
    pub request_headers: HeaderEdits,
    /// Host-wide response edits (already merged into each route's); also for the host's 404 and 405.
    pub response_headers: ResponseEdits,
}

/// Reads every host table. A `to` may give the name of one of `backends` (the `[backends]` entries,
/// whose names are hostnames) or `pools`.
pub(super) fn read_all(
    hosts: Option<Section<'_, '_>>,
    backends: &[&str],
    pools: &[&str],
    ctx: &mut Ctx,
) -> Vec<HostConfig> {
    let Some(mut hosts) = hosts else {
        return Vec::new();
    };
    let mut claimed: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for item in hosts.take_all() {
        let name = host_name(item.name, &item, ctx);
        if let Some(name) = &name {
            // A key naming a backend pairs with it; a wildcard cannot name one (backends have no `*`).
            claim(name, &item, &mut claimed, ctx);
        }
        if let Some(host) = read_one(&item, backends, pools, &mut claimed, ctx) {
            if let Some(name) = name {
                out.push(HostConfig { name, ..host });
            }
        }
    }
    out
}

fn read_one(
    item: &Item<'_, '_>,
    backends: &[&str],
    pools: &[&str],
    claimed: &mut HashMap<String, usize>,
    ctx: &mut Ctx,
) -> Option<HostConfig> {
    let mut section = item.section(ctx)?;
    let aliases = match section.take("aliases") {
        Some(list) => {
            let names = list.string_list(ctx).unwrap_or_default();
            let mut aliases = Vec::with_capacity(names.len());
            for alias in names {
                let Some(alias) = host_name(&alias, &list, ctx) else {
                    continue;
                };
                if backends.contains(&alias.as_str()) {
                    let message = format!(
                        "\"{alias}\" is the hostname of [backends.\"{alias}\"]; a name belongs to one \
                         of [backends] and [hosts] (give the backend's host its own [hosts.\"{alias}\"] \
                         table instead)"
                    );
                    list.invalid(ctx, message);
                    continue;
                }
                claim(&alias, &list, claimed, ctx);
                aliases.push(alias);
            }
            aliases
        }
        None => Vec::new(),
    };
    let allow_encoded_slashes = match section.take("allow_encoded_slashes") {
        Some(flag) => flag.as_bool(ctx).unwrap_or(false),
        None => false,
    };
    let mut edits = |key, response, ctx: &mut Ctx| match section.take(key) {
        Some(item) => routes::read_edits(&item, response, ctx).unwrap_or_default(),
        None => HeaderEdits::default(),
    };
    let request_headers = edits("request_headers", false, ctx);
    let response_headers = edits("response_headers", true, ctx);
    let mut routes = match section.take("routes") {
        Some(list) => read_routes(&list, backends, pools, ctx),
        None => {
            let (span, path) = (section.span(), section.path().to_string());
            ctx.report(&span, &path, "a host needs at least one [[routes]] entry");
            Vec::new()
        }
    };
    section.finish(ctx);
    for route in &mut routes {
        if let RouteAction::To { plan, .. } = &mut route.action {
            plan.set_request_edits(request_headers.then(&plan.request_edits()));
        }
        let response = route.action.response_edits_mut();
        *response = response_headers.then(response);
    }
    Some(HostConfig {
        name: String::new(),
        aliases,
        allow_encoded_slashes,
        routes,
        request_headers,
        response_headers,
    })
}

/// The routes in order, each checked against the ones before it and its `to` against the backends and
/// pools.
fn read_routes(
    list: &Item<'_, '_>,
    backends: &[&str],
    pools: &[&str],
    ctx: &mut Ctx,
) -> Vec<RouteConfig> {
    let mut routes: Vec<RouteConfig> = Vec::new();
    for table in list.tables(ctx).unwrap_or_default() {
        let (span, path) = (table.span(), table.path().to_string());
        let Some(route) = routes::read(table, ctx) else {
            continue;
        };
        if let Some(earlier) = routes
            .iter()
            .find(|r| r.conditions.shadows(&route.conditions))
        {
            let message = format!(
                "can never match: the route on line {} matches every request this one does",
                earlier.line
            );
            ctx.report(&span, &path, message);
            continue;
        }
        if let RouteAction::To { target, .. } = &route.action {
            if !backends.contains(&target.as_str()) && !pools.contains(&target.as_str()) {
                let message = format!("`to = \"{target}\"` names no backend");
                ctx.report(&span, &format!("{path}.to"), message);
                continue;
            }
        }
        routes.push(route);
    }
    routes
}

/// A host key or alias: a hostname as `[backends]` accepts, or `*.` and one.
fn host_name(raw: &str, at: &Item<'_, '_>, ctx: &mut Ctx) -> Option<String> {
    let (wildcard, rest) = match raw.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, raw),
    };
    match normalize_hostname(rest) {
        Ok(name)
            if wildcard
                && (name.starts_with('[') || name.parse::<std::net::Ipv4Addr>().is_ok()) =>
        {
            at.invalid(
                ctx,
                format!("\"{raw}\": a wildcard stands for a DNS label, not part of an address"),
            );
            None
        }
        Ok(name) if wildcard => Some(format!("*.{name}")),
        Ok(name) => Some(name),
        Err(message) => {
            at.invalid(ctx, format!("\"{raw}\": {message}"));
            None
        }
    }
}

fn claim(name: &str, at: &Item<'_, '_>, claimed: &mut HashMap<String, usize>, ctx: &mut Ctx) {
    let line = ctx.line_of(at.key_span.start);
    match claimed.get(name) {
        Some(first) => {
            let message = format!("\"{name}\" is already a name of the host on line {first}");
            at.invalid(ctx, message);
        }
        None => {
            claimed.insert(name.to_string(), line);
        }
    }
}

#[cfg(test)]
#[path = "hosts_tests.rs"]
mod tests;
