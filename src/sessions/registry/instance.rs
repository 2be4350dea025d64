//! A session's backend: a one-instance pool made from its template's `instance`, `{id}`, `{key}` and
//! `{port}` substituted, with the session's variables in its environment and the [`SessionTag`] that
//! makes the supervisor and the request threads treat it as a session's.

use std::sync::Arc;

use crate::config::pools::{Health, PoolConfig, Scaling, Strategy, Wake};
use crate::config::sessions::{SessionTag, SessionTemplate, Unhealthy};
use crate::config::{BackendConfig, BackendKind, DockerSpec, LocalSpec};
use crate::upstream::instance::InstanceSpec;
use crate::upstream::BackendId;

/// What one session puts into its template's instance.
#[derive(Debug)]
pub(super) struct Made<'a> {
    pub id: &'a str,
    pub key: &'a str,
    /// The host port on 127.0.0.1.
    pub port: u16,
    /// The backend secret, as text (`SPAWNGATE_SESSION_SECRET`).
    pub secret: &'a str,
    /// Unix seconds of the lifetime's end.
    pub deadline_unix_secs: Option<u64>,
    /// The session's public URL, without a token.
    pub public_url: &'a str,
    /// The connect's variables (already checked against `allow_env`).
    pub env: &'a [(String, String)],
    /// The backend this one's start waits for.
    pub after: Option<BackendId>,
}

/// The session's `BackendConfig`.
pub(super) fn backend_config(template: &SessionTemplate, made: &Made<'_>) -> BackendConfig {
    let written = &template.instance;
    let sub = |text: &str| substitute(text, made);
    let kind = match &written.kind {
        BackendKind::Local(spec) => BackendKind::Local(LocalSpec {
            command: sub(&spec.command),
            args: spec.args.iter().map(|a| sub(a)).collect(),
            working_dir: spec.working_dir.clone(),
        }),
        BackendKind::Docker(spec) => BackendKind::Docker(DockerSpec {
            container_name: container_name(&spec.container_name, made),
            args: spec.args.iter().map(|a| sub(a)).collect(),
            ..spec.clone()
        }),
        BackendKind::External => BackendKind::External,
    };
    let mut env: Vec<(String, String)> = written
        .env
        .iter()
        .map(|(name, value)| (name.clone(), sub(value)))
        .collect();
    // The caller's values are data: no placeholders are substituted in them.
    for (name, value) in made.env {
        set(&mut env, name, value.clone());
    }
    set(&mut env, "SPAWNGATE_SESSION_ID", made.id.to_string());
    set(&mut env, "SPAWNGATE_SESSION_KEY", made.key.to_string());
    set(
        &mut env,
        "SPAWNGATE_SESSION_SECRET",
        made.secret.to_string(),
    );
    let deadline = made
        .deadline_unix_secs
        .map_or_else(String::new, |secs| secs.to_string());
    set(&mut env, "SPAWNGATE_SESSION_DEADLINE", deadline);
    set(
        &mut env,
        "SPAWNGATE_PUBLIC_URL",
        made.public_url.to_string(),
    );
    // A container listens on its own port, which Docker publishes at the host port; a process listens
    // on the host port itself.
    let listens_on = match kind {
        BackendKind::Docker(_) => written.port,
        _ => made.port,
    };
    let instance = InstanceSpec {
        port: listens_on,
        kind: kind.clone(),
        env: env.clone(),
        ..InstanceSpec::on_loopback(0, made.port)
    };
    let timings = written.timings.clone();
    let pool = PoolConfig {
        instances: vec![instance],
        strategy: Strategy::First,
        sticky: None,
        scaling: Scaling {
            min_running: 0,
            max_running: 1,
            target_in_flight: None,
            max_in_flight: None,
            queue_timeout: timings.startup_timeout,
            scale_down_delay: std::time::Duration::ZERO,
            wake: Wake::One,
            always_on: false,
            start_after: Vec::new(),
            rolling: false,
        },
        health: Health::Http,
    };
    BackendConfig {
        hostname: format!("session/{}", made.id),
        port: made.port,
        kind,
        env,
        timings,
        pool: Some(Arc::new(pool)),
        session: Some(Arc::new(SessionTag {
            id: made.id.into(),
            template: template.name.as_str().into(),
            restart_unhealthy: template.unhealthy == Unhealthy::Restart,
            after: made.after,
        })),
    }
}

/// `text` with `{id}`, `{key}` and `{port}` replaced, in one pass, so a key that itself contains a
/// placeholder is not substituted again. Other braces stay as written.
pub(super) fn substitute(text: &str, made: &Made<'_>) -> String {
    let port = made.port.to_string();
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let (value, len) = if after.starts_with("{id}") {
            (made.id, 4)
        } else if after.starts_with("{key}") {
            (made.key, 5)
        } else if after.starts_with("{port}") {
            (port.as_str(), 6)
        } else {
            ("{", 1)
        };
        out.push_str(value);
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// The container's name: two sessions' containers can never share one, so a name the template wrote
/// without a placeholder gets the session id appended; characters Docker refuses (a key may hold them)
/// become '-'.
fn container_name(written: &str, made: &Made<'_>) -> String {
    let mut name = substitute(written, made);
    if name == written {
        name = format!("{written}-{}", made.id);
    }
    let name: String = name
        .chars()
        .map(|c| match c {
            c if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') => c,
            _ => '-',
        })
        .collect();
    // Docker wants a letter or digit first.
    match name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        true => name,
        false => format!("session{name}"),
    }
}

/// Sets `name` to `value`, replacing an earlier value of that name.
fn set(env: &mut Vec<(String, String)>, name: &str, value: String) {
    match env.iter_mut().find(|(n, _)| n == name) {
        Some(entry) => entry.1 = value,
        None => env.push((name.to_string(), value)),
    }
}
