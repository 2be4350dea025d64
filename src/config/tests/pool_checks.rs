//! Checks across `[pools]` and `[backends]`: `start_after` names other always-on pools without a cycle,
//! no two instances share an address or a container name, and a pool's name is not a Host.

use super::{assert_error, errors, ok, single_error};

#[test]
fn start_after_names_other_always_on_pools_without_a_cycle() {
    let pools = |a: &str, b: &str| {
        format!(
            "[pools.a]\ncommand = \"x\"\nport = 7000\n{a}\n\n[pools.b]\ncommand = \"x\"\nport = 7001\n{b}\n"
        )
    };
    single_error(
        &pools("always_on = true\nstart_after = [\"c\"]", ""),
        5,
        "pools.a.start_after",
        "\"c\" is not a pool",
    );
    single_error(
        &pools("always_on = true\nstart_after = [\"b\"]", ""),
        5,
        "pools.a.start_after",
        "\"b\" is not an always_on pool",
    );
    single_error(
        &pools("start_after = [\"b\"]", "always_on = true"),
        4,
        "pools.a.start_after",
        "this pool is not one",
    );
    single_error(
        &pools("always_on = true\nstart_after = [\"a\"]", ""),
        5,
        "pools.a.start_after",
        "a pool cannot start after itself",
    );
    let found = errors(&pools(
        "always_on = true\nstart_after = [\"b\"]",
        "always_on = true\nstart_after = [\"a\"]",
    ));
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_error(
        &found,
        5,
        "pools.a.start_after",
        "\"b\" starts after \"a\" already (a cycle)",
    );
    assert_error(
        &found,
        11,
        "pools.b.start_after",
        "\"a\" starts after \"b\" already (a cycle)",
    );
    // A pool that could not be read was reported already.
    single_error(
        &pools(
            "always_on = true\nstart_after = [\"b\"]",
            "always_on = true\nwake = 1",
        ),
        11,
        "pools.b.wake",
        "must be a string",
    );
    ok(&pools(
        "always_on = true\nstart_after = [\"b\"]",
        "always_on = true",
    ));
}

#[test]
fn clashing_addresses_point_at_the_instance_key() {
    single_error(
        "[backends.api]\ncommand = \"x\"\nport = 7000\n\n[pools.web]\ncommand = \"x\"\nport = 6999\nreplicas = 2\n",
        7,
        "pools.web.port",
        "port 7000 is already used by backend \"api\"",
    );
    single_error(
        "[server]\nport = 7000\n\n[pools.web]\ncommand = \"x\"\nport = 7000\n",
        6,
        "pools.web.port",
        "port 7000 is the proxy's own port",
    );
    single_error(
        "[server]\nadmin_port = 7000\n\n[pools.web]\ncommand = \"x\"\nport = 7000\n",
        6,
        "pools.web.port",
        "port 7000 is the admin port",
    );
    single_error(
        "[pools.a]\ncommand = \"x\"\nsocket = \"/run/a.sock\"\n\n[pools.b]\n[[pools.b.instances]]\ncommand = \"x\"\nport = 7000\n[[pools.b.instances]]\ncommand = \"x\"\nsocket = \"/run/a.sock\"\n",
        11,
        "pools.b.instances[1].socket",
        "socket /run/a.sock is already used by instance 0 of pool \"a\"",
    );
    single_error(
        "[pools.web]\n[[pools.web.instances]]\ncommand = \"x\"\nport = 7000\n[[pools.web.instances]]\ncommand = \"x\"\nport = 7000\n",
        7,
        "pools.web.instances[1].port",
        "port 7000 is already used by instance 0 of pool \"web\"",
    );
    // Someone else's address may serve two pools.
    ok("[pools.a]\naddress = \"127.0.0.1:7000\"\n\n[pools.b]\naddress = \"127.0.0.1:7000\"\n");
}

#[test]
fn clashing_container_names_point_at_the_name() {
    single_error(
        "[backends.api]\ntype = \"docker\"\nimage = \"x\"\ncontainer_name = \"shared\"\nport = 7000\n\n[pools.web]\ntype = \"docker\"\nimage = \"x\"\ncontainer_name = \"shared\"\nport = 7100\n",
        10,
        "pools.web.container_name",
        "container name \"shared\" is already used by backend \"api\"",
    );
    // A default name clashes at the pool's key.
    single_error(
        "[backends.web-0]\ntype = \"docker\"\nimage = \"x\"\nport = 7000\n\n[pools.web]\ntype = \"docker\"\nimage = \"x\"\nport = 7100\n",
        6,
        "pools.web",
        "container name \"spawngate-web-0\" is already used by backend \"web-0\"",
    );
}

#[test]
fn a_pool_name_is_no_hostname_so_a_host_may_be_called_like_a_pool() {
    // "api" is a valid Host as well as a pool name; a host table or alias by that name is an ordinary
    // name (unlike a `[backends]` entry's, whose catch-all the table replaces).
    let config = ok(r#"
[pools.api]
command = "api"
port = 7000

[hosts."api"]
aliases = ["api.example.com"]
[[hosts."api".routes]]
to = "api"

[pools.web]
command = "web"
port = 7100

[hosts."www.example.com"]
aliases = ["web"]
[[hosts."www.example.com".routes]]
to = "web"
"#);
    assert_eq!(config.hosts[0].name, "api");
    assert_eq!(config.hosts[1].aliases, ["web"]);
    let found = errors(
        "[pools.api]\ncommand = \"api\"\nport = 7000\n\n[hosts.\"a.test\"]\naliases = [\"api\"]\n[[hosts.\"a.test\".routes]]\nto = \"nowhere\"\n",
    );
    assert_eq!(found.len(), 1, "only the `to`: {found:#?}");
    assert_error(
        &found,
        7,
        "hosts.\"a.test\".routes[0].to",
        "names no backend",
    );
}
