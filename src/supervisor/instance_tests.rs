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
    assert!(
        freed_soon(&instance.addr),
        "the port is still taken once its listener closed"
    );
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
    assert!(freed_soon(&addr), "a stale socket file is taken");
    let _ = std::fs::remove_file(path);
}

/// Whether `addr` is free within a generous deadline after the test closed its listener. The close ends
/// the listener only once no process holds it: a child that another test's thread forks meanwhile keeps
/// a copy of the descriptor until its exec closes it (close-on-exec), and meanwhile a connect or a bind
/// still finds the address taken (about 1 check in 100 while two threads spawn processes in a loop,
/// for up to 10 ms; longer on a loaded machine).
fn freed_soon(addr: &UpstreamAddr) -> bool {
    wait_for(Duration::from_secs(30), || {
        address_is_taken(addr).is_none().then_some(())
    })
    .is_some()
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
    let DriverEvent { key, event, serial } = events.recv_timeout(Duration::from_secs(2)).unwrap();
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
