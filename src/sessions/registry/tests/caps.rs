//! `max_running`: eviction by policy, refusals with `Retry-After`, and successors that wait.

use super::*;

fn capped(max: u32, evict: Evict) -> Harness {
    let mut t = template("kernel");
    t.max_running = Some(max);
    t.evict = evict;
    Harness::one(t)
}

fn after(created: &Created) -> Option<BackendId> {
    created.config.session.as_ref().unwrap().after
}

#[test]
fn idle_lru_evicts_the_least_recently_active_idle_session() {
    let mut h = capped(2, Evict::IdleLru);
    let a = h.create("kernel", r#"{"key": "a"}"#);
    let b = h.create("kernel", r#"{"key": "b"}"#);
    h.run(a.backend);
    h.run(b.backend);
    a.activity.begin(2_000);
    a.activity.end(3_000);
    b.activity.begin(2_500);
    b.activity.end(2_600);
    h.now = 10_000;
    let c = h.create("kernel", r#"{"key": "c"}"#);
    // The victim's end comes first: its route says why, it drains, then the new session is added.
    assert!(matches!(
        c.effects.as_slice(),
        [
            Effect::Publish(_),
            Effect::End { drain: true, .. },
            Effect::Event { .. },
            Effect::Add { .. },
            ..
        ]
    ));
    assert_eq!(ends(&c.effects), [(b.backend, true)]);
    let victim = &puts(&c.effects)[0];
    assert_eq!(victim.backend, b.backend);
    assert_eq!(victim.ended, Some(crate::sessions::EndReason::Evicted));
    assert_eq!(after(&c), Some(b.backend));
    let shown = h.get(&b.id);
    assert_eq!(shown["state"], "draining");
    assert_eq!(shown["reason"], "evicted");
    assert_eq!(h.state(&a.id), "ready");
}

#[test]
fn busy_sessions_are_not_evicted_by_idle_lru() {
    let mut h = capped(2, Evict::IdleLru);
    let a = h.create("kernel", r#"{"key": "a"}"#);
    let b = h.create("kernel", r#"{"key": "b"}"#);
    h.run(a.backend);
    h.run(b.backend);
    // `a` is the least recently active, but a request is in flight.
    a.activity.begin(1_500);
    b.activity.begin(2_000);
    b.activity.end(2_100);
    h.now = 5_000;
    let c = h.create("kernel", r#"{"key": "c"}"#);
    assert_eq!(ends(&c.effects), [(b.backend, true)]);
    assert_eq!(h.state(&a.id), "ready");
}

#[test]
fn all_busy_is_503_with_retry_after() {
    let mut h = capped(2, Evict::IdleLru);
    let a = h.create("kernel", r#"{"key": "a"}"#);
    let b = h.create("kernel", r#"{"key": "b"}"#);
    a.activity.begin(1_500);
    b.activity.begin(1_500);
    let (reply, effects) = h.connect("kernel", r#"{"key": "c"}"#);
    assert_eq!(reply.status, 503);
    assert_eq!(code(&reply), "SESSION_LIMIT_REACHED");
    // No lifetimes: the idle timeout.
    assert_eq!(reply.retry_after, Some(120));
    assert!(effects.is_empty());
    // A connect to a key that has a session is not refused.
    assert_eq!(h.connect("kernel", r#"{"key": "a"}"#).0.status, 200);
}

#[test]
fn retry_after_is_the_earliest_lifetime_end() {
    let mut t = template("kernel");
    t.max_running = Some(2);
    t.evict = Evict::Never;
    t.lifetime = Some(Duration::from_secs(600));
    let mut h = Harness::one(t);
    h.create("kernel", "{}");
    h.now += 50_000;
    h.create("kernel", "{}");
    h.now += 50_500;
    let (reply, _) = h.connect("kernel", "{}");
    assert_eq!(reply.status, 503);
    // 600 s after 1 000 ms, seen at 101 500 ms: 499.5 s, rounded up.
    assert_eq!(reply.retry_after, Some(500));
}

#[test]
fn lru_evicts_even_a_busy_session() {
    let mut h = capped(1, Evict::Lru);
    let a = h.create("kernel", r#"{"key": "a"}"#);
    h.run(a.backend);
    a.activity.begin(1_500);
    h.now = 3_000;
    let b = h.create("kernel", r#"{"key": "b"}"#);
    assert_eq!(ends(&b.effects), [(a.backend, true)]);
    assert_eq!(after(&b), Some(a.backend));
}

#[test]
fn never_refuses_at_the_cap() {
    let mut h = capped(1, Evict::Never);
    let a = h.create("kernel", r#"{"key": "a"}"#);
    h.run(a.backend);
    let (reply, effects) = h.connect("kernel", r#"{"key": "b"}"#);
    assert_eq!(reply.status, 503);
    assert_eq!(code(&reply), "SESSION_LIMIT_REACHED");
    assert!(effects.is_empty());
}

#[test]
fn waiting_sessions_count_and_draining_ones_do_not() {
    let mut t = template("kernel");
    t.max_running = Some(1);
    t.evict = Evict::Never;
    t.start = StartPolicy::OnRequest;
    let mut h = Harness::one(t);
    let a = h.create("kernel", "{}");
    assert_eq!(h.connect("kernel", "{}").0.status, 503);
    h.run(a.backend);
    h.reg.delete(&a.id, false, h.now);
    assert_eq!(h.state(&a.id), "draining");
    let b = h.create("kernel", "{}");
    assert!(!b.effects.iter().any(|e| matches!(e, Effect::Start(_))));
}

#[test]
fn other_templates_do_not_count() {
    let mut t = template("kernel");
    t.max_running = Some(1);
    t.evict = Evict::Never;
    let mut h = Harness::new(vec![t, template("editor")]);
    h.create("editor", "{}");
    h.create("editor", "{}");
    h.create("kernel", "{}");
    assert_eq!(h.connect("kernel", "{}").0.status, 503);
}

#[test]
fn a_lowered_cap_evicts_as_many_as_it_takes() {
    let mut h = capped(3, Evict::IdleLru);
    let created: Vec<Created> = (0..3).map(|_| h.create("kernel", "{}")).collect();
    for c in &created {
        h.run(c.backend);
    }
    let mut lower = template("kernel");
    lower.max_running = Some(1);
    h.reg.reload(vec![Arc::new(lower)]);
    let d = h.create("kernel", "{}");
    assert_eq!(ends(&d.effects).len(), 3);
    assert_eq!(after(&d), Some(created[0].backend));
}

#[test]
fn a_connect_while_the_keys_session_drains_waits_for_it() {
    let mut h = Harness::one(template("kernel"));
    let old = h.create("kernel", r#"{"key": "doc"}"#);
    h.run(old.backend);
    h.now += 1_000;
    let (reply, _) = h.reg.delete(&old.id, false, h.now);
    assert_eq!(json(&reply)["state"], "draining");
    let new = h.create("kernel", r#"{"key": "doc"}"#);
    assert_ne!(new.id, old.id);
    assert_eq!(after(&new), Some(old.backend));
    // The new session now answers for the key.
    let (reply, effects) = h.connect("kernel", r#"{"key": "doc"}"#);
    assert_eq!(reply.status, 200);
    assert_eq!(json(&reply)["id"], new.id.as_str());
    assert_eq!(adds(&effects), 0);
    // The old one's end does not touch the new one.
    let effects = h.event(old.backend, LifecycleEvent::Stopped);
    assert_eq!(events(&effects), [("ended".to_string(), true)]);
    assert_eq!(h.state(&new.id), "waiting");
    assert_eq!(h.state(&old.id), "ended");
}

#[test]
fn a_connect_after_the_keys_session_ended_still_names_it() {
    // Its instance may not be forgotten yet; naming a backend that is gone costs nothing.
    let mut h = Harness::one(template("kernel"));
    let old = h.create("kernel", r#"{"key": "doc"}"#);
    h.event(old.backend, LifecycleEvent::StartFailed("no".into()));
    let new = h.create("kernel", r#"{"key": "doc"}"#);
    assert_eq!(after(&new), Some(old.backend));
}
