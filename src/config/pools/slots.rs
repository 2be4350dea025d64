//! Each slot of an instance template: the substitutions (`{index}`, `{pool}`, and `{port}` or
//! `{socket}`) and what can only be checked with them made (ports past 65535, replicas sharing a socket
//! or a container name, socket paths too long, container names Docker refuses); and, before that, the
//! placeholder a template cannot use.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use toml::de::DeValue;
use toml::Spanned;

use super::instances::{At, Listen, Template};
use crate::config::reader::{join_key, Ctx, Item, Section};
use crate::config::units::check_container_name;
use crate::config::BackendKind;
use crate::upstream::instance::InstanceSpec;
use crate::upstream::UpstreamAddr;

/// One slot, and where its keys are for the checks across pools.
pub(super) struct Slot {
    pub(super) spec: InstanceSpec,
    pub(super) listen_at: At,
    pub(super) container_name_at: Option<At>,
}

/// Refuses the placeholder that means nothing for an instance listening at a `port` or a `socket`
/// (`listen`), in every key that is substituted; whether none was found.
pub(super) fn check_placeholders(
    section: &mut Section<'_, '_>,
    ctx: &mut Ctx,
    listen: &str,
) -> bool {
    let (refused, why) = match listen {
        "port" => (
            "{socket}",
            "this instance listens on a port, not a unix socket",
        ),
        _ => (
            "{port}",
            "this instance listens on a unix socket: it has no port",
        ),
    };
    let mut ok = true;
    for key in ["args", "env", "container_name", "socket"] {
        if let Some(item) = section.take(key) {
            ok &= refuse(item.value, &item.path, refused, why, ctx);
            if key == "socket" {
                ok &= refuse(
                    item.value,
                    &item.path,
                    "{socket}",
                    "a socket is not its own path",
                    ctx,
                );
            }
        }
    }
    ok
}

/// Reports every string in `value` (at `path`) that holds `placeholder`; whether none did.
fn refuse(
    value: &Spanned<DeValue<'_>>,
    path: &str,
    placeholder: &str,
    why: &str,
    ctx: &mut Ctx,
) -> bool {
    all_strings(value, path, &mut |text, span, path| {
        if !text.contains(placeholder) {
            return true;
        }
        let message = format!("{placeholder} means nothing here: {why}");
        ctx.report(span, path, message);
        false
    })
}

/// Calls `check` with every string in `value` (itself, or in its arrays and tables, at its key path and
/// position); whether every call returned true. Each string is checked, whatever the others gave.
pub(in crate::config) fn all_strings(
    value: &Spanned<DeValue<'_>>,
    path: &str,
    check: &mut impl FnMut(&str, &Range<usize>, &str) -> bool,
) -> bool {
    match value.get_ref() {
        DeValue::String(text) => check(text, &value.span(), path),
        DeValue::Array(array) => array.iter().enumerate().fold(true, |ok, (index, element)| {
            all_strings(element, &format!("{path}[{index}]"), check) && ok
        }),
        DeValue::Table(table) => table.iter().fold(true, |ok, (key, element)| {
            all_strings(element, &join_key(path, key.get_ref()), check) && ok
        }),
        _ => true,
    }
}

impl Template {
    /// The slots of a single instance (`count` 1) or of `replicas = count` (`replicas` the key):
    /// slot `i` listens on `port + i`, or on its own substituted `socket`.
    pub(super) fn replicas(
        &self,
        pool: &str,
        count: u32,
        replicas: Option<&Item<'_, '_>>,
        ctx: &mut Ctx,
    ) -> Option<Vec<Slot>> {
        let (span, path) = &self.listen_at;
        let shared = |text: &str| count > 1 && !text.contains("{index}");
        let problem = match &self.listen {
            Listen::Port(port) if u32::from(*port) + count - 1 > u32::from(u16::MAX) => {
                Some(format!(
                    "replicas = {count} from port {port} would need ports up to {}, past 65535",
                    u32::from(*port) + count - 1
                ))
            }
            Listen::Socket(socket) if shared(socket) => Some(format!(
                "replicas = {count} need {{index}} in socket, or they would all listen on one"
            )),
            _ => None,
        };
        if let Some(message) = problem {
            ctx.report(span, path, message);
            return None;
        }
        if let (Listen::Address(_), Some(replicas)) = (&self.listen, replicas.filter(|_| count > 1))
        {
            let message =
                "an address is one instance run by someone else; list several with [[instances]]";
            ctx.report(&replicas.key_span, &replicas.path, message);
            return None;
        }
        if let (BackendKind::Docker(docker), Some((span, path))) =
            (&self.kind, &self.container_name_at)
        {
            if shared(&docker.container_name) {
                let message = format!(
                    "replicas = {count} need {{index}} in container_name: Docker names are unique"
                );
                ctx.report(span, path, message);
                return None;
            }
        }
        (0..count)
            .map(|i| self.slot(pool, i, i as u16, ctx))
            .collect()
    }

    /// Slot `index` of `pool` (an `[[instances]]` entry: at its own `port`).
    pub(super) fn entry(&self, pool: &str, index: u32, ctx: &mut Ctx) -> Option<Slot> {
        self.slot(pool, index, 0, ctx)
    }

    /// Slot `index`, `offset` ports above the template's `port`, substitutions made and checked.
    fn slot(&self, pool: &str, index: u32, offset: u16, ctx: &mut Ctx) -> Option<Slot> {
        let slot = index.to_string();
        let (addr, port, socket) = match &self.listen {
            Listen::Port(base) => {
                let port = base + offset;
                (
                    InstanceSpec::on_loopback(index, port).addr,
                    port,
                    String::new(),
                )
            }
            Listen::Socket(path) => {
                let path = path.replace("{index}", &slot).replace("{pool}", pool);
                if nix::sys::socket::UnixAddr::new(path.as_str()).is_err() {
                    let (span, key) = &self.listen_at;
                    ctx.report(
                        span,
                        key,
                        format!("\"{path}\" is too long for a unix socket"),
                    );
                    return None;
                }
                (UpstreamAddr::Unix(Arc::new(PathBuf::from(&path))), 0, path)
            }
            Listen::Address(addr) => (addr.clone(), 0, String::new()),
        };
        let sub = |text: &str| {
            text.replace("{index}", &slot)
                .replace("{port}", &port.to_string())
                .replace("{socket}", &socket)
                .replace("{pool}", pool)
        };
        let kind = match &self.kind {
            BackendKind::Local(local) => {
                let mut local = local.clone();
                local.args = local.args.iter().map(|a| sub(a)).collect();
                BackendKind::Local(local)
            }
            BackendKind::Docker(docker) => {
                let mut docker = docker.clone();
                docker.args = docker.args.iter().map(|a| sub(a)).collect();
                docker.container_name = sub(&docker.container_name);
                if let Err(message) = check_container_name(&docker.container_name) {
                    let (span, key) = self.container_name_at.as_ref().unwrap_or(&self.listen_at);
                    let message = format!("\"{}\": {message}", docker.container_name);
                    ctx.report(span, key, message);
                    return None;
                }
                BackendKind::Docker(docker)
            }
            BackendKind::External => BackendKind::External,
        };
        let spec = InstanceSpec {
            index,
            addr,
            port,
            kind,
            env: self.env.iter().map(|(k, v)| (k.clone(), sub(v))).collect(),
            weight: self.weight,
            name: self.name.as_ref().map(|(name, _)| name.clone()),
        };
        Some(Slot {
            spec,
            listen_at: self.listen_at.clone(),
            container_name_at: self.container_name_at.clone(),
        })
    }
}
