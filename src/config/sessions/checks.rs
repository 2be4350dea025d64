//! Checks across templates and against the rest of the file: `host_ports` (the proxy's own ports, other
//! templates' ranges, `[backends]` and `[pools]` instances), reported at `host_ports`; hostname spaces
//! (`[backends]` hosts, `[hosts]` names and aliases, other templates' spaces), reported at `hostname`.
//! A template is checked against those before it in the file, so each clash is reported once, at the
//! later one.

use std::iter;
use std::net::{IpAddr, Ipv4Addr};

use super::pattern::{spaces_overlap, wildcard_is_space};
use super::read::{Others, ReadTemplate};
use crate::config::reader::Ctx;
use crate::config::server::binds_overlap;
use crate::config::{BackendConfig, ServerConfig};
use crate::upstream::instance::instances_of;
use crate::upstream::UpstreamAddr;

/// Session instances listen on 127.0.0.1 (Docker publishes there): a range holds no port the proxy or
/// another instance listens on there.
pub(super) fn ports(
    read: &[ReadTemplate],
    server: &ServerConfig,
    others: &Others<'_>,
    ctx: &mut Ctx,
) {
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    for (index, this) in read.iter().enumerate() {
        let (low, high) = this.template.host_ports;
        let within = |port: u16| port != 0 && (low..=high).contains(&port);
        let mut problems = Vec::new();
        if within(server.port) && binds_overlap(server.bind, loopback) {
            let port = server.port;
            problems.push(format!("holds the proxy's own port {port} ([server] port)"));
        }
        if within(server.admin_port) && binds_overlap(server.admin_bind, loopback) {
            let port = server.admin_port;
            problems.push(format!("holds the admin port {port} ([server] admin_port)"));
        }
        for other in &read[..index] {
            let (other_low, other_high) = other.template.host_ports;
            if other_low <= high && low <= other_high {
                problems.push(format!(
                    "overlaps host_ports of [sessions.{}] ({other_low}-{other_high})",
                    other.template.name
                ));
            }
        }
        for backend in others.backends.iter().chain(others.pools) {
            let taken = instances_of(backend)
                .into_iter()
                .find_map(|spec| match spec.addr {
                    UpstreamAddr::Tcp(addr) if on_this_host(addr.ip()) && within(addr.port()) => {
                        Some(addr.port())
                    }
                    _ => None,
                });
            if let Some(port) = taken {
                problems.push(format!("holds port {port}, used by {}", owner(backend)));
            }
        }
        let (span, path) = &this.host_ports_at;
        for message in problems {
            ctx.report(span, path, message);
        }
    }
}

/// Where a session instance's port could clash: loopback, or every address.
fn on_this_host(ip: IpAddr) -> bool {
    ip.is_loopback() || ip.is_unspecified()
}

fn owner(backend: &BackendConfig) -> String {
    match backend.is_pool() {
        true => format!("pool \"{}\"", backend.hostname),
        false => format!("backend \"{}\"", backend.hostname),
    }
}

/// A session hostname is never anything else's: no `[backends]` host or `[hosts]` name is in a
/// template's space (a wildcard only when it is the whole space; the sessions, looked up first, take
/// their names out of a wider one), and no two templates' spaces share a name.
pub(super) fn spaces(read: &[ReadTemplate], others: &Others<'_>, ctx: &mut Ctx) {
    for (index, this) in read.iter().enumerate() {
        let space = &this.template.hostname;
        let mut problems = Vec::new();
        for backend in others.backends {
            if space.in_space(&backend.hostname) {
                let host = &backend.hostname;
                problems.push(format!(
                    "this template's hostname space holds [backends.\"{host}\"]"
                ));
            }
        }
        for host in others.hosts {
            // A [hosts] key naming a backend was reported as that backend.
            let names = iter::once(&host.name)
                .filter(|name| !others.backends.iter().any(|b| &b.hostname == *name))
                .chain(&host.aliases);
            for name in names {
                let clash = match name.starts_with("*.") {
                    true => wildcard_is_space(name, space),
                    false => space.in_space(name),
                };
                if !clash {
                    continue;
                }
                problems.push(match name == &host.name {
                    true => format!("this template's hostname space holds [hosts.\"{name}\"]"),
                    false => format!(
                        "this template's hostname space holds \"{name}\", an alias of \
                         [hosts.\"{}\"]",
                        host.name
                    ),
                });
            }
        }
        for other in &read[..index] {
            if spaces_overlap(space, &other.template.hostname) {
                problems.push(format!(
                    "this template's hostname space overlaps that of [sessions.{}]",
                    other.template.name
                ));
            }
        }
        let (span, path) = &this.hostname_at;
        for message in problems {
            ctx.report(span, path, message);
        }
    }
}
