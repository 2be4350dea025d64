//! What changed between two configs, for a reload (SIGHUP).

use super::{Config, ServerConfig};

/// The difference between the running config and a newly loaded one.
///
/// A reload applies backend changes only: listeners are not rebound and the rest of `[server]` stays as
/// it was, so `server_changed` lists the keys whose new value needs a restart to take effect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigDiff {
    /// Hostnames only in the new config, sorted.
    pub added: Vec<String>,
    /// Hostnames only in the old config, sorted.
    pub removed: Vec<String>,
    /// Hostnames in both whose settings differ, sorted.
    pub changed: Vec<String>,
    /// `[server]` keys (as written in the file) whose value differs.
    pub server_changed: Vec<&'static str>,
}

impl ConfigDiff {
    /// True when the two configs are equivalent.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.server_changed.is_empty()
    }
}

/// Compares two configs. Both keep their backends sorted by hostname, so one merge pass suffices.
pub fn diff(old: &Config, new: &Config) -> ConfigDiff {
    let mut out = ConfigDiff::default();
    let mut old_backends = old.backends.iter().peekable();
    let mut new_backends = new.backends.iter().peekable();
    loop {
        match (old_backends.peek(), new_backends.peek()) {
            (None, None) => break,
            (Some(before), None) => {
                out.removed.push(before.hostname.clone());
                old_backends.next();
            }
            (None, Some(after)) => {
                out.added.push(after.hostname.clone());
                new_backends.next();
            }
            (Some(before), Some(after)) => match before.hostname.cmp(&after.hostname) {
                std::cmp::Ordering::Less => {
                    out.removed.push(before.hostname.clone());
                    old_backends.next();
                }
                std::cmp::Ordering::Greater => {
                    out.added.push(after.hostname.clone());
                    new_backends.next();
                }
                std::cmp::Ordering::Equal => {
                    if before != after {
                        out.changed.push(after.hostname.clone());
                    }
                    old_backends.next();
                    new_backends.next();
                }
            },
        }
    }
    out.server_changed = server_changes(&old.server, &new.server);
    // The HTTPS listener is bound once, like the others (its certificates do reload).
    let https = |c: &Config| c.tls.as_ref().map(|t| (t.https_port, t.https_bind));
    let (a, b) = (https(old), https(new));
    if a.map(|(port, _)| port) != b.map(|(port, _)| port) {
        out.server_changed.push("https_port");
    }
    if a.map(|(_, bind)| bind) != b.map(|(_, bind)| bind) {
        out.server_changed.push("https_bind");
    }
    out
}

fn server_changes(old: &ServerConfig, new: &ServerConfig) -> Vec<&'static str> {
    let (a, b) = (&old.limits, &new.limits);
    let checks = [
        ("port", old.port != new.port),
        ("bind", old.bind != new.bind),
        ("admin_port", old.admin_port != new.admin_port),
        ("admin_bind", old.admin_bind != new.admin_bind),
        (
            "pool_max_idle_per_host",
            old.pool_max_idle_per_host != new.pool_max_idle_per_host,
        ),
        (
            "pool_idle_timeout_secs",
            old.pool_idle_timeout != new.pool_idle_timeout,
        ),
        ("pid_file", old.pid_file != new.pid_file),
        ("max_connections", a.max_connections != b.max_connections),
        (
            "max_request_body_bytes",
            a.max_request_body_bytes != b.max_request_body_bytes,
        ),
        (
            "header_read_timeout_secs",
            a.header_read_timeout != b.header_read_timeout,
        ),
        (
            "keepalive_timeout_secs",
            a.keepalive_timeout != b.keepalive_timeout,
        ),
        (
            "max_held_requests",
            a.max_held_requests != b.max_held_requests,
        ),
    ];
    checks
        .into_iter()
        .filter(|(_, differs)| *differs)
        .map(|(key, _)| key)
        .collect()
}
