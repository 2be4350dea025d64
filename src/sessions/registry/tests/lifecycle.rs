//! Reports about session instances, lifetimes, tombstones and the events stream.

use super::*;
use crate::msg::StopReason;
use crate::sessions::EndReason;

fn ready(h: &mut Harness) -> Created {
    let s = h.create("kernel", "{}");
    h.run(s.backend);
    s
}

#[test]
fn starting_and_ready_are_shown_and_told() {
    let mut h = Harness::one(template("kernel"));
    let s = h.create("kernel", "{}");
    let effects = h.event(s.backend, LifecycleEvent::Starting);
    assert_eq!(events(&effects), [("starting".to_string(), false)]);
    assert_eq!(h.state(&s.id), "starting");
    let effects = h.event(s.backend, LifecycleEvent::Ready);
    assert_eq!(events(&effects), [("ready".to_string(), false)]);
    assert_eq!(h.state(&s.id), "ready");
    // Said again: no change, no frame.
    assert!(h.event(s.backend, LifecycleEvent::Ready).is_empty());
    // Not a session's backend: ignored.
    assert!(h
        .event(BackendId::new(77, 3), LifecycleEvent::Stopped)
        .is_empty());
}

/// A ready session gets `event`: what it ends for, and the `End` it sends.
fn ending(event: LifecycleEvent) -> (Harness, Created, Vec<Effect>) {
    let mut h = Harness::one(template("kernel"));
    let s = ready(&mut h);
    let effects = h.event(s.backend, event);
    (h, s, effects)
}

#[test]
fn each_stop_reason_ends_the_session_for_its_reason() {
    let cases = [
        (StopReason::Idle, "idle", None),
        (StopReason::Announced, "exited", Some("announced stop")),
        (StopReason::Restart, "unhealthy", None),
        (StopReason::Removed, "terminated", None),
    ];
    for (stop, name, detail) in cases {
        let (mut h, s, effects) = ending(LifecycleEvent::Stopping(stop));
        assert_eq!(ends(&effects), [(s.backend, true)], "{stop:?}");
        assert_eq!(events(&effects), [("draining".to_string(), false)]);
        // New requests get 410 while it drains.
        let route = &puts(&effects)[0];
        assert_eq!(route.ended.as_ref().map(EndReason::name), Some(name));
        let shown = h.get(&s.id);
        assert_eq!(shown["state"], "draining");
        assert_eq!(shown["reason"], name);
        assert_eq!(shown["detail"].as_str(), detail);
        // The port is still held while it drains.
        assert_eq!(h.create("kernel", "{}").config.port, 20001);
        let effects = h.event(s.backend, LifecycleEvent::Stopped);
        assert_eq!(events(&effects), [("ended".to_string(), true)]);
        assert!(ends(&effects).is_empty(), "one End per session");
        assert!(puts(&effects).is_empty(), "published when it began to end");
        assert_eq!(h.get(&s.id)["reason"], name);
    }
}

#[test]
fn unhealthy_with_end_stops_at_once() {
    let (mut h, s, effects) = ending(LifecycleEvent::Unhealthy);
    assert_eq!(ends(&effects), [(s.backend, false)]);
    assert_eq!(h.get(&s.id)["reason"], "unhealthy");
    // The supervisor's own restart stop, then its stop: nothing more to say until Stopped.
    let effects = h.event(s.backend, LifecycleEvent::Stopping(StopReason::Restart));
    assert!(effects.is_empty());
    let effects = h.event(s.backend, LifecycleEvent::Stopping(StopReason::Removed));
    assert!(effects.is_empty());
    h.event(s.backend, LifecycleEvent::Stopped);
    assert_eq!(h.state(&s.id), "ended");
}

#[test]
fn unhealthy_with_restart_keeps_the_session() {
    let mut t = template("kernel");
    t.unhealthy = Unhealthy::Restart;
    let mut h = Harness::one(t);
    let s = ready(&mut h);
    assert!(h.event(s.backend, LifecycleEvent::Unhealthy).is_empty());
    let stop = LifecycleEvent::Stopping(StopReason::Restart);
    assert!(h.event(s.backend, stop).is_empty());
    assert!(h.event(s.backend, LifecycleEvent::Stopped).is_empty());
    assert_eq!(h.state(&s.id), "ready");
    let effects = h.event(s.backend, LifecycleEvent::Starting);
    assert_eq!(events(&effects), [("starting".to_string(), false)]);
    h.event(s.backend, LifecycleEvent::Ready);
    // Exiting on its own later is an exit again.
    let effects = h.event(s.backend, LifecycleEvent::Stopped);
    assert_eq!(ends(&effects), [(s.backend, false)]);
    assert_eq!(h.get(&s.id)["reason"], "exited");
}

#[test]
fn a_failed_start_ends_the_session_at_once() {
    for event in [
        LifecycleEvent::StartFailed("exit status 1".into()),
        LifecycleEvent::BackingOff {
            reason: "exit status 1".into(),
            retry_after: Duration::from_secs(5),
        },
    ] {
        let mut h = Harness::one(template("kernel"));
        let s = h.create("kernel", "{}");
        h.event(s.backend, LifecycleEvent::Starting);
        let effects = h.event(s.backend, event);
        assert_eq!(ends(&effects), [(s.backend, false)]);
        assert_eq!(puts(&effects).len(), 1);
        assert_eq!(events(&effects), [("ended".to_string(), true)]);
        let shown = h.get(&s.id);
        assert_eq!(shown["state"], "ended");
        assert_eq!(shown["reason"], "start_failed");
        assert_eq!(shown["detail"], "exit status 1");
        assert_eq!(h.reg.backend_of(&s.id), None);
    }
}

#[test]
fn exiting_on_its_own_says_how() {
    let mut h = Harness::one(template("kernel"));
    let s = ready(&mut h);
    s.activity
        .update_facts(|f| f.last_exit = Some("status 3".into()));
    let effects = h.event(s.backend, LifecycleEvent::Stopped);
    assert_eq!(ends(&effects), [(s.backend, false)]);
    let route = &puts(&effects)[0];
    assert_eq!(route.ended, Some(EndReason::Exited("status 3".into())));
    let shown = h.get(&s.id);
    assert_eq!(shown["reason"], "exited");
    assert_eq!(shown["detail"], "status 3");
    assert_eq!(shown["in_flight"], 0);
    // Later reports about the forgotten backend change nothing.
    assert!(h.event(s.backend, LifecycleEvent::Starting).is_empty());
}

#[test]
fn a_lifetime_ends_the_session_whatever_its_traffic() {
    let mut t = template("kernel");
    t.lifetime = Some(Duration::from_secs(60));
    let mut h = Harness::one(t);
    let s = ready(&mut h);
    assert_eq!(h.reg.next_deadline(), Some(61_000));
    s.activity.begin(60_500);
    h.connect("kernel", &format!(r#"{{"key": "{}"}}"#, s.id));
    assert!(h.reg.tick(60_999).is_empty());
    let effects = h.reg.tick(61_000);
    assert_eq!(ends(&effects), [(s.backend, true)]);
    assert_eq!(h.get(&s.id)["reason"], "lifetime");
    assert_eq!(h.reg.next_deadline(), None);
    assert!(h.reg.tick(200_000).is_empty());
}

#[test]
fn a_tombstone_answers_for_its_time_then_is_forgotten() {
    let mut h = Harness::one(template("kernel"));
    let s = ready(&mut h);
    h.now = 5_000;
    h.event(s.backend, LifecycleEvent::Stopped);
    let until = 5_000 + 300_000;
    assert_eq!(h.reg.next_deadline(), Some(until));
    assert!(h.reg.tick(until - 1).is_empty());
    assert_eq!(h.reg.get(&s.id, until - 1).status, 200);
    // Past its time it is not shown, even before the tick.
    assert_eq!(h.reg.get(&s.id, until).status, 404);
    let effects = h.reg.tick(until);
    let host = s.json["hostname"].as_str().unwrap();
    assert_eq!(forgets(&effects), [host]);
    assert_eq!(h.reg.get(&s.id, until).status, 404);
    assert_eq!(h.reg.events(&s.id), None);
    assert_eq!(h.reg.next_deadline(), None);
}

#[test]
fn tombstones_are_bounded_and_the_oldest_go_first() {
    // The bound itself (10 000) is `session::Tombstones`'s test; here a small one, through the registry.
    let mut t = template("kernel");
    t.start = StartPolicy::OnRequest;
    let mut h = Harness::one(t);
    h.reg.tombstones = super::super::session::Tombstones::with_limit(3);
    let first = h.create("kernel", "{}");
    h.reg.delete(&first.id, true, h.now);
    let mut last = Vec::new();
    for _ in 0..3 {
        let s = h.create("kernel", "{}");
        last = h.reg.delete(&s.id, true, h.now).1;
    }
    assert_eq!(h.reg.tombstones.len(), 3);
    let host = first.json["hostname"].as_str().unwrap();
    assert_eq!(forgets(&last), [host]);
    assert_eq!(h.reg.get(&first.id, h.now).status, 404);
    assert_eq!(h.reg.sessions.len(), 3);
    assert_eq!(json(&h.reg.list(h.now))["count"], 3);
}

#[test]
fn the_events_stream_tells_each_change_in_order() {
    let mut h = Harness::one(template("kernel"));
    let s = ready(&mut h);
    h.now = 9_000;
    h.reg.delete(&s.id, false, h.now);
    let (frames, ended) = h.reg.events(&s.id).unwrap();
    assert!(!ended);
    h.now = 9_500;
    let effects = h.event(s.backend, LifecycleEvent::Stopped);
    assert!(matches!(
        effects.last(),
        Some(Effect::Event { last: true, .. })
    ));
    let (all, ended) = h.reg.events(&s.id).unwrap();
    assert!(ended);
    assert_eq!(all[..frames.len()], frames[..]);
    let names: Vec<String> = all.iter().map(|f| frame_name(f)).collect();
    assert_eq!(names, ["waiting", "starting", "ready", "draining", "ended"]);
    let draining = frame_data(&all[3]);
    assert_eq!(draining["state"], "draining");
    assert_eq!(draining["at"], EPOCH_MS + 9_000);
    assert_eq!(draining["reason"], "terminated");
    let end = frame_data(&all[4]);
    assert_eq!(end["at"], EPOCH_MS + 9_500);
    assert!(all.iter().all(|f| f.ends_with("\n\n")));
    assert_eq!(h.reg.events("nope"), None);
}

#[test]
fn a_long_history_keeps_its_first_and_last_frames() {
    let mut t = template("kernel");
    t.unhealthy = Unhealthy::Restart;
    let mut h = Harness::one(t);
    let s = h.create("kernel", "{}");
    for _ in 0..100 {
        h.run(s.backend);
    }
    let (frames, _) = h.reg.events(&s.id).unwrap();
    assert_eq!(frames.len(), 64);
    assert_eq!(frame_name(&frames[0]), "waiting");
    assert_eq!(frame_name(&frames[63]), "ready");
}

#[test]
fn delete_drains_or_not_and_says_so_once() {
    let mut h = Harness::one(template("kernel"));
    let a = ready(&mut h);
    let (reply, effects) = h.reg.delete(&a.id, false, h.now);
    assert_eq!(reply.status, 200);
    assert_eq!(json(&reply)["state"], "draining");
    assert_eq!(json(&reply)["reason"], "terminated");
    assert_eq!(ends(&effects), [(a.backend, true)]);
    // Already ending: shown as it is, nothing more.
    let (reply, effects) = h.reg.delete(&a.id, true, h.now);
    assert_eq!(reply.status, 200);
    assert!(effects.is_empty());

    let b = ready(&mut h);
    let (_, effects) = h.reg.delete(&b.id, true, h.now);
    assert_eq!(ends(&effects), [(b.backend, false)]);

    let (reply, effects) = h.reg.delete("nope", false, h.now);
    assert_eq!(reply.status, 404);
    assert_eq!(code(&reply), "UNKNOWN_SESSION");
    assert!(effects.is_empty());
}

#[test]
fn a_session_whose_instance_never_ran_ends_at_once() {
    let mut t = template("kernel");
    t.start = StartPolicy::OnRequest;
    let mut h = Harness::one(t);
    let s = h.create("kernel", "{}");
    let (reply, effects) = h.reg.delete(&s.id, false, h.now);
    assert_eq!(json(&reply)["state"], "ended");
    assert_eq!(ends(&effects), [(s.backend, true)]);
    assert_eq!(
        events(&effects),
        [("ended".to_string(), true)],
        "no draining without an instance"
    );
}

#[test]
fn an_unstarted_on_request_session_ends_when_idle() {
    let mut t = template("kernel");
    t.start = StartPolicy::OnRequest;
    let mut h = Harness::one(t);
    let s = h.create("kernel", r#"{"key": "k"}"#);
    assert_eq!(h.reg.next_deadline(), Some(121_000));
    // A reconnect restarts the window.
    h.now = 100_000;
    h.connect("kernel", r#"{"key": "k"}"#);
    assert!(h.reg.tick(121_000).is_empty());
    assert_eq!(h.reg.next_deadline(), Some(220_000));
    let effects = h.reg.tick(220_000);
    assert_eq!(ends(&effects), [(s.backend, true)]);
    assert_eq!(json(&h.reg.get(&s.id, 220_000))["reason"], "idle");
    // One started by a request is the supervisor's to judge.
    let r = h.create("kernel", "{}");
    h.run(r.backend);
    assert!(h
        .reg
        .tick(h.now + 1_000_000)
        .iter()
        .all(|e| !matches!(e, Effect::End { .. })));
}

#[test]
fn a_key_hostname_stays_with_the_keys_newest_session() {
    let mut t = template("kernel");
    t.hostname.var = HostVar::Key;
    let mut h = Harness::one(t);
    let old = h.create("kernel", r#"{"key": "doc"}"#);
    h.run(old.backend);
    h.reg.delete(&old.id, false, h.now);
    let new = h.create("kernel", r#"{"key": "doc"}"#);
    assert_eq!(
        puts(&new.effects)[0].hostname.as_ref(),
        "doc.kernel.example.com"
    );
    // The old one ends and expires without touching the name's route.
    let effects = h.event(old.backend, LifecycleEvent::Stopped);
    assert!(puts(&effects).is_empty());
    let effects = h.reg.tick(h.now + 300_000);
    assert!(forgets(&effects).is_empty());
    assert_eq!(h.reg.get(&new.id, h.now + 300_000).status, 200);
}
