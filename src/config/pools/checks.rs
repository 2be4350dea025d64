//! Checks across pools (and `[backends]`): where instances listen, and the `start_after` order.

use std::collections::{HashMap, HashSet};

use crate::config::reader::{Ctx, Item};
use crate::config::server::binds_overlap;
use crate::config::{BackendConfig, BackendKind, ServerConfig};
use crate::upstream::instance::InstanceSpec;
use crate::upstream::UpstreamAddr;

/// No two instances (of pools or `[backends]`) listen at one address, and none at the proxy's own.
pub(super) fn check_addresses(
    pools: &[(BackendConfig, Item<'_, '_>)],
    backends: &[BackendConfig],
    server: &ServerConfig,
    ctx: &mut Ctx,
) {
    let mut taken: HashMap<UpstreamAddr, String> = HashMap::new();
    for backend in backends {
        taken.insert(InstanceSpec::first(backend).addr, backend.hostname.clone());
    }
    for (pool, item) in pools {
        let Some(config) = &pool.pool else { continue };
        for spec in &config.instances {
            if spec.kind == BackendKind::External {
                continue;
            }
            let message = match &spec.addr {
                UpstreamAddr::Tcp(addr)
                    if addr.port() == server.port && binds_overlap(server.bind, addr.ip()) =>
                {
                    format!(
                        "port {} is the proxy's own port ([server] port)",
                        addr.port()
                    )
                }
                UpstreamAddr::Tcp(addr)
                    if addr.port() == server.admin_port
                        && binds_overlap(server.admin_bind, addr.ip()) =>
                {
                    format!(
                        "port {} is the admin port ([server] admin_port)",
                        addr.port()
                    )
                }
                addr => match taken.insert(addr.clone(), pool.hostname.clone()) {
                    Some(other) => format!(
                        "instance {} listens at {addr}, as \"{other}\" does",
                        spec.index
                    ),
                    None => continue,
                },
            };
            ctx.report(&item.key_span, &item.path, message);
        }
    }
}

/// `start_after` names other `always_on` pools, without a cycle.
pub(super) fn check_start_after(pools: &[(BackendConfig, Item<'_, '_>)], ctx: &mut Ctx) {
    let always_on: HashMap<&str, &[String]> = pools
        .iter()
        .filter_map(|(p, _)| {
            let pool = p.pool.as_ref()?;
            pool.scaling
                .always_on
                .then_some((p.hostname.as_str(), pool.scaling.start_after.as_slice()))
        })
        .collect();
    for (pool, item) in pools {
        let Some(config) = &pool.pool else { continue };
        for other in &config.scaling.start_after {
            let message = if !config.scaling.always_on {
                "start_after orders always_on pools; this pool is not one".to_string()
            } else if !always_on.contains_key(other.as_str()) {
                format!("\"{other}\" is not an always_on pool")
            } else if reaches(&always_on, other, &pool.hostname) {
                format!(
                    "\"{other}\" starts after \"{}\" already (a cycle)",
                    pool.hostname
                )
            } else {
                continue;
            };
            ctx.report(
                &item.key_span,
                &format!("{}.start_after", item.path),
                message,
            );
        }
    }
}

/// Whether `from` waits, directly or not, for `to`.
fn reaches(graph: &HashMap<&str, &[String]>, from: &str, to: &str) -> bool {
    let mut seen = HashSet::new();
    let mut stack = vec![from];
    while let Some(node) = stack.pop() {
        if node == to {
            return true;
        }
        if seen.insert(node) {
            stack.extend(
                graph
                    .get(node)
                    .into_iter()
                    .flat_map(|n| n.iter().map(String::as_str)),
            );
        }
    }
    false
}
