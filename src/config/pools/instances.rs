//! A pool's instance keys, as one template: in the pool itself (one instance, or `replicas = N`) or in
//! each `[[instances]]` entry (with its `name` and `weight`). An instance listens at a `port` on
//! loopback, on a unix `socket`, or is an `address` someone else runs; a started one is a local process
//! or a container, with the keys of `[backends]`. `slots.rs` makes each slot of a template.
//!
//! Placeholders: `{index}` (the slot), `{pool}`, and `{port}` or `{socket}`, whichever the instance
//! listens on (the other means nothing for it and is refused), in `args`, `env` values, `container_name`
//! and `socket` (which takes `{index}` and `{pool}`).

use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use toml::de::DeTable;

use super::slots::check_placeholders;
use crate::config::backend::{
    read_env, read_local, reject_keys, DOCKER_ONLY, LOCAL_ONLY, PROCESS_ONLY,
};
use crate::config::reader::{Ctx, Item, Section};
use crate::config::units::default_container_name;
use crate::config::{docker, BackendKind};
use crate::upstream::UpstreamAddr;

/// Where a value is written (its key's span and its key path), for problems found later.
pub(super) type At = (Range<usize>, String);

pub(super) fn at(item: &Item<'_, '_>) -> At {
    (item.key_span.clone(), item.path.clone())
}

/// Where an instance listens: exactly one of these keys.
const LISTEN_KEYS: [&str; 3] = ["port", "socket", "address"];
/// The keys of a started instance besides `LOCAL_ONLY` and `DOCKER_ONLY`.
const STARTED_KEYS: [&str; 3] = ["type", "args", "env"];
/// The keys of an `address = "https://..."` instance (`tls_address.rs`).
const TLS_KEYS: [&str; 2] = ["ca_file", "tls_server_name"];

/// Every key that describes one instance (not `name` and `weight`, which only an entry has).
pub(super) fn instance_keys() -> impl Iterator<Item = &'static str> {
    LISTEN_KEYS
        .into_iter()
        .chain(STARTED_KEYS)
        .chain(TLS_KEYS)
        .chain(LOCAL_ONLY.iter().chain(DOCKER_ONLY).copied())
}

/// An instance as written, before its slot's substitutions.
pub(super) struct Template {
    pub(super) kind: BackendKind,
    pub(super) listen: Listen,
    /// The `port`, `socket` or `address` key.
    pub(super) listen_at: At,
    /// An explicit `container_name` key (checked once substituted, for each slot).
    pub(super) container_name_at: Option<At>,
    pub(super) env: Vec<(String, String)>,
    pub(super) weight: u16,
    /// An `[[instances]]` entry's `name`, and where.
    pub(super) name: Option<(String, At)>,
}

/// `ca_file` and `tls_server_name`, as given: they belong to an `https://` address.
pub(super) struct TlsKeys<'t, 'i> {
    pub(super) ca_file: Option<Item<'t, 'i>>,
    pub(super) server_name: Option<Item<'t, 'i>>,
}

fn is_https(address: &str) -> bool {
    address.starts_with("https://")
}

pub(super) enum Listen {
    Port(u16),
    Socket(String),
    Address(UpstreamAddr),
}

/// The instance keys of one instance (or of every replica) in `section`, whose table is `table`,
/// reported where they are wrong. Every instance key is taken, whatever is wrong, so that only keys
/// nobody knows are left for `finish`. `entry`: an `[[instances]]` entry, which may have a `name` and a
/// `weight`.
pub(super) fn read_template(
    section: &mut Section<'_, '_>,
    table: &DeTable<'_>,
    ctx: &mut Ctx,
    pool: &str,
    entry: bool,
) -> Option<Template> {
    let (name, weight) = match entry {
        true => {
            let name = section
                .take("name")
                .map(|n| n.text(ctx).map(|text| (text.to_string(), at(&n))));
            let weight = section.take("weight").map(|w| w.uint_in(ctx, 1, 1000));
            (name, weight)
        }
        false => {
            for key in ["name", "weight"] {
                if let Some(item) = section.take(key) {
                    let message = "only an [[instances]] entry has a name and a weight";
                    ctx.report(&item.key_span, &item.path, message);
                }
            }
            (None, None)
        }
    };
    let given: Vec<Item> = LISTEN_KEYS
        .into_iter()
        .filter_map(|key| section.take(key))
        .collect();
    let tls = TlsKeys {
        ca_file: section.take("ca_file"),
        server_name: section.take("tls_server_name"),
    };
    let (listen, kind) = match given.as_slice() {
        [item] => {
            let listen = read_listen(item, &tls, ctx).map(|l| (l, at(item)));
            (listen, read_kind(section, table, ctx, pool, item.name))
        }
        _ => {
            let (span, path) = match given.get(1) {
                Some(second) => (second.key_span.clone(), second.path.clone()),
                None => (section.span(), section.path().to_string()),
            };
            let message = "an instance has exactly one of port, socket and address";
            ctx.report(&span, &path, message);
            // Which kind of instance is unknown: its keys are not checked against one.
            for key in instance_keys().chain(PROCESS_ONLY.iter().copied()) {
                section.take(key);
            }
            (None, None)
        }
    };
    let started = match given.as_slice() {
        [item] if item.name != "address" => Some(item.name),
        _ => None,
    };
    let env = match (started, section.take("env")) {
        (Some(_), Some(env)) => read_env(&env, ctx),
        _ => Some(Vec::new()),
    };
    let placeholders_ok = started.is_none_or(|listen| check_placeholders(section, ctx, listen));
    let (listen, listen_at) = listen?;
    let (kind, container_name_at) = kind?;
    Some(Template {
        kind,
        listen,
        listen_at,
        container_name_at,
        env: env.filter(|_| placeholders_ok)?,
        weight: match weight {
            Some(w) => w? as u16,
            None => 1,
        },
        name: match name {
            Some(name) => Some(name?),
            None => None,
        },
    })
}

fn read_listen(item: &Item<'_, '_>, tls: &TlsKeys<'_, '_>, ctx: &mut Ctx) -> Option<Listen> {
    // Peeked, not read: a value of the wrong type is reported once, by `read_address`.
    let https = item.name == "address"
        && matches!(item.value.get_ref(), toml::de::DeValue::String(s) if is_https(s));
    if !https {
        for key in [&tls.ca_file, &tls.server_name].into_iter().flatten() {
            let message = "applies only to an instance at address = \"https://host:port\"";
            ctx.report(&key.key_span, &key.path, message);
        }
    }
    match item.name {
        "port" => Some(Listen::Port(item.uint_in(ctx, 1, 65_535)? as u16)),
        "socket" => {
            let path = item.text(ctx)?;
            if !path.starts_with('/') {
                item.invalid(ctx, "must be an absolute path");
                return None;
            }
            Some(Listen::Socket(path.to_string()))
        }
        _ => Some(Listen::Address(read_address(item, tls, ctx)?)),
    }
}

/// The kind of an instance listening at `listen` (`port`, `socket` or `address`), and an explicit
/// `container_name`'s position.
fn read_kind(
    section: &mut Section<'_, '_>,
    table: &DeTable<'_>,
    ctx: &mut Ctx,
    pool: &str,
    listen: &str,
) -> Option<(BackendKind, Option<At>)> {
    if listen == "address" {
        let keys = STARTED_KEYS.iter().chain(LOCAL_ONLY).chain(DOCKER_ONLY);
        for key in keys.chain(PROCESS_ONLY) {
            if let Some(item) = section.take(key) {
                let message = "an instance with an address is not started by the proxy";
                ctx.report(&item.key_span, &item.path, message);
            }
        }
        return Some((BackendKind::External, None));
    }
    let kind = section.take("type");
    match kind.as_ref().map(|k| k.as_str(ctx)) {
        None | Some(Some("local")) => {
            reject_keys(section, ctx, DOCKER_ONLY, "docker");
            let local = read_local(section, ctx);
            Some((BackendKind::Local(local?), None))
        }
        Some(Some("docker")) => {
            if listen == "socket" {
                if let Some(socket) = section.take("socket") {
                    let message = "a container listens on a port, not a unix socket";
                    ctx.report(&socket.key_span, &socket.path, message);
                }
            }
            let docker = read_docker(section, table, ctx, pool);
            (listen == "port").then_some(docker?)
        }
        Some(found) => {
            if let (Some(kind), Some(other)) = (&kind, found) {
                let message = format!("must be \"local\" or \"docker\", found \"{other}\"");
                kind.invalid(ctx, message);
            }
            // Reported already; kind-specific keys are skipped so one mistake does not cause a dozen.
            for key in LOCAL_ONLY.iter().chain(DOCKER_ONLY).chain(&["args"]) {
                section.take(key);
            }
            None
        }
    }
}

fn read_docker(
    section: &mut Section<'_, '_>,
    table: &DeTable<'_>,
    ctx: &mut Ctx,
    pool: &str,
) -> Option<(BackendKind, Option<At>)> {
    reject_keys(section, ctx, LOCAL_ONLY, "local");
    for key in PROCESS_ONLY {
        if let Some(item) = section.take(key) {
            let message = "applies to local processes only (type = \"local\")";
            ctx.report(&item.key_span, &item.path, message);
        }
    }
    // `docker::read` checks a `container_name` as written, but here it may hold placeholders: it reads
    // the table without it, and each slot's name is checked once substituted (`Template::slot`).
    let mut rest = table.clone();
    rest.remove("container_name");
    let mut docker_keys = Section::new(section.path().to_string(), section.span(), &rest);
    let spec = docker::read(&mut docker_keys, ctx, pool);
    for key in DOCKER_ONLY.iter().chain(&["args"]) {
        section.take(key);
    }
    let name = section
        .take("container_name")
        .map(|item| item.text(ctx).map(|name| (name.to_string(), at(&item))));
    let (mut spec, _) = spec?;
    let name = match name {
        Some(name) => Some(name?),
        None => None,
    };
    let (container_name, name_at) = match name {
        Some((name, at)) => (name, Some(at)),
        None => (format!("{}-{{index}}", default_container_name(pool)), None),
    };
    spec.container_name = container_name;
    Some((BackendKind::Docker(spec), name_at))
}

/// `"host:port"` (resolved once, now; `http://` before it changes nothing), `"unix:/path"`, or
/// `"https://host:port"` (`tls_address.rs`).
fn read_address(item: &Item<'_, '_>, tls: &TlsKeys<'_, '_>, ctx: &mut Ctx) -> Option<UpstreamAddr> {
    let text = item.text(ctx)?;
    if let Some(path) = text.strip_prefix("unix:") {
        if !path.starts_with('/') {
            item.invalid(ctx, "a unix address is \"unix:/absolute/path\"");
            return None;
        }
        return Some(UpstreamAddr::Unix(Arc::new(PathBuf::from(path))));
    }
    if let Some(rest) = text.strip_prefix("https://") {
        return super::tls_address::read(item, rest, tls, ctx);
    }
    let text = text.strip_prefix("http://").unwrap_or(text);
    if let Some((scheme, _)) = text.split_once("://") {
        let message = format!(
            "\"{scheme}://\": a backend is reached at \"host:port\", \"https://host:port\" or \"unix:/path\""
        );
        item.invalid(ctx, message);
        return None;
    }
    let addr = match text.parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => text.to_socket_addrs().ok().and_then(|mut a| a.next()),
    };
    match addr {
        Some(addr) if addr.port() == 0 => {
            item.invalid(ctx, "port 0 is no address to connect to");
            None
        }
        Some(addr) => Some(UpstreamAddr::Tcp(addr)),
        None => {
            let message = format!("\"{text}\" is not host:port (or unix:/path) that resolves");
            item.invalid(ctx, message);
            None
        }
    }
}
