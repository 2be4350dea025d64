//! The shared suite: admission, holding, the reaction to reports, reload and retry, run once for each
//! protocol's waiter (the reactor's `Held`, the h2 worker's oneshot sender) through the same core.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::*;
use crate::config::{self, BackendConfig};
use crate::error::{ErrorCode, ProxyError};
use crate::h2::routes::Release;
use crate::msg::{BackendEvent, InstanceRef, LifecycleEvent, StopReason};
use crate::reactor::routes::Held;

/// How one protocol remembers a held request, and how such a request gives up.
trait Protocol {
    type W: Waiter + std::fmt::Debug;
    type Receipt;
    fn waiter(n: usize) -> (Self::W, Self::Receipt);
    fn give_up(table: &mut Upstreams<Self::W, ()>, id: BackendId, receipt: Self::Receipt);
}

struct Http1;
impl Protocol for Http1 {
    type W = Held;
    type Receipt = usize;
    fn waiter(n: usize) -> (Held, usize) {
        (Held { key: n, serial: 7 }, n)
    }
    fn give_up(table: &mut Upstreams<Held, ()>, id: BackendId, key: usize) {
        table.abandon(id, |h| h.key == key);
    }
}

struct H2;
impl Protocol for H2 {
    type W = oneshot::Sender<Release>;
    type Receipt = oneshot::Receiver<Release>;
    fn waiter(_: usize) -> (Self::W, Self::Receipt) {
        oneshot::channel()
    }
    fn give_up(_: &mut Upstreams<Self::W, ()>, _: BackendId, receipt: Self::Receipt) {
        drop(receipt);
    }
}

/// Runs each scenario once per protocol.
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn http1() {
                super::$name::<super::Http1>();
            }
            #[test]
            fn h2() {
                super::$name::<super::H2>();
            }
        }
    )*};
}

both!(
    unknown_hosts_are_404,
    a_cold_backend_is_started_once_and_released_when_ready,
    a_failed_start_answers_every_held_request,
    holds_are_capped_but_abandoned_holds_do_not_count,
    unhealthy_and_final_stops_are_refused_idle_stops_are_held,
    a_request_held_through_an_idle_stop_asks_for_one_start,
    stopped_with_waiters_asks_for_a_start_unless_shutting_down,
    shutdown_answers_what_waits_and_holds_no_more,
);

/// Reload scenarios, and reports that arrive around a reload.
mod reload;

fn configs(hosts: &[(&str, u16)]) -> Vec<Arc<BackendConfig>> {
    let mut text = String::new();
    for (host, port) in hosts {
        text.push_str(&format!(
            "[backends.\"{host}\"]\ncommand = \"true\"\nport = {port}\nstartup_timeout_secs = 5\n"
        ));
    }
    config::parse(Path::new("test.toml"), &text)
        .unwrap()
        .backends
}

struct Driver<P: Protocol> {
    table: Upstreams<P::W, ()>,
    now: Instant,
    held: usize,
}

impl<P: Protocol> Driver<P> {
    fn new(hosts: &[(&str, u16)], max_held: usize) -> Self {
        let mut table = Upstreams::new(
            max_held,
            crate::msg::Thread::Reactor,
            crate::msg::Clock::new(),
        );
        assert!(table
            .apply(&Reconcile::initial(&configs(hosts), &[]))
            .is_empty());
        Driver {
            table,
            now: Instant::now(),
            held: 0,
        }
    }

    fn id(&self, host: &str) -> BackendId {
        self.table.id_of(host).unwrap()
    }

    fn admit(&mut self, host: &str) -> Admission<P::Receipt> {
        let raw = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let head = crate::http1::request::parse_request(raw.as_bytes())
            .ok()
            .flatten()
            .expect("a valid head");
        let request = crate::http1::rewrite::Http1Source {
            buf: raw.as_bytes(),
            head: &head,
        };
        let mut scratch = crate::upstream::RouteScratch::default();
        let caller = crate::upstream::Caller {
            request_id: b"rid",
            client_ip: std::net::Ipv4Addr::LOCALHOST.into(),
        };
        let id = match self
            .table
            .routes()
            .lookup(host, &request, caller, &mut scratch)
        {
            crate::upstream::Routed::Forward { to, .. } => Some(to.backend),
            _ => None,
        };
        self.held += 1;
        let n = self.held;
        self.table.admit(id, host, self.now, &(), || P::waiter(n))
    }

    fn hold(&mut self, host: &str) -> P::Receipt {
        match self.admit(host) {
            Admission::Hold { until, receipt, .. } => {
                assert_eq!(until, self.now + Duration::from_secs(5) + HOLD_SLACK);
                receipt
            }
            Admission::Forward { .. } => panic!("expected a hold, got a forward"),
            Admission::Refuse(e) => panic!("expected a hold, got {e}"),
        }
    }

    fn refused(&mut self, host: &str) -> ProxyError {
        match self.admit(host) {
            Admission::Refuse(e) => e,
            other => panic!("expected a refusal, got {:?}", kind(&other)),
        }
    }

    /// A report about backend `id` (serving `host`), from its instance on `port`; `None` when the table
    /// does not know the backend.
    fn report(
        &mut self,
        id: BackendId,
        host: &str,
        port: u16,
        event: LifecycleEvent,
    ) -> Option<Outcome<P::W, ()>> {
        let report = BackendEvent {
            backend: id,
            host: host.into(),
            instance: InstanceRef {
                index: 0,
                addr: UpstreamAddr::Tcp(([127, 0, 0, 1], port).into()),
            },
            event,
        };
        self.table.on_event(report, self.now)
    }

    fn event_at(&mut self, host: &str, port: u16, event: LifecycleEvent) -> Outcome<P::W, ()> {
        let id = self.id(host);
        self.report(id, host, port, event).unwrap()
    }

    fn event(&mut self, host: &str, event: LifecycleEvent) -> Outcome<P::W, ()> {
        let port = self.table.get(self.id(host)).unwrap().config.port;
        self.event_at(host, port, event)
    }

    fn reload(&mut self, hosts: &[(&str, u16)]) -> Vec<Outcome<P::W, ()>> {
        let reconcile = self.table.plan(&configs(hosts), &[]);
        self.table.apply(&reconcile)
    }
}

fn kind<R>(admission: &Admission<R>) -> &'static str {
    match admission {
        Admission::Forward { .. } => "forward",
        Admission::Hold { .. } => "hold",
        Admission::Refuse(_) => "refusal",
    }
}

/// The released requests of an outcome: how many, and the error they get (`None`: forwarded).
fn released<W, X>(outcome: &Outcome<W, X>) -> Option<(usize, Option<ErrorCode>)> {
    let (_, result) = outcome.release.first()?;
    Some((outcome.release.len(), result.as_ref().err().map(|e| e.code)))
}

fn unknown_hosts_are_404<P: Protocol>() {
    let mut d = Driver::<P>::new(&[("a.test", 4000)], 10);
    assert_eq!(d.refused("b.test").code, ErrorCode::UnknownHost);
}

fn a_cold_backend_is_started_once_and_released_when_ready<P: Protocol>() {
    let mut d = Driver::<P>::new(&[("a.test", 4000)], 10);
    let Admission::Hold {
        ask: start,
        receipt: _a,
        ..
    } = d.admit("a.test")
    else {
        panic!("a cold backend holds")
    };
    assert!(start.is_some(), "the first request asks for a start");
    let Admission::Hold {
        ask: start,
        receipt: _b,
        ..
    } = d.admit("a.test")
    else {
        panic!("a starting backend holds")
    };
    assert!(start.is_none(), "one start for every held request");
    let starting = d.event("a.test", LifecycleEvent::Starting);
    assert!(starting.release.is_empty() && !starting.asks_start());
    let ready = d.event_at("a.test", 4100, LifecycleEvent::Ready);
    assert_eq!(released(&ready), Some((2, None)));
    assert!(matches!(d.admit("a.test"), Admission::Forward { .. }));
    let id = d.id("a.test");
    let addr = d.table.get(id).map(|b| b.first().addr.clone());
    assert_eq!(
        addr,
        Some(UpstreamAddr::Tcp(([127, 0, 0, 1], 4100).into())),
        "requests go where the instance said it listens"
    );
}

fn a_failed_start_answers_every_held_request<P: Protocol>() {
    let mut d = Driver::<P>::new(&[("a.test", 4000)], 10);
    let _held = d.hold("a.test");
    let failed = d.event("a.test", LifecycleEvent::StartFailed("exited".into()));
    assert_eq!(
        released(&failed),
        Some((1, Some(ErrorCode::BackendStartFailed)))
    );
    let Admission::Hold { ask: start, .. } = d.admit("a.test") else {
        panic!("held again")
    };
    assert!(start.is_some(), "the next request asks for a start again");
}

fn holds_are_capped_but_abandoned_holds_do_not_count<P: Protocol>() {
    let mut d = Driver::<P>::new(&[("a.test", 4000)], 2);
    let first = d.hold("a.test");
    let _second = d.hold("a.test");
    assert_eq!(d.refused("a.test").code, ErrorCode::TooManyHeld);
    let id = d.id("a.test");
    P::give_up(&mut d.table, id, first);
    let _third = d.hold("a.test");
}

fn unhealthy_and_final_stops_are_refused_idle_stops_are_held<P: Protocol>() {
    let mut d = Driver::<P>::new(&[("a.test", 4000)], 10);
    d.event("a.test", LifecycleEvent::Ready);
    assert!(d.event("a.test", LifecycleEvent::Unhealthy).drop_pool);
    assert_eq!(d.refused("a.test").code, ErrorCode::BackendUnhealthy);
    // The restart that follows an unhealthy verdict is refused too, until the new instance is ready.
    d.event("a.test", LifecycleEvent::Stopping(StopReason::Restart));
    assert_eq!(d.refused("a.test").code, ErrorCode::BackendUnhealthy);
    d.event("a.test", LifecycleEvent::Starting);
    d.event("a.test", LifecycleEvent::Ready);
    d.event("a.test", LifecycleEvent::Stopping(StopReason::Idle));
    let Admission::Hold { ask: start, .. } = d.admit("a.test") else {
        panic!("an idle stop holds")
    };
    assert!(start.is_some());
    d.event("a.test", LifecycleEvent::Stopping(StopReason::Shutdown));
    assert_eq!(d.refused("a.test").code, ErrorCode::BackendShuttingDown);
}

fn a_request_held_through_an_idle_stop_asks_for_one_start<P: Protocol>() {
    let mut d = Driver::<P>::new(&[("a.test", 4000)], 10);
    d.event("a.test", LifecycleEvent::Ready);
    d.event("a.test", LifecycleEvent::Stopping(StopReason::Idle));
    let _held = d.hold("a.test");
    let stopped = d.event("a.test", LifecycleEvent::Stopped);
    assert!(!stopped.asks_start(), "the start is already requested");
    assert!(stopped.drop_pool);
    let ready = d.event("a.test", LifecycleEvent::Ready);
    assert_eq!(released(&ready), Some((1, None)));
}

fn stopped_with_waiters_asks_for_a_start_unless_shutting_down<P: Protocol>() {
    let mut d = Driver::<P>::new(&[("a.test", 4000), ("b.test", 4001)], 10);
    let _a = d.hold("a.test");
    let a = d.id("a.test");
    // The start was refused by the supervisor's own record: nothing is pending any more.
    if let Some(backend) = d.table.get_mut(a) {
        backend.instances[0].view.start_requested = false;
    }
    let stopped = d.event("a.test", LifecycleEvent::Stopped);
    assert!(stopped.asks_start() && stopped.id == a);
    // An unhealthy backend is restarted after its stop, but not once the proxy shuts down.
    d.event("b.test", LifecycleEvent::Ready);
    d.event("b.test", LifecycleEvent::Unhealthy);
    d.event("b.test", LifecycleEvent::Stopping(StopReason::Restart));
    let answered = d.table.shut_down();
    assert_eq!(
        answered.len(),
        1,
        "a's held request is answered at shutdown"
    );
    let stopped = d.event("b.test", LifecycleEvent::Stopped);
    assert!(!stopped.asks_start(), "no restarts while shutting down");
}

fn shutdown_answers_what_waits_and_holds_no_more<P: Protocol>() {
    let mut d = Driver::<P>::new(&[("a.test", 4000), ("b.test", 4001)], 10);
    d.event("b.test", LifecycleEvent::Ready);
    let _held = d.hold("a.test");
    let answered = d.table.shut_down();
    assert_eq!(answered.len(), 1);
    assert_eq!(
        answered[0].1.as_ref().map(|_| ()).map_err(|e| e.code),
        Err(ErrorCode::BackendShuttingDown)
    );
    assert_eq!(d.refused("a.test").code, ErrorCode::BackendShuttingDown);
    assert!(matches!(d.admit("b.test"), Admission::Forward { .. }));
}

#[test]
fn only_a_request_without_a_body_that_failed_on_a_reused_connection_before_any_response_is_retried()
{
    assert!(may_retry(true, false, false, false));
    assert!(!may_retry(false, false, false, false), "a new connection");
    assert!(!may_retry(true, true, false, false), "a body");
    assert!(!may_retry(true, false, true, false), "a response began");
    assert!(!may_retry(true, false, false, true), "already retried");
}
