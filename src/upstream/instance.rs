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
use crate::config::{BackendConfig, DockerSpec};

/// One instance of a backend, as its config describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSpec {
    /// Its slot in the backend's set of instances (0 for a `[backends]` entry's one instance).
    pub index: u32,
    /// Where the proxy and the health probe reach it.
    pub addr: UpstreamAddr,
    /// The port the program itself is told to listen on (`PORT`): for a local process the port of
    /// `addr`; for a container the container port, which Docker publishes at `addr`.
    pub port: u16,
}

/// The instances of the backend `config` describes, in slot order. Exactly one today.
pub fn instances_of(config: &BackendConfig) -> Vec<InstanceSpec> {
    vec![InstanceSpec::first(config)]
}

impl InstanceSpec {
    /// The first instance of a backend: the only one a `[backends]` entry has.
    pub fn first(config: &BackendConfig) -> InstanceSpec {
        InstanceSpec::on_loopback(0, config.port)
    }

    /// Instance `index`, a local process or container reached on loopback at `port` (and told to listen
    /// there). Loopback, because a backend the proxy starts serves only the proxy.
    pub fn on_loopback(index: u32, port: u16) -> InstanceSpec {
        InstanceSpec {
            index,
            addr: UpstreamAddr::Tcp(SocketAddr::from((Ipv4Addr::LOCALHOST, port))),
            port,
        }
    }

    /// The name of this instance's container. The first instance keeps the backend's `container_name`,
    /// so containers and leftover sweeps from before instances existed still match; a later instance
    /// appends its index (`spawngate-app-1`, `spawngate-app-2`, ...). Config validation compares only the
    /// configured names, so a backend with several instances must also be checked against those.
    pub fn container_name(&self, docker: &DockerSpec) -> String {
        match self.index {
            0 => docker.container_name.clone(),
            n => format!("{}-{n}", docker.container_name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::config::{BackendKind, LocalSpec, PullPolicy, Timings};

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
                watchdog: None,
            },
        }
    }

    fn docker() -> DockerSpec {
        DockerSpec {
            image: "app:1".into(),
            container_name: "spawngate-app".into(),
            pull_policy: PullPolicy::Never,
            memory: None,
            nano_cpus: None,
            network: None,
            docker_host: None,
            args: Vec::new(),
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
            }]
        );
        assert_eq!(specs[0], InstanceSpec::first(&config(3000)));
        assert_eq!(UpstreamAddr::of(&config(3000)), specs[0].addr);
    }

    #[test]
    fn a_changed_port_changes_the_spec() {
        assert_ne!(instances_of(&config(3000)), instances_of(&config(3001)));
    }

    #[test]
    fn the_first_container_keeps_its_configured_name_and_later_ones_are_numbered() {
        let names: Vec<String> = (0..3)
            .map(|i| InstanceSpec::on_loopback(i, 3000 + i as u16).container_name(&docker()))
            .collect();
        assert_eq!(
            names,
            ["spawngate-app", "spawngate-app-1", "spawngate-app-2"]
        );
    }
}
