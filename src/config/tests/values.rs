//! Invalid values: bounds, units, backend types, env, hostnames and clashes, each with line and key.

use super::{assert_error, errors, ok, single_error};

#[test]
fn bad_values_are_reported_with_their_bounds() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "port = 0",
            "backends.a.port",
            "between 1 and 65535, found 0",
        ),
        ("port = 70000", "backends.a.port", "between 1 and 65535"),
        (
            "startup_timeout_secs = 0",
            "backends.a.startup_timeout_secs",
            "between 1 and",
        ),
        (
            "idle_timeout_secs = -5",
            "backends.a.idle_timeout_secs",
            "found -5",
        ),
        (
            "shutdown_grace_period_secs = -1",
            "backends.a.shutdown_grace_period_secs",
            "negative",
        ),
        (
            "health_check_interval_ms = 0",
            "backends.a.health_check_interval_ms",
            "between 10 and",
        ),
        (
            "unhealthy_threshold = 0",
            "backends.a.unhealthy_threshold",
            "between 1 and",
        ),
        (
            "health_path = \"health\"",
            "backends.a.health_path",
            "start with '/'",
        ),
        (
            "health_path = \"/a b\"",
            "backends.a.health_path",
            "whitespace",
        ),
        (
            "health_path = \"/a\\u0007\"",
            "backends.a.health_path",
            "control",
        ),
        (
            "type = \"lambda\"",
            "backends.a.type",
            "\"local\" or \"docker\"",
        ),
        (
            "working_dir = \"\"",
            "backends.a.working_dir",
            "must not be empty",
        ),
    ];
    for (line, key, needle) in cases {
        let text = format!("[backends.a]\ncommand = \"x\"\nport = 1\n{line}\n");
        let text = text.replacen("port = 1\nport", "port", 1);
        let found = errors(&text);
        let at = text.lines().position(|l| l == *line).map_or(0, |i| i + 1);
        assert_eq!(found.len(), 1, "{line}: {found:#?}");
        assert_error(&found, at, key, needle);
    }
}

#[test]
fn bad_docker_values() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "memory = \"12q\"",
            "backends.d.memory",
            "unknown unit \"q\"",
        ),
        ("memory = \"1k\"", "backends.d.memory", "at least 6m"),
        ("memory = -1", "backends.d.memory", "negative"),
        ("memory = true", "backends.d.memory", "found a boolean"),
        ("cpus = \"0\"", "backends.d.cpus", "greater than 0"),
        ("cpus = 0.0", "backends.d.cpus", "greater than 0"),
        ("cpus = -2", "backends.d.cpus", "invalid CPU count"),
        ("cpus = 1e3", "backends.d.cpus", "decimal number"),
        (
            "pull_policy = \"sometimes\"",
            "backends.d.pull_policy",
            "if-not-present",
        ),
        (
            "docker_host = \"http://x\"",
            "backends.d.docker_host",
            "unix://",
        ),
        (
            "docker_host = \"tcp://\"",
            "backends.d.docker_host",
            "after the scheme",
        ),
        (
            "container_name = \"-bad\"",
            "backends.d.container_name",
            "letter or digit",
        ),
        (
            "container_name = \"a b\"",
            "backends.d.container_name",
            "' '",
        ),
        ("network = \"\"", "backends.d.network", "must not be empty"),
        ("image = \"my image\"", "backends.d.image", "whitespace"),
    ];
    for (line, key, needle) in cases {
        let image = if line.starts_with("image") {
            ""
        } else {
            "image = \"i\"\n"
        };
        let text = format!("[backends.d]\ntype = \"docker\"\nport = 1\n{image}{line}\n");
        let found = errors(&text);
        let at = text.lines().position(|l| l == *line).map_or(0, |i| i + 1);
        assert_eq!(found.len(), 1, "{line}: {found:#?}");
        assert_error(&found, at, key, needle);
    }
}

#[test]
fn keys_of_the_other_backend_type_are_rejected() {
    single_error(
        "[backends.a]\ncommand = \"x\"\nport = 1\nimage = \"i\"\n",
        4,
        "backends.a.image",
        "only valid for type = \"docker\"",
    );
    let found = errors(
        "[backends.d]\ntype = \"docker\"\nimage = \"i\"\nport = 1\ncommand = \"x\"\nworking_dir = \"/\"\n",
    );
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_error(
        &found,
        5,
        "backends.d.command",
        "only valid for type = \"local\"",
    );
    assert_error(
        &found,
        6,
        "backends.d.working_dir",
        "only valid for type = \"local\"",
    );
    // An unknown type does not also complain about every type-specific key.
    single_error(
        "[backends.a]\ntype = \"kvm\"\ncommand = \"x\"\nimage = \"i\"\nport = 1\n",
        2,
        "backends.a.type",
        "\"local\" or \"docker\"",
    );
}

#[test]
fn env_names_and_values_are_checked() {
    let found = errors(concat!(
        "[backends.a]\n",
        "command = \"x\"\n",
        "port = 1\n",
        "[backends.a.env]\n",
        "GOOD = \"1\"\n",
        "COUNT = 3\n",
        "\"A=B\" = \"x\"\n",
        "PORT = \"80\"\n",
        "\"\" = \"x\"\n",
    ));
    assert_eq!(found.len(), 4, "{found:#?}");
    assert_error(
        &found,
        6,
        "backends.a.env.COUNT",
        "must be a string (quote it)",
    );
    assert_error(&found, 7, "backends.a.env.\"A=B\"", "'='");
    assert_error(&found, 8, "backends.a.env.PORT", "set by spawngate");
    assert_error(&found, 9, "backends.a.env.\"\"", "must not be empty");
    single_error(
        "[backends.a]\ncommand = \"x\"\nport = 1\nenv = 5\n",
        4,
        "backends.a.env",
        "table",
    );
}

#[test]
fn hostnames_are_checked_and_unique_ignoring_case() {
    single_error(
        "[backends.\"app:8080\"]\ncommand = \"x\"\nport = 1\n",
        1,
        "backends.\"app:8080\"",
        "port",
    );
    single_error(
        "[backends.\"a b\"]\ncommand = \"x\"\nport = 1\n",
        1,
        "backends.\"a b\"",
        "whitespace",
    );
    single_error(
        "[backends.\"\"]\ncommand = \"x\"\nport = 1\n",
        1,
        "backends.\"\"",
        "empty",
    );
    single_error(
        "[backends.App]\ncommand = \"x\"\nport = 1\n[backends.app]\ncommand = \"x\"\nport = 2\n",
        4,
        "backends.app",
        "same host as the backend on line 1",
    );
    // The body of a backend with a bad hostname is still checked.
    let found = errors("[backends.\"a:1\"]\ncommand = \"x\"\nport = 0\n");
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_error(&found, 1, "backends.\"a:1\"", "port");
    assert_error(&found, 3, "backends.\"a:1\".port", "between 1 and 65535");
}

#[test]
fn clashes_between_listeners_are_errors() {
    single_error(
        "[backends.a]\ncommand = \"x\"\nport = 3000\n[backends.b]\ncommand = \"x\"\nport = 3000\n",
        6,
        "backends.b.port",
        "already used by backend \"a\"",
    );
    single_error(
        "[backends.a]\ncommand = \"x\"\nport = 8080\n",
        3,
        "backends.a.port",
        "proxy's own port",
    );
    single_error(
        "[server]\nport = 7000\nadmin_port = 7000\n",
        3,
        "server.admin_port",
        "already listens",
    );
    // Different addresses may share a port.
    super::ok("[server]\nbind = \"127.0.0.2\"\nport = 7000\nadmin_port = 7000\n");
    single_error(
        concat!(
            "[backends.a]\ntype = \"docker\"\nimage = \"i\"\nport = 1\ncontainer_name = \"web\"\n",
            "[backends.b]\ntype = \"docker\"\nimage = \"i\"\nport = 2\ncontainer_name = \"web\"\n",
        ),
        10,
        "backends.b.container_name",
        "already used by backend \"a\"",
    );
}

#[test]
fn server_values() {
    single_error(
        "[server]\nbind = \"localhost\"\n",
        2,
        "server.bind",
        "not an IP address",
    );
    single_error(
        "[server]\nmax_connections = 0\n",
        2,
        "server.max_connections",
        "between 1 and",
    );
    single_error(
        "[server]\nmax_held_requests = 0\n",
        2,
        "server.max_held_requests",
        "between 1 and",
    );
    single_error(
        "[server]\npid_file = \"\"\n",
        2,
        "server.pid_file",
        "must not be empty",
    );
    single_error(
        "[server]\nport = 65536\n",
        2,
        "server.port",
        "between 0 and 65535",
    );
    single_error(
        "[server]\nmax_request_body_bytes = -1\n",
        2,
        "server.max_request_body_bytes",
        "negative",
    );
    single_error(
        "[server]\naccess_log_format = \"clf\"\n",
        2,
        "server.access_log_format",
        "must be \"combined\" or \"json\"",
    );
    single_error(
        "[server]\naccess_log = \"\"\n",
        2,
        "server.access_log",
        "must not be empty",
    );
    single_error(
        "[server]\naccess_log = 1\n",
        2,
        "server.access_log",
        "string",
    );
}

#[test]
fn access_log_values() {
    use crate::config::{AccessLogFormat, AccessLogTarget};
    let server = |text: &str| ok(text).server;
    let builtin = server("");
    assert_eq!(builtin.access_log, AccessLogTarget::Off);
    assert_eq!(builtin.access_log_format, AccessLogFormat::Combined);
    let set = server("[server]\naccess_log = \"stderr\"\naccess_log_format = \"json\"\n");
    assert_eq!(set.access_log, AccessLogTarget::Stderr);
    assert_eq!(set.access_log_format, AccessLogFormat::Json);
    let file = server("[server]\naccess_log = \"/var/log/sg.log\"\n");
    assert_eq!(
        file.access_log,
        AccessLogTarget::File("/var/log/sg.log".into())
    );
    assert_eq!(
        server("[server]\naccess_log = \"off\"\n").access_log,
        AccessLogTarget::Off
    );
}

#[test]
fn socket_activation_and_the_watchdog_are_for_local_processes_only() {
    let found = errors(
        "[backends.d]\ntype = \"docker\"\nimage = \"i\"\nport = 1\nsocket_activation = true\nwatchdog_secs = 5\n",
    );
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_error(
        &found,
        5,
        "backends.d.socket_activation",
        "applies to local processes",
    );
    assert_error(
        &found,
        6,
        "backends.d.watchdog_secs",
        "applies to local processes",
    );
    single_error(
        "[backends.a]\ncommand = \"x\"\nport = 1\nwatchdog_secs = 0\n",
        4,
        "backends.a.watchdog_secs",
        "",
    );
    single_error(
        "[backends.a]\ncommand = \"x\"\nport = 1\nsocket_activation = \"yes\"\n",
        4,
        "backends.a.socket_activation",
        "",
    );
}
