//! List, get, spend, ready callbacks, reload and shutdown.

use super::*;
use crate::sessions::route::SessionUpdate;
use crate::sessions::secret;

#[test]
fn list_and_get_show_sessions_and_never_their_credentials() {
    let mut t = template("kernel");
    t.lifetime = Some(Duration::from_secs(100));
    let mut h = Harness::one(t);
    let a = h.create("kernel", r#"{"key": "a", "user": "alice"}"#);
    let b = h.create("kernel", r#"{"key": "b"}"#);
    h.run(a.backend);
    a.activity.begin(4_000);
    h.now = 5_000;
    h.event(b.backend, LifecycleEvent::StartFailed("bad image".into()));
    let (reply, _) = h.connect("kernel", r#"{"key": "a"}"#);
    let second_token = json(&reply)["token"].as_str().unwrap().to_string();

    let list = h.reg.list(h.now);
    assert_eq!(list.status, 200);
    let body = json(&list);
    assert_eq!(body["count"], 2);
    let first = &body["sessions"][0];
    assert_eq!(first["id"], a.id.as_str());
    assert_eq!(first["key"], "a");
    assert_eq!(first["template"], "kernel");
    assert_eq!(first["state"], "ready");
    assert_eq!(first["in_flight"], 1);
    assert_eq!(first["created"], (EPOCH_MS + 1_000) / 1000);
    assert_eq!(first["last_active"], (EPOCH_MS + 5_000) / 1000);
    assert_eq!(first["deadline"], (EPOCH_MS + 101_000) / 1000);
    assert_eq!(first["hostname"], a.json["hostname"]);
    let second = &body["sessions"][1];
    assert_eq!(second["state"], "ended");
    assert_eq!(second["reason"], "start_failed");
    assert_eq!(second["detail"], "bad image");

    let one = h.get(&a.id);
    assert_eq!(&one, first);
    assert_eq!(h.reg.get("nope", h.now).status, 404);

    let route = &puts(&a.effects)[0];
    let mut secrets: Vec<String> = vec![route.secret.to_string(), second_token];
    for c in &route.credentials {
        secrets.push(secret::to_text(&c.token));
        secrets.push(secret::to_text(&c.cookie));
    }
    for shown in [text(&list), text(&h.reg.get(&a.id, h.now))] {
        for s in &secrets {
            assert!(!shown.contains(s.as_str()), "{shown}");
        }
        assert!(!shown.contains("token") && !shown.contains("secret"));
    }
    let (frames, _) = h.reg.events(&a.id).unwrap();
    for s in &secrets {
        assert!(frames.iter().all(|f| !f.contains(s.as_str())));
    }
}

#[test]
fn a_traded_token_is_spent_and_published() {
    let mut h = Harness::one(template("kernel"));
    let s = h.create("kernel", "{}");
    let host = s.json["hostname"].as_str().unwrap().to_string();
    let token = s.json["token"].as_str().unwrap().to_string();
    let effects = h.reg.spend(&host, 0);
    let route = &puts(&effects)[0];
    assert!(route.credentials[0].spent);
    assert_eq!(route.token(token.as_bytes()), None);
    assert_eq!(
        route.cookie(secret::to_text(&route.credentials[0].cookie).as_bytes()),
        Some(0)
    );
    // Again, an unknown credential or host: nothing.
    assert!(h.reg.spend(&host, 0).is_empty());
    assert!(h.reg.spend(&host, 5).is_empty());
    assert!(h.reg.spend("other.example.com", 0).is_empty());
}

#[test]
fn the_ready_callback_finds_a_sessions_backend() {
    let mut h = Harness::one(template("kernel"));
    let s = h.create("kernel", "{}");
    assert_eq!(h.reg.backend_of(&s.id), Some(s.backend));
    assert_eq!(h.reg.backend_of("nope"), None);
}

#[test]
fn a_reload_changes_new_sessions_only() {
    let mut h = Harness::one(template("kernel"));
    let s = h.create("kernel", r#"{"key": "k"}"#);
    let mut changed = template("kernel");
    changed.idle_timeout = Duration::from_secs(5);
    changed.hostname.after = ".new.example.com".into();
    let effects = h
        .reg
        .reload(vec![Arc::new(changed), Arc::new(template("editor"))]);
    match effects.as_slice() {
        [Effect::Publish(SessionUpdate::Spaces(spaces))] => assert_eq!(spaces.len(), 2),
        other => panic!("{other:?}"),
    }
    let (reply, _) = h.connect("kernel", r#"{"key": "k"}"#);
    assert_eq!(json(&reply)["idle_timeout_secs"], 120);
    assert_eq!(json(&reply)["id"], s.id.as_str());
    let fresh = h.create("kernel", "{}");
    assert_eq!(fresh.json["idle_timeout_secs"], 5);
    assert!(fresh.json["hostname"]
        .as_str()
        .unwrap()
        .ends_with(".new.example.com"));
    assert_eq!(h.create("editor", "{}").json["template"], "editor");
}

#[test]
fn shutdown_ends_every_session_with_frames_only() {
    let mut h = Harness::one(template("kernel"));
    let a = h.create("kernel", "{}");
    let b = h.create("kernel", "{}");
    h.run(b.backend);
    h.reg.delete(&b.id, false, h.now);
    let c = h.create("kernel", "{}");
    h.event(c.backend, LifecycleEvent::StartFailed("x".into()));
    let effects = h.reg.shutdown(h.now);
    assert_eq!(effects.len(), 2);
    for effect in &effects {
        let Effect::Event { frame, last, .. } = effect else {
            panic!("{effect:?}")
        };
        assert!(*last);
        assert_eq!(frame_name(frame), "ended");
        assert_eq!(frame_data(frame)["reason"], "shutdown");
    }
    assert_eq!(h.get(&a.id)["reason"], "shutdown");
    assert_eq!(h.get(&b.id)["reason"], "shutdown");
    assert_eq!(h.get(&c.id)["reason"], "start_failed");
    assert!(h.reg.events(&a.id).unwrap().1);
}

#[test]
fn the_spaces_are_the_templates_hostname_patterns() {
    let h = Harness::new(vec![template("kernel"), template("editor")]);
    let SessionUpdate::Spaces(spaces) = h.reg.spaces() else {
        panic!()
    };
    assert!(spaces[0].in_space("abc.kernel.example.com"));
    assert!(spaces[1].in_space("abc.editor.example.com"));
}
