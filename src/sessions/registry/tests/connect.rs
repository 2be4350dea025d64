//! Connects: get-or-create, conflicts, refused bodies, the reply, the instance made, ports.

use super::*;
use crate::config::{DockerSpec, PullPolicy};
use crate::sessions::route::SessionUpdate;
use crate::sessions::secret;
use crate::upstream::UpstreamAddr;

const KEYED: &str = r#"{"key": "nb-7731", "user": "alice", "env": {"NOTEBOOK_ID": "7731"}}"#;

#[test]
fn a_key_gets_201_then_200_with_one_add_and_a_credential_each() {
    let mut h = Harness::one(template("kernel"));
    let first = h.create("kernel", KEYED);
    assert!(matches!(
        first.effects.as_slice(),
        [
            Effect::Add { .. },
            Effect::Publish(SessionUpdate::Put(_)),
            Effect::Start(_),
            Effect::Event { last: false, .. }
        ]
    ));
    assert!(matches!(first.effects[2], Effect::Start(b) if b == first.backend));
    assert_eq!(events(&first.effects), [("waiting".to_string(), false)]);
    assert_eq!(first.json["state"], "waiting");
    assert_eq!(first.json["key"], "nb-7731");

    h.now += 5_000;
    let (reply, effects) = h.connect("kernel", r#"{"key": "nb-7731", "user": "bob"}"#);
    assert_eq!(reply.status, 200, "{}", text(&reply));
    let again = json(&reply);
    assert_eq!(again["id"], first.json["id"]);
    assert_eq!(again["hostname"], first.json["hostname"]);
    assert_ne!(again["token"], first.json["token"]);
    assert_eq!(adds(&effects), 0);
    let routes = puts(&effects);
    assert_eq!(effects.len(), 1);
    assert_eq!(routes[0].credentials.len(), 2);
    assert_eq!(routes[0].credentials[1].user.as_deref(), Some("bob"));
    assert_eq!(
        routes[0].token(again["token"].as_str().unwrap().as_bytes()),
        Some(1)
    );
    // The idle window restarted; nothing left in flight.
    assert_eq!(first.activity.last_active_ms(), h.now);
    assert_eq!(first.activity.in_flight(), 0);
}

#[test]
fn connects_at_the_same_instant_are_one_session() {
    let mut h = Harness::one(template("kernel"));
    let mut created = 0;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let (reply, effects) = h.connect("kernel", KEYED);
        created += adds(&effects);
        ids.push(json(&reply)["id"].as_str().unwrap().to_string());
    }
    assert_eq!(created, 1);
    assert!(ids.iter().all(|id| id == &ids[0]));
}

#[test]
fn two_keys_are_two_sessions_with_their_own_hostname_and_port() {
    let mut h = Harness::one(template("kernel"));
    let a = h.create("kernel", r#"{"key": "a"}"#);
    let b = h.create("kernel", r#"{"key": "b"}"#);
    assert_ne!(a.id, b.id);
    assert_ne!(a.backend, b.backend);
    assert_ne!(a.json["hostname"], b.json["hostname"]);
    assert_eq!(a.config.port, 20000);
    assert_eq!(b.config.port, 20001);
}

#[test]
fn a_key_live_in_another_template_is_a_conflict() {
    let mut h = Harness::new(vec![template("kernel"), template("editor")]);
    h.create("kernel", r#"{"key": "doc-1"}"#);
    let (reply, effects) = h.connect("editor", r#"{"key": "doc-1"}"#);
    assert_eq!(reply.status, 409);
    assert_eq!(code(&reply), "SESSION_KEY_CONFLICT");
    assert!(effects.is_empty());
}

#[test]
fn bad_requests_are_400_and_change_nothing() {
    let mut keyed = template("kernel");
    keyed.hostname.var = HostVar::Key;
    keyed.key_pattern = regex_lite::Regex::new("^.+$").unwrap();
    let mut h = Harness::new(vec![template("kernel"), {
        keyed.name = "keyed".into();
        keyed
    }]);
    let big = format!(r#"{{"user": "{}"}}"#, "x".repeat(70 * 1024));
    let cases: &[(&str, &str)] = &[
        ("kernel", "{"),
        ("kernel", "[]"),
        ("kernel", r#""key""#),
        ("kernel", r#"{"key": "nb-1", "color": "red"}"#),
        ("kernel", r#"{"key": 7}"#),
        ("kernel", r#"{"key": "Not_A_Key"}"#),
        ("kernel", r#"{"key": "a", "key": "b"}"#),
        ("kernel", r#"{"env": {"HOME": "/root"}}"#),
        ("kernel", r#"{"env": {"SPAWNGATE_SESSION_ID": "mine"}}"#),
        ("kernel", r#"{"env": {"NOTEBOOK_ID": 7}}"#),
        ("kernel", r#"{"env": {"NOTEBOOK_ID": "a\u0000b"}}"#),
        ("kernel", r#"{"user": "alice\r\nX-Spawngate-User: root"}"#),
        ("kernel", r#"{"user": "alice\n"}"#),
        ("kernel", &big),
        // A {key} hostname wants a DNS label even when the pattern allows more.
        ("keyed", r#"{"key": "-dash"}"#),
        ("keyed", r#"{"key": "UPPER"}"#),
        ("keyed", r#"{"key": "a.b"}"#),
    ];
    for (template, body) in cases {
        let (reply, effects) = h.connect(template, body);
        assert_eq!(reply.status, 400, "{body}: {}", text(&reply));
        assert_eq!(code(&reply), "INVALID_SESSION_REQUEST");
        assert!(effects.is_empty());
    }
    let long_env = format!(r#"{{"env": {{"NOTEBOOK_ID": "{}"}}}}"#, "v".repeat(4097));
    assert_eq!(h.connect("kernel", &long_env).0.status, 400);
    let not_utf8 = h.reg.connect(
        "kernel",
        b"{\"user\": \"\xff\"}",
        BackendId::new(99, 1),
        h.now,
        &mut |_| true,
    );
    assert_eq!(not_utf8.0.status, 400);
    assert_eq!(json(&h.reg.list(h.now))["count"], 0);
    // Empty bodies are `{}`; null members are absent members; a fine {key} label passes.
    assert_eq!(h.connect("kernel", "").0.status, 201);
    assert_eq!(h.connect("kernel", r#"{"key": null}"#).0.status, 201);
    assert_eq!(h.connect("keyed", r#"{"key": "nb-9"}"#).0.status, 201);
}

#[test]
fn an_unknown_template_is_404() {
    let mut h = Harness::one(template("kernel"));
    let (reply, effects) = h.connect("nope", "{}");
    assert_eq!(reply.status, 404);
    assert_eq!(code(&reply), "UNKNOWN_TEMPLATE");
    assert!(effects.is_empty());
}

#[test]
fn the_reply_says_where_and_how_to_reach_the_session() {
    let mut t = template("kernel");
    t.lifetime = Some(Duration::from_secs(3600));
    let mut h = Harness::one(t);
    let s = h.create("kernel", KEYED);
    let id = s.id.as_str();
    assert_eq!(id.len(), 26);
    assert!(id
        .bytes()
        .all(|c| c.is_ascii_lowercase() || (b'2'..=b'7').contains(&c)));
    let body = &s.json;
    let host = format!("{id}.kernel.example.com");
    let token = body["token"].as_str().unwrap();
    assert_eq!(token.len(), 43);
    assert_eq!(body["hostname"], host.as_str());
    assert_eq!(
        body["url"],
        format!("https://{host}/.spawngate/auth?token={token}&next=/").as_str()
    );
    assert_eq!(body["template"], "kernel");
    assert_eq!(body["created"], (EPOCH_MS + 1_000) / 1000);
    assert_eq!(body["expires_at"], (EPOCH_MS + 1_000 + 3_600_000) / 1000);
    assert_eq!(body["idle_timeout_secs"], 120);
    assert_eq!(
        body["status_url"],
        format!("http://127.0.0.1:9999/sessions/{id}").as_str()
    );
    assert_eq!(
        body["events_url"],
        format!("http://127.0.0.1:9999/sessions/{id}/events").as_str()
    );
    let route = &puts(&s.effects)[0];
    assert_eq!(route.hostname.as_ref(), host);
    assert_eq!(route.backend, s.backend);
    assert!(route.secure_cookie);
    assert_eq!(route.credentials[0].user.as_deref(), Some("alice"));
    assert_eq!(route.token(token.as_bytes()), Some(0));
    assert!(secret::from_text(route.secret.as_bytes()).is_some());
    assert_eq!(route.ended, None);
}

#[test]
fn without_a_key_every_connect_is_a_new_session_keyed_by_its_id() {
    let mut h = Harness::one(template("kernel"));
    let a = h.create("kernel", "{}");
    let b = h.create("kernel", r#"{"user": "alice"}"#);
    assert_ne!(a.id, b.id);
    assert_eq!(a.json["key"], a.id.as_str());
}

#[test]
fn without_token_access_no_token_is_handed_out() {
    let mut t = template("kernel");
    t.access = Access::Hostname;
    t.public_url.before = "http://".into();
    let mut h = Harness::one(t);
    let s = h.create("kernel", "{}");
    assert_eq!(s.json["token"], Value::Null);
    let host = s.json["hostname"].as_str().unwrap();
    assert_eq!(s.json["url"], format!("http://{host}/").as_str());
    assert!(!puts(&s.effects)[0].secure_cookie);
}

#[test]
fn the_instance_is_a_one_slot_pool_with_the_session_filled_in() {
    let mut t = template("kernel");
    t.lifetime = Some(Duration::from_secs(60));
    let mut h = Harness::one(t);
    let s = h.create("kernel", KEYED);
    let c = &s.config;
    let id = s.id.as_str();
    assert_eq!(c.hostname, format!("session/{id}"));
    assert_eq!(c.port, 20000);
    let BackendKind::Local(local) = &c.kind else {
        panic!("{:?}", c.kind)
    };
    assert_eq!(local.command, "/opt/nb-7731/kernel");
    assert_eq!(local.args, ["--port=20000", "--id", id]);
    let env = |name: &str| {
        c.env
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(env("MODE").as_deref(), Some("nb-nb-7731-20000"));
    assert_eq!(env("NOTEBOOK_ID").as_deref(), Some("7731"));
    assert_eq!(env("SPAWNGATE_SESSION_ID").as_deref(), Some(id));
    assert_eq!(env("SPAWNGATE_SESSION_KEY").as_deref(), Some("nb-7731"));
    let secret = env("SPAWNGATE_SESSION_SECRET").unwrap();
    assert_eq!(secret.as_str(), puts(&s.effects)[0].secret.as_ref());
    let deadline = (EPOCH_MS + 1_000 + 60_000) / 1000;
    assert_eq!(
        env("SPAWNGATE_SESSION_DEADLINE"),
        Some(deadline.to_string())
    );
    assert_eq!(
        env("SPAWNGATE_PUBLIC_URL"),
        Some(format!("https://{id}.kernel.example.com"))
    );
    assert_eq!(c.timings, timings());
    let pool = c.pool.as_ref().unwrap();
    assert_eq!(pool.instances.len(), 1);
    let spec = &pool.instances[0];
    assert_eq!(spec.index, 0);
    assert_eq!(
        spec.addr,
        UpstreamAddr::Tcp("127.0.0.1:20000".parse().unwrap())
    );
    assert_eq!(spec.port, 20000);
    assert_eq!(spec.kind, c.kind);
    assert_eq!(spec.env, c.env);
    assert_eq!(pool.scaling.max_running, 1);
    assert_eq!(pool.scaling.min_running, 0);
    assert_eq!(pool.scaling.queue_timeout, Duration::from_secs(30));
    assert!(!pool.scaling.always_on);
    let tag = c.session.as_ref().unwrap();
    assert_eq!(tag.id.as_ref(), id);
    assert_eq!(tag.template.as_ref(), "kernel");
    assert!(!tag.restart_unhealthy);
    assert_eq!(tag.after, None);
    assert_eq!(s.activity.in_flight(), 0);
}

#[test]
fn a_container_listens_on_its_own_port_published_at_the_host_port() {
    let mut t = template("kernel");
    let mut instance = BackendConfig::clone(&t.instance);
    instance.port = 8888;
    instance.kind = BackendKind::Docker(DockerSpec {
        image: "acme/kernel:5".into(),
        container_name: "spawngate-kernel".into(),
        pull_policy: PullPolicy::IfNotPresent,
        memory: None,
        nano_cpus: None,
        network: None,
        docker_host: None,
        args: vec!["--id={id}".into()],
    });
    t.instance = Arc::new(instance);
    t.unhealthy = Unhealthy::Restart;
    let mut h = Harness::one(t);
    let s = h.create("kernel", r#"{"key": "nb-1"}"#);
    let spec = &s.config.pool.as_ref().unwrap().instances[0];
    assert_eq!(spec.port, 8888);
    assert_eq!(
        spec.addr,
        UpstreamAddr::Tcp("127.0.0.1:20000".parse().unwrap())
    );
    let BackendKind::Docker(docker) = &s.config.kind else {
        panic!()
    };
    // Two sessions never share a container name.
    assert_eq!(docker.container_name, format!("spawngate-kernel-{}", s.id));
    assert_eq!(docker.args, [format!("--id={}", s.id)]);
    assert!(s.config.session.as_ref().unwrap().restart_unhealthy);
}

#[test]
fn ports_skip_held_ones_and_those_a_bind_finds_taken() {
    let mut t = template("kernel");
    t.host_ports = (20000, 20005);
    let mut other = template("editor");
    other.host_ports = (20000, 20005);
    let mut h = Harness::new(vec![t, other]);
    let a = h.create("kernel", "{}");
    assert_eq!(a.config.port, 20000);
    h.busy_ports = vec![20001, 20002];
    h.asked.clear();
    // Held by another template's session: not even tried.
    let b = h.create("editor", "{}");
    assert_eq!(b.config.port, 20003);
    assert_eq!(h.asked, [20001, 20002, 20003]);
    h.busy_ports = vec![20001, 20002, 20004, 20005];
    let (reply, _) = h.connect("kernel", "{}");
    assert_eq!(reply.status, 503);
    assert_eq!(code(&reply), "SESSION_LIMIT_REACHED");
    assert!(text(&reply).contains("no free port in host_ports"));
    assert!(reply.retry_after.unwrap() >= 1);
    // An ended session's port is free again.
    h.event(a.backend, LifecycleEvent::StartFailed("boom".into()));
    assert_eq!(h.create("kernel", "{}").config.port, 20000);
}

#[test]
fn at_most_64_ports_are_tried() {
    let mut t = template("kernel");
    t.host_ports = (20000, 20999);
    let mut h = Harness::one(t);
    h.busy_ports = (20000..20999).collect();
    let (reply, _) = h.connect("kernel", "{}");
    assert_eq!(reply.status, 503);
    assert_eq!(h.asked.len(), 64);
}

#[test]
fn a_key_hostname_is_the_key() {
    let mut t = template("kernel");
    t.hostname.var = HostVar::Key;
    let mut h = Harness::one(t);
    let s = h.create("kernel", r#"{"key": "nb-7731"}"#);
    assert_eq!(s.json["hostname"], "nb-7731.kernel.example.com");
}

#[test]
fn credentials_beyond_the_limit_drop_the_oldest() {
    let mut h = Harness::one(template("kernel"));
    let first = h.create("kernel", KEYED);
    let first_token = first.json["token"].as_str().unwrap().to_string();
    let mut last = Vec::new();
    for _ in 0..crate::sessions::route::MAX_CREDENTIALS {
        last = h.connect("kernel", KEYED).1;
    }
    let route = &puts(&last)[0];
    assert_eq!(
        route.credentials.len(),
        crate::sessions::route::MAX_CREDENTIALS
    );
    assert_eq!(route.token(first_token.as_bytes()), None);
}
