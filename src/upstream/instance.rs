//! The instances a backend's config describes: each one's slot number and the address it listens on. This
//! is the one place a config becomes an address: the supervisor (the port check, `PORT` in the backend's
//! environment, the Docker port publishing, the health probe) and the reports it sends take an instance's
//! address from its [`InstanceSpec`] and derive none of their own.
//!
//! A `[backends."host"]` entry describes exactly one instance today: a local process or a container,
//! reached on loopback at the entry's `port`. Pools (several instances per backend) and session backends
//! (ports allocated at run time) make more specs from one config; everything downstream already takes
//! them one by one.

use std::net::{Ipv4Addr, SocketAddr};

use super::UpstreamAddr;
use crate::config::{BackendConfig, BackendKind};

/// One instance of a backend, as its config describes it: everything its start needs.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSpec {
    /// Its slot in the backend's set of instances (0 for a `[backends]` entry's one instance).
    pub index: u32,
    /// Where the proxy and the health probe reach it.
    pub addr: UpstreamAddr,
    /// The port the program itself is told to listen on (`PORT`): for a local process the port of
    /// `addr`; for a container the container port, which Docker publishes at `addr`. 0 when it listens
    /// on a unix socket (`SPAWNGATE_SOCKET` instead) or is not started by the proxy.
    pub port: u16,
    /// What runs it; `External` is never started.
    pub kind: BackendKind,
    /// Its own `env` table, substitutions made.
    pub env: Vec<(String, String)>,
    /// For `strategy = "weighted"` (1..=1000).
    pub weight: u16,
    /// An explicit instance's `name`, which a reload matches it by.
    pub name: Option<String>,
}

/// The instances of the backend `config` describes, in slot order: a pool's list, or a `[backends]`
/// entry's one instance.
pub fn instances_of(config: &BackendConfig) -> Vec<InstanceSpec> {
    match &config.pool {
        Some(pool) => pool.instances.clone(),
        None => vec![InstanceSpec::first(config)],
    }
}

impl InstanceSpec {
    /// The one instance of a `[backends]` entry (a pool's first, for a pool).
    pub fn first(config: &BackendConfig) -> InstanceSpec {
        if let Some(first) = config.pool.as_ref().and_then(|p| p.instances.first()) {
            return first.clone();
        }
        InstanceSpec {
            kind: config.kind.clone(),
            env: config.env.clone(),
            ..InstanceSpec::on_loopback(0, config.port)
        }
    }

    /// Instance `index` of what `config` runs, on loopback at `port` (a test's second instance).
    #[cfg(test)]
    pub fn of_at(config: &BackendConfig, index: u32, port: u16) -> InstanceSpec {
        InstanceSpec {
            kind: config.kind.clone(),
            env: config.env.clone(),
            ..InstanceSpec::on_loopback(index, port)
        }
    }

    /// Instance `index`, a local process or container reached on loopback at `port` (and told to listen
    /// there). Loopback, because a backend the proxy starts serves only the proxy. Its kind and env are
    /// left for the caller to fill in.
    pub fn on_loopback(index: u32, port: u16) -> InstanceSpec {
        InstanceSpec {
            index,
            addr: UpstreamAddr::Tcp(SocketAddr::from((Ipv4Addr::LOCALHOST, port))),
            port,
            kind: BackendKind::External,
            env: Vec::new(),
            weight: 1,
            name: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::config::{LocalSpec, Timings};

    fn config(port: u16) -> BackendConfig {
        BackendConfig {
            hostname: "app.localhost".into(),
            port,
            kind: BackendKind::Local(LocalSpec {
                command: "true".into(),
                args: Vec::new(),
                working_dir: None,
            }),
            env: Vec::new(),
            timings: Timings {
                idle_timeout: Duration::from_secs(60),
                startup_timeout: Duration::from_secs(30),
                health_check_interval: Duration::from_millis(100),
                health_path: "/health".into(),
                request_timeout: Duration::from_secs(30),
                shutdown_grace_period: Duration::from_secs(10),
                drain_timeout: Duration::from_secs(20),
                ready_health_check_interval: Duration::from_secs(5),
                unhealthy_threshold: 3,
                socket_activation: false,
                server_timing: true,
                watchdog: None,
            },
            pool: None,
            session: None,
        }
    }

    #[test]
    fn a_backend_entry_is_one_instance_on_loopback_at_its_port() {
        let specs = instances_of(&config(3000));
        assert_eq!(
            specs,
            vec![InstanceSpec {
                index: 0,
                addr: UpstreamAddr::Tcp("127.0.0.1:3000".parse().unwrap()),
                port: 3000,
                kind: config(3000).kind,
                env: Vec::new(),
                weight: 1,
                name: None,
            }]
        );
        assert_eq!(specs[0], InstanceSpec::first(&config(3000)));
        assert_eq!(UpstreamAddr::of(&config(3000)), specs[0].addr);
    }

    #[test]
    fn a_changed_port_changes_the_spec() {
        assert_ne!(instances_of(&config(3000)), instances_of(&config(3001)));
    }
}
