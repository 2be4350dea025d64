//! `[pools.NAME]`: the three forms of instances and the specs they give, balancing and scaling keys, a
//! route to a pool (`pool_checks.rs` has the checks across pools, `pool_errors.rs` and
//! `pool_policy_errors.rs` one pool's mistakes).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::ok;
use crate::config::pools::{HashOn, HashOver, Health, PoolConfig, Strategy, Wake};
use crate::config::routes::RouteAction;
use crate::config::{BackendKind, Config};
use crate::upstream::instance::InstanceSpec;
use crate::upstream::UpstreamAddr;

fn pool<'c>(config: &'c Config, name: &str) -> &'c PoolConfig {
    let backend = config.backend(name).expect("the pool is a backend");
    backend.pool.as_deref().expect("a pool")
}

fn tcp(port: u16) -> UpstreamAddr {
    UpstreamAddr::Tcp(SocketAddr::from(([127, 0, 0, 1], port)))
}

fn unix(path: &str) -> UpstreamAddr {
    UpstreamAddr::Unix(Arc::new(PathBuf::from(path)))
}

fn args(spec: &InstanceSpec) -> &[String] {
    match &spec.kind {
        BackendKind::Local(local) => &local.args,
        BackendKind::Docker(docker) => &docker.args,
        BackendKind::External => &[],
    }
}

fn env(spec: &InstanceSpec) -> Vec<(&str, &str)> {
    spec.env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[test]
fn a_single_instance_pool_has_slot_0_and_the_defaults() {
    let config =
        ok("[pools.web]\ncommand = \"web\"\nargs = [\"--port\", \"{port}\"]\nport = 7000\n");
    let backend = config.backend("web").expect("the pool");
    assert!(backend.is_pool());
    assert_eq!(backend.port, 7000, "the first instance's port");
    let web = pool(&config, "web");
    assert_eq!(web.instances.len(), 1);
    let spec = &web.instances[0];
    assert_eq!((spec.index, spec.port, &spec.addr), (0, 7000, &tcp(7000)));
    assert_eq!(args(spec), ["--port", "7000"]);
    assert_eq!((spec.weight, spec.name.as_deref()), (1, None));
    assert_eq!(web.strategy, Strategy::LeastConn);
    assert_eq!(web.sticky, None);
    assert_eq!(web.health, Health::Http);
    let scaling = &web.scaling;
    assert_eq!((scaling.min_running, scaling.max_running), (0, 1));
    assert_eq!(
        (scaling.target_in_flight, scaling.max_in_flight),
        (None, None)
    );
    assert_eq!(scaling.queue_timeout, Duration::from_secs(10));
    assert_eq!(scaling.wake, Wake::One);
    assert!(!scaling.always_on);
    assert!(scaling.start_after.is_empty());
}

#[test]
fn replicas_on_ports_count_up_from_port_with_substitutions() {
    let config = ok(r#"
[pools.web]
command = "web"
args = ["--port={port}", "--slot", "{index}", "{pool}"]
env = { SLOT = "{index}", LISTEN = "127.0.0.1:{port}" }
port = 7000
replicas = 3
"#);
    let web = pool(&config, "web");
    let ports: Vec<(u32, u16, &UpstreamAddr)> = web
        .instances
        .iter()
        .map(|i| (i.index, i.port, &i.addr))
        .collect();
    assert_eq!(
        ports,
        [
            (0, 7000, &tcp(7000)),
            (1, 7001, &tcp(7001)),
            (2, 7002, &tcp(7002))
        ]
    );
    assert_eq!(
        args(&web.instances[2]),
        ["--port=7002", "--slot", "2", "web"]
    );
    assert_eq!(
        env(&web.instances[1]),
        [("SLOT", "1"), ("LISTEN", "127.0.0.1:7001")]
    );
    assert_eq!(web.scaling.max_running, 3, "all, by default");
}

#[test]
fn replicas_on_unix_sockets_substitute_the_socket() {
    let config = ok(r#"
[pools.shop]
command = "puma"
args = ["--bind", "unix://{socket}"]
env = { SOCK = "{socket}" }
socket = "/run/shop/puma.{index}.sock"
replicas = 2
"#);
    let shop = pool(&config, "shop");
    assert_eq!(config.backend("shop").map(|b| b.port), Some(0));
    let spec = &shop.instances[1];
    assert_eq!(spec.addr, unix("/run/shop/puma.1.sock"));
    assert_eq!(spec.port, 0, "told SPAWNGATE_SOCKET, not PORT");
    assert_eq!(args(spec), ["--bind", "unix:///run/shop/puma.1.sock"]);
    assert_eq!(env(spec), [("SOCK", "/run/shop/puma.1.sock")]);
    assert_eq!(shop.instances[0].addr, unix("/run/shop/puma.0.sock"));
}

#[test]
fn fixed_addresses_are_external_instances() {
    let config = ok(r#"
[pools.search]
address = "127.0.0.1:7700"

[pools.cache]
address = "unix:/run/cache.sock"

[pools.named]
address = "localhost:7701"
"#);
    let search = &pool(&config, "search").instances[0];
    assert_eq!(search.kind, BackendKind::External);
    assert_eq!((search.port, &search.addr), (0, &tcp(7700)));
    let cache = &pool(&config, "cache").instances[0];
    assert_eq!(cache.kind, BackendKind::External);
    assert_eq!(cache.addr, unix("/run/cache.sock"));
    let named = &pool(&config, "named").instances[0];
    assert!(
        matches!(&named.addr, UpstreamAddr::Tcp(a) if a.port() == 7701 && a.ip().is_loopback()),
        "resolved once: {:?}",
        named.addr
    );
}

#[test]
fn balancing_and_scaling_keys_are_read() {
    let config = ok(r#"
[pools.web]
command = "web"
port = 7000
replicas = 4
strategy = "hash"
hash_on = "header:X-User"
hash_balance_factor = 150
min_running = 1
max_running = 3
target_in_flight = 4
max_in_flight = 8
queue_timeout_secs = 30
wake = "all"
idle_timeout_secs = 60

[pools.ip]
command = "ip"
port = 7100
strategy = "ip_hash"
hash_over = "ready"
always_on = true

[pools.jobs]
command = "jobs"
port = 7200
replicas = 2
always_on = true
start_after = ["ip"]
"#);
    let web = pool(&config, "web");
    assert_eq!(
        web.strategy,
        Strategy::Hash {
            on: HashOn::Header("x-user".into()),
            over: HashOver::Ready,
            balance_factor: Some(150),
        }
    );
    let s = &web.scaling;
    assert_eq!((s.min_running, s.max_running), (1, 3));
    assert_eq!((s.target_in_flight, s.max_in_flight), (Some(4), Some(8)));
    assert_eq!(s.queue_timeout, Duration::from_secs(30));
    assert_eq!(s.wake, Wake::All);
    let timings = &config.backend("web").expect("web").timings;
    assert_eq!(timings.idle_timeout, Duration::from_secs(60));

    let ip = pool(&config, "ip");
    assert_eq!(ip.strategy.name(), "ip_hash");
    assert!(ip.scaling.always_on);
    let jobs = &pool(&config, "jobs").scaling;
    assert_eq!(
        (jobs.min_running, jobs.max_running),
        (2, 2),
        "always_on runs all"
    );
    assert_eq!(jobs.start_after, ["ip"]);

    for (name, strategy) in [
        ("least_conn", Strategy::LeastConn),
        ("round_robin", Strategy::RoundRobin),
        ("weighted", Strategy::Weighted),
        ("p2c", Strategy::PowerOfTwo),
        ("random", Strategy::Random),
        ("first", Strategy::First),
    ] {
        let text = format!("[pools.p]\ncommand = \"x\"\nport = 7000\nstrategy = \"{name}\"\n");
        assert_eq!(pool(&ok(&text), "p").strategy, strategy);
        assert_eq!(strategy.name(), name);
    }
    for (text, on) in [
        ("ip", HashOn::Ip),
        ("path", HashOn::Path),
        ("cookie:sid", HashOn::Cookie("sid".into())),
        ("query:user", HashOn::Query("user".into())),
    ] {
        let config = ok(&format!(
            "[pools.p]\ncommand = \"x\"\nport = 7000\nstrategy = \"hash\"\nhash_on = \"{text}\"\n"
        ));
        let Strategy::Hash { on: read, .. } = &pool(&config, "p").strategy else {
            panic!("a hash strategy");
        };
        assert_eq!(read, &on);
    }
}

#[test]
fn a_route_sends_requests_to_a_pool_by_its_name() {
    let config = ok(r#"
[pools.web]
command = "web"
port = 7000

[hosts."app.example.com"]
[[hosts."app.example.com".routes]]
path_prefix = "/api"
to = "web"
"#);
    let host = &config.hosts[0];
    let RouteAction::To { target, .. } = &host.routes[0].action else {
        panic!("a `to` route");
    };
    assert_eq!(target, "web");
    assert!(config.backend(target).is_some_and(|b| b.is_pool()));
}

#[test]
fn explicit_instances_listen_where_each_says_with_a_name_and_a_weight() {
    let config = ok(r#"
[pools.mixed]
strategy = "weighted"

[[pools.mixed.instances]]
name = "big"
weight = 3
command = "web"
args = ["--port", "{port}", "--slot", "{index}"]
port = 7000

[[pools.mixed.instances]]
command = "web"
port = 7500

[[pools.mixed.instances]]
name = "remote"
address = "127.0.0.1:7600"
"#);
    let mixed = pool(&config, "mixed");
    let specs: Vec<(u32, &UpstreamAddr, u16, Option<&str>)> = mixed
        .instances
        .iter()
        .map(|i| (i.index, &i.addr, i.weight, i.name.as_deref()))
        .collect();
    assert_eq!(
        specs,
        [
            (0, &tcp(7000), 3, Some("big")),
            (1, &tcp(7500), 1, None),
            (2, &tcp(7600), 1, Some("remote")),
        ],
        "each entry at its own port: slots count up, ports do not"
    );
    assert_eq!(args(&mixed.instances[0]), ["--port", "7000", "--slot", "0"]);
    assert_eq!(mixed.instances[2].kind, BackendKind::External);
    assert_eq!(mixed.strategy, Strategy::Weighted);
}

#[test]
fn docker_replicas_get_their_own_container_names() {
    let config = ok(r#"
[pools.api]
type = "docker"
image = "acme/api:3"
args = ["--listen", ":{port}"]
port = 7000
replicas = 2

[pools.worker]
type = "docker"
image = "acme/worker:3"
container_name = "acme-{pool}-{index}"
port = 7100
replicas = 2
"#);
    let names = |name| -> Vec<(String, Vec<String>)> {
        pool(&config, name)
            .instances
            .iter()
            .map(|i| match &i.kind {
                BackendKind::Docker(d) => (d.container_name.clone(), d.args.clone()),
                other => panic!("a container, not {other:?}"),
            })
            .collect()
    };
    assert_eq!(
        names("api"),
        [
            (
                "spawngate-api-0".to_string(),
                vec!["--listen".to_string(), ":7000".to_string()]
            ),
            (
                "spawngate-api-1".to_string(),
                vec!["--listen".to_string(), ":7001".to_string()]
            ),
        ]
    );
    assert_eq!(names("worker")[1].0, "acme-worker-1");
    assert_eq!(
        pool(&config, "api").instances[1].port,
        7001,
        "the container port too"
    );
}
