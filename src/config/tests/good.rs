//! Valid configs: every key read, defaults applied, overrides merged.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use super::ok;
use crate::config::{BackendKind, PullPolicy};

pub(super) const FULL: &str = r#"
[server]
port = 8081
bind = "0.0.0.0"
admin_port = 9998
admin_bind = "::1"
pool_max_idle_per_host = 4
pool_idle_timeout_secs = 60
pid_file = "/run/spawngate.pid"
max_connections = 500
max_request_body_bytes = 0
header_read_timeout_secs = 10
keepalive_timeout_secs = 20
max_held_requests = 50

[defaults]
idle_timeout_secs = 300
startup_timeout_secs = 20
health_check_interval_ms = 50
health_path = "/healthz"
request_timeout_secs = 15
shutdown_grace_period_secs = 5
drain_timeout_secs = 25
ready_health_check_interval_ms = 2000
unhealthy_threshold = 2

[backends."MyApp.Localhost"]
command = "node"
args = ["server.js", "--quiet"]
port = 3000
working_dir = "/srv/myapp"
idle_timeout_secs = 120
health_path = "/ping"
[backends."MyApp.Localhost".env]
NODE_ENV = "production"
A_FIRST = "1"

[backends."app.example.com"]
type = "docker"
image = "myapp:latest"
port = 3001
container_name = "myapp"
pull_policy = "always"
memory = "512m"
cpus = "1.5"
network = "bridge"
docker_host = "unix:///var/run/docker.sock"
args = ["--workers", "4"]
env = { RUST_LOG = "debug" }

[backends.minimal]
type = "docker"
image = "nginx"
port = 3002
cpus = 0.25
memory = 67108864
"#;

#[test]
fn full_config_reads_every_key() {
    let config = ok(FULL);
    assert_eq!(config.path, PathBuf::from(super::FILE));
    let server = &config.server;
    assert_eq!(server.port, 8081);
    assert_eq!(server.bind, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert_eq!(server.admin_port, 9998);
    assert_eq!(server.admin_bind, IpAddr::V6(Ipv6Addr::LOCALHOST));
    assert_eq!(server.pool_max_idle_per_host, 4);
    assert_eq!(server.pool_idle_timeout, Duration::from_secs(60));
    assert_eq!(server.pid_file, Some(PathBuf::from("/run/spawngate.pid")));
    assert_eq!(server.limits.max_connections, 500);
    assert_eq!(
        server.limits.max_request_body_bytes, None,
        "0 means unlimited"
    );
    assert_eq!(server.limits.header_read_timeout, Duration::from_secs(10));
    assert_eq!(server.limits.keepalive_timeout, Duration::from_secs(20));
    assert_eq!(server.limits.max_held_requests, 50);

    let hosts: Vec<&str> = config
        .backends
        .iter()
        .map(|b| b.hostname.as_str())
        .collect();
    assert_eq!(
        hosts,
        ["app.example.com", "minimal", "myapp.localhost"],
        "sorted, lower-case"
    );

    let local = config
        .backend("myapp.localhost")
        .expect("lookup by lower-case host");
    assert_eq!(local.port, 3000);
    let BackendKind::Local(spec) = &local.kind else {
        panic!("expected a local backend");
    };
    assert_eq!(spec.command, "node");
    assert_eq!(spec.args, ["server.js", "--quiet"]);
    assert_eq!(spec.working_dir, Some(PathBuf::from("/srv/myapp")));
    let env: Vec<(&str, &str)> = local
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        env,
        [("NODE_ENV", "production"), ("A_FIRST", "1")],
        "file order"
    );
    // Overridden here, the rest from [defaults].
    assert_eq!(local.timings.idle_timeout, Duration::from_secs(120));
    assert_eq!(local.timings.health_path, "/ping");
    assert_eq!(local.timings.startup_timeout, Duration::from_secs(20));
    assert_eq!(
        local.timings.health_check_interval,
        Duration::from_millis(50)
    );
    assert_eq!(local.timings.request_timeout, Duration::from_secs(15));
    assert_eq!(local.timings.shutdown_grace_period, Duration::from_secs(5));
    assert_eq!(local.timings.drain_timeout, Duration::from_secs(25));
    assert_eq!(
        local.timings.ready_health_check_interval,
        Duration::from_millis(2000)
    );
    assert_eq!(local.timings.unhealthy_threshold, 2);

    let docker = config.backend("app.example.com").expect("docker backend");
    let BackendKind::Docker(spec) = &docker.kind else {
        panic!("expected a docker backend");
    };
    assert_eq!(spec.image, "myapp:latest");
    assert_eq!(spec.container_name, "myapp");
    assert_eq!(spec.pull_policy, PullPolicy::Always);
    assert_eq!(spec.memory, Some(512 << 20));
    assert_eq!(spec.nano_cpus, Some(1_500_000_000));
    assert_eq!(spec.network.as_deref(), Some("bridge"));
    assert_eq!(
        spec.docker_host.as_deref(),
        Some("unix:///var/run/docker.sock")
    );
    assert_eq!(spec.args, ["--workers", "4"]);
    assert_eq!(docker.env, [("RUST_LOG".to_string(), "debug".to_string())]);
    assert_eq!(docker.timings.idle_timeout, Duration::from_secs(300));

    let minimal = config.backend("minimal").expect("minimal docker backend");
    let BackendKind::Docker(spec) = &minimal.kind else {
        panic!("expected a docker backend");
    };
    assert_eq!(spec.container_name, "spawngate-minimal");
    assert_eq!(spec.pull_policy, PullPolicy::IfNotPresent);
    assert_eq!(spec.nano_cpus, Some(250_000_000), "float cpus read exactly");
    assert_eq!(spec.memory, Some(64 << 20), "memory as a plain byte count");
    assert_eq!(spec.network, None);
    assert_eq!(spec.docker_host, None);
}

#[test]
fn empty_file_is_all_defaults() {
    let config = ok("");
    let server = &config.server;
    assert_eq!(server.port, 8080);
    assert_eq!(server.bind, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(server.admin_port, 9999);
    assert_eq!(server.admin_bind, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(server.pool_max_idle_per_host, 10);
    assert_eq!(server.pool_idle_timeout, Duration::from_secs(90));
    assert_eq!(server.pid_file, None);
    assert_eq!(server.limits.max_connections, 10_000);
    assert_eq!(server.limits.max_request_body_bytes, Some(1_073_741_824));
    assert_eq!(server.limits.header_read_timeout, Duration::from_secs(30));
    assert_eq!(server.limits.keepalive_timeout, Duration::from_secs(75));
    assert_eq!(server.limits.max_held_requests, 1000);
    assert!(config.backends.is_empty());
}

#[test]
fn backend_without_overrides_gets_builtin_defaults() {
    let config = ok("[backends.a]\ncommand = \"x\"\nport = 1\n");
    let backend = &config.backends[0];
    assert_eq!(backend.hostname, "a");
    let t = &backend.timings;
    assert_eq!(t.idle_timeout, Duration::from_secs(600));
    assert_eq!(t.startup_timeout, Duration::from_secs(30));
    assert_eq!(t.health_check_interval, Duration::from_millis(100));
    assert_eq!(t.health_path, "/health");
    assert_eq!(t.request_timeout, Duration::from_secs(30));
    assert_eq!(t.shutdown_grace_period, Duration::from_secs(10));
    assert_eq!(t.drain_timeout, Duration::from_secs(30));
    assert_eq!(t.ready_health_check_interval, Duration::from_millis(5000));
    assert_eq!(t.unhealthy_threshold, 3);
    assert!(backend.env.is_empty());
    let BackendKind::Local(spec) = &backend.kind else {
        panic!("type defaults to local");
    };
    assert!(spec.args.is_empty());
    assert_eq!(spec.working_dir, None);
}

#[test]
fn ports_zero_ask_the_os() {
    let config = ok("[server]\nport = 0\nadmin_port = 0\n");
    assert_eq!((config.server.port, config.server.admin_port), (0, 0));
}

#[test]
fn toml_spellings_of_the_same_value_are_accepted() {
    let config = ok("[server]\nport = 0x1F90\nmax_connections = 1_000\n");
    assert_eq!(config.server.port, 8080);
    assert_eq!(config.server.limits.max_connections, 1000);
    let config = ok("backends.\"[::1]\" = { type = \"docker\", image = \"i\", port = 80 }\n");
    let BackendKind::Docker(spec) = &config.backends[0].kind else {
        panic!("expected docker");
    };
    assert_eq!(config.backends[0].hostname, "[::1]");
    assert_eq!(spec.container_name, "spawngate----1-");
}

#[test]
fn zero_grace_and_drain_are_allowed() {
    let config = ok(
        "[defaults]\nshutdown_grace_period_secs = 0\ndrain_timeout_secs = 0\n\
                     [backends.a]\ncommand = \"x\"\nport = 1\n",
    );
    assert_eq!(
        config.backends[0].timings.shutdown_grace_period,
        Duration::ZERO
    );
    assert_eq!(config.backends[0].timings.drain_timeout, Duration::ZERO);
}

#[test]
fn socket_activation_and_the_watchdog_come_from_defaults_for_local_backends() {
    let config = ok(
        "[defaults]\nsocket_activation = true\nwatchdog_secs = 7\n\n\
         [backends.a]\ncommand = \"x\"\nport = 1\n\n\
         [backends.b]\ncommand = \"x\"\nport = 2\nsocket_activation = false\n\n\
         [backends.d]\ntype = \"docker\"\nimage = \"i\"\nport = 3\n",
    );
    let by_host = |h: &str| {
        let b = config.backends.iter().find(|b| b.hostname == h).unwrap();
        (b.timings.socket_activation, b.timings.watchdog)
    };
    let seven = Some(std::time::Duration::from_secs(7));
    assert_eq!(by_host("a"), (true, seven));
    assert_eq!(by_host("b"), (false, seven));
    // `[defaults]` means "for every local backend": a container takes neither.
    assert_eq!(by_host("d"), (false, None));
    let plain = ok("[backends.a]\ncommand = \"x\"\nport = 1\n");
    assert_eq!(
        (
            plain.backends[0].timings.socket_activation,
            plain.backends[0].timings.watchdog
        ),
        (false, None),
        "both are off unless asked for"
    );
}
