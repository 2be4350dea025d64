//! A pool's instances: the instance keys (in the pool, or in each `[[instances]]` entry), where an
//! instance listens (`port`, `socket` or `address`), and each slot's substitutions.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::backend::{
    read_env, read_local, reject_keys, DOCKER_ONLY, LOCAL_ONLY, PROCESS_ONLY,
};
use crate::config::reader::{Ctx, Item, Section};
use crate::config::units::default_container_name;
use crate::config::{docker, BackendKind};
use crate::upstream::instance::InstanceSpec;
use crate::upstream::UpstreamAddr;

/// An instance as written, before its slot's substitutions.
pub(super) struct Template {
    kind: BackendKind,
    listen: Listen,
    env: Vec<(String, String)>,
    weight: u16,
    pub(super) name: Option<String>,
}

enum Listen {
    Port(u16),
    Socket(String),
    Address(UpstreamAddr),
}

/// The instance keys of one instance (or of every replica), reported where they are wrong.
pub(super) fn read_template(
    section: &mut Section<'_, '_>,
    ctx: &mut Ctx,
    pool: &str,
    explicit: bool,
) -> Option<Template> {
    let (name, weight) = match explicit {
        true => {
            let name = section.take("name").map(|n| n.text(ctx).map(String::from));
            let weight = section.take("weight").map(|w| w.uint_in(ctx, 1, 1000));
            (name, weight)
        }
        false => (None, None),
    };
    let port = section.take("port");
    let socket = section.take("socket");
    let address = section.take("address");
    let given: Vec<&Item> = [&port, &socket, &address].into_iter().flatten().collect();
    if given.len() != 1 {
        let message = "an instance needs exactly one of port, socket and address";
        let span = given.get(1).map_or(section.span(), |i| i.key_span.clone());
        ctx.report(&span, section.path(), message);
        return None;
    }
    let listen = if let Some(port) = &port {
        Listen::Port(port.uint_in(ctx, 1, 65_535)? as u16)
    } else if let Some(socket) = &socket {
        let path = socket.text(ctx)?;
        if !path.starts_with('/') {
            socket.invalid(ctx, "must be an absolute path");
            return None;
        }
        Listen::Socket(path.to_string())
    } else {
        let address = address.as_ref()?;
        Listen::Address(read_address(address, ctx)?)
    };
    let kind_name = section
        .take("type")
        .map(|t| t.as_str(ctx).map(String::from));
    let env = match section.take("env") {
        Some(env) => read_env(&env, ctx),
        None => Some(Vec::new()),
    };
    let kind = match (&listen, kind_name.as_ref().map(|k| k.as_deref())) {
        (Listen::Address(_), None) => {
            for key in LOCAL_ONLY.iter().chain(DOCKER_ONLY).chain(PROCESS_ONLY) {
                if let Some(item) = section.take(key) {
                    let message = "an instance with an address is not started by the proxy";
                    ctx.report(&item.key_span, &item.path, message);
                }
            }
            Some(BackendKind::External)
        }
        (_, None | Some(Some("local"))) => {
            reject_keys(section, ctx, DOCKER_ONLY, "docker");
            read_local(section, ctx).map(BackendKind::Local)
        }
        (Listen::Socket(_), Some(Some("docker"))) => {
            ctx.report(
                &section.span(),
                section.path(),
                "a container listens on a port, not a unix socket",
            );
            None
        }
        (_, Some(Some("docker"))) => {
            reject_keys(section, ctx, LOCAL_ONLY, "local");
            for key in PROCESS_ONLY {
                if let Some(item) = section.take(key) {
                    let message = "applies to local processes only (type = \"local\")";
                    ctx.report(&item.key_span, &item.path, message);
                }
            }
            let default_name = format!("{pool}-{{index}}");
            docker::read(section, ctx, &default_name).map(|(mut spec, explicit)| {
                if explicit.is_none() {
                    spec.container_name = format!("{}-{{index}}", default_container_name(pool));
                }
                BackendKind::Docker(spec)
            })
        }
        (_, Some(Some(other))) => {
            let message = format!("must be \"local\" or \"docker\", found \"{other}\"");
            ctx.report(&section.span(), section.path(), message);
            None
        }
        (_, Some(None)) => None,
    };
    Some(Template {
        kind: kind?,
        listen,
        env: env?,
        weight: match weight {
            Some(w) => w? as u16,
            None => 1,
        },
        name: match name {
            Some(n) => Some(n?),
            None => None,
        },
    })
}

/// `"host:port"` (resolved once, now) or `"unix:/path"`.
fn read_address(item: &Item<'_, '_>, ctx: &mut Ctx) -> Option<UpstreamAddr> {
    let text = item.text(ctx)?;
    if let Some(path) = text.strip_prefix("unix:") {
        if !path.starts_with('/') {
            item.invalid(ctx, "a unix address is \"unix:/absolute/path\"");
            return None;
        }
        return Some(UpstreamAddr::Unix(Arc::new(PathBuf::from(path))));
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(UpstreamAddr::Tcp(addr));
    }
    match text.to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(addr)) => Some(UpstreamAddr::Tcp(addr)),
        _ => {
            item.invalid(
                ctx,
                format!("\"{text}\" is not host:port (or unix:/path) that resolves"),
            );
            None
        }
    }
}

/// Slot `index` of a template: `{index}`, `{port}` and `{socket}` substituted.
pub(super) fn expand(template: &Template, pool: &str, index: u32) -> InstanceSpec {
    let (addr, port, socket) = match &template.listen {
        Listen::Port(base) => {
            let port = base.saturating_add(index as u16);
            let spec = InstanceSpec::on_loopback(index, port);
            (spec.addr, port, String::new())
        }
        Listen::Socket(path) => {
            let path = path.replace("{index}", &index.to_string());
            let addr = UpstreamAddr::Unix(Arc::new(PathBuf::from(&path)));
            (addr, 0, path)
        }
        Listen::Address(addr) => (addr.clone(), 0, String::new()),
    };
    let sub = |text: &str| {
        text.replace("{index}", &index.to_string())
            .replace("{port}", &port.to_string())
            .replace("{socket}", &socket)
            .replace("{pool}", pool)
    };
    let kind = match &template.kind {
        BackendKind::Local(local) => {
            let mut local = local.clone();
            local.args = local.args.iter().map(|a| sub(a)).collect();
            BackendKind::Local(local)
        }
        BackendKind::Docker(docker) => {
            let mut docker = docker.clone();
            docker.args = docker.args.iter().map(|a| sub(a)).collect();
            docker.container_name = sub(&docker.container_name);
            BackendKind::Docker(docker)
        }
        BackendKind::External => BackendKind::External,
    };
    InstanceSpec {
        index,
        addr,
        port,
        kind,
        env: template
            .env
            .iter()
            .map(|(k, v)| (k.clone(), sub(v)))
            .collect(),
        weight: template.weight,
        name: template.name.clone(),
    }
}
