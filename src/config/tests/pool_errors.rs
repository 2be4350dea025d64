//! One `[pools.NAME]`'s mistakes, each with its line and key path: names, the instance keys of each
//! form, placeholders, unknown keys (`pool_policy_errors.rs` has balancing, scaling, reload, health).

use super::{assert_error, errors, ok, single_error};

#[test]
fn a_pool_name_is_lower_case_letters_digits_dash_and_underscore_and_not_a_backend() {
    single_error(
        "[pools.Web]\ncommand = \"x\"\nport = 7000\n",
        1,
        "pools.Web",
        "a pool name is 1 to 63 of a-z, 0-9",
    );
    single_error(
        "[pools.\"web.example\"]\ncommand = \"x\"\nport = 7000\n",
        1,
        "pools.\"web.example\"",
        "a pool name",
    );
    single_error(
        "[backends.api]\ncommand = \"x\"\nport = 7000\n\n[pools.api]\ncommand = \"x\"\nport = 7001\n",
        5,
        "pools.api",
        "\"api\" is already a [backends] entry",
    );
    // A pool with a bad name is still read: its other problems show at once.
    let found = errors("[pools.Web]\ncommand = \"x\"\nport = 0\n");
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_error(&found, 3, "pools.Web.port", "between 1 and 65535");
}

#[test]
fn an_instance_has_exactly_one_of_port_socket_and_address() {
    single_error(
        "[pools.web]\ncommand = \"x\"\nargs = []\n",
        1,
        "pools.web",
        "exactly one of port, socket and address",
    );
    single_error(
        "[pools.web]\ncommand = \"x\"\nport = 7000\nsocket = \"/run/web.sock\"\n",
        4,
        "pools.web.socket",
        "exactly one of port, socket and address",
    );
    // In an entry too, and its other keys are not reported as unknown.
    single_error(
        "[pools.web]\n[[pools.web.instances]]\ncommand = \"x\"\nargs = [\"a\"]\nenv = { A = \"1\" }\n",
        2,
        "pools.web.instances[0]",
        "exactly one of port, socket and address",
    );
    single_error(
        "[pools.web]\ncommand = \"x\"\nsocket = \"run/web.sock\"\n",
        3,
        "pools.web.socket",
        "must be an absolute path",
    );
    let long = format!("/run/{}.sock", "s".repeat(120));
    single_error(
        &format!("[pools.web]\ncommand = \"x\"\nsocket = \"{long}\"\n"),
        3,
        "pools.web.socket",
        "too long for a unix socket",
    );
}

#[test]
fn replicas_are_1_to_64_and_not_with_instances() {
    single_error(
        "[pools.web]\ncommand = \"x\"\nport = 7000\nreplicas = 0\n",
        4,
        "pools.web.replicas",
        "must be between 1 and 64, found 0",
    );
    single_error(
        "[pools.web]\ncommand = \"x\"\nport = 7000\nreplicas = 65\n",
        4,
        "pools.web.replicas",
        "must be between 1 and 64, found 65",
    );
    single_error(
        "[pools.web]\nreplicas = 2\n\n[[pools.web.instances]]\ncommand = \"x\"\nport = 7000\n",
        2,
        "pools.web.replicas",
        "replicas and [[instances]] cannot be combined",
    );
    single_error(
        "[pools.web]\ncommand = \"x\"\n\n[[pools.web.instances]]\ncommand = \"x\"\nport = 7000\n",
        2,
        "pools.web.command",
        "with [[instances]], this belongs in each entry",
    );
    single_error(
        "[pools.web]\ninstances = []\n",
        2,
        "pools.web.instances",
        "a pool has 1 to 64 instances",
    );
    single_error(
        "[pools.web]\ncommand = \"x\"\nport = 7000\nweight = 2\n",
        4,
        "pools.web.weight",
        "only an [[instances]] entry has a name and a weight",
    );
}

#[test]
fn replicas_need_ports_below_65536_and_their_own_socket_and_container() {
    single_error(
        "[pools.web]\ncommand = \"x\"\nport = 65534\nreplicas = 3\n",
        3,
        "pools.web.port",
        "replicas = 3 from port 65534 would need ports up to 65536",
    );
    ok("[pools.web]\ncommand = \"x\"\nport = 65533\nreplicas = 3\n");
    single_error(
        "[pools.web]\ncommand = \"x\"\nsocket = \"/run/web.sock\"\nreplicas = 2\n",
        3,
        "pools.web.socket",
        "need {index} in socket",
    );
    single_error(
        "[pools.web]\ntype = \"docker\"\nimage = \"web\"\ncontainer_name = \"web\"\nport = 7000\nreplicas = 2\n",
        4,
        "pools.web.container_name",
        "need {index} in container_name",
    );
    single_error(
        "[pools.web]\ntype = \"docker\"\nimage = \"web\"\ncontainer_name = \"-{index}\"\nport = 7000\n",
        4,
        "pools.web.container_name",
        "\"-0\": must start with a letter or digit",
    );
    single_error(
        "[pools.web]\naddress = \"127.0.0.1:7000\"\nreplicas = 2\n",
        3,
        "pools.web.replicas",
        "list several with [[instances]]",
    );
}

#[test]
fn a_placeholder_the_instance_has_no_value_for_is_refused() {
    single_error(
        "[pools.web]\ncommand = \"x\"\nargs = [\"--port\", \"{port}\"]\nsocket = \"/run/web.sock\"\n",
        3,
        "pools.web.args[1]",
        "{port} means nothing here: this instance listens on a unix socket",
    );
    single_error(
        "[pools.web]\ncommand = \"x\"\nport = 7000\n[pools.web.env]\nSOCK = \"{socket}\"\n",
        5,
        "pools.web.env.SOCK",
        "{socket} means nothing here: this instance listens on a port",
    );
    single_error(
        "[pools.web]\ncommand = \"x\"\nsocket = \"/run/web.{port}.sock\"\n",
        3,
        "pools.web.socket",
        "{port} means nothing here",
    );
    single_error(
        "[pools.web]\ntype = \"docker\"\nimage = \"x\"\ncontainer_name = \"web-{socket}\"\nport = 7000\n",
        4,
        "pools.web.container_name",
        "{socket} means nothing here",
    );
    single_error(
        "[pools.web]\n[[pools.web.instances]]\ncommand = \"x\"\nargs = [\"{socket}\"]\nport = 7000\n",
        4,
        "pools.web.instances[0].args[0]",
        "{socket} means nothing here",
    );
}

#[test]
fn an_address_is_not_started_and_a_container_has_no_socket() {
    let found = errors(
        "[pools.ext]\naddress = \"127.0.0.1:7000\"\ntype = \"docker\"\ncommand = \"x\"\nimage = \"y\"\nargs = []\nenv = { A = \"1\" }\n",
    );
    assert_eq!(found.len(), 5, "{found:#?}");
    for (line, key) in [
        (3, "type"),
        (4, "command"),
        (5, "image"),
        (6, "args"),
        (7, "env"),
    ] {
        let key = format!("pools.ext.{key}");
        assert_error(
            &found,
            line,
            &key,
            "an instance with an address is not started by the proxy",
        );
    }
    single_error(
        "[pools.ext]\naddress = \"unix:run/x.sock\"\n",
        2,
        "pools.ext.address",
        "unix:/absolute/path",
    );
    single_error(
        "[pools.ext]\naddress = \"127.0.0.1:0\"\n",
        2,
        "pools.ext.address",
        "port 0",
    );
    single_error(
        "[pools.ext]\naddress = \"no port here\"\n",
        2,
        "pools.ext.address",
        "is not host:port",
    );
    single_error(
        "[pools.box]\ntype = \"docker\"\nimage = \"x\"\nsocket = \"/run/x.sock\"\n",
        4,
        "pools.box.socket",
        "a container listens on a port, not a unix socket",
    );
    single_error(
        "[pools.box]\ntype = \"podman\"\nimage = \"x\"\nport = 7000\n",
        2,
        "pools.box.type",
        "must be \"local\" or \"docker\", found \"podman\"",
    );
    single_error(
        "[pools.box]\ntype = \"docker\"\nimage = \"x\"\ncommand = \"y\"\nport = 7000\n",
        4,
        "pools.box.command",
        "only valid for type = \"local\"",
    );
}

#[test]
fn explicit_instance_names_are_unique_and_weights_1_to_1000() {
    single_error(
        "[pools.web]\n[[pools.web.instances]]\nname = \"a\"\ncommand = \"x\"\nport = 7000\n[[pools.web.instances]]\nname = \"a\"\ncommand = \"x\"\nport = 7001\n",
        7,
        "pools.web.instances[1].name",
        "\"a\" already names the instance on line 3",
    );
    for weight in [0, 1001] {
        single_error(
            &format!("[pools.web]\n[[pools.web.instances]]\nweight = {weight}\ncommand = \"x\"\nport = 7000\n"),
            3,
            "pools.web.instances[0].weight",
            "must be between 1 and 1000",
        );
    }
}

#[test]
fn variables_spawngate_sets_are_reserved() {
    for name in [
        "PORT",
        "SPAWNGATE_POOL",
        "SPAWNGATE_INSTANCE",
        "SPAWNGATE_SOCKET",
    ] {
        single_error(
            &format!("[pools.web]\ncommand = \"x\"\nport = 7000\nenv = {{ {name} = \"1\" }}\n"),
            4,
            &format!("pools.web.env.{name}"),
            "is set by spawngate for every backend",
        );
    }
}

#[test]
fn unknown_keys_get_a_suggestion_wherever_they_are() {
    single_error(
        "[pools.web]\ncommand = \"x\"\nport = 7000\nreplica = 2\n",
        4,
        "pools.web.replica",
        "did you mean `replicas`?",
    );
    let found = errors("[pools.web]\n[[pools.web.instances]]\ncomand = \"x\"\nport = 7000\n");
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_error(
        &found,
        2,
        "pools.web.instances[0].command",
        "required key is missing",
    );
    assert_error(
        &found,
        3,
        "pools.web.instances[0].comand",
        "did you mean `command`?",
    );
    let found = errors(
        "[pools.web]\ncommand = \"x\"\nport = 7000\nsticky = { cookie = \"sg\", max_age = 5 }\n",
    );
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_error(
        &found,
        4,
        "pools.web.sticky.max_age",
        "did you mean `max_age_secs`?",
    );
    // Also when the pool has another problem.
    let found = errors("[pools.web]\ncommand = \"x\"\nport = 0\nstrategi = \"first\"\n");
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_error(&found, 4, "pools.web.strategi", "did you mean `strategy`?");
}
