//! Reading `[pools]` as a whole: each pool's name, then its keys (balancing, scaling, timings, instances),
//! then the checks across pools.

use std::collections::HashSet;
use std::sync::Arc;

use super::balancing::{read_health, read_sticky, read_strategy};
use super::checks::{check_addresses, check_start_after};
use super::instances::{expand, read_template};
use super::scaling::ScalingKeys;
use super::PoolConfig;
use crate::config::reader::{Ctx, Item, Section};
use crate::config::{timings, BackendConfig, BackendKind, ServerConfig, Timings};

/// Most instances in one pool: each is probed and balanced over in O(instances) per request.
const MAX_INSTANCES: u64 = 64;

/// Reads every pool, sorted by name. `taken` are the names `[backends]` already holds (a pool may not
/// reuse one), and their instances' addresses (a pool's may not collide with them).
pub(in crate::config) fn read_all(
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
    let sticky = section.take("sticky").map(|s| {
        // The cookie is read and checked, but responses do not set it yet: say so rather than
        // silently balance without affinity.
        ctx.report(&s.key_span, &s.path, "sticky cookies are not supported yet");
        read_sticky(&s, ctx)
    });
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
