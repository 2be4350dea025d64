use std::path::Path;

use super::*;
use crate::config;
use crate::msg::{InstanceRef, StopReason};
use crate::upstream::UpstreamAddr;

fn entries(hosts: &[&str]) -> Vec<BackendEntry> {
    let mut text = String::new();
    for (i, host) in hosts.iter().enumerate() {
        text.push_str(&format!(
            "[backends.\"{host}\"]\ncommand = \"true\"\nport = {}\nstartup_timeout_secs = 5\n",
            4000 + i
        ));
    }
    let config = config::parse(Path::new("test.toml"), &text).unwrap();
    config
        .backends
        .iter()
        .cloned()
        .map(BackendEntry::new)
        .collect()
}

/// A report from the instance of `host` at the port [`entries`] gave it (hosts "a.test", "b.test", ...).
fn event(host: &str, event: LifecycleEvent) -> BackendEvent {
    let port = 4000 + u16::from(host.as_bytes()[0] - b'a');
    event_at(host, port, event)
}

fn event_at(host: &str, port: u16, event: LifecycleEvent) -> BackendEvent {
    BackendEvent {
        host: Host::from(host),
        instance: InstanceRef {
            index: 0,
            addr: UpstreamAddr::Tcp(([127, 0, 0, 1], port).into()),
        },
        event,
    }
}

fn hold(admission: Admission) -> oneshot::Receiver<Release> {
    match admission {
        Admission::Hold { release, limit, .. } => {
            assert_eq!(limit, Duration::from_secs(5) + HOLD_SLACK);
            release
        }
        Admission::Forward(_) => panic!("expected a hold, got a forward"),
        Admission::Reject(e) => panic!("expected a hold, got {e}"),
    }
}

fn rejected(admission: Admission) -> ErrorCode {
    match admission {
        Admission::Reject(e) => e.code,
        _ => panic!("expected a rejection"),
    }
}

#[test]
fn unknown_hosts_are_404() {
    let mut routes = Routes::new(entries(&["a.test"]), 10);
    let (admission, start) = routes.admit("b.test");
    assert_eq!(rejected(admission), ErrorCode::UnknownHost);
    assert!(start.is_none());
}

#[test]
fn a_cold_backend_is_started_once_and_releases_its_waiters_when_ready() {
    let mut routes = Routes::new(entries(&["a.test"]), 10);
    let (first, start) = routes.admit("a.test");
    assert_eq!(start.as_deref(), Some("a.test"));
    let (second, again) = routes.admit("a.test");
    assert!(again.is_none(), "one start for all held streams");
    let (mut first, mut second) = (hold(first), hold(second));

    assert_eq!(
        routes.on_event(event("a.test", LifecycleEvent::Starting), false),
        Effects::default()
    );
    assert!(first.try_recv().is_err(), "still held while starting");
    routes.on_event(event("a.test", LifecycleEvent::Ready), false);
    assert_eq!(first.try_recv().unwrap(), Ok(()));
    assert_eq!(second.try_recv().unwrap(), Ok(()));

    let (admission, start) = routes.admit("a.test");
    assert!(matches!(admission, Admission::Forward(t) if t.addr.port() == 4000));
    assert!(start.is_none());
}

#[test]
fn a_failed_start_answers_every_held_stream() {
    let mut routes = Routes::new(entries(&["a.test"]), 10);
    let mut held = hold(routes.admit("a.test").0);
    routes.on_event(
        event("a.test", LifecycleEvent::StartFailed("exited".into())),
        false,
    );
    let err = held.try_recv().unwrap().unwrap_err();
    assert_eq!(err.code, ErrorCode::BackendStartFailed);
    // The next stream asks for a start again.
    assert!(routes.admit("a.test").1.is_some());
}

#[test]
fn holds_are_capped_but_abandoned_holds_do_not_count() {
    let mut routes = Routes::new(entries(&["a.test"]), 2);
    let first = hold(routes.admit("a.test").0);
    let _second = hold(routes.admit("a.test").0);
    assert_eq!(rejected(routes.admit("a.test").0), ErrorCode::TooManyHeld);
    drop(first);
    let _third = hold(routes.admit("a.test").0);
}

#[test]
fn unhealthy_and_final_stops_are_refused_idle_stops_are_held() {
    let mut routes = Routes::new(entries(&["a.test"]), 10);
    routes.on_event(event("a.test", LifecycleEvent::Ready), false);
    let effects = routes.on_event(event("a.test", LifecycleEvent::Unhealthy), false);
    assert_eq!(effects.drop_pool, vec![Host::from("a.test")]);
    assert_eq!(
        rejected(routes.admit("a.test").0),
        ErrorCode::BackendUnhealthy
    );

    // The restart that follows an unhealthy verdict is refused too, until the new instance is ready.
    routes.on_event(
        event("a.test", LifecycleEvent::Stopping(StopReason::Restart)),
        false,
    );
    assert_eq!(
        rejected(routes.admit("a.test").0),
        ErrorCode::BackendUnhealthy
    );
    routes.on_event(event("a.test", LifecycleEvent::Starting), false);
    routes.on_event(event("a.test", LifecycleEvent::Ready), false);

    routes.on_event(
        event("a.test", LifecycleEvent::Stopping(StopReason::Idle)),
        false,
    );
    let (held, start) = routes.admit("a.test");
    let _held = hold(held);
    assert!(start.is_some());

    routes.on_event(
        event("a.test", LifecycleEvent::Stopping(StopReason::Shutdown)),
        true,
    );
    assert_eq!(
        rejected(routes.admit("a.test").0),
        ErrorCode::BackendShuttingDown
    );
}

#[test]
fn a_stream_held_through_an_idle_stop_asks_for_one_start() {
    let mut routes = Routes::new(entries(&["a.test"]), 10);
    routes.on_event(event("a.test", LifecycleEvent::Ready), false);
    routes.on_event(
        event("a.test", LifecycleEvent::Stopping(StopReason::Idle)),
        false,
    );
    let (held, start) = routes.admit("a.test");
    let mut held = hold(held);
    assert!(start.is_some(), "the stop is followed by a start");
    let effects = routes.on_event(event("a.test", LifecycleEvent::Stopped), false);
    assert!(effects.start.is_empty(), "the start is already requested");
    assert_eq!(effects.drop_pool, vec![Host::from("a.test")]);
    routes.on_event(event("a.test", LifecycleEvent::Ready), false);
    assert_eq!(held.try_recv().unwrap(), Ok(()));
}

#[test]
fn stopped_with_waiters_and_no_request_outstanding_asks_for_a_start() {
    let mut routes = Routes::new(entries(&["a.test"]), 10);
    let _held = hold(routes.admit("a.test").0);
    routes.on_event(
        event("a.test", LifecycleEvent::StartFailed("x".into())),
        false,
    );
    // The held stream above was answered; hold a new one without a start request outstanding.
    let route = routes.map.get_mut("a.test").unwrap();
    let (tx, _rx) = oneshot::channel();
    route.waiting.push(tx);
    let effects = routes.on_event(event("a.test", LifecycleEvent::Stopped), false);
    assert_eq!(effects.start, vec![Host::from("a.test")]);
    let (tx, _rx2) = oneshot::channel();
    routes.map.get_mut("a.test").unwrap().view.start_requested = false;
    routes.map.get_mut("a.test").unwrap().waiting.push(tx);
    let effects = routes.on_event(event("a.test", LifecycleEvent::Stopped), true);
    assert!(effects.start.is_empty(), "no restarts while shutting down");
}

#[test]
fn reload_adds_updates_and_removes() {
    let mut routes = Routes::new(entries(&["a.test", "b.test"]), 10);
    routes.on_event(event("b.test", LifecycleEvent::Ready), false);
    let mut held_a = hold(routes.admit("a.test").0);

    let effects = routes.replace(entries(&["c.test"]));
    assert_eq!(effects.drop_pool, vec![Host::from("a.test")]);
    assert_eq!(
        held_a.try_recv().unwrap().unwrap_err().code,
        ErrorCode::UnknownHost
    );
    assert!(matches!(routes.admit("c.test").0, Admission::Hold { .. }));
    assert_eq!(rejected(routes.admit("a.test").0), ErrorCode::UnknownHost);
    // b is running but removed: new streams are refused while it drains.
    assert_eq!(
        rejected(routes.admit("b.test").0),
        ErrorCode::BackendShuttingDown
    );
    routes.on_event(
        event("b.test", LifecycleEvent::Stopping(StopReason::Removed)),
        false,
    );
    assert_eq!(
        rejected(routes.admit("b.test").0),
        ErrorCode::BackendShuttingDown
    );
    routes.on_event(event("b.test", LifecycleEvent::Stopped), false);
    assert_eq!(rejected(routes.admit("b.test").0), ErrorCode::UnknownHost);
}

#[test]
fn hosts_are_normalised_like_http1() {
    assert_eq!(normalize_host(b"Echo.Test.").as_deref(), Some("echo.test"));
    assert_eq!(normalize_host(b"a"), Some("a".to_string()));
    assert_eq!(normalize_host(&[0xff]), None);
}

#[test]
fn a_new_port_takes_effect_at_the_next_start() {
    let mut routes = Routes::new(entries(&["a.test"]), 10);
    routes.on_event(event("a.test", LifecycleEvent::Ready), false);
    let mut moved = entries(&["a.test"]);
    let mut config = (*moved[0].config).clone();
    config.port = 5000;
    moved[0].config = Arc::new(config);
    routes.replace(moved);
    let port = |routes: &mut Routes| match routes.admit("a.test").0 {
        Admission::Forward(target) => target.addr.port(),
        _ => panic!("expected a forward"),
    };
    assert_eq!(
        port(&mut routes),
        4000,
        "the running process keeps its port"
    );
    routes.on_event(
        event("a.test", LifecycleEvent::Stopping(StopReason::Idle)),
        false,
    );
    routes.on_event(event("a.test", LifecycleEvent::Stopped), false);
    routes.on_event(event_at("a.test", 5000, LifecycleEvent::Starting), false);
    routes.on_event(event_at("a.test", 5000, LifecycleEvent::Ready), false);
    assert_eq!(port(&mut routes), 5000);
}

#[test]
fn shutdown_answers_held_streams_and_holds_no_more() {
    let mut routes = Routes::new(entries(&["a.test", "b.test"]), 10);
    routes.on_event(event("b.test", LifecycleEvent::Ready), false);
    let mut held = hold(routes.admit("a.test").0);
    routes.shut_down();
    assert_eq!(
        held.try_recv().unwrap().unwrap_err().code,
        ErrorCode::BackendShuttingDown
    );
    assert_eq!(
        rejected(routes.admit("a.test").0),
        ErrorCode::BackendShuttingDown
    );
    assert!(matches!(routes.admit("b.test").0, Admission::Forward(_)));
}
