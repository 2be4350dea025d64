//! Session-lived backends against the real binary: get-or-create by key, the access gate (401 that tells
//! nothing, the token traded for a cookie once, `access = "hostname"`), what the backend receives (env and
//! headers, never the token), the admin token, and the example web app followed end to end.

mod support;

use support::routing::{ask, ask_get, Proto, PROTOCOLS};
use support::sessions::*;
use support::*;

#[test]
fn without_a_credential_every_session_host_gets_the_same_401() {
    let proxy = Proxy::start(&echo_template("nb", 2, "idle_timeout_secs = 60", &[]));
    let s = create(&proxy, "nb", &key_body("private"));
    served(proxy.addr(), Proto::Http1, &s, &[s.token_header()]);
    let nobody = format!("{}.nb.test", "a".repeat(26));
    let forged = "b".repeat(52);
    for proto in PROTOCOLS {
        let bare = ask_get(proxy.addr(), proto, &s.hostname, "/probe-401");
        assert_eq!(bare.status, 401, "{proto:?}: {}", bare.text());
        assert_eq!(bare.header("x-proxy-error"), Some("SESSION_UNAUTHORIZED"));
        assert_eq!(bare.json()["code"], "SESSION_UNAUTHORIZED");
        let cases = [
            (
                "no such session",
                ask_get(proxy.addr(), proto, &nobody, "/probe-401"),
            ),
            (
                "a wrong token",
                ask(
                    proxy.addr(),
                    proto,
                    "GET",
                    &s.hostname,
                    "/probe-401",
                    &[(SESSION_HEADER, &forged)],
                ),
            ),
            (
                "a wrong cookie",
                ask(
                    proxy.addr(),
                    proto,
                    "GET",
                    &s.hostname,
                    "/probe-401",
                    &[("cookie", "sg_s=nope")],
                ),
            ),
            (
                "another session's token",
                ask(
                    proxy.addr(),
                    proto,
                    "GET",
                    &nobody,
                    "/probe-401",
                    &[s.token_header()],
                ),
            ),
        ];
        for (what, reply) in &cases {
            assert_same_answer(&bare, reply, what);
        }
        let auth = format!("/.spawngate/auth?token={forged}&next=/");
        let at_existing = ask_get(proxy.addr(), proto, &s.hostname, &auth);
        let at_missing = ask_get(proxy.addr(), proto, &nobody, &auth);
        assert_eq!(at_existing.status, 401, "{proto:?}");
        assert_same_answer(
            &at_existing,
            &at_missing,
            "a forged token at /.spawngate/auth",
        );
    }
    proxy.log_barrier();
    assert!(
        !proxy.log_contains("GET /probe-401"),
        "an unauthorized request reached the backend"
    );
}

#[test]
fn the_auth_link_trades_its_token_for_a_cookie_once() {
    let http = echo_template("nb", 2, "idle_timeout_secs = 60", &[]);
    let https = echo_template("sec", 2, "public_url = \"https://{hostname}\"", &[]);
    let proxy = Proxy::start(&format!("{http}\n{https}"));
    let mut credentials = Vec::new();
    for proto in PROTOCOLS {
        // Each protocol its own connect: a traded token is spent.
        let s = create(&proxy, "nb", &key_body("browser"));
        credentials.push(s.token().to_string());
        let traded = ask_get(proxy.addr(), proto, &s.hostname, &s.url_path());
        assert_eq!(traded.status, 303, "{proto:?}: {}", traded.text());
        assert_eq!(traded.header("location"), Some("/"), "{proto:?}");
        let set_cookie = traded.header("set-cookie").expect("Set-Cookie").to_string();
        let pair = cookie_pair(&set_cookie);
        credentials.push(pair["sg_s=".len()..].to_string());
        assert!(pair.starts_with("sg_s=") && pair.len() > 20, "{set_cookie}");
        let attributes: Vec<&str> = set_cookie.split(';').skip(1).map(str::trim).collect();
        assert_eq!(
            attributes,
            ["Path=/", "HttpOnly", "SameSite=Lax"],
            "{proto:?}"
        );
        served(proxy.addr(), proto, &s, &[("cookie", &pair)]);
        // The proxy's namespace, however it is spelled, is never forwarded, even with a cookie.
        for path in [
            "/.spawngate/elsewhere",
            "/%2Espawngate/auth?token=x",
            "/a/../.spawngate/x",
        ] {
            let own = ask(
                proxy.addr(),
                proto,
                "GET",
                &s.hostname,
                path,
                &[("cookie", &pair)],
            );
            assert!(
                own.header("x-echo-pid").is_none(),
                "{proto:?}: {path} was forwarded"
            );
        }
        let twice = ask_get(proxy.addr(), proto, &s.hostname, &s.url_path());
        assert_eq!(twice.status, 401, "{proto:?}: a spent token opens nothing");

        let next = create(&proxy, "nb", &key_body("browser"));
        let deep = format!("/.spawngate/auth?token={}&next=/deep/page", next.token());
        let moved = ask_get(proxy.addr(), proto, &s.hostname, &deep);
        assert_eq!(moved.status, 303, "{proto:?}");
        assert_eq!(moved.header("location"), Some("/deep/page"), "{proto:?}");
    }
    let secure = create(&proxy, "sec", &key_body("tls"));
    assert!(secure.url.starts_with("https://"), "{}", secure.url);
    let traded = ask_get(
        proxy.addr(),
        Proto::Http1,
        &secure.hostname,
        &secure.url_path(),
    );
    assert_eq!(traded.status, 303);
    let set_cookie = traded.header("set-cookie").unwrap_or_default();
    assert!(
        set_cookie.split(';').any(|a| a.trim() == "Secure"),
        "{set_cookie}"
    );
    proxy.log_barrier();
    // The echo prints each request line it gets ("GET /path HTTP/1.1").
    let reached = proxy
        .log_lines()
        .iter()
        .any(|l| l.starts_with("GET /") && l.to_ascii_lowercase().contains("spawngate/"));
    assert!(!reached, "a request under /.spawngate/ reached the backend");
    for credential in &credentials {
        let lines = log_lines_with(&proxy, credential);
        assert!(
            lines.is_empty(),
            "a token or cookie is in the log: {lines:#?}"
        );
    }
}

#[test]
fn the_backend_gets_the_session_stamp_and_env_but_never_the_token() {
    let keys = "idle_timeout_secs = 60\nlifetime_secs = 600\nallow_env = [\"NOTEBOOK_ID\"]";
    let proxy = Proxy::start(&echo_template("nb", 2, keys, &[("MODE", "notebook")]));
    let body = r#"{"key":"nb-7731","user":"alice","env":{"NOTEBOOK_ID":"7731"}}"#;
    let s = create(&proxy, "nb", body);
    let traded = ask_get(proxy.addr(), Proto::Http1, &s.hostname, &s.url_path());
    let cookie = cookie_pair(traded.header("set-cookie").expect("a cookie"));
    let header_token = create(&proxy, "nb", body);
    let forged = [
        ("X-Spawngate-User", "mallory"),
        ("x-spawngate-secret", "forged"),
        ("X-SPAWNGATE-SESSION", "someone-else"),
        ("X-Spawngate-Anything", "else"),
    ];
    let cookies = format!("a=1; {cookie}; b=2");
    let mut secrets = Vec::new();
    for proto in PROTOCOLS {
        let mut fields = forged.to_vec();
        match proto {
            Proto::Http1 => fields.push(("cookie", &cookies)),
            Proto::H2c => fields.extend([header_token.token_header(), ("cookie", "a=1; b=2")]),
        }
        let reply = served(proxy.addr(), proto, &s, &fields);
        let json = reply.json();
        let seen = |name: &str| echoed_header_values(&json, name);
        assert_eq!(seen("x-spawngate-user"), ["alice"], "{proto:?}");
        assert_eq!(seen("x-spawngate-session"), [s.id.as_str()], "{proto:?}");
        assert!(seen("x-spawngate-token").is_empty(), "{proto:?}");
        assert!(seen("x-spawngate-anything").is_empty(), "{proto:?}");
        let secret = seen("x-spawngate-secret");
        assert_eq!(secret.len(), 1, "{proto:?}");
        assert_ne!(secret[0], "forged");
        let forwarded = seen("cookie").join(";");
        let pairs: Vec<&str> = forwarded.split(';').map(str::trim).collect();
        assert_eq!(pairs, ["a=1", "b=2"], "{proto:?}: only sg_s is removed");
        let text = reply.text();
        for credential in [s.token(), header_token.token(), &cookie["sg_s=".len()..]] {
            assert!(
                !text.contains(credential),
                "{proto:?}: a credential was forwarded: {text}"
            );
        }
        secrets.push((secret[0].clone(), reply.echo_pid().unwrap()));
    }
    assert_eq!(secrets[0], secrets[1], "one process, one secret");

    let (secret, pid) = &secrets[0];
    let env = environ(*pid);
    let var = |name: &str| env.get(name).cloned().unwrap_or_default();
    assert_eq!(&var("SPAWNGATE_SESSION_SECRET"), secret);
    assert_eq!(var("SPAWNGATE_SESSION_ID"), s.id);
    assert_eq!(var("SPAWNGATE_SESSION_KEY"), "nb-7731");
    assert_eq!(
        var("SPAWNGATE_PUBLIC_URL"),
        format!("http://{}", s.hostname)
    );
    let expires = s.json.get("expires_at").and_then(|e| e.as_i64()).unwrap();
    assert_eq!(var("SPAWNGATE_SESSION_DEADLINE"), expires.to_string());
    let ready_url = var("SERVERLESS_PROXY_READY_URL");
    assert!(
        ready_url.ends_with(&format!("/ready/session/{}", s.id)),
        "{ready_url}"
    );
    assert_eq!(
        (var("NOTEBOOK_ID"), var("MODE")),
        ("7731".into(), "notebook".into())
    );
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<String> = cmdline
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into())
        .collect();
    assert_eq!(
        args[1..3],
        ["--port".to_string(), var("PORT")],
        "{{port}} substituted: {args:?}"
    );

    proxy.log_barrier();
    for (what, credential) in [
        ("token", s.token()),
        ("header token", header_token.token()),
        ("cookie", &cookie[5..]),
    ] {
        let lines = log_lines_with(&proxy, credential);
        assert!(
            lines.is_empty(),
            "the {what} is in the proxy's log: {lines:#?}"
        );
    }
}

#[test]
fn access_hostname_and_none_need_no_token() {
    let open = echo_template("open", 2, "access = \"hostname\"", &[]);
    let public = echo_template("pub", 2, "access = \"none\"", &[]);
    let proxy = Proxy::start(&format!("{open}\n{public}"));
    for template in ["open", "pub"] {
        let s = create(&proxy, template, &key_body(template));
        assert_eq!(s.token, None, "{:?}", s.json);
        assert_eq!(s.url, format!("http://{}/", s.hostname));
        for proto in PROTOCOLS {
            let reply = served(proxy.addr(), proto, &s, &[]);
            let secret = reply.echoed_header("x-spawngate-secret");
            assert!(secret.is_some(), "{template} {proto:?}: still stamped");
        }
    }
}

#[test]
fn the_admin_token_guards_every_endpoint_but_health_and_ready_callbacks() {
    let dir = TempDir::new("admin-token");
    let token = "a-long-admin-token-0123456789";
    let token_file = dir.file("admin-token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    // The echo tells the proxy it is ready through its ready URL, without any token.
    let template = echo_template("nb", 2, "", &[("ECHO_READY_CALLBACK", "1")]);
    let config = format!(
        "[server]\nport = 0\nadmin_port = 0\nbind = \"127.0.0.1\"\nadmin_token_file = {}\n\n{template}",
        toml_str(token_file.to_str().unwrap())
    );
    let proxy = Proxy::start(&config);
    let bearer = format!("Authorization: Bearer {token}");
    assert_eq!(admin(&proxy, "GET", "/health", &[], b"").status, 200);
    let refused = [
        admin(&proxy, "GET", "/sessions", &[], b""),
        admin(&proxy, "GET", "/backends", &[], b""),
        admin(
            &proxy,
            "POST",
            "/sessions/nb",
            &["Authorization: Bearer wrong-token-0123456789"],
            b"{}",
        ),
        admin(
            &proxy,
            "POST",
            "/sessions/nb",
            &[&format!("Authorization: Basic {token}")],
            b"{}",
        ),
        admin(&proxy, "POST", "/sessions/nb", &[], b"{}"),
    ];
    for response in &refused {
        assert_proxy_error(response, "UNAUTHORIZED", 401);
    }
    assert_eq!(
        admin(&proxy, "GET", "/sessions", &[&bearer], b"").status,
        200
    );
    let lower = format!("authorization: bearer {token}");
    let response = admin(&proxy, "POST", "/sessions/nb", &[&lower], b"{}");
    let s = Session::from_response(&response);
    assert_eq!(s.status, 201);
    // Ready only through the callback: it was let in.
    served(proxy.addr(), Proto::Http1, &s, &[s.token_header()]);
    proxy.log_barrier();
    assert!(
        log_lines_with(&proxy, token).is_empty(),
        "the admin token is in the log"
    );
}

#[test]
fn the_example_app_hands_each_visitor_a_session_link_that_works() {
    let binary = example_app();
    // examples/sessions.toml as shipped, on ports of this test: the proxy starts the app on demand.
    let example = runnable_example(&binary);
    let proxy = Proxy::start(&example.config);
    let page = ask_get(proxy.addr(), Proto::Http1, "app.localhost", "/");
    assert_eq!(page.status, 200, "{}", page.text());
    let visitor = cookie_pair(page.header("set-cookie").expect("a visitor cookie"));
    let link = href_of(&page.text());
    assert!(link.starts_with("http://"), "{link}");
    assert!(
        link.contains(&format!(".room.localhost:{}/", example.port)),
        "{link}"
    );
    let (host, path) = split_url(&link);
    for proto in PROTOCOLS {
        let bare = ask_get(proxy.addr(), proto, &host, "/");
        assert_eq!(bare.status, 401, "{proto:?}: the link is the way in");
    }
    let traded = ask_get(proxy.addr(), Proto::Http1, &host, &path);
    assert_eq!(traded.status, 303, "{}", traded.text());
    let cookie = cookie_pair(traded.header("set-cookie").expect("sg_s"));
    let location = traded.header("location").unwrap_or("/").to_string();
    for proto in PROTOCOLS {
        let landed = ask(
            proxy.addr(),
            proto,
            "GET",
            &host,
            &location,
            &[("cookie", &cookie)],
        );
        assert_eq!(landed.status, 200, "{proto:?}: {}", landed.text());
        assert!(landed.echoed_header("x-spawngate-session").is_some());
    }

    // The same visitor comes back: the same session, a new link; another visitor gets another room.
    let fields = [("cookie", visitor.as_str())];
    let again = ask(
        proxy.addr(),
        Proto::Http1,
        "GET",
        "app.localhost",
        "/",
        &fields,
    );
    let second = href_of(&again.text());
    assert_eq!(split_url(&second).0, host, "one visitor, one session");
    assert_ne!(second, link, "every visit mints a new token");
    let stranger = ask_get(proxy.addr(), Proto::H2c, "app.localhost", "/");
    assert_ne!(split_url(&href_of(&stranger.text())).0, host);
}

#[test]
fn the_readme_template_and_the_example_config_check() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let section = &readme[readme.find("\n## Sessions\n").expect("a Sessions section")..];
    let config = section
        .split("```toml\n")
        .nth(1)
        .and_then(|block| block.split("\n```").next())
        .expect("a complete config in the Sessions section");
    let dir = TempDir::new("sessions-readme");
    let readme_config = dir.file("readme.toml");
    std::fs::write(&readme_config, config).unwrap();
    for path in [readme_config, root.join("examples/sessions.toml")] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_spawngate"))
            .arg("check")
            .arg(&path)
            .output()
            .expect("run spawngate check");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 session template"),
            "{} does not check: {stdout}{}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
