//! Valid templates: every key read, the defaults, `[defaults]` merged into the instance, placeholders
//! kept for the registry.

use std::path::PathBuf;
use std::time::Duration;

use super::super::ok;
use super::{template, with, MINIMAL};
use crate::config::sessions::{
    Access, Evict, HostPattern, HostVar, StartPolicy, Unhealthy, UrlPattern,
};
use crate::config::{timings, BackendKind, LocalSpec, PullPolicy};

#[test]
fn a_minimal_template_takes_every_default() {
    let config = ok(MINIMAL);
    assert_eq!(config.sessions.len(), 1);
    let nb = template(&config, "nb");
    assert_eq!(
        nb.hostname,
        HostPattern {
            before: String::new(),
            var: HostVar::Id,
            after: ".nb.example.com".into(),
        }
    );
    assert_eq!(
        nb.public_url,
        UrlPattern {
            before: "http://".into(),
            after: ":8080".into(),
        },
        "http, then the proxy's port"
    );
    assert_eq!(
        nb.public_url.render("x.nb.example.com"),
        "http://x.nb.example.com:8080"
    );
    assert!(!nb.public_url.is_https());
    assert_eq!(nb.access, Access::Token);
    assert_eq!(nb.start, StartPolicy::OnCreate);
    assert_eq!(
        nb.key_pattern.as_str(),
        "^(?:^[a-z0-9][a-z0-9._-]{0,127}$)$"
    );
    assert!(nb.allow_env.is_empty());
    assert_eq!(
        nb.idle_timeout,
        Duration::from_secs(600),
        "[defaults]' built-in"
    );
    assert_eq!((nb.lifetime, nb.max_running), (None, None));
    assert_eq!((nb.evict, nb.unhealthy), (Evict::IdleLru, Unhealthy::End));
    assert_eq!(nb.tombstone, Duration::from_secs(300));
    assert_eq!(nb.host_ports, (20000, 20999));
    let instance = &nb.instance;
    assert_eq!((instance.hostname.as_str(), instance.port), ("nb", 0));
    assert_eq!(
        instance.kind,
        BackendKind::Local(LocalSpec {
            command: "notebook".into(),
            args: Vec::new(),
            working_dir: None,
        })
    );
    assert!(instance.env.is_empty());
    assert_eq!(instance.timings, timings::builtin());
    assert!(instance.pool.is_none() && instance.session.is_none());
    assert!(config.backends.is_empty(), "a template is no backend");
}

#[test]
fn every_key_of_a_docker_template() {
    let config = ok(r#"
[server]
port = 80

[defaults]
startup_timeout_secs = 20
health_path = "/healthz"

[sessions.kernel]
hostname = "NB-{key}.Example.com"
public_url = "https://{hostname}:8443/"
access = "token"
start = "on_request"
key_pattern = "[0-9]+"
allow_env = ["NOTEBOOK_ID", "_X1"]
idle_timeout_secs = 120
lifetime_secs = 28800
max_running = 12
evict = "lru"
unhealthy = "restart"
tombstone_secs = 0
host_ports = "30000 - 30009"
type = "docker"
image = "acme/kernel:5"
port = 8888
container_name = "kernel-{key}"
pull_policy = "always"
memory = "1g"
cpus = 0.5
network = "bridge"
docker_host = "unix:///run/docker.sock"
args = ["--id={id}", "--key", "{key}", "--json={\"a\":1}"]
startup_timeout_secs = 90
[sessions.kernel.env]
KERNEL_MODE = "notebook"
LISTEN = "0.0.0.0:{port}"
"#);
    let kernel = template(&config, "kernel");
    assert_eq!(
        kernel.hostname,
        HostPattern {
            before: "nb-".into(),
            var: HostVar::Key,
            after: ".example.com".into(),
        }
    );
    assert_eq!(kernel.hostname.render("k1"), "nb-k1.example.com");
    assert_eq!(kernel.public_url.render("h"), "https://h:8443");
    assert!(kernel.public_url.is_https());
    assert_eq!(kernel.start, StartPolicy::OnRequest);
    assert!(kernel.key_pattern.is_match("7731"));
    assert!(!kernel.key_pattern.is_match("7731a"), "anchored");
    assert_eq!(kernel.allow_env, ["NOTEBOOK_ID", "_X1"]);
    assert_eq!(kernel.idle_timeout, Duration::from_secs(120));
    assert_eq!(kernel.lifetime, Some(Duration::from_secs(28800)));
    assert_eq!(kernel.max_running, Some(12));
    assert_eq!(
        (kernel.evict, kernel.unhealthy),
        (Evict::Lru, Unhealthy::Restart)
    );
    assert_eq!(kernel.tombstone, Duration::ZERO);
    assert_eq!(kernel.host_ports, (30000, 30009));
    let instance = &kernel.instance;
    assert_eq!(
        (instance.hostname.as_str(), instance.port),
        ("kernel", 8888)
    );
    let BackendKind::Docker(docker) = &instance.kind else {
        panic!("a Docker instance: {:?}", instance.kind);
    };
    assert_eq!(docker.image, "acme/kernel:5");
    assert_eq!(
        docker.container_name, "kernel-{key}",
        "substituted per session"
    );
    assert_eq!(docker.pull_policy, PullPolicy::Always);
    assert_eq!(docker.memory, Some(1 << 30));
    assert_eq!(docker.nano_cpus, Some(500_000_000));
    assert_eq!(docker.network.as_deref(), Some("bridge"));
    assert_eq!(
        docker.docker_host.as_deref(),
        Some("unix:///run/docker.sock")
    );
    assert_eq!(
        docker.args,
        ["--id={id}", "--key", "{key}", "--json={\"a\":1}"]
    );
    assert_eq!(
        instance.env,
        [
            ("KERNEL_MODE".to_string(), "notebook".to_string()),
            ("LISTEN".to_string(), "0.0.0.0:{port}".to_string()),
        ]
    );
    let timings = &instance.timings;
    assert_eq!(
        timings.idle_timeout,
        Duration::from_secs(120),
        "the template's"
    );
    assert_eq!(timings.startup_timeout, Duration::from_secs(90), "its own");
    assert_eq!(timings.health_path, "/healthz", "from [defaults]");
}

#[test]
fn defaults_reach_the_template_and_its_instance() {
    let config = ok(&format!(
        "[defaults]\nidle_timeout_secs = 60\nsocket_activation = true\nwatchdog_secs = 5\n{MINIMAL}"
    ));
    let nb = template(&config, "nb");
    assert_eq!(nb.idle_timeout, Duration::from_secs(60));
    assert_eq!(nb.instance.timings.idle_timeout, Duration::from_secs(60));
    assert!(nb.instance.timings.socket_activation, "a local process may");
    assert_eq!(nb.instance.timings.watchdog, Some(Duration::from_secs(5)));

    // For Docker, as for a [backends] entry, they mean "every local process".
    let config = ok(r#"
[defaults]
socket_activation = true
watchdog_secs = 5

[sessions.kernel]
hostname = "{id}.k.example.com"
host_ports = "20000-20009"
type = "docker"
image = "kernel"
port = 8888
"#);
    let kernel = template(&config, "kernel");
    let BackendKind::Docker(docker) = &kernel.instance.kind else {
        panic!("a Docker instance");
    };
    assert_eq!(docker.container_name, "spawngate-kernel-{id}");
    assert_eq!(docker.pull_policy, PullPolicy::IfNotPresent);
    assert!(!kernel.instance.timings.socket_activation);
    assert_eq!(kernel.instance.timings.watchdog, None);
}

#[test]
fn local_instance_keys_and_placeholders_stay_as_written() {
    let config = ok(&with(
        r#"args = ["--port={port}", "--id", "{id}", "{key}", "{ not a placeholder }"]
working_dir = "/srv/nb"
socket_activation = true
watchdog_secs = 10
env = { NB_KEY = "{key}", PLAIN = "x" }
"#,
    ));
    let nb = template(&config, "nb");
    let BackendKind::Local(local) = &nb.instance.kind else {
        panic!("a local instance");
    };
    assert_eq!(
        local.args,
        [
            "--port={port}",
            "--id",
            "{id}",
            "{key}",
            "{ not a placeholder }"
        ]
    );
    assert_eq!(local.working_dir, Some(PathBuf::from("/srv/nb")));
    assert_eq!(nb.instance.env[0], ("NB_KEY".into(), "{key}".into()));
    assert!(nb.instance.timings.socket_activation);
    assert_eq!(nb.instance.timings.watchdog, Some(Duration::from_secs(10)));
}

#[test]
fn access_start_evict_and_unhealthy_take_each_value() {
    for (text, access) in [
        ("token", Access::Token),
        ("hostname", Access::Hostname),
        ("none", Access::None),
    ] {
        let config = ok(&with(&format!("access = \"{text}\"\n")));
        assert_eq!(template(&config, "nb").access, access, "{text}");
    }
    for (text, evict) in [
        ("idle_lru", Evict::IdleLru),
        ("lru", Evict::Lru),
        ("never", Evict::Never),
    ] {
        let config = ok(&with(&format!("evict = \"{text}\"\n")));
        assert_eq!(template(&config, "nb").evict, evict, "{text}");
    }
    let config = ok(&with("start = \"on_create\"\nunhealthy = \"end\"\n"));
    let nb = template(&config, "nb");
    assert_eq!(
        (nb.start, nb.unhealthy),
        (StartPolicy::OnCreate, Unhealthy::End)
    );
}

#[test]
fn a_key_hostname_with_token_access_and_bounds_of_numbers() {
    let config = ok(r#"
[sessions.doc]
hostname = "{key}-doc.example.com"
host_ports = "1024-1024"
command = "doc"
max_running = 10000
lifetime_secs = 1
tombstone_secs = 86400
"#);
    let doc = template(&config, "doc");
    assert_eq!(doc.hostname.before, "");
    assert_eq!(doc.hostname.after, "-doc.example.com");
    assert_eq!(doc.access, Access::Token);
    assert_eq!(doc.host_ports, (1024, 1024));
    assert_eq!(doc.max_running, Some(10000));
    assert_eq!(doc.lifetime, Some(Duration::from_secs(1)));
    assert_eq!(doc.tombstone, Duration::from_secs(86400));
}

#[test]
fn templates_are_sorted_by_name_and_port_80_leaves_the_port_out() {
    let config = ok(r#"
[server]
port = 80

[sessions.zeta]
hostname = "{id}.z.example.com"
host_ports = "20010-20019"
command = "z"

[sessions.alpha]
hostname = "{id}.a.example.com"
host_ports = "20000-20009"
command = "a"
"#);
    let names: Vec<&str> = config.sessions.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["alpha", "zeta"]);
    assert_eq!(config.sessions[0].public_url.render("h"), "http://h");
}
