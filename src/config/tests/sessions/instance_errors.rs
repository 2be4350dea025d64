//! A template's instance keys, wrong: `type`, `port`, the local and Docker keys, `env`, timings and
//! placeholders, each with its line and key path.

use super::super::{assert_error, errors, ok, single_error};
use super::with;

/// A Docker template whose keys are on lines 2 to 7, with `extra` from line 8.
fn docker(extra: &str) -> String {
    format!(
        r#"
[sessions.k]
hostname = "{{id}}.k.example.com"
host_ports = "20000-20999"
type = "docker"
image = "kernel"
port = 8888
{extra}"#
    )
}

#[test]
fn a_local_session_has_no_port_and_a_docker_one_needs_it() {
    single_error(
        &with("port = 3000\n"),
        6,
        "sessions.nb.port",
        "a local session listens on the port the proxy allocates",
    );
    single_error(
        &docker("").replace("port = 8888\n", ""),
        2,
        "sessions.k.port",
        "required key is missing: the port the container listens on",
    );
    single_error(
        &docker("").replace("8888", "0"),
        7,
        "sessions.k.port",
        "between 1 and 65535",
    );
}

#[test]
fn type_and_the_keys_of_each_kind() {
    single_error(
        &with("type = \"vm\"\n"),
        6,
        "sessions.nb.type",
        "must be \"local\" or \"docker\", found \"vm\"",
    );
    single_error(
        &with("image = \"x\"\n"),
        6,
        "sessions.nb.image",
        "only valid for type = \"docker\" backends",
    );
    single_error(
        &docker("command = \"x\"\n"),
        8,
        "sessions.k.command",
        "only valid for type = \"local\" backends",
    );
    single_error(
        &with("").replace("command = \"notebook\"\n", ""),
        2,
        "sessions.nb.command",
        "required key is missing",
    );
    single_error(
        &docker("").replace("image = \"kernel\"\n", ""),
        2,
        "sessions.k.image",
        "required key is missing",
    );
    single_error(
        &docker("socket_activation = true\n"),
        8,
        "sessions.k.socket_activation",
        "applies to local processes only",
    );
    single_error(
        &docker("memory = \"1q\"\n"),
        8,
        "sessions.k.memory",
        "unknown unit",
    );
    single_error(
        &with("args = \"x\"\n"),
        6,
        "sessions.nb.args",
        "an array of strings",
    );
    single_error(
        &with("health_path = \"x\"\n"),
        6,
        "sessions.nb.health_path",
        "must start with '/'",
    );
}

#[test]
fn env_refuses_what_spawngate_sets_for_a_session() {
    let found = errors(&with(
        "[sessions.nb.env]\nPORT = \"1\"\nSPAWNGATE_SESSION_SECRET = \"x\"\nSPAWNGATE_POOL = \"p\"\nOK = 1\nFINE = \"y\"\n",
    ));
    assert_eq!(found.len(), 4, "{found:#?}");
    let key = |name: &str| format!("sessions.nb.env.{name}");
    assert_error(
        &found,
        7,
        &key("PORT"),
        "PORT is set by spawngate for every session",
    );
    assert_error(
        &found,
        8,
        &key("SPAWNGATE_SESSION_SECRET"),
        "is set by spawngate",
    );
    assert_error(&found, 9, &key("SPAWNGATE_POOL"), "is set by spawngate");
    assert_error(&found, 10, &key("OK"), "must be a string");
}

#[test]
fn only_id_key_and_port_are_placeholders() {
    let allowed = "a session's instance may use {id}, {key} and {port}";
    single_error(
        &with("args = [\"{id}\", \"--slot={index}\"]\n"),
        6,
        "sessions.nb.args[1]",
        &format!("unknown placeholder {{index}}: {allowed}"),
    );
    single_error(
        &with("env = { A = \"{port}\", B = \"{pool}\" }\n"),
        6,
        "sessions.nb.env.B",
        "unknown placeholder {pool}",
    );
    single_error(
        &docker("container_name = \"k-{id}-{hostname}\"\n"),
        8,
        "sessions.k.container_name",
        "unknown placeholder {hostname}",
    );
    single_error(
        &docker("args = [\"{socket}\"]\n"),
        8,
        "sessions.k.args[0]",
        "unknown placeholder {socket}",
    );
}

#[test]
fn a_container_name_is_one_per_session_and_one_docker_takes() {
    single_error(
        &docker("container_name = \"kernel\"\n"),
        8,
        "sessions.k.container_name",
        "needs {id}, {key} or {port}",
    );
    single_error(
        &docker("container_name = \"k/{id}\"\n"),
        8,
        "sessions.k.container_name",
        "Docker allows only letters, digits",
    );
    single_error(
        &docker("container_name = \"-{id}\"\n"),
        8,
        "sessions.k.container_name",
        "must start with a letter or digit",
    );
    // One session per port at a time, so the port alone names it.
    ok(&docker("container_name = \"k-{port}\"\n"));
}

#[test]
fn every_problem_of_one_template_shows_at_once() {
    let found = errors(&docker(
        "command = \"x\"\nwatchdog_secs = 5\nevict = \"x\"\nbogus = 1\n",
    ));
    assert_eq!(found.len(), 4, "{found:#?}");
    assert_error(
        &found,
        8,
        "sessions.k.command",
        "only valid for type = \"local\"",
    );
    assert_error(
        &found,
        9,
        "sessions.k.watchdog_secs",
        "local processes only",
    );
    assert_error(&found, 10, "sessions.k.evict", "must be");
    assert_error(&found, 11, "sessions.k.bogus", "unknown key");
}
