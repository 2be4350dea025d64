//! The supervisor thread's loop: one `mio::Poll` for commands (waker), child exits (SIGCHLD pipe) and
//! health probes, plus a timer heap for every backend's next deadline. It feeds inputs to each backend's
//! [`Lifecycle`] and carries out the effects that come back.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Duration;

use mio::{Events, Poll, Token};
use slab::Slab;

use super::backend::{host_of, Backend, Running};
use super::docker::{DockerDriver, DriverEvent};
use super::instance::Instance;
use super::lifecycle::{Effect, Input, Lifecycle};
use super::probe::{probe_timeout, Probe};
use super::sigchld::SigchldPipe;
use super::timers::Timers;
use super::watchdog::Watchdog;
use crate::msg::{
    BackendEntry, BackendEvent, Clock, Command, Host, LifecycleEvent, Mailbox, ReactorMsg,
    StopReason,
};
use crate::upstream::instance::InstanceSpec;

pub const WAKER_TOKEN: Token = Token(0);
pub const SIGCHLD_TOKEN: Token = Token(1);
/// Probe sockets use `FIRST_PROBE_TOKEN + backend key`: one probe per backend at most.
const FIRST_PROBE_TOKEN: usize = 2;
/// Readiness events handled per poll call; more simply wait for the next call.
const EVENT_CAPACITY: usize = 256;
/// Timer expiries handled per wake-up, so a bug that re-arms in the past cannot wedge the thread.
const MAX_TIMER_FIRES_PER_WAKE: usize = 4096;

pub struct Supervisor {
    pub poll: Poll,
    pub commands: Receiver<Command>,
    /// Reports from container worker threads; they wake the poll through the same waker as commands.
    pub driver_events: Receiver<DriverEvent>,
    pub docker: DockerDriver,
    pub reactor: Mailbox<ReactorMsg>,
    pub clock: Clock,
    pub ready_url_base: String,
    pub sigchld: SigchldPipe,
    pub backends: Slab<Backend>,
    pub by_host: HashMap<Host, usize>,
    pub timers: Timers,
    pub shutting_down: bool,
    /// The reactor dropped its end: nobody is left to report to.
    pub reactor_gone: bool,
    /// Kills every backend process group if the proxy dies (see `watchdog`).
    pub watchdog: Option<Watchdog>,
}

impl Supervisor {
    pub fn add_backend(&mut self, entry: BackendEntry) {
        self.docker.sweep_leftovers(&entry.config);
        let host = host_of(&entry.config);
        let key = self.backends.insert(Backend::new(entry));
        self.by_host.insert(host, key);
    }

    pub fn run(mut self) {
        let mut events = Events::with_capacity(EVENT_CAPACITY);
        loop {
            let timeout = self
                .timers
                .next_deadline()
                .map(|at| Duration::from_millis(at.saturating_sub(self.clock.now_ms())));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                log::error!("supervisor poll failed, killing every backend: {e}");
                self.kill_everything();
                return;
            }
            for event in events.iter() {
                match event.token() {
                    WAKER_TOKEN => {
                        self.drain_commands();
                        self.drain_driver_events();
                    }
                    SIGCHLD_TOKEN => self.reap_children(),
                    Token(t) => self.advance_probe(t - FIRST_PROBE_TOKEN),
                }
            }
            self.fire_timers();
            if self.reactor_gone {
                log::warn!("the reactor is gone; killing every backend");
                self.kill_everything();
                return;
            }
            if self.shutting_down && self.backends.iter().all(|(_, b)| b.is_at_rest()) {
                log::info!("every backend is stopped");
                self.reactor.send(ReactorMsg::ShutdownComplete);
                return;
            }
        }
    }

    fn drain_commands(&mut self) {
        loop {
            match self.commands.try_recv() {
                Ok(command) => self.handle_command(command),
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {
                    self.reactor_gone = true;
                    return;
                }
            }
        }
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Start(host) if self.shutting_down => {
                log::debug!("ignoring a start of {host} during shutdown");
            }
            Command::Start(host) => self.feed_host(&host, Input::Start),
            Command::ReadyCallback(host) => self.feed_host(&host, Input::ReadyCallback),
            Command::Reload(_) if self.shutting_down => {
                log::debug!("ignoring a reload during shutdown")
            }
            Command::Reload(entries) => self.reload(entries),
            Command::Shutdown => {
                self.shutting_down = true;
                let keys: Vec<usize> = self.backends.iter().map(|(key, _)| key).collect();
                for key in keys {
                    self.feed(key, Input::Stop(StopReason::Shutdown));
                }
            }
        }
    }

    fn feed_host(&mut self, host: &Host, input: Input) {
        match self.by_host.get(host) {
            Some(&key) => self.feed(key, input),
            None => log::debug!("{input:?} for unknown backend {host}; ignored"),
        }
    }

    fn reload(&mut self, entries: Vec<BackendEntry>) {
        let wanted: HashMap<Host, BackendEntry> = entries
            .into_iter()
            .map(|e| (host_of(&e.config), e))
            .collect();
        let gone: Vec<usize> = self
            .by_host
            .iter()
            .filter(|(host, _)| !wanted.contains_key(*host))
            .map(|(_, &key)| key)
            .collect();
        for (host, entry) in wanted {
            match self.by_host.get(&host) {
                Some(&key) => {
                    let backend = &mut self.backends[key];
                    if backend.removed {
                        self.readd(key);
                    }
                    let backend = &mut self.backends[key];
                    if *backend.config != *entry.config {
                        log::info!("{host}: new settings apply from its next start");
                        // New settings may well fix what kept failing: they get their own chances.
                        backend.crash_loop.forget();
                    }
                    // The Activity Arc stays: the reactor keeps using the one it already has.
                    backend.config = entry.config;
                }
                None => {
                    log::debug!("{host}: added");
                    self.add_backend(entry);
                }
            }
        }
        for key in gone {
            self.backends[key].removed = true;
            self.feed(key, Input::Stop(StopReason::Removed));
            self.forget_if_removed(key);
        }
    }

    /// A backend removed by an earlier reload is back while it still drains: its stop becomes an ordinary
    /// one, so requests are held and start it again instead of being refused as for a removed backend.
    fn readd(&mut self, key: usize) {
        let Some(backend) = self.backends.get_mut(key) else {
            return;
        };
        backend.removed = false;
        log::info!("{}: back in the config while stopping", backend.host);
        if let Lifecycle::Stopping(stopping) = &mut backend.lifecycle {
            if stopping.reason == StopReason::Removed {
                stopping.reason = StopReason::Idle;
                let event = LifecycleEvent::Stopping(StopReason::Idle);
                self.apply(key, Effect::Emit(event));
            }
        }
    }

    /// Hands `input` to the backend's lifecycle and carries out the effects, including any inputs the
    /// effects themselves produce (a failed spawn, a probe that fails at once).
    pub(super) fn feed(&mut self, key: usize, input: Input) {
        let mut pending = VecDeque::from([input]);
        while let Some(input) = pending.pop_front() {
            let Some(backend) = self.backends.get_mut(key) else {
                return;
            };
            let now = self.clock.now_ms();
            let config = backend.current_config();
            let env = backend.env(now, &config);
            let state = std::mem::replace(&mut backend.lifecycle, Lifecycle::Stopped);
            let (state, effects) = backend.crash_loop.step(state, input, &env);
            backend.lifecycle = state;
            for effect in effects {
                if let Some(next) = self.apply(key, effect) {
                    pending.push_back(next);
                }
            }
        }
        if let Some(backend) = self.backends.get(key) {
            self.timers.set(key, backend.deadline());
        }
        self.forget_if_removed(key);
    }

    fn apply(&mut self, key: usize, effect: Effect) -> Option<Input> {
        let now = self.clock.now_ms();
        let backend = self.backends.get_mut(key)?;
        match effect {
            Effect::Emit(event) => {
                backend.log_event(&event, now);
                let host = backend.host.clone();
                let instance = backend.instance_ref();
                if !self.reactor.send(ReactorMsg::Backend(BackendEvent {
                    host,
                    instance,
                    event,
                })) {
                    self.reactor_gone = true;
                }
                None
            }
            Effect::Spawn => {
                let ready_url = format!("{}/ready/{}", self.ready_url_base, backend.host);
                let config = backend.config.clone();
                let spec = InstanceSpec::first(&config);
                match Instance::start(&config, &spec, &ready_url, &mut self.docker, key) {
                    Ok(instance) => {
                        log::info!("{}: started ({})", backend.host, instance.describe());
                        if let (Some(watchdog), Some(group)) =
                            (self.watchdog.as_mut(), instance.process_group())
                        {
                            watchdog.track(group);
                        }
                        if backend.running.is_some() {
                            // The lifecycle never spawns over a live instance; if it ever did, the old
                            // one is killed and reaped by its drop rather than leaked.
                            log::error!("{}: spawned while an instance was running", backend.host);
                        }
                        backend.running = Some(Running {
                            instance,
                            config,
                            spec,
                            started_ms: now,
                        });
                        None
                    }
                    Err(why) => Some(Input::SpawnFailed(why)),
                }
            }
            Effect::Probe => {
                let Some(running) = &backend.running else {
                    return Some(Input::ProbeResult(false));
                };
                if !running.instance.accepts_probes() {
                    return Some(Input::ProbeResult(false));
                }
                let config = &running.config;
                let interval = match backend.lifecycle {
                    Lifecycle::Starting(_) => config.timings.health_check_interval,
                    _ => config.timings.ready_health_check_interval,
                };
                let deadline = now + probe_timeout(interval).as_millis() as u64;
                let token = Token(FIRST_PROBE_TOKEN + key);
                let registry = self.poll.registry();
                match Probe::start(
                    registry,
                    token,
                    &running.spec.addr,
                    &config.hostname,
                    &config.timings.health_path,
                    deadline,
                ) {
                    Ok(probe) => {
                        if let Some(old) = backend.probe.replace(probe) {
                            old.close(registry);
                        }
                        None
                    }
                    Err(e) if is_fd_exhaustion(&e) => {
                        log::debug!("{}: health probe skipped: {e}", backend.host);
                        Some(Input::ProbeSkipped)
                    }
                    Err(_) => Some(Input::ProbeResult(false)),
                }
            }
            Effect::CancelProbe => {
                if let Some(probe) = backend.probe.take() {
                    probe.close(self.poll.registry());
                }
                None
            }
            Effect::Terminate => {
                if let Some(running) = &mut backend.running {
                    running.instance.terminate();
                }
                None
            }
            Effect::Kill => {
                if let Some(running) = &mut backend.running {
                    running.instance.kill();
                }
                None
            }
        }
    }

    fn reap_children(&mut self) {
        self.sigchld.drain();
        let keys: Vec<usize> = self
            .backends
            .iter()
            .filter(|(_, b)| b.running.is_some())
            .map(|(key, _)| key)
            .collect();
        for key in keys {
            let backend = &mut self.backends[key];
            let Some(running) = &mut backend.running else {
                continue;
            };
            let Some(how) = running.instance.poll_exit() else {
                continue;
            };
            let name = running.instance.describe();
            if let (Some(watchdog), Some(group)) =
                (self.watchdog.as_mut(), running.instance.process_group())
            {
                watchdog.untrack(group);
            }
            if matches!(backend.lifecycle, Lifecycle::Ready(_)) {
                log::warn!("{}: exited unexpectedly with {how} ({name})", backend.host);
            } else {
                log::info!("{}: exited with {how} ({name})", backend.host);
            }
            backend.running = None;
            self.feed(key, Input::Exited(how));
        }
    }

    fn advance_probe(&mut self, key: usize) {
        let Some(backend) = self.backends.get_mut(key) else {
            return;
        };
        let Some(result) = backend.probe.as_mut().and_then(Probe::advance) else {
            return;
        };
        if let Some(probe) = backend.probe.take() {
            probe.close(self.poll.registry());
        }
        self.feed(key, Input::ProbeResult(result));
    }

    fn fire_timers(&mut self) {
        let now = self.clock.now_ms();
        for _ in 0..MAX_TIMER_FIRES_PER_WAKE {
            let Some(key) = self.timers.pop_due(now) else {
                return;
            };
            let Some(backend) = self.backends.get_mut(key) else {
                continue;
            };
            let probe_expired = backend
                .probe
                .as_ref()
                .is_some_and(|p| p.deadline_ms() <= now);
            if probe_expired {
                if let Some(probe) = backend.probe.take() {
                    probe.close(self.poll.registry());
                }
                log::debug!("{}: health probe timed out", backend.host);
                self.feed(key, Input::ProbeResult(false));
            }
            self.feed(key, Input::Tick);
        }
    }

    fn forget_if_removed(&mut self, key: usize) {
        let Some(backend) = self.backends.get(key) else {
            return;
        };
        if backend.removed && backend.is_at_rest() {
            log::debug!("{}: removed", backend.host);
            self.by_host.remove(&backend.host);
            self.backends.remove(key);
            self.timers.set(key, None);
        }
    }

    /// No one can be told anything any more: make sure no backend outlives the supervisor.
    fn kill_everything(&mut self) {
        for (_, backend) in self.backends.iter_mut() {
            if let Some(mut running) = backend.running.take() {
                running.instance.kill_and_reap();
            }
        }
    }
}

/// Out of file descriptors (process or system): a probe that cannot open a socket learns nothing.
fn is_fd_exhaustion(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(nix::libc::EMFILE | nix::libc::ENFILE)
    )
}
