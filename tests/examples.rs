//! The shipped example configs and the README's routing examples: each is a valid config, and
//! `examples/routing.toml` answers as its comments say when run (ports and the echo binary's path swapped
//! for the test's).

mod support;

use std::path::Path;
use std::process::Command;

use support::routing::{ask, ask_get, PROTOCOLS};
use support::*;

fn repo_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// `text` without its `[server]` table (the harness writes its own), with the echo binary's real path
/// and free ports in place of the example's.
fn runnable(text: &str) -> String {
    let mut out = String::new();
    let mut in_server = false;
    for line in text.lines() {
        if line.starts_with('[') {
            in_server = line.trim() == "[server]";
        }
        if in_server {
            continue;
        }
        let line = if line.starts_with("port = ") {
            format!("port = {}", free_port())
        } else {
            line.replace("target/release/spawngate-echo", echo_bin())
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[test]
fn the_routing_example_answers_as_its_comments_say() {
    let proxy = Proxy::start(&runnable(&repo_file("examples/routing.toml")));
    for proto in PROTOCOLS {
        let reply = ask_get(proxy.addr(), proto, "site.localhost", "/api/users?page=2");
        assert_eq!(reply.echoed_path(), "/users?page=2", "{proto:?}");
        assert_eq!(
            reply.echoed_header("x-forwarded-prefix").as_deref(),
            Some("/api")
        );
        assert_eq!(reply.echoed_header("x-site").as_deref(), Some("site"));
        assert_eq!(reply.header("x-frame-options"), Some("DENY"), "{proto:?}");
        assert_eq!(reply.header("cache-control"), Some("no-store"), "{proto:?}");

        let robots = ask_get(proxy.addr(), proto, "site.localhost", "/robots.txt");
        assert_eq!(
            robots.text(),
            "User-agent: *\nDisallow: /api/\n",
            "{proto:?}"
        );

        let moved = ask_get(proxy.addr(), proto, "site.localhost", "/blog/hello");
        assert_eq!(moved.status, 308, "{proto:?}");
        assert_eq!(
            moved.header("location"),
            Some("https://site.localhost/posts/hello")
        );

        let refused = ask(
            proxy.addr(),
            proto,
            "DELETE",
            "site.localhost",
            "/api/x",
            &[],
        );
        assert_eq!(refused.status, 405, "{proto:?}");
        assert_eq!(refused.header("allow"), Some("GET, POST, HEAD"));

        let forbidden = ask_get(proxy.addr(), proto, "site.localhost", "/admin");
        assert_eq!(forbidden.status, 403, "{proto:?}");
        let admin = ask(
            proxy.addr(),
            proto,
            "GET",
            "site.localhost",
            "/admin",
            &[("X-Admin-Token", "t")],
        );
        assert_eq!(admin.echoed_path(), "/admin", "{proto:?}");

        let app = ask_get(proxy.addr(), proto, "www.site.localhost", "/");
        assert_eq!(app.echoed_path(), "/", "{proto:?}");
    }
    let explained =
        proxy.admin_get("/routes/explain?host=site.localhost&path=/api/x&method=DELETE");
    assert_eq!(explained.status, 200);
    assert!(explained.text().contains("405 METHOD_NOT_ALLOWED"));
}

/// The complete configs (```toml blocks that start with `[server]`) of the README's "Routing" section.
fn readme_routing_configs() -> Vec<String> {
    let readme = repo_file("README.md");
    let start = readme.find("\n## Routing\n").expect("a Routing section");
    let section = &readme[start + 1..];
    let end = section[3..].find("\n## ").map_or(section.len(), |e| e + 3);
    section[..end]
        .split("```toml\n")
        .skip(1)
        .filter_map(|b| b.split("\n```").next())
        .filter(|b| b.starts_with("[server]"))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_readme_routing_example_checks_and_answers() {
    let configs = readme_routing_configs();
    assert_eq!(configs.len(), 3, "three complete examples");
    let dir = TempDir::new("readme-examples");
    for (i, config) in configs.iter().enumerate() {
        let path = dir.file(&format!("example-{i}.toml"));
        std::fs::write(&path, config).expect("write");
        let output = Command::new(env!("CARGO_BIN_EXE_spawngate"))
            .arg("check")
            .arg(&path)
            .output()
            .expect("run check");
        assert!(
            output.status.success(),
            "README routing example {} does not check:\n{config}\n{}",
            i + 1,
            String::from_utf8_lossy(&output.stderr)
        );
    }

    // 1: answers in front of an existing backend.
    let proxy = Proxy::start(&runnable(&configs[0]));
    for proto in PROTOCOLS {
        let robots = ask_get(proxy.addr(), proto, "shop.example.com", "/robots.txt");
        assert_eq!(
            robots.text(),
            "User-agent: *\nDisallow: /cart\n",
            "{proto:?}"
        );
        let moved = ask_get(proxy.addr(), proto, "shop.example.com", "/blog/x?y=1");
        assert_eq!(
            moved.header("location"),
            Some("https://blog.example.com/blog/x?y=1")
        );
    }
    assert_eq!(
        proxy.state_of("shop.example.com"),
        "stopped",
        "nothing woke it"
    );
    let app = ask_get(proxy.addr(), PROTOCOLS[0], "shop.example.com", "/cart");
    assert_eq!(app.echoed_path(), "/cart");

    // 3: tenants under a wildcard, a file store, a maintenance switch.
    let proxy = Proxy::start(&runnable(&configs[2]));
    for proto in PROTOCOLS {
        let tenant = ask_get(proxy.addr(), proto, "acme.apps.example.com", "/dashboard");
        assert_eq!(tenant.echoed_path(), "/dashboard", "{proto:?}");
        let down = ask_get(proxy.addr(), proto, "acme.apps.example.com", "/maintenance");
        assert_eq!(down.status, 503, "{proto:?}");
        let file = ask_get(
            proxy.addr(),
            proto,
            "files.example.com",
            "/bucket/a%2Fb.txt",
        );
        assert_eq!(file.echoed_path(), "/bucket/a%2Fb.txt", "{proto:?}");
        let refused = ask(
            proxy.addr(),
            proto,
            "DELETE",
            "acme.apps.example.com",
            "/uploads/x",
            &[],
        );
        assert_eq!(
            refused.echoed_path(),
            "/uploads/x",
            "{proto:?}: the tenant app takes it"
        );
    }
}
