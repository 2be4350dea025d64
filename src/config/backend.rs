//! `[backends."host"]`: one table per Host, local process or Docker container, `[defaults]` merged in.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::PathBuf;

use toml::de::DeValue;

use super::reader::{article, Ctx, Item, Section};
use super::server::binds_overlap;
use super::units::normalize_hostname;
use super::{docker, timings, BackendConfig, BackendKind, LocalSpec, ServerConfig, Timings};
use crate::upstream::instance::instances_of;
use crate::upstream::UpstreamAddr;

/// Keys only a `type = "local"` backend may have.
pub(super) const LOCAL_ONLY: &[&str] = &["command", "working_dir"];
/// Keys only a `type = "docker"` backend may have.
pub(super) const DOCKER_ONLY: &[&str] = &[
    "image",
    "container_name",
    "pull_policy",
    "memory",
    "cpus",
    "network",
    "docker_host",
];
/// Keys that only mean something for a process the supervisor spawns itself: a container gets neither an
/// inherited socket nor a `NOTIFY_SOCKET`.
pub(super) const PROCESS_ONLY: &[&str] = &["socket_activation", "watchdog_secs"];
/// Variables spawngate sets itself for every backend.
const RESERVED_ENV: &[&str] = &[
    "PORT",
    "SERVERLESS_PROXY_READY_URL",
    "SPAWNGATE_SOCKET",
    "SPAWNGATE_POOL",
    "SPAWNGATE_INSTANCE",
];

/// A backend read from the file, with the positions cross-backend checks point at.
struct Parsed {
    config: BackendConfig,
    port_span: Range<usize>,
    port_path: String,
    /// Where to point at when the container name clashes: the `container_name` key, or the backend's
    /// own key when the name is the default.
    container_name_at: (Range<usize>, String),
}

/// Reads every backend, sorted by hostname. Problems, including clashes between backends (same host,
/// port or container name), go to `ctx`.
pub(super) fn read_all(
    backends: Option<Section<'_, '_>>,
    defaults: &Timings,
    server: &ServerConfig,
    ctx: &mut Ctx,
) -> Vec<BackendConfig> {
    let Some(mut backends) = backends else {
        return Vec::new();
    };
    let mut parsed: Vec<Parsed> = Vec::new();
    let mut hosts: HashMap<String, usize> = HashMap::new();
    for item in backends.take_all() {
        // A backend with a bad or repeated hostname is still checked, so all its problems show at once.
        let usable_host = match normalize_hostname(item.name) {
            Ok(host) => match hosts.get(&host) {
                Some(first_line) => {
                    let message = format!(
                        "same host as the backend on line {first_line} (hostnames are case-insensitive)"
                    );
                    ctx.report(&item.key_span, &item.path, message);
                    None
                }
                None => {
                    hosts.insert(host.clone(), ctx.line_of(item.key_span.start));
                    Some(host)
                }
            },
            Err(message) => {
                ctx.report(&item.key_span, &item.path, message);
                None
            }
        };
        let hostname = usable_host
            .clone()
            .unwrap_or_else(|| item.name.to_ascii_lowercase());
        let backend = read_one(&item, hostname, defaults, ctx);
        if let (Some(backend), Some(_)) = (backend, usable_host) {
            parsed.push(backend);
        }
    }
    check_clashes(&parsed, server, ctx);
    let mut out: Vec<BackendConfig> = parsed.into_iter().map(|p| p.config).collect();
    out.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    out
}

/// Two instances (or one and the proxy) cannot listen at one address, and Docker cannot run two containers
/// with one name. The addresses are the instance model's: nothing here assumes where a backend listens.
fn check_clashes(parsed: &[Parsed], server: &ServerConfig, ctx: &mut Ctx) {
    let mut taken: HashMap<SocketAddr, &str> = HashMap::new();
    let mut names: HashMap<&str, &str> = HashMap::new();
    for backend in parsed {
        let host = backend.config.hostname.as_str();
        for spec in instances_of(&backend.config) {
            // A unix socket shares no port with anything.
            let UpstreamAddr::Tcp(addr) = spec.addr else {
                continue;
            };
            let port = addr.port();
            let message = if port == server.port && binds_overlap(server.bind, addr.ip()) {
                format!("port {port} is the proxy's own port ([server] port)")
            } else if port == server.admin_port && binds_overlap(server.admin_bind, addr.ip()) {
                format!("port {port} is the admin port ([server] admin_port)")
            } else if let Some(other) = taken.insert(addr, host) {
                format!("port {port} is already used by backend \"{other}\"")
            } else {
                continue;
            };
            ctx.report(&backend.port_span, &backend.port_path, message);
        }
        if let BackendKind::Docker(spec) = &backend.config.kind {
            if let Some(other) = names.insert(spec.container_name.as_str(), host) {
                let (span, path) = &backend.container_name_at;
                let message = format!(
                    "container name \"{}\" is already used by backend \"{other}\"",
                    spec.container_name
                );
                ctx.report(span, path, message);
            }
        }
    }
}

enum KindName {
    Local,
    Docker,
    /// Reported already; kind-specific keys are skipped so one mistake does not cause a dozen errors.
    Invalid,
}

fn read_one(
    item: &Item<'_, '_>,
    hostname: String,
    defaults: &Timings,
    ctx: &mut Ctx,
) -> Option<Parsed> {
    let mut section = item.section(ctx)?;
    let kind_name = match section.take("type") {
        None => KindName::Local,
        Some(kind) => match kind.as_str(ctx) {
            Some("local") => KindName::Local,
            Some("docker") => KindName::Docker,
            Some(other) => {
                kind.invalid(
                    ctx,
                    format!("must be \"local\" or \"docker\", found \"{other}\""),
                );
                KindName::Invalid
            }
            None => KindName::Invalid,
        },
    };
    let port_item = section.require(ctx, "port");
    let port = port_item.as_ref().and_then(|p| p.uint_in(ctx, 1, 65_535));
    let env = match section.take("env") {
        Some(env) => read_env(&env, ctx),
        None => Some(Vec::new()),
    };
    if matches!(kind_name, KindName::Docker) {
        // Taken before the timings are read, so `[defaults]` values still apply to local backends only.
        for key in PROCESS_ONLY {
            if let Some(item) = section.take(key) {
                let message = "applies to local processes only (type = \"local\")".to_string();
                ctx.report(&item.key_span, &item.path, message);
            }
        }
    }
    let mut timings = timings::read(&mut section, ctx, defaults);
    if matches!(kind_name, KindName::Docker) {
        // A `[defaults]` value that turns them on means "for every local backend".
        timings.socket_activation = false;
        timings.watchdog = None;
    }
    let mut container_name_at = (item.key_span.clone(), item.path.clone());
    let kind = match kind_name {
        KindName::Local => {
            reject_keys(&mut section, ctx, DOCKER_ONLY, "docker");
            read_local(&mut section, ctx).map(BackendKind::Local)
        }
        KindName::Docker => {
            reject_keys(&mut section, ctx, LOCAL_ONLY, "local");
            let spec = docker::read(&mut section, ctx, &hostname);
            if let Some((_, Some(explicit))) = &spec {
                container_name_at = explicit.clone();
            }
            spec.map(|(spec, _)| BackendKind::Docker(spec))
        }
        KindName::Invalid => {
            for key in LOCAL_ONLY.iter().chain(DOCKER_ONLY).chain(&["args"]) {
                section.take(key);
            }
            None
        }
    };
    section.finish(ctx);
    let port_item = port_item?;
    Some(Parsed {
        config: BackendConfig {
            hostname,
            port: u16::try_from(port?).ok()?,
            kind: kind?,
            env: env?,
            timings,
            pool: None,
            session: None,
        },
        port_span: port_item.span(),
        port_path: port_item.path.clone(),
        container_name_at,
    })
}

pub(super) fn reject_keys(
    section: &mut Section<'_, '_>,
    ctx: &mut Ctx,
    keys: &[&'static str],
    kind: &str,
) {
    for key in keys {
        if let Some(item) = section.take(key) {
            let message = format!("only valid for type = \"{kind}\" backends");
            ctx.report(&item.key_span, &item.path, message);
        }
    }
}

pub(super) fn read_local(section: &mut Section<'_, '_>, ctx: &mut Ctx) -> Option<LocalSpec> {
    let command = section
        .require(ctx, "command")
        .and_then(|c| c.text(ctx).map(String::from));
    let args = optional_list(section, ctx, "args");
    let working_dir = match section.take("working_dir") {
        Some(dir) => Some(Some(PathBuf::from(dir.text(ctx)?))),
        None => Some(None),
    };
    Some(LocalSpec {
        command: command?,
        args: args?,
        working_dir: working_dir?,
    })
}

pub(super) fn optional_list(
    section: &mut Section<'_, '_>,
    ctx: &mut Ctx,
    key: &'static str,
) -> Option<Vec<String>> {
    match section.take(key) {
        Some(item) => item.string_list(ctx),
        None => Some(Vec::new()),
    }
}

/// The `env` table, in file order. Names must be usable as environment variables, values must be strings.
pub(super) fn read_env(item: &Item<'_, '_>, ctx: &mut Ctx) -> Option<Vec<(String, String)>> {
    read_env_reserving(
        item,
        ctx,
        |name| RESERVED_ENV.contains(&name),
        "every backend",
    )
}

/// [`read_env`] for instances that spawngate gives more variables than a backend's: `reserved` names
/// the ones it sets itself, for `whom` (in the message).
pub(super) fn read_env_reserving(
    item: &Item<'_, '_>,
    ctx: &mut Ctx,
    reserved: impl Fn(&str) -> bool,
    whom: &str,
) -> Option<Vec<(String, String)>> {
    let mut table = item.section(ctx)?;
    let mut out = Vec::new();
    let mut ok = true;
    for var in table.take_all() {
        let name_problem = if var.name.is_empty() {
            Some("variable name must not be empty".to_string())
        } else if var.name.contains(['=', '\0']) {
            Some("variable name must not contain '=' or NUL".to_string())
        } else if reserved(var.name) {
            Some(format!("{} is set by spawngate for {whom}", var.name))
        } else {
            None
        };
        if let Some(message) = name_problem {
            ctx.report(&var.key_span, &var.path, message);
            ok = false;
            continue;
        }
        let value = match var.value.get_ref() {
            DeValue::String(value) => value.as_ref(),
            other => {
                let message = format!(
                    "must be a string (quote it), found {}",
                    article(other.type_str())
                );
                var.invalid(ctx, message);
                ok = false;
                continue;
            }
        };
        if value.contains('\0') {
            var.invalid(ctx, "must not contain a NUL character");
            ok = false;
            continue;
        }
        out.push((var.name.to_string(), value.to_string()));
    }
    table.finish(ctx);
    ok.then_some(out)
}
