//! Reading `[pools]` as a whole: each pool's name, then its keys (balancing, scaling, timings, instances),
//! then the checks across pools.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use toml::de::DeValue;

use super::balancing::{read_health, read_sticky, read_strategy};
use super::instances::{at, instance_keys, read_template, At};
use super::scaling::ScalingKeys;
use super::slots::Slot;
use super::{checks, PoolConfig};
use crate::config::reader::{Ctx, Item, Section};
use crate::config::{timings, BackendConfig, BackendKind, ServerConfig, Timings};

/// Most instances in one pool: each is probed and balanced over in O(instances) per request.
const MAX_INSTANCES: u64 = 64;

/// A pool as read, with the positions the checks across pools point at.
pub(super) struct ReadPool {
    pub(super) config: BackendConfig,
    /// `config.pool`.
    pub(super) pool: Arc<PoolConfig>,
    /// The pool's own key.
    pub(super) at: At,
    /// By slot, as `config`'s instances.
    pub(super) slots: Vec<Slot>,
    pub(super) start_after_at: Option<At>,
}

/// Reads every pool, sorted by name. `backends` are the `[backends]` entries: a pool may not take one's
/// name, nor an address or container name one of theirs has.
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
    let mut read = Vec::new();
    // Every pool named, read or not: a `start_after` naming one that is wrong is no further mistake.
    let mut named = HashSet::new();
    for item in pools.take_all() {
        named.insert(item.name);
        let problem = match check_name(item.name) {
            Err(message) => Some(message),
            Ok(()) if backends.iter().any(|b| b.hostname == item.name) => {
                Some(format!("\"{}\" is already a [backends] entry", item.name))
            }
            Ok(()) => None,
        };
        if let Some(message) = &problem {
            ctx.report(&item.key_span, &item.path, message.as_str());
        }
        // A pool with a bad or taken name is still read, so all its problems show at once.
        if let (Some(pool), None) = (read_one(&item, defaults, ctx), problem) {
            read.push(pool);
        }
    }
    checks::instances(&read, backends, server, ctx);
    checks::start_after(&read, &named, ctx);
    let mut out: Vec<BackendConfig> = read.into_iter().map(|pool| pool.config).collect();
    out.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    out
}

/// Pool names are never a Host (no '.').
fn check_name(name: &str) -> Result<(), String> {
    crate::config::units::check_name(name, "pool")
}

fn read_one(item: &Item<'_, '_>, defaults: &Timings, ctx: &mut Ctx) -> Option<ReadPool> {
    let name = item.name;
    let mut section = item.section(ctx)?;
    let DeValue::Table(table) = item.value.get_ref() else {
        return None;
    };
    let strategy = read_strategy(&mut section, ctx);
    let sticky = read_sticky(&mut section, ctx);
    let health = read_health(&mut section, ctx);
    let scaling = ScalingKeys::take(&mut section, ctx);
    let mut timings = timings::read(&mut section, ctx, defaults);
    let replicas = section.take("replicas");
    let slots = match section.take("instances") {
        Some(list) => {
            if let Some(replicas) = &replicas {
                let message = "replicas and [[instances]] cannot be combined";
                ctx.report(&replicas.key_span, &replicas.path, message);
            }
            for key in instance_keys() {
                if let Some(item) = section.take(key) {
                    let message = "with [[instances]], this belongs in each entry";
                    ctx.report(&item.key_span, &item.path, message);
                }
            }
            read_entries(&list, name, ctx)
        }
        None => {
            let template = read_template(&mut section, table, ctx, name, false);
            let count = match &replicas {
                Some(r) => r.uint_in(ctx, 1, MAX_INSTANCES).map(|n| n as u32),
                None => Some(1),
            };
            template
                .zip(count)
                .and_then(|(t, count)| t.replicas(name, count, replicas.as_ref(), ctx))
        }
    };
    section.finish(ctx);
    let slots = slots?;
    let instances: Vec<_> = slots.iter().map(|slot| slot.spec.clone()).collect();
    if !instances
        .iter()
        .any(|i| matches!(i.kind, BackendKind::Local(_)))
    {
        // Only processes the supervisor spawns get an inherited socket or a NOTIFY_SOCKET.
        timings.socket_activation = false;
        timings.watchdog = None;
    }
    let start_after_at = scaling.start_after_at();
    let scaling = scaling.finish(instances.len() as u32, ctx);
    let first = instances.first()?.clone();
    let pool = Arc::new(PoolConfig {
        instances,
        strategy: strategy?,
        sticky: sticky?,
        scaling: scaling?,
        health: health?,
    });
    let config = BackendConfig {
        hostname: name.to_string(),
        port: first.port,
        kind: first.kind,
        env: first.env,
        timings,
        pool: Some(pool.clone()),
        session: None,
    };
    Some(ReadPool {
        config,
        pool,
        at: at(item),
        slots,
        start_after_at,
    })
}

/// The `[[instances]]` entries, slot = position, each read whole and finished.
fn read_entries(list: &Item<'_, '_>, pool: &str, ctx: &mut Ctx) -> Option<Vec<Slot>> {
    let sections = list.tables(ctx)?;
    // The tables under the sections, in the same order (`tables` keeps only the tables).
    let DeValue::Array(array) = list.value.get_ref() else {
        return None;
    };
    let tables = array.iter().filter_map(|element| match element.get_ref() {
        DeValue::Table(table) => Some(table),
        _ => None,
    });
    let mut ok = true;
    if sections.is_empty() || sections.len() as u64 > MAX_INSTANCES {
        let message = format!("a pool has 1 to {MAX_INSTANCES} instances");
        ctx.report(&list.key_span, &list.path, message);
        ok = false;
    }
    let mut slots = Vec::with_capacity(sections.len());
    let mut names: HashMap<String, usize> = HashMap::new();
    for (index, (mut section, table)) in sections.into_iter().zip(tables).enumerate() {
        let template = read_template(&mut section, table, ctx, pool, true);
        section.finish(ctx);
        let Some(template) = template else {
            ok = false;
            continue;
        };
        if let Some((name, (span, path))) = &template.name {
            match names.get(name) {
                Some(first) => {
                    let message = format!("\"{name}\" already names the instance on line {first}");
                    ctx.report(span, path, message);
                    ok = false;
                }
                None => {
                    names.insert(name.clone(), ctx.line_of(span.start));
                }
            }
        }
        match template.entry(pool, index as u32, ctx) {
            Some(slot) => slots.push(slot),
            None => ok = false,
        }
    }
    ok.then_some(slots)
}
