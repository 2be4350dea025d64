//! Scenarios of a pool's admission and release, driven without sockets: two request threads' tables
//! built from one config, lifecycle reports fed by hand, places taken and given back through leases.

use std::path::Path;
use std::time::{Duration, Instant};

use super::*;
use crate::config;
use crate::error::ErrorCode;
use crate::msg::{BackendEvent, Clock, Command, InstanceRef, LifecycleEvent, Thread};
use crate::reactor::routes::Held;
use crate::upstream::{BackendId, InstanceId, Reconcile, UpstreamAddr, Upstreams};

type Table = Upstreams<Held, ()>;

/// Both threads' tables for pool `p` (instances on ports 5000.., routed from host `p.test`) with `keys`.
fn tables(keys: &str) -> (Table, Table) {
    let text = format!(
        "[pools.p]\ncommand = \"true\"\nport = 5000\n{keys}\n[hosts.\"p.test\"]\n[[hosts.\"p.test\".routes]]\nto = \"p\"\n"
    );
    let config = config::parse(Path::new("pool.toml"), &text).expect("a valid pool");
    let initial = Reconcile::initial(&config.backends, &config.hosts);
    let clock = Clock::new();
    let mut reactor = Upstreams::new(100, Thread::Reactor, clock);
    let mut h2 = Upstreams::new(100, Thread::H2, clock);
    assert!(reactor.apply(&initial).is_empty());
    assert!(h2.apply(&initial).is_empty());
    (reactor, h2)
}

fn id(table: &Table) -> BackendId {
    table.id_of("p").expect("the pool is in the table")
}

fn admit(table: &mut Table, key: usize) -> Admission<()> {
    let id = Some(id(table));
    table.admit(id, "p.test", Instant::now(), &(), || {
        (Held { key, serial: 1 }, ())
    })
}

fn report(table: &mut Table, slot: u32, event: LifecycleEvent) -> Outcome<Held, ()> {
    let report = BackendEvent {
        backend: id(table),
        host: "p".into(),
        instance: InstanceRef {
            index: slot,
            addr: UpstreamAddr::Tcp(([127, 0, 0, 1], 5000 + slot as u16).into()),
        },
        event,
    };
    table
        .on_event(report, Instant::now())
        .expect("a known pool")
}

fn ready(table: &mut Table, slot: u32) -> Outcome<Held, ()> {
    report(table, slot, LifecycleEvent::Starting);
    report(table, slot, LifecycleEvent::Ready)
}

/// The slots the released requests were leased to, in queue order (errors as `None`).
fn released_to(outcome: &Outcome<Held, ()>) -> Vec<Option<u32>> {
    outcome
        .release
        .iter()
        .map(|(_, r)| r.as_ref().ok().map(|l| l.slot))
        .collect()
}

fn forwarded(admission: Admission<()>) -> Leased {
    match admission {
        Admission::Forward { to, .. } => to,
        Admission::Hold { .. } => panic!("held, not forwarded"),
        Admission::Refuse(e) => panic!("refused: {e}"),
    }
}

fn held_with(admission: Admission<()>) -> (Option<Command>, Instant) {
    match admission {
        Admission::Hold { ask, until, .. } => (ask, until),
        Admission::Forward { to, .. } => panic!("forwarded to {}", to.slot),
        Admission::Refuse(e) => panic!("refused: {e}"),
    }
}

fn demanded(ask: &Option<Command>) -> Option<u32> {
    match ask {
        Some(Command::Demand { held, from, .. }) => {
            assert_eq!(*from, Thread::Reactor);
            Some(*held)
        }
        None => None,
        other => panic!("not a demand: {other:?}"),
    }
}

#[test]
fn a_cold_pool_holds_reports_demand_once_per_instance_and_binds_late() {
    let (mut t, _) = tables("replicas = 3\ntarget_in_flight = 2");
    let (ask, _) = held_with(admit(&mut t, 1));
    assert_eq!(demanded(&ask), Some(1), "the first held request asks");
    let (ask, _) = held_with(admit(&mut t, 2));
    assert_eq!(demanded(&ask), None, "two fit one instance's target");
    let (ask, _) = held_with(admit(&mut t, 3));
    assert_eq!(demanded(&ask), Some(3), "a third needs a second instance");
    // Slot 2 comes up first although slot 0 was asked for first: the queue goes to who is ready.
    let up = ready(&mut t, 2);
    assert_eq!(released_to(&up), vec![Some(2), Some(2), Some(2)]);
    assert_eq!(t.get(id(&t)).map(|b| b.held()), Some(0));
}

#[test]
fn max_in_flight_queues_and_a_freed_place_takes_the_front_of_the_queue() {
    let (mut t, _) = tables("replicas = 2\nmax_in_flight = 1\nqueue_timeout_secs = 3");
    ready(&mut t, 0);
    ready(&mut t, 1);
    let first = forwarded(admit(&mut t, 1));
    let second = forwarded(admit(&mut t, 2));
    assert_eq!((first.slot, second.slot), (0, 1), "least_conn spreads");
    let before = Instant::now();
    let (ask, until) = held_with(admit(&mut t, 3));
    assert_eq!(
        demanded(&ask),
        Some(1),
        "nothing to start, but the controller learns a request waits (no idle stop meanwhile)"
    );
    let (ask, _) = held_with(admit(&mut t, 4));
    assert_eq!(
        demanded(&ask),
        None,
        "both instances run: more held changes nothing"
    );
    assert!(
        until >= before + Duration::from_secs(3),
        "a full pool waits queue_timeout"
    );
    assert_eq!(
        t.wait_expired(id(&t), "p.test").code,
        ErrorCode::QueueTimeout
    );
    let instance = InstanceId {
        backend: id(&t),
        slot: 1,
    };
    assert!(t.freed(instance, Instant::now()).is_none(), "still full");
    drop(second);
    let freed = t
        .freed(instance, Instant::now())
        .expect("a place was freed");
    assert_eq!(released_to(&freed), vec![Some(1)]);
    drop(first);
    let instance = InstanceId {
        backend: id(&t),
        slot: 0,
    };
    let freed = t.freed(instance, Instant::now()).expect("another place");
    assert_eq!(released_to(&freed), vec![Some(0)]);
    assert_eq!(demanded(&freed.ask), Some(0), "the queue is empty again");
}

#[test]
fn one_failing_slot_keeps_the_queue_while_another_starts() {
    let (mut t, _) = tables("replicas = 2\nwake = \"all\"");
    held_with(admit(&mut t, 1));
    report(&mut t, 0, LifecycleEvent::Starting);
    report(&mut t, 1, LifecycleEvent::Starting);
    let failed = report(&mut t, 0, LifecycleEvent::StartFailed("exited".into()));
    assert!(failed.release.is_empty(), "slot 1 may still come up");
    let failed = report(&mut t, 1, LifecycleEvent::StartFailed("exited".into()));
    let codes: Vec<_> = failed
        .release
        .iter()
        .map(|(_, r)| r.as_ref().map(|_| ()).map_err(|e| e.code))
        .collect();
    assert_eq!(codes, vec![Err(ErrorCode::BackendStartFailed)]);
    assert_eq!(
        t.wait_expired(id(&t), "p.test").code,
        ErrorCode::BackendStartFailed,
        "with nothing ready, an expired wait is a start that did not finish"
    );
}

#[test]
fn every_ready_instance_at_its_target_asks_for_one_more_while_forwarding() {
    let (mut t, _) = tables("replicas = 2\ntarget_in_flight = 1");
    ready(&mut t, 0);
    let Admission::Forward { to: first, ask } = admit(&mut t, 1) else {
        panic!("forwarded")
    };
    assert_eq!(demanded(&ask), None, "below the target before this request");
    let Admission::Forward { to: second, ask } = admit(&mut t, 2) else {
        panic!("forwarded")
    };
    assert_eq!(demanded(&ask), Some(0), "at the target: start another");
    assert!(
        matches!(ask, Some(Command::Demand { grow: true, .. })),
        "one more now, whatever the load when it is read"
    );
    let Admission::Forward { ask, .. } = admit(&mut t, 3) else {
        panic!("forwarded")
    };
    assert_eq!(demanded(&ask), None, "asked once until the pool changes");
    drop((first, second));
}

#[test]
fn a_thread_waiting_on_a_full_pool_is_seen_by_the_other() {
    let (mut reactor, mut h2) = tables("max_in_flight = 1");
    ready(&mut reactor, 0);
    ready(&mut h2, 0);
    let place = forwarded(admit(&mut reactor, 1));
    let instance = InstanceId {
        backend: id(&reactor),
        slot: 0,
    };
    assert!(!reactor.other_waits(instance));
    // The h2 worker finds the pool full (the reactor's request holds the only place) and waits.
    let id_h2 = h2.id_of("p");
    let held = h2.admit(id_h2, "p.test", Instant::now(), &(), || {
        (Held { key: 9, serial: 1 }, ())
    });
    assert!(matches!(held, Admission::Hold { .. }));
    assert!(
        reactor.other_waits(instance),
        "the reactor must tell the worker"
    );
    drop(place);
    let freed = h2
        .freed(instance, Instant::now())
        .expect("the worker takes the place");
    assert_eq!(released_to(&freed), vec![Some(0)]);
    assert!(!reactor.other_waits(instance), "nothing waits any more");
}

/// An affinity with a fixed key, hashed as the pool asks.
struct Key(u64);

impl Affinity for Key {
    fn hash_key(
        &self,
        _on: &crate::config::pools::HashOn,
        _over: crate::config::pools::HashOver,
    ) -> Option<u64> {
        Some(self.0)
    }
}

#[test]
fn hard_affinity_waits_for_the_owner_alone_and_starts_only_it() {
    let (mut t, _) = tables(
        "replicas = 3\nstrategy = \"hash\"\nhash_on = \"header:x-tenant\"\nhash_over = \"slots\"",
    );
    let owner = u32::from(super::balance::owner_slot(Some(7), 3).expect("three slots"));
    let other = (owner + 1) % 3;
    ready(&mut t, other);
    let id = Some(id(&t));
    let admit_key = |t: &mut Table, key: usize| {
        t.admit(id, "p.test", Instant::now(), &Key(7), || {
            (Held { key, serial: 1 }, ())
        })
    };
    // Another slot is ready, but the key's owner is not: wait for it, and ask for it by name.
    let (ask, _) = held_with(admit_key(&mut t, 1));
    assert!(
        matches!(ask, Some(Command::StartSlot { slot, .. }) if slot == owner),
        "{ask:?}"
    );
    let (ask, _) = held_with(admit_key(&mut t, 2));
    assert!(ask.is_none(), "asked once");
    let up = ready(&mut t, other);
    assert!(
        up.release.is_empty(),
        "another slot never takes the key's requests"
    );
    let up = ready(&mut t, owner);
    assert_eq!(released_to(&up), vec![Some(owner), Some(owner)]);
    // Once running, the owner serves the key directly; when its start fails, its requests hear at once.
    assert_eq!(forwarded(admit_key(&mut t, 3)).slot, owner);
    report(
        &mut t,
        owner,
        LifecycleEvent::Stopping(crate::msg::StopReason::Idle),
    );
    report(&mut t, owner, LifecycleEvent::Stopped);
    let (ask, _) = held_with(admit_key(&mut t, 4));
    assert!(matches!(ask, Some(Command::StartSlot { .. })));
    let failed = report(&mut t, owner, LifecycleEvent::StartFailed("exited".into()));
    assert_eq!(
        released_to(&failed),
        vec![None],
        "answered although slot {other} is ready"
    );
}

#[test]
fn the_controller_hears_when_nothing_is_held_any_more() {
    let (mut t, _) = tables("replicas = 2");
    let (ask, _) = held_with(admit(&mut t, 1));
    assert_eq!(demanded(&ask), Some(1));
    let up = ready(&mut t, 0);
    assert_eq!(released_to(&up), vec![Some(0)]);
    assert_eq!(
        demanded(&up.ask),
        Some(0),
        "held back to zero: the idle veto lifts"
    );
    // A request that gives up waiting is counted out too.
    report(
        &mut t,
        0,
        LifecycleEvent::Stopping(crate::msg::StopReason::Idle),
    );
    held_with(admit(&mut t, 2));
    let id = id(&t);
    let ask = t.abandon(id, |h| h.key == 2);
    assert_eq!(demanded(&ask), Some(0));
}
