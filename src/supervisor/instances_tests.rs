//! Instances of one backend are independent: their own lifecycle, crash-loop record, process, probe
//! token and deadline; the policy decides which of them a backend-level command reaches; reports name the
//! instance and the address it runs at. A two-instance backend is built here directly, since no config
//! describes one yet.

use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Instant;

use mio::{Events, Poll, Waker};

use super::backend::Backend;
use super::event_loop::{Supervisor, Turn};
use super::harness::{named, Harness};
use super::keys::InstanceKey;
use super::lifecycle::{CrashLoop, Effect, Input, Lifecycle};
use super::test_support::{
    first_pid, free_port, gone, health_server, local_config, pids_in, recorded, scratch_file,
    wait_for, WAIT,
};
use crate::msg::{
    BackendEntry, BackendEvent, Clock, Command, InstanceRef, LifecycleEvent, Mailbox, ReactorMsg,
};
use crate::upstream::instance::InstanceSpec;
use crate::upstream::BackendId;

/// Starts that fail in a row before any crash loop backs off, with room to spare.
const ENOUGH_FAILURES: usize = 20;

fn at(index: u32, port: u16) -> InstanceRef {
    let spec = InstanceSpec::on_loopback(index, port);
    InstanceRef {
        index,
        addr: spec.addr,
    }
}

/// A backend for `host` with two instances, the first on `ports[0]` (its config's port); its id is the
/// first a reactor would give.
fn two_instances(host: &str, ports: [u16; 2], config: crate::config::BackendConfig) -> Backend {
    let mut config = named(host, config);
    config.port = ports[0];
    let specs = vec![
        InstanceSpec::on_loopback(0, ports[0]),
        InstanceSpec::on_loopback(1, ports[1]),
    ];
    let specs = specs
        .into_iter()
        .map(|s| InstanceSpec::of_at(&config, s.index, s.port))
        .collect();
    let mut entry = BackendEntry::new(Arc::new(config));
    entry.activity.push(Default::default());
    Backend::with_instances(BackendId::new(0, 1), entry, specs)
}

#[test]
fn one_instance_crash_looping_leaves_the_others_record_and_lifecycle_alone() {
    let mut backend = two_instances(
        "two.test",
        [free_port(), free_port()],
        local_config(0, "x", &[]),
    );
    let (config, activity) = (backend.config.clone(), backend.activity_of(0));
    let mut now = 1_000;
    let broken = &mut backend.instances[1];
    for _ in 0..ENOUGH_FAILURES {
        let effects = broken.step(Input::Start, now, &config, &activity, true);
        assert!(effects.contains(&Effect::Spawn), "{effects:?}");
        broken.step(
            Input::SpawnFailed("no".into()),
            now,
            &config,
            &activity,
            true,
        );
        now += 10;
        if broken.crash_loop.refusal(now).is_some() {
            break;
        }
    }
    assert!(backend.instances[1].crash_loop.refusal(now).is_some());

    let healthy = &mut backend.instances[0];
    assert_eq!(healthy.crash_loop, CrashLoop::default());
    assert_eq!(healthy.lifecycle, Lifecycle::Stopped);
    let effects = healthy.step(Input::Start, now, &config, &activity, true);
    assert_eq!(
        effects,
        vec![Effect::Spawn, Effect::Emit(LifecycleEvent::Starting)]
    );
    assert!(matches!(healthy.lifecycle, Lifecycle::Starting(_)));
    let refused = backend.instances[1].step(Input::Start, now, &config, &activity, true);
    assert!(
        matches!(
            refused[..],
            [Effect::Emit(LifecycleEvent::BackingOff { .. })]
        ),
        "{refused:?}"
    );
}

/// A supervisor run on the test's own thread, so the test can reach instances a command cannot.
struct Loop {
    supervisor: Supervisor,
    commands: Mailbox<Command>,
    reports: mpsc::Receiver<ReactorMsg>,
    events: Events,
    _poll: Poll,
}

impl Loop {
    fn new() -> Loop {
        let poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let (tx, reports) = mpsc::channel();
        let reactor = Mailbox::new(tx, waker);
        let (supervisor, commands) =
            Supervisor::new(reactor, Clock::new(), "http://127.0.0.1:9999", None).unwrap();
        Loop {
            supervisor,
            commands,
            reports,
            events: Events::with_capacity(64),
            _poll: poll,
        }
    }

    /// Turns the loop until it reports `event` about an instance; returns which instance.
    fn until(&mut self, event: LifecycleEvent) -> InstanceRef {
        let deadline = Instant::now() + WAIT;
        loop {
            while let Ok(msg) = self.reports.try_recv() {
                if let ReactorMsg::Backend(report) = msg {
                    if report.event == event {
                        return report.instance;
                    }
                }
            }
            assert!(Instant::now() < deadline, "no {event:?} reported");
            assert_eq!(self.supervisor.turn(&mut self.events), Turn::Continue);
        }
    }

    /// Every report so far, as (instance index, event).
    fn drain(&mut self) -> Vec<(u32, LifecycleEvent)> {
        let mut seen = Vec::new();
        while let Ok(msg) = self.reports.try_recv() {
            if let ReactorMsg::Backend(report) = msg {
                seen.push((report.instance.index, report.event));
            }
        }
        seen
    }
}

#[test]
fn two_instances_of_one_backend_run_probe_and_fail_each_on_their_own() {
    let mut l = Loop::new();
    let pids = scratch_file("instances-two");
    let port0 = free_port();
    // Something else holds instance 1's port: every start of it fails, and it ends up backing off.
    let squatter = TcpListener::bind("127.0.0.1:0").unwrap();
    let port1 = squatter.local_addr().unwrap().port();
    let config = recorded(port0, &pids, "exec sleep 30");
    let b = l
        .supervisor
        .insert_backend(two_instances("two.test", [port0, port1], config));
    let second = InstanceKey::new(b, 1);
    let backing_off = |l: &Loop| {
        let now = l.supervisor.clock.now_ms();
        l.supervisor.backends[b].instances[1]
            .crash_loop
            .refusal(now)
            .is_some()
    };
    for _ in 0..ENOUGH_FAILURES {
        l.supervisor.feed(second, Input::Start);
        if backing_off(&l) {
            break;
        }
    }
    let reports = l.drain();
    assert!(reports.iter().all(|(index, _)| *index == 1), "{reports:?}");
    let why = format!("port {port1} is already in use by another program");
    assert!(reports.contains(&(1, LifecycleEvent::StartFailed(why))));
    assert!(matches!(
        reports.last(),
        Some((1, LifecycleEvent::BackingOff { .. }))
    ));

    // A request starts the backend: its policy starts the first instance, which its record lets start.
    let id = l.supervisor.backends[b].id;
    assert!(l.commands.send(Command::Start(id)));
    assert_eq!(l.until(LifecycleEvent::Starting), at(0, port0));
    let _health = health_server(port0);
    assert_eq!(l.until(LifecycleEvent::Ready), at(0, port0));
    // The test's own health server makes it ready, possibly before the shell has written its pid.
    let pid = first_pid(&pids);
    assert_eq!(pids_in(&pids).len(), 1, "one process: the first instance's");

    // Its exit is traced to it alone; the second instance stays as it was.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert_eq!(l.until(LifecycleEvent::Stopped), at(0, port0));
    assert!(gone(pid));
    assert_eq!(l.drain(), [], "nothing about the second instance");
    let now = l.supervisor.clock.now_ms();
    let backend = &l.supervisor.backends[b];
    assert_eq!(backend.instances[1].lifecycle, Lifecycle::Stopped);
    assert!(backing_off(&l));
    assert_eq!(backend.instances[0].crash_loop.refusal(now), None);

    // A shutdown reaches both instances; both are stopped already, so it completes at once.
    assert!(l.commands.send(Command::Shutdown));
    while l.supervisor.turn(&mut l.events) == Turn::Continue {}
    assert!(matches!(
        l.reports.try_recv(),
        Ok(ReactorMsg::ShutdownComplete)
    ));
    drop(squatter);
}

#[test]
fn two_instances_probed_at_once_each_get_their_own_verdict() {
    let mut l = Loop::new();
    let pids = scratch_file("instances-probes");
    let ports = [free_port(), free_port()];
    let config = recorded(ports[0], &pids, "exec sleep 30");
    let b = l
        .supervisor
        .insert_backend(two_instances("probed.test", ports, config));
    for index in 0..2 {
        l.supervisor.feed(InstanceKey::new(b, index), Input::Start);
    }
    let starts = l.drain();
    assert_eq!(
        starts,
        [(0, LifecycleEvent::Starting), (1, LifecycleEvent::Starting)]
    );
    assert!(wait_for(WAIT, || (pids_in(&pids).len() == 2).then_some(())).is_some());
    // Both are probed, on their own sockets and deadlines: only the healthy one becomes ready.
    let healthy = health_server(ports[0]);
    let failing = health_server(ports[1]);
    failing.store(503, Ordering::SeqCst);
    assert_eq!(l.until(LifecycleEvent::Ready), at(0, ports[0]));
    healthy.store(503, Ordering::SeqCst);
    failing.store(200, Ordering::SeqCst);
    assert_eq!(l.until(LifecycleEvent::Ready), at(1, ports[1]));
    let backend = &l.supervisor.backends[b];
    assert!(backend
        .instances
        .iter()
        .all(|slot| matches!(slot.lifecycle, Lifecycle::Ready(_))));
}

#[test]
fn a_running_instance_keeps_its_address_through_a_reload_and_moves_at_its_next_start() {
    let (pids, ports) = (
        scratch_file("instances-reload-pids"),
        scratch_file("instances-reload-ports"),
    );
    let (old_port, new_port) = (free_port(), free_port());
    let then = format!("echo $PORT >> {}; exec sleep 30", ports.display());
    let config = recorded(old_port, &pids, &then);
    let old = named("moved.test", config);
    let h = Harness::new(vec![old.clone()]);
    let reported = |h: &Harness, event: LifecycleEvent| match h.next() {
        ReactorMsg::Backend(BackendEvent {
            instance, event: e, ..
        }) if e == event => instance,
        other => panic!("expected {event:?}, got {other:?}"),
    };
    h.start("moved.test");
    assert_eq!(reported(&h, LifecycleEvent::Starting), at(0, old_port));
    h.ready("moved.test");
    assert_eq!(reported(&h, LifecycleEvent::Ready), at(0, old_port));
    let pid = first_pid(&pids);

    let mut moved = old;
    moved.port = new_port;
    h.reload(vec![moved]);
    h.start("moved.test");
    assert_eq!(
        reported(&h, LifecycleEvent::Ready),
        at(0, old_port),
        "it still runs where it was started"
    );

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert_eq!(
        reported(&h, LifecycleEvent::Stopped),
        at(0, new_port),
        "stopped, it is where its next start puts it"
    );
    h.start("moved.test");
    assert_eq!(reported(&h, LifecycleEvent::Starting), at(0, new_port));
    let told = wait_for(WAIT, || {
        let text = std::fs::read_to_string(&ports).ok()?;
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        (lines.len() == 2).then_some(lines)
    })
    .expect("both starts wrote their PORT");
    assert_eq!(told, [old_port.to_string(), new_port.to_string()]);
    let _ = std::fs::remove_file(ports);
}
