//! Checks across pools (and `[backends]`): where instances listen, their container names, and the
//! `start_after` order. Each problem points at the key that makes it: an instance's `port` or `socket`,
//! its `container_name` (or the pool's key for a default name), a pool's `start_after`.

use std::collections::{HashMap, HashSet};

use super::read::ReadPool;
use crate::config::reader::Ctx;
use crate::config::server::binds_overlap;
use crate::config::{BackendConfig, BackendKind, ServerConfig};
use crate::upstream::instance::instances_of;
use crate::upstream::UpstreamAddr;

/// No two instances (of pools or `[backends]`) listen at one address or run as one container, and none
/// listens at the proxy's own ports. Instances at an `address` are someone else's: two pools may share one.
pub(super) fn instances(
    pools: &[ReadPool],
    backends: &[BackendConfig],
    server: &ServerConfig,
    ctx: &mut Ctx,
) {
    // A TLS address hashes and compares by its socket address, name and roots, never by the caches
    // inside its rustls config.
    #[allow(clippy::mutable_key_type)]
    let mut addrs: HashMap<UpstreamAddr, String> = HashMap::new();
    let mut names: HashMap<&str, String> = HashMap::new();
    for backend in backends {
        let owner = format!("backend \"{}\"", backend.hostname);
        for spec in instances_of(backend) {
            addrs.insert(spec.addr, owner.clone());
        }
        if let BackendKind::Docker(docker) = &backend.kind {
            names.insert(&docker.container_name, owner);
        }
    }
    for pool in pools {
        for slot in &pool.slots {
            let spec = &slot.spec;
            let owner = format!(
                "instance {} of pool \"{}\"",
                spec.index, pool.config.hostname
            );
            let addr_problem = match &spec.addr {
                _ if spec.kind == BackendKind::External => None,
                UpstreamAddr::Tcp(addr)
                    if addr.port() == server.port && binds_overlap(server.bind, addr.ip()) =>
                {
                    Some(format!(
                        "port {} is the proxy's own port ([server] port)",
                        addr.port()
                    ))
                }
                UpstreamAddr::Tcp(addr)
                    if addr.port() == server.admin_port
                        && binds_overlap(server.admin_bind, addr.ip()) =>
                {
                    Some(format!(
                        "port {} is the admin port ([server] admin_port)",
                        addr.port()
                    ))
                }
                addr => addrs
                    .insert(addr.clone(), owner.clone())
                    .map(|other| match addr {
                        UpstreamAddr::Tcp(tcp) => {
                            format!("port {} is already used by {other}", tcp.port())
                        }
                        UpstreamAddr::Unix(path) => {
                            format!("socket {} is already used by {other}", path.display())
                        }
                        #[cfg(feature = "tls")]
                        UpstreamAddr::Tls(target) => {
                            format!("{} is already used by {other}", target.addr)
                        }
                    }),
            };
            if let Some(message) = addr_problem {
                let (span, path) = &slot.listen_at;
                ctx.report(span, path, message);
            }
            if let BackendKind::Docker(docker) = &spec.kind {
                if let Some(other) = names.insert(&docker.container_name, owner) {
                    let (span, path) = slot.container_name_at.as_ref().unwrap_or(&pool.at);
                    let message = format!(
                        "container name \"{}\" is already used by {other}",
                        docker.container_name
                    );
                    ctx.report(span, path, message);
                }
            }
        }
    }
}

/// `start_after` names other `always_on` pools, without a cycle. `named` are all the pools in the file,
/// read or not: one that could not be read was reported already.
pub(super) fn start_after(pools: &[ReadPool], named: &HashSet<&str>, ctx: &mut Ctx) {
    let read: HashMap<&str, &ReadPool> = pools
        .iter()
        .map(|p| (p.config.hostname.as_str(), p))
        .collect();
    for pool in pools {
        let (Some((span, path)), scaling) = (&pool.start_after_at, &pool.pool.scaling) else {
            continue;
        };
        let name = pool.config.hostname.as_str();
        if !scaling.always_on {
            let message = "start_after orders always_on pools; this pool is not one";
            ctx.report(span, path, message);
            continue;
        }
        for other in &scaling.start_after {
            let message = match read.get(other.as_str()) {
                _ if other == name => "a pool cannot start after itself".to_string(),
                Some(p) if !p.pool.scaling.always_on => {
                    format!("\"{other}\" is not an always_on pool")
                }
                Some(_) if reaches(&read, other, name) => {
                    format!("\"{other}\" starts after \"{name}\" already (a cycle)")
                }
                Some(_) => continue,
                None if named.contains(other.as_str()) => continue,
                None => format!("\"{other}\" is not a pool"),
            };
            ctx.report(span, path, message);
        }
    }
}

/// Whether pool `from` waits, directly or not, for `to`.
fn reaches(pools: &HashMap<&str, &ReadPool>, from: &str, to: &str) -> bool {
    let mut seen = HashSet::new();
    let mut stack = vec![from];
    while let Some(node) = stack.pop() {
        if node == to {
            return true;
        }
        if seen.insert(node) {
            if let Some(pool) = pools.get(node) {
                stack.extend(pool.pool.scaling.start_after.iter().map(String::as_str));
            }
        }
    }
    false
}
