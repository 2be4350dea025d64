//! The checks across templates and against the rest of the file: port ranges (at `host_ports`) and
//! hostname spaces (at `hostname`), each clash reported once, at the later template.

use super::super::{assert_error, errors, ok, single_error};
use super::MINIMAL;

/// A template `name` with its hostname and range; its keys are on the 4 lines from its header.
fn session(name: &str, hostname: &str, ports: &str) -> String {
    format!(
        "\n[sessions.{name}]\nhostname = \"{hostname}\"\nhost_ports = \"{ports}\"\ncommand = \"x\"\n"
    )
}

/// A `[hosts]` table named `name` (with `aliases`), answering by itself.
fn host(name: &str, aliases: &str) -> String {
    format!(
        "\n[hosts.\"{name}\"]\naliases = [{aliases}]\nroutes = [{{ respond = {{ body = \"hi\" }} }}]\n"
    )
}

#[test]
fn a_range_holds_neither_the_proxy_port_nor_the_admin_port() {
    let found = errors(&format!(
        "[server]\nport = 20500\nadmin_port = 20999\n{MINIMAL}"
    ));
    assert_eq!(found.len(), 2, "{found:#?}");
    let key = "sessions.nb.host_ports";
    assert_error(
        &found,
        7,
        key,
        "holds the proxy's own port 20500 ([server] port)",
    );
    assert_error(
        &found,
        7,
        key,
        "holds the admin port 20999 ([server] admin_port)",
    );
    // Listening elsewhere than loopback, they share no port with a session's instance.
    ok(&format!(
        "[server]\nbind = \"10.1.2.3\"\nadmin_bind = \"::1\"\nport = 20500\nadmin_port = 20501\n{MINIMAL}"
    ));
    // Port 0 is chosen by the OS, outside any range.
    ok(&format!(
        "[server]\nport = 0\n{}public_url = \"http://{{hostname}}\"\n",
        MINIMAL
    ));
}

#[test]
fn ranges_of_two_templates_do_not_overlap() {
    let text = session("a", "{id}.a.example.com", "20000-20099")
        + &session("b", "{id}.b.example.com", "20099-20199")
        + &session("c", "{id}.c.example.com", "20200-20299");
    single_error(
        &text,
        9,
        "sessions.b.host_ports",
        "overlaps host_ports of [sessions.a] (20000-20099)",
    );
    // Named by the one written first, whatever the names' order.
    let text = session("z", "{id}.z.example.com", "20000-20099")
        + &session("a", "{id}.a.example.com", "20050-20050");
    single_error(
        &text,
        9,
        "sessions.a.host_ports",
        "[sessions.z] (20000-20099)",
    );
}

#[test]
fn a_range_holds_no_port_of_a_backend_or_a_pool_instance() {
    let backends = r#"
[backends."app.localhost"]
command = "app"
port = 20005

[backends."db.localhost"]
type = "docker"
image = "db"
port = 20006

[pools.web]
command = "web"
port = 20998
replicas = 4
"#;
    let found = errors(&format!("{backends}{MINIMAL}"));
    assert_eq!(found.len(), 3, "{found:#?}");
    let key = "sessions.nb.host_ports";
    assert_error(
        &found,
        18,
        key,
        "holds port 20005, used by backend \"app.localhost\"",
    );
    assert_error(
        &found,
        18,
        key,
        "holds port 20006, used by backend \"db.localhost\"",
    );
    assert_error(&found, 18, key, "holds port 20998, used by pool \"web\"");
    // An instance someone else runs elsewhere shares no port with this machine.
    let external = "[pools.ext]\naddress = \"10.9.9.9:20005\"\n";
    ok(&format!("{external}{MINIMAL}"));
}

#[test]
fn a_hostname_space_holds_no_backend_host() {
    let text =
        "[backends.\"k1.nb.example.com\"]\ncommand = \"x\"\nport = 3000\n".to_string() + MINIMAL;
    single_error(
        &text,
        6,
        "sessions.nb.hostname",
        "this template's hostname space holds [backends.\"k1.nb.example.com\"]",
    );
    // The domain itself, and names a label deeper, are outside it.
    for outside in ["nb.example.com", "a.k1.nb.example.com"] {
        let text = format!("[backends.\"{outside}\"]\ncommand = \"x\"\nport = 3000\n{MINIMAL}");
        ok(&text);
    }
}

#[test]
fn a_hostname_space_holds_no_host_name_or_alias() {
    let key = "sessions.nb.hostname";
    single_error(
        &(host("k1.nb.example.com", "") + MINIMAL),
        7,
        key,
        "holds [hosts.\"k1.nb.example.com\"]",
    );
    single_error(
        &(host("example.org", "\"www.example.org\", \"k2.nb.example.com\"") + MINIMAL),
        7,
        key,
        "holds \"k2.nb.example.com\", an alias of [hosts.\"example.org\"]",
    );
    // A wildcard of exactly the template's space would never be reached.
    single_error(
        &(host("*.nb.example.com", "") + MINIMAL),
        7,
        key,
        "holds [hosts.\"*.nb.example.com\"]",
    );
    // A wider one keeps what is not a session's.
    ok(&(host("*.example.com", "\"*.nb.example.org\"")
        + &session("nb", "nb-{id}.example.com", "20000-20099")));
}

#[test]
fn a_host_that_pairs_with_a_backend_is_reported_once() {
    let text = "[backends.\"k1.nb.example.com\"]\ncommand = \"x\"\nport = 3000\n".to_string()
        + &host("k1.nb.example.com", "")
        + MINIMAL;
    let found = errors(&text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_error(
        &found,
        10,
        "sessions.nb.hostname",
        "[backends.\"k1.nb.example.com\"]",
    );
}

#[test]
fn two_templates_share_no_hostname() {
    let overlapping = [
        ("{id}.nb.example.com", "{key}.nb.example.com"),
        ("{id}.nb.example.com", "x-{id}.nb.example.com"),
        ("{id}-a.nb.example.com", "{key}.nb.example.com"),
        ("a-{id}.example.com", "a-b-{key}-c.example.com"),
    ];
    for (first, second) in overlapping {
        let text = session("a", first, "20000-20099") + &session("b", second, "20100-20199");
        single_error(
            &text,
            8,
            "sessions.b.hostname",
            "this template's hostname space overlaps that of [sessions.a]",
        );
    }
    let apart = [
        ("{id}.nb.example.com", "{id}.example.com"),
        ("a-{id}.example.com", "b-{id}.example.com"),
        ("{id}-a.example.com", "{id}-b.example.com"),
        ("{id}.nb.example.com", "{id}.nb.example.org"),
    ];
    for (first, second) in apart {
        ok(&(session("a", first, "20000-20099") + &session("b", second, "20100-20199")));
    }
}
