//! A running backend, whatever runs it. The lifecycle only needs "start", "terminate", "kill" and "has it
//! exited?"; each driver answers those in its own way. A process is there the moment it is spawned and
//! its exit is noticed through SIGCHLD; a container is started, stopped and reaped by worker threads
//! whose reports arrive as [`DriverEvent`]s, so for it `poll_exit` never answers.

use std::io;
use std::net::TcpListener;
use std::os::unix::net::UnixStream;

use nix::sys::signal::Signal;

use super::docker::{container_ready_url, ContainerInstance, DockerDriver};
use super::keys::InstanceKey;
use super::output::OutputSink;
use super::process::ProcessInstance;
use crate::config::{BackendConfig, BackendKind};
use crate::upstream::instance::InstanceSpec;
use crate::upstream::UpstreamAddr;

#[derive(Debug)]
pub enum Instance {
    Process(ProcessInstance),
    Container(ContainerInstance),
    /// An address someone else runs: nothing to start or stop, only to probe.
    External,
}

impl Instance {
    /// Starts instance `instance` of the backend `config` describes. `ready_url` is where it may announce
    /// readiness (as seen from the host); `notify_socket` is the supervisor's `NOTIFY_SOCKET`, given to
    /// local processes; `key` names the instance in the container driver's reports; its output goes
    /// to `output`.
    pub fn start(
        config: &BackendConfig,
        instance: &InstanceSpec,
        ready_url: &str,
        notify_socket: Option<&str>,
        docker: &mut DockerDriver,
        key: InstanceKey,
        output: &OutputSink,
    ) -> Result<Instance, String> {
        if instance.kind == BackendKind::External {
            return Ok(Instance::External);
        }
        if let Some(taken) = address_is_taken(&instance.addr) {
            // Proxying to a program we did not start would hand it our clients' requests.
            return Err(format!("{taken} is already in use by another program"));
        }
        match &instance.kind {
            BackendKind::External => Ok(Instance::External),
            BackendKind::Local(spec) => {
                let mut env = backend_env(config, instance, ready_url);
                if let Some(path) = notify_socket {
                    env.push(("NOTIFY_SOCKET".to_string(), path.to_string()));
                }
                if let Some(watchdog) = config.timings.watchdog {
                    let usec = watchdog.as_micros().to_string();
                    env.push(("WATCHDOG_USEC".to_string(), usec));
                }
                let listener = match config.timings.socket_activation {
                    true => Some(bind_instance_listener(&instance.addr)?),
                    false => None,
                };
                ProcessInstance::spawn(spec, &env, listener, output).map(Instance::Process)
            }
            BackendKind::Docker(spec) => {
                let env = backend_env(config, instance, &container_ready_url(ready_url, spec));
                docker
                    .start(key, config, spec, instance, env, output)
                    .map(Instance::Container)
            }
        }
    }

    /// "pid 1234" or "container spawngate-app 0123456789ab": names the instance in logs.
    pub fn describe(&self) -> String {
        match self {
            Instance::Process(process) => format!("pid {}", process.pid()),
            Instance::Container(container) => container.describe(),
            Instance::External => "external".to_string(),
        }
    }

    /// The process group a local backend runs in (its pid); `None` for containers.
    pub fn process_group(&self) -> Option<u32> {
        match self {
            Instance::Process(process) => Some(process.pid()),
            Instance::Container(_) | Instance::External => None,
        }
    }

    /// The instance was handed its listener (socket activation): it is routable from its spawn.
    pub fn is_socket_activated(&self) -> bool {
        match self {
            Instance::Process(process) => process.is_socket_activated(),
            Instance::Container(_) | Instance::External => false,
        }
    }

    /// False while there is nothing to probe yet (a container still being pulled, created or started).
    pub fn accepts_probes(&self) -> bool {
        match self {
            Instance::Process(_) | Instance::External => true,
            Instance::Container(container) => container.is_running(),
        }
    }

    /// Asks the backend to stop (SIGTERM to its process group; `docker stop` with the grace period).
    pub fn terminate(&mut self) {
        match self {
            Instance::Process(process) => process.signal_group(Signal::SIGTERM),
            Instance::Container(container) => container.terminate(),
            Instance::External => {}
        }
    }

    /// Forces it to stop (SIGKILL to its process group; `docker kill`).
    pub fn kill(&mut self) {
        match self {
            Instance::Process(process) => process.signal_group(Signal::SIGKILL),
            Instance::Container(container) => container.kill(),
            Instance::External => {}
        }
    }

    /// `Some(how it ended)` once a process is gone for good (and reaped). Containers report their end
    /// through the driver instead.
    pub fn poll_exit(&mut self) -> Option<String> {
        match self {
            Instance::Process(process) => process.poll_exit(),
            Instance::Container(_) | Instance::External => None,
        }
    }

    /// Kills the backend and waits until it is gone; for when there is nobody left to report to.
    pub fn kill_and_reap(&mut self) {
        match self {
            Instance::Process(process) => process.kill_and_reap(),
            Instance::Container(container) => container.kill_and_remove(),
            Instance::External => {}
        }
    }
}

/// The variables an instance gets on top of the proxy's environment: its own `env` table, then where to
/// listen (`PORT`, or `SPAWNGATE_SOCKET` for a unix socket), `SERVERLESS_PROXY_READY_URL`, and for a
/// pool's instance `SPAWNGATE_POOL` and `SPAWNGATE_INSTANCE` (last, so a table entry cannot point the
/// backend at the wrong address).
pub fn backend_env(
    config: &BackendConfig,
    instance: &InstanceSpec,
    ready_url: &str,
) -> Vec<(String, String)> {
    let mut env = instance.env.clone();
    match &instance.addr {
        UpstreamAddr::Unix(path) => {
            env.push(("SPAWNGATE_SOCKET".to_string(), path.display().to_string()))
        }
        UpstreamAddr::Tcp(_) => env.push(("PORT".to_string(), instance.port.to_string())),
        // Only an instance someone else runs has one: nothing is started with this environment.
        #[cfg(feature = "tls")]
        UpstreamAddr::Tls(_) => {}
    }
    env.push((
        "SERVERLESS_PROXY_READY_URL".to_string(),
        ready_url.to_string(),
    ));
    if config.is_pool() {
        env.push(("SPAWNGATE_POOL".to_string(), config.hostname.clone()));
        env.push(("SPAWNGATE_INSTANCE".to_string(), instance.index.to_string()));
    }
    env
}

/// The listener a socket-activated instance inherits, bound at its address: a TCP port, or a unix
/// socket (a stale socket file is replaced). An address another program holds is reported as a start
/// failure at once, in the same words as without activation.
fn bind_instance_listener(addr: &UpstreamAddr) -> Result<std::os::fd::OwnedFd, String> {
    let (bound, what) = match addr {
        UpstreamAddr::Tcp(socket) => (
            super::activation::bind_listener(*socket),
            format!("port {}", socket.port()),
        ),
        UpstreamAddr::Unix(path) => (
            super::activation::bind_unix_listener(path),
            format!("socket {}", path.display()),
        ),
        // Never started by the proxy, so never activated by it.
        #[cfg(feature = "tls")]
        UpstreamAddr::Tls(target) => {
            return Err(format!("{} is not started here", target.addr));
        }
    };
    bound.map_err(|e| {
        if e.kind() == io::ErrorKind::AddrInUse {
            format!("{what} is already in use by another program")
        } else {
            format!("cannot bind {what}: {e}")
        }
    })
}

/// `Some("port 3000")` when something already listens at `addr`, so an instance started there would
/// never get its clients. A TCP bind succeeds over connections left in TIME_WAIT by a backend we just
/// stopped (std sets SO_REUSEADDR), but not over a live listener. A unix socket is taken when a connect
/// to it succeeds (a stale socket file left by a dead program is not).
pub fn address_is_taken(addr: &UpstreamAddr) -> Option<String> {
    let taken = match addr {
        UpstreamAddr::Tcp(socket) => match TcpListener::bind(socket) {
            Ok(_) => false,
            Err(e) => e.kind() == io::ErrorKind::AddrInUse,
        },
        UpstreamAddr::Unix(path) => UnixStream::connect(path.as_path()).is_ok(),
        // Someone else's address: nothing the proxy starts listens there.
        #[cfg(feature = "tls")]
        UpstreamAddr::Tls(_) => false,
    };
    taken.then(|| match addr {
        UpstreamAddr::Tcp(socket) => format!("port {}", socket.port()),
        UpstreamAddr::Unix(path) => format!("socket {}", path.display()),
        #[cfg(feature = "tls")]
        UpstreamAddr::Tls(target) => target.addr.to_string(),
    })
}

#[cfg(test)]
#[path = "instance_tests.rs"]
mod tests;
