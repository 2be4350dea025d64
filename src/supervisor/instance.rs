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
    };
    taken.then(|| match addr {
        UpstreamAddr::Tcp(socket) => format!("port {}", socket.port()),
        UpstreamAddr::Unix(path) => format!("socket {}", path.display()),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::supervisor::docker::{ContainerEvent, DriverEvent, Outcome};
    use crate::supervisor::output::PROCESS_TARGET;
    use crate::supervisor::test_support::{
        docker_driver, free_port, local_config, scratch_file, wait_for,
    };

    fn test_output() -> OutputSink {
        OutputSink::inherit("app.localhost", PROCESS_TARGET)
    }

    #[test]
    fn a_taken_port_refuses_the_start() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let config = local_config(port, "sleep", &["30"]);
        let instance = InstanceSpec::first(&config);
        let (mut docker, _events, _poll) = docker_driver();
        let why = Instance::start(
            &config,
            &instance,
            "http://127.0.0.1:1/ready/x",
            None,
            &mut docker,
            InstanceKey::new(0, 0),
            &test_output(),
        )
        .unwrap_err();
        assert_eq!(
            why,
            format!("port {port} is already in use by another program")
        );
        drop(listener);
        assert_eq!(address_is_taken(&instance.addr), None);
    }

    #[test]
    fn a_pool_instance_is_told_its_pool_slot_and_socket_and_no_port_on_a_socket() {
        let config = crate::config::parse(
            std::path::Path::new("pool.toml"),
            "[pools.web]\ncommand = \"true\"\nsocket = \"/run/web.{index}.sock\"\nreplicas = 2\n\
             [pools.web.env]\nWHO = \"web-{index}\"\n",
        )
        .expect("a valid pool");
        let pool = &config.backends[0];
        let second = &crate::upstream::instance::instances_of(pool)[1];
        let env = backend_env(pool, second, "http://a/ready/pool/web/1");
        let get = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        assert_eq!(get("WHO"), Some("web-1"));
        assert_eq!(get("SPAWNGATE_SOCKET"), Some("/run/web.1.sock"));
        assert_eq!(get("PORT"), None, "a socket instance has no port");
        assert_eq!(get("SPAWNGATE_POOL"), Some("web"));
        assert_eq!(get("SPAWNGATE_INSTANCE"), Some("1"));
        assert_eq!(
            get("SERVERLESS_PROXY_READY_URL"),
            Some("http://a/ready/pool/web/1")
        );
        // A `[backends]` entry gets neither pool variable.
        let plain = local_config(3000, "true", &[]);
        let env = backend_env(&plain, &InstanceSpec::first(&plain), "u");
        assert!(env.iter().all(|(k, _)| !k.starts_with("SPAWNGATE_")));
    }

    #[test]
    fn the_backend_gets_port_and_ready_url() {
        let out = scratch_file("instance-env");
        let script = format!(
            "echo \"$PORT $SERVERLESS_PROXY_READY_URL\" > {}",
            out.display()
        );
        let port = free_port();
        let config = local_config(port, "sh", &["-c", &script]);
        let url = "http://127.0.0.1:9999/ready/app.localhost";
        let (mut docker, _events, _poll) = docker_driver();
        let spec = InstanceSpec::first(&config);
        let mut instance = Instance::start(
            &Arc::new(config),
            &spec,
            url,
            None,
            &mut docker,
            InstanceKey::new(0, 0),
            &test_output(),
        )
        .unwrap();
        assert!(instance.describe().starts_with("pid "));
        let how = wait_for(Duration::from_secs(5), || instance.poll_exit());
        assert_eq!(how.as_deref(), Some("status 0"));
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(text.trim(), format!("{port} {url}"));
        let _ = std::fs::remove_file(out);
    }

    #[test]
    fn an_instance_is_told_its_own_port_and_checked_at_its_own_address() {
        let out = scratch_file("instance-own-port");
        let script = format!("echo \"$PORT\" > {}", out.display());
        let config = local_config(free_port(), "sh", &["-c", &script]);
        // A second instance of the same backend listens elsewhere: the spec says where, not the config.
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let busy = InstanceSpec::of_at(&config, 1, taken.local_addr().unwrap().port());
        let (mut docker, _events, _poll) = docker_driver();
        let why = Instance::start(
            &config,
            &busy,
            "http://x",
            None,
            &mut docker,
            InstanceKey::new(0, 1),
            &test_output(),
        )
        .unwrap_err();
        assert_eq!(
            why,
            format!("port {} is already in use by another program", busy.port)
        );
        let free = InstanceSpec::of_at(&config, 1, free_port());
        let mut instance = Instance::start(
            &config,
            &free,
            "http://x",
            None,
            &mut docker,
            InstanceKey::new(0, 1),
            &test_output(),
        )
        .unwrap();
        let how = wait_for(Duration::from_secs(5), || instance.poll_exit());
        assert_eq!(how.as_deref(), Some("status 0"));
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(text.trim(), free.port.to_string());
        let _ = std::fs::remove_file(out);
    }

    #[test]
    fn a_unix_socket_is_taken_only_while_something_listens_on_it() {
        let path = scratch_file("instance-taken.sock");
        let addr = UpstreamAddr::Unix(Arc::new(path.clone()));
        assert_eq!(address_is_taken(&addr), None, "no socket file");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert_eq!(
            address_is_taken(&addr),
            Some(format!("socket {}", path.display()))
        );
        drop(listener);
        assert_eq!(address_is_taken(&addr), None, "a stale socket file");
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn a_container_start_returns_at_once_and_reports_its_failure_later() {
        let socket = scratch_file("instance-no-daemon.sock");
        let mut config = local_config(free_port(), "unused", &[]);
        config.kind = BackendKind::Docker(crate::config::DockerSpec {
            image: "app:latest".to_string(),
            container_name: "spawngate-app".to_string(),
            pull_policy: crate::config::PullPolicy::IfNotPresent,
            memory: None,
            nano_cpus: None,
            network: None,
            docker_host: Some(format!("unix://{}", socket.display())),
            args: Vec::new(),
        });
        let (mut docker, events, _poll) = docker_driver();
        let spec = InstanceSpec::first(&config);
        let key = InstanceKey::new(7, 0);
        let mut instance = Instance::start(
            &config,
            &spec,
            "http://x",
            None,
            &mut docker,
            key,
            &test_output(),
        )
        .unwrap();
        assert_eq!(instance.describe(), "container spawngate-app");
        assert_eq!(
            instance.poll_exit(),
            None,
            "containers report through the driver"
        );
        let DriverEvent { key, event, serial } =
            events.recv_timeout(Duration::from_secs(2)).unwrap();
        assert_eq!(key, InstanceKey::new(7, 0));
        let Instance::Container(container) = &mut instance else {
            panic!("not a container: {instance:?}");
        };
        assert_eq!(serial, container.serial());
        let ContainerEvent::StartFailed(why) = &event else {
            panic!("expected a failed start, got {event:?}");
        };
        assert!(why.contains("the socket does not exist"), "{why}");
        assert!(matches!(
            container.on_event(event),
            Some(Outcome::StartFailed(_))
        ));
    }
}
