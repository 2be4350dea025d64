//! Reading `[pools.NAME]` (the types are in `pools.rs`). A pool's instances come in one of three forms:
//! the instance keys directly in the pool (one instance), the same with `replicas = N` (N instances,
//! `{index}`, `{port}` and `{socket}` substituted), or `[[pools.NAME.instances]]` (one per entry, with an
//! optional `name` and `weight`). An instance listens at a `port` on loopback, on a unix `socket`, or is
//! an `address` someone else runs.

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::backend::{read_env, read_local, reject_keys, DOCKER_ONLY, LOCAL_ONLY, PROCESS_ONLY};
use super::pools::{HashOn, HashOver, Health, PoolConfig, Scaling, Sticky, Strategy, Wake};
use super::reader::{Ctx, Item, Section};
use super::server::binds_overlap;
use super::units::default_container_name;
use super::{docker, timings, BackendConfig, BackendKind, ServerConfig, Timings};
use crate::upstream::instance::InstanceSpec;
use crate::upstream::UpstreamAddr;

/// Most instances in one pool: each is probed and balanced over in O(instances) per request.
const MAX_INSTANCES: u64 = 64;
/// `queue_timeout_secs`: 1 s to 1 hour.
const QUEUE_TIMEOUT_SECS: (u64, u64) = (1, 3_600);
const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

/// An instance as written, before its slot's substitutions.
struct Template {
    kind: BackendKind,
    listen: Listen,
    env: Vec<(String, String)>,
    weight: u16,
    name: Option<String>,
}

enum Listen {
    Port(u16),
    Socket(String),
    Address(UpstreamAddr),
}

/// Reads every pool, sorted by name. `taken` are the names `[backends]` already holds (a pool may not
/// reuse one), and their instances' addresses (a pool's may not collide with them).
pub(super) fn read_all(
    pools: Option<Section<'_, '_>>,
    defaults: &Timings,
    server: &ServerConfig,
    backends: &[BackendConfig],
    ctx: &mut Ctx,
) -> Vec<BackendConfig> {
    let Some(mut pools) = pools else {
        return Vec::new();
    };
    let mut out: Vec<(BackendConfig, Item)> = Vec::new();
    for item in pools.take_all() {
        if let Err(message) = check_name(item.name) {
            ctx.report(&item.key_span, &item.path, message);
            continue;
        }
        if backends.iter().any(|b| b.hostname == item.name) {
            let message = format!("\"{}\" is already a [backends] entry", item.name);
            ctx.report(&item.key_span, &item.path, message);
            continue;
        }
        if let Some(pool) = read_one(&item, defaults, ctx) {
            out.push((pool, item));
        }
    }
    check_addresses(&out, backends, server, ctx);
    check_start_after(&out, ctx);
    let mut out: Vec<BackendConfig> = out.into_iter().map(|(pool, _)| pool).collect();
    out.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    out
}

/// Pool names are `[a-z0-9_-]{1,63}`: never a Host (no '.'), safe in a URL path and a container name.
fn check_name(name: &str) -> Result<(), String> {
    let ok = (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    match ok {
        true => Ok(()),
        false => Err("a pool name is 1 to 63 of a-z, 0-9, '_' and '-'".to_string()),
    }
}

fn read_one(item: &Item<'_, '_>, defaults: &Timings, ctx: &mut Ctx) -> Option<BackendConfig> {
    let name = item.name;
    let mut section = item.section(ctx)?;
    let strategy = read_strategy(&mut section, ctx);
    let sticky = section.take("sticky").map(|s| read_sticky(&s, ctx));
    let health = read_health(&mut section, ctx);
    let scaling_keys = ScalingKeys::take(&mut section, ctx);
    let mut timings = timings::read(&mut section, ctx, defaults);
    let replicas = section
        .take("replicas")
        .map(|r| r.uint_in(ctx, 1, MAX_INSTANCES));
    let instances = match section.take("instances") {
        Some(list) => {
            if let Some(Some(_)) = replicas {
                let message = "replicas and [[instances]] cannot be combined";
                ctx.report(&list.key_span, &list.path, message);
            }
            let tables = list.tables(ctx)?;
            if tables.is_empty() || tables.len() as u64 > MAX_INSTANCES {
                let message = format!("a pool has 1 to {MAX_INSTANCES} instances");
                ctx.report(&list.key_span, &list.path, message);
                return None;
            }
            let mut specs = Vec::new();
            let mut names = HashSet::new();
            for (index, mut table) in tables.into_iter().enumerate() {
                let template = read_template(&mut table, ctx, name, true);
                table.finish(ctx);
                let template = template?;
                if let Some(n) = &template.name {
                    if !names.insert(n.clone()) {
                        let path = format!("{}[{index}].name", list.path);
                        ctx.report(
                            &list.key_span,
                            &path,
                            format!("\"{n}\" names two instances"),
                        );
                    }
                }
                specs.push(expand(&template, name, index as u32));
            }
            specs
        }
        None => {
            let template = read_template(&mut section, ctx, name, false)?;
            let count = match replicas {
                Some(n) => n? as u32,
                None => 1,
            };
            (0..count).map(|i| expand(&template, name, i)).collect()
        }
    };
    section.finish(ctx);
    if !instances
        .iter()
        .any(|i| matches!(i.kind, BackendKind::Local(_)))
    {
        // Only processes the supervisor spawns get an inherited socket or a NOTIFY_SOCKET.
        timings.socket_activation = false;
        timings.watchdog = None;
    }
    let scaling = scaling_keys.finish(instances.len() as u32, ctx)?;
    let first = instances.first()?.clone();
    let pool = PoolConfig {
        instances,
        strategy: strategy?,
        sticky: sticky.flatten(),
        scaling,
        health: health?,
    };
    Some(BackendConfig {
        hostname: name.to_string(),
        port: first.port,
        kind: first.kind,
        env: first.env,
        timings,
        pool: Some(Arc::new(pool)),
    })
}

/// The instance keys of one instance (or of every replica), reported where they are wrong.
fn read_template(
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
fn expand(template: &Template, pool: &str, index: u32) -> InstanceSpec {
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

fn read_strategy(section: &mut Section<'_, '_>, ctx: &mut Ctx) -> Option<Strategy> {
    let strategy = section.take("strategy");
    let hash_on = section.take("hash_on");
    let hash_over = section.take("hash_over");
    let factor = section.take("hash_balance_factor");
    let name = match &strategy {
        Some(item) => item.as_str(ctx)?,
        None => "least_conn",
    };
    let plain = match name {
        "least_conn" => Some(Strategy::LeastConn),
        "round_robin" => Some(Strategy::RoundRobin),
        "weighted" => Some(Strategy::Weighted),
        "p2c" => Some(Strategy::PowerOfTwo),
        "random" => Some(Strategy::Random),
        "first" => Some(Strategy::First),
        "hash" | "ip_hash" => None,
        other => {
            let message = format!(
                "must be one of least_conn, round_robin, weighted, p2c, random, first, ip_hash, hash; found \"{other}\""
            );
            strategy.as_ref()?.invalid(ctx, message);
            return None;
        }
    };
    if let Some(plain) = plain {
        for item in [&hash_on, &hash_over, &factor].into_iter().flatten() {
            ctx.report(&item.key_span, &item.path, "only for strategy = \"hash\"");
        }
        return Some(plain);
    }
    let on = match (name, &hash_on) {
        ("ip_hash", None) => HashOn::Ip,
        ("ip_hash", Some(item)) => {
            item.invalid(ctx, "ip_hash always hashes the client's address");
            return None;
        }
        (_, None) => {
            let message = "strategy = \"hash\" needs hash_on (ip, header:NAME, cookie:NAME, path or query:NAME)";
            let item = strategy.as_ref()?;
            ctx.report(&item.key_span, &item.path, message);
            return None;
        }
        (_, Some(item)) => read_hash_on(item, ctx)?,
    };
    let over = match &hash_over {
        None => HashOver::Ready,
        Some(item) => match item.as_str(ctx)? {
            "ready" => HashOver::Ready,
            "slots" => HashOver::Slots,
            other => {
                item.invalid(
                    ctx,
                    format!("must be \"ready\" or \"slots\", found \"{other}\""),
                );
                return None;
            }
        },
    };
    let balance_factor = match &factor {
        None => None,
        Some(_) if over == HashOver::Slots => {
            let item = factor.as_ref()?;
            item.invalid(ctx, "bounded load needs hash_over = \"ready\"");
            return None;
        }
        Some(item) => Some(item.uint_in(ctx, 101, 1000)? as u16),
    };
    Some(Strategy::Hash {
        on,
        over,
        balance_factor,
    })
}

fn read_hash_on(item: &Item<'_, '_>, ctx: &mut Ctx) -> Option<HashOn> {
    let text = item.as_str(ctx)?;
    let named = |prefix: &str| {
        text.strip_prefix(prefix)
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_graphic() && b != b';'))
    };
    let on = match text {
        "ip" => Some(HashOn::Ip),
        "path" => Some(HashOn::Path),
        _ => {
            if let Some(n) = named("header:") {
                Some(HashOn::Header(n.to_ascii_lowercase().into()))
            } else if let Some(n) = named("cookie:") {
                Some(HashOn::Cookie(n.into()))
            } else {
                named("query:").map(|n| HashOn::Query(n.into()))
            }
        }
    };
    if on.is_none() {
        let message =
            format!("must be ip, path, header:NAME, cookie:NAME or query:NAME; found \"{text}\"");
        item.invalid(ctx, message);
    }
    on
}

fn read_sticky(item: &Item<'_, '_>, ctx: &mut Ctx) -> Option<Sticky> {
    let mut table = item.section(ctx)?;
    let cookie = table.require(ctx, "cookie").and_then(|c| {
        let text = c.text(ctx)?;
        let ok = !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
        if !ok {
            c.invalid(ctx, "a cookie name is letters, digits, '_', '-' and '.'");
        }
        ok.then(|| Box::from(text))
    });
    let max_age_secs = match table.take("max_age_secs") {
        Some(age) => age.uint_in(ctx, 0, 400 * timings::SECS_PER_DAY),
        None => Some(0),
    };
    table.finish(ctx);
    Some(Sticky {
        cookie: cookie?,
        max_age_secs: max_age_secs?,
    })
}

fn read_health(section: &mut Section<'_, '_>, ctx: &mut Ctx) -> Option<Health> {
    let Some(item) = section.take("health") else {
        return Some(Health::Http);
    };
    match item.as_str(ctx)? {
        "http" => Some(Health::Http),
        "tcp" | "process" => {
            item.invalid(ctx, "only health = \"http\" is supported yet");
            None
        }
        other => {
            item.invalid(
                ctx,
                format!("must be \"http\", \"tcp\" or \"process\", found \"{other}\""),
            );
            None
        }
    }
}

/// The scaling keys, taken early (so the timings reader does not see them) and checked once the number
/// of instances is known.
struct ScalingKeys<'t, 'i> {
    min_running: Option<Item<'t, 'i>>,
    max_running: Option<Item<'t, 'i>>,
    target: Option<Option<u64>>,
    max_in_flight: Option<Item<'t, 'i>>,
    queue_timeout: Option<Option<u64>>,
    wake: Option<Option<Wake>>,
    always_on: Option<Option<bool>>,
    start_after: Option<Option<Vec<String>>>,
}

impl<'t, 'i> ScalingKeys<'t, 'i> {
    fn take(section: &mut Section<'t, 'i>, ctx: &mut Ctx) -> Self {
        ScalingKeys {
            min_running: section.take("min_running"),
            max_running: section.take("max_running"),
            target: section
                .take("target_in_flight")
                .map(|t| t.uint_in(ctx, 1, 1_000_000)),
            max_in_flight: section.take("max_in_flight"),
            queue_timeout: section
                .take("queue_timeout_secs")
                .map(|t| t.uint_in(ctx, QUEUE_TIMEOUT_SECS.0, QUEUE_TIMEOUT_SECS.1)),
            wake: section.take("wake").map(|w| match w.as_str(ctx)? {
                "one" => Some(Wake::One),
                "all" => Some(Wake::All),
                other => {
                    w.invalid(
                        ctx,
                        format!("must be \"one\" or \"all\", found \"{other}\""),
                    );
                    None
                }
            }),
            always_on: section.take("always_on").map(|a| a.as_bool(ctx)),
            start_after: section.take("start_after").map(|s| s.string_list(ctx)),
        }
    }

    fn finish(self, count: u32, ctx: &mut Ctx) -> Option<Scaling> {
        let always_on = self.always_on.unwrap_or(Some(false))?;
        let mut min_running = match &self.min_running {
            Some(item) => item.uint_in(ctx, 0, u64::from(count))? as u32,
            None => 0,
        };
        let mut max_running = match &self.max_running {
            Some(item) => item.uint_in(ctx, 1, u64::from(count))? as u32,
            None => count,
        };
        if always_on {
            for item in [&self.min_running, &self.max_running].into_iter().flatten() {
                let message = "always_on runs every instance; leave it out";
                ctx.report(&item.key_span, &item.path, message);
            }
            min_running = count;
            max_running = count;
        }
        if min_running > max_running {
            if let Some(item) = &self.min_running {
                item.invalid(ctx, format!("is more than max_running ({max_running})"));
            }
            return None;
        }
        let target = self.target.unwrap_or(Some(0))?;
        let target_in_flight = (target > 0).then_some(target as u32);
        let max_in_flight = match &self.max_in_flight {
            Some(item) => {
                let n = item.uint_in(ctx, 1, 1_000_000)? as u32;
                if target_in_flight.is_some_and(|t| t > n) {
                    item.invalid(ctx, "is below target_in_flight");
                    return None;
                }
                Some(n)
            }
            None => None,
        };
        let queue_timeout = match self.queue_timeout {
            Some(secs) => Duration::from_secs(secs?),
            None => DEFAULT_QUEUE_TIMEOUT,
        };
        let start_after = self.start_after.unwrap_or(Some(Vec::new()))?;
        Some(Scaling {
            min_running,
            max_running,
            target_in_flight,
            max_in_flight,
            queue_timeout,
            wake: self.wake.unwrap_or(Some(Wake::One))?,
            always_on,
            start_after,
        })
    }
}

/// No two instances (of pools or `[backends]`) listen at one address, and none at the proxy's own.
fn check_addresses(
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
fn check_start_after(pools: &[(BackendConfig, Item<'_, '_>)], ctx: &mut Ctx) {
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
