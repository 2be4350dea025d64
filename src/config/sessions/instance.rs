//! A template's instance keys, as a `[backends]` entry's: `type` (local or Docker) and its keys, `env`,
//! the timing keys of `[defaults]`, and `port` (the container port: required for Docker, refused for a
//! local process, which listens on the port the registry allocates, given as `{port}` and `PORT`).
//!
//! `{id}`, `{key}` and `{port}` may appear in `args`, `env` values and `container_name`, and stay there:
//! the registry substitutes them for each session. Any other `{name}` is refused. A placeholder is
//! `{` letters, digits or '_' `}`, so other braces (`--config={"a":1}`) are left alone.

use toml::de::DeTable;

use crate::config::backend::{
    read_env_reserving, read_local, reject_keys, DOCKER_ONLY, LOCAL_ONLY, PROCESS_ONLY,
};
use crate::config::pools::all_strings;
use crate::config::reader::{join_key, Ctx, Item, Section};
use crate::config::units::{check_container_name, default_container_name};
use crate::config::{docker, timings, BackendConfig, BackendKind, Timings};

/// What the registry substitutes in a session's instance.
const PLACEHOLDERS: [&str; 3] = ["{id}", "{key}", "{port}"];

/// Whether spawngate sets `name` itself in a session's environment (`PORT`, the ready URL, and every
/// `SPAWNGATE_*`: the session's id, key, secret, deadline, public URL, and the pool variables).
pub(super) fn reserved_env(name: &str) -> bool {
    name == "PORT" || name == "SERVERLESS_PROXY_READY_URL" || name.starts_with("SPAWNGATE_")
}

enum KindName {
    Local,
    Docker,
    /// Reported already; kind-specific keys are skipped so one mistake does not cause a dozen errors.
    Invalid,
}

/// The instance of template `name` (whose table is `table`), `[defaults]` merged in; every instance key
/// is taken, whatever is wrong, so only keys nobody knows are left for `finish`.
pub(super) fn read(
    section: &mut Section<'_, '_>,
    table: &DeTable<'_>,
    name: &str,
    defaults: &Timings,
    ctx: &mut Ctx,
) -> Option<BackendConfig> {
    let kind_name = match section.take("type") {
        None => KindName::Local,
        Some(kind) => match kind.as_str(ctx) {
            Some("local") => KindName::Local,
            Some("docker") => KindName::Docker,
            Some(other) => {
                let message = format!("must be \"local\" or \"docker\", found \"{other}\"");
                kind.invalid(ctx, message);
                KindName::Invalid
            }
            None => KindName::Invalid,
        },
    };
    let port = match (&kind_name, section.take("port")) {
        (KindName::Docker, Some(port)) => port.uint_in(ctx, 1, 65_535).map(|p| p as u16),
        (KindName::Docker, None) => {
            let key = join_key(section.path(), "port");
            let message = "required key is missing: the port the container listens on";
            ctx.report(&section.span(), &key, message);
            None
        }
        (KindName::Local, Some(port)) => {
            let message = "a local session listens on the port the proxy allocates from \
                           host_ports ({port}, and PORT in its environment); leave port out";
            ctx.report(&port.key_span, &port.path, message);
            None
        }
        (_, _) => Some(0),
    };
    let env = match section.take("env") {
        Some(env) => read_env_reserving(&env, ctx, reserved_env, "every session"),
        None => Some(Vec::new()),
    };
    if matches!(kind_name, KindName::Docker) {
        // Taken before the timings are read, so `[defaults]` values still apply to local sessions only.
        for key in PROCESS_ONLY {
            if let Some(item) = section.take(key) {
                let message = "applies to local processes only (type = \"local\")";
                ctx.report(&item.key_span, &item.path, message);
            }
        }
    }
    let mut timings = timings::read(section, ctx, defaults);
    let kind = match kind_name {
        KindName::Local => {
            reject_keys(section, ctx, DOCKER_ONLY, "docker");
            read_local(section, ctx).map(BackendKind::Local)
        }
        KindName::Docker => {
            // A `[defaults]` value that turns them on means "for every local backend".
            timings.socket_activation = false;
            timings.watchdog = None;
            reject_keys(section, ctx, LOCAL_ONLY, "local");
            read_docker(section, table, name, ctx)
        }
        KindName::Invalid => {
            for key in LOCAL_ONLY.iter().chain(DOCKER_ONLY).chain(&["args"]) {
                section.take(key);
            }
            None
        }
    };
    let placeholders_ok = check_placeholders(section, ctx);
    Some(BackendConfig {
        hostname: name.to_string(),
        port: port?,
        kind: kind?,
        env: env.filter(|_| placeholders_ok)?,
        timings,
        pool: None,
        session: None,
    })
}

/// The Docker keys. `docker::read` checks a `container_name` as written, but here it holds
/// placeholders: it reads the table without it, and the name is checked here with them filled in.
fn read_docker(
    section: &mut Section<'_, '_>,
    table: &DeTable<'_>,
    name: &str,
    ctx: &mut Ctx,
) -> Option<BackendKind> {
    let mut rest = table.clone();
    rest.remove("container_name");
    let mut docker_keys = Section::new(section.path().to_string(), section.span(), &rest);
    let spec = docker::read(&mut docker_keys, ctx, name);
    for key in DOCKER_ONLY.iter().chain(&["args"]) {
        section.take(key);
    }
    let container_name = match section.take("container_name") {
        // Template names are `[a-z0-9_-]`, which Docker takes as they are.
        None => Some(format!("{}-{{id}}", default_container_name(name))),
        Some(item) => container_name(&item, ctx),
    };
    let (mut spec, _) = spec?;
    spec.container_name = container_name?;
    Some(BackendKind::Docker(spec))
}

/// An explicit `container_name`: one per session (Docker names are unique), so it names the session
/// by `{id}`, `{key}` (one session per key at a time) or `{port}` (one per port); checked against
/// Docker's rule with each placeholder as a plain word.
fn container_name(item: &Item<'_, '_>, ctx: &mut Ctx) -> Option<String> {
    let text = item.text(ctx)?;
    if placeholders(text).any(|p| !PLACEHOLDERS.contains(&p)) {
        // `check_placeholders` reports it; the name is not Docker's to judge yet.
        return None;
    }
    if !PLACEHOLDERS.iter().any(|p| text.contains(p)) {
        let message =
            "needs {id}, {key} or {port}: each session runs its own container, and Docker \
                       names are unique";
        item.invalid(ctx, message);
        return None;
    }
    let sample = PLACEHOLDERS
        .iter()
        .fold(text.to_string(), |name, p| name.replace(p, "x0"));
    match check_container_name(&sample) {
        Ok(()) => Some(text.to_string()),
        Err(message) => {
            item.invalid(ctx, message);
            None
        }
    }
}

/// Reports every placeholder the registry does not substitute in `args`, `env` values and
/// `container_name`; whether there was none.
fn check_placeholders(section: &mut Section<'_, '_>, ctx: &mut Ctx) -> bool {
    let mut ok = true;
    for key in ["args", "env", "container_name"] {
        let Some(item) = section.take(key) else {
            continue;
        };
        ok &= all_strings(item.value, &item.path, &mut |text, span, path| {
            let Some(unknown) = placeholders(text).find(|p| !PLACEHOLDERS.contains(p)) else {
                return true;
            };
            let message = format!(
                "unknown placeholder {unknown}: a session's instance may use {{id}}, {{key}} and \
                 {{port}}"
            );
            ctx.report(span, path, message);
            false
        });
    }
    ok
}

/// Every `{name}` in `text`, braces included: a name is ASCII letters, digits and '_'.
fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    text.match_indices('{').filter_map(move |(open, _)| {
        let rest = &text[open + 1..];
        let len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
        (len > 0 && rest[len..].starts_with('}')).then(|| &text[open..open + len + 2])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_names_in_braces() {
        let found: Vec<&str> = placeholders("{id}-{ port}{x_1}{}{\"a\":1}{key").collect();
        assert_eq!(found, ["{id}", "{x_1}"]);
    }

    #[test]
    fn reserved_variables() {
        for name in [
            "PORT",
            "SERVERLESS_PROXY_READY_URL",
            "SPAWNGATE_SESSION_ID",
            "SPAWNGATE_",
        ] {
            assert!(reserved_env(name), "{name}");
        }
        for name in ["port", "PORTS", "MY_SPAWNGATE_X"] {
            assert!(!reserved_env(name), "{name}");
        }
    }
}
