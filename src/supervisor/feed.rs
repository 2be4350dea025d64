//! One instance's inputs and effects: [`Supervisor::feed`] runs an input through the instance's lifecycle
//! (`slot.rs`) and carries out the effects that come back, for that instance alone: reports to the
//! reactor (naming the instance and its address), spawns, probes, stops. It then re-arms the instance's
//! one deadline.

use std::collections::VecDeque;

use super::event_loop::Supervisor;
use super::instance::Instance;
use super::keys::{probe_token, InstanceKey};
use super::lifecycle::{Effect, Input, Lifecycle};
use super::probe::{probe_timeout, Probe, Verdict};
use super::slot::{InstanceName, Running};
use crate::config::pools::Health;
use crate::msg::{BackendEvent, LifecycleEvent, ReactorMsg};

impl Supervisor {
    /// Hands `input` to the instance's lifecycle and carries out the effects, including any inputs the
    /// effects themselves produce (a failed spawn, a probe that fails at once).
    pub(super) fn feed(&mut self, key: InstanceKey, input: Input) {
        if input == Input::Start && !self.session_may_start(key) {
            return;
        }
        let mut pending = VecDeque::from([input]);
        while let Some(input) = pending.pop_front() {
            let now = self.clock.now_ms();
            let Some(backend) = self.backends.get_mut(key.backend) else {
                return;
            };
            let (config, activity) = (backend.config.clone(), backend.activity_of(key.index));
            let may_stop_idle = super::pool_ctl::may_stop_idle(backend, key.index);
            let Some(slot) = backend.slot_mut(key.index) else {
                return;
            };
            for effect in slot.step(input, now, &config, &activity, may_stop_idle) {
                if let Some(next) = self.apply(key, effect) {
                    pending.push_back(next);
                }
            }
        }
        let deadline = self
            .backends
            .get(key.backend)
            .and_then(|b| b.slot(key.index))
            .and_then(|slot| slot.deadline());
        self.timers.set(key, deadline);
        self.forget_if_removed(key.backend);
        self.after_pool_change(key.backend);
        if self.shutting_down
            && self
                .backends
                .get(key.backend)
                .is_some_and(|b| b.is_at_rest())
        {
            // What waited for this one to stop first may stop now.
            self.stop_in_order();
        }
    }

    /// Logs a transition of the instance and reports it to the reactor, naming the instance and its address.
    pub(super) fn emit(&mut self, key: InstanceKey, event: LifecycleEvent) {
        let now = self.clock.now_ms();
        let Some(backend) = self.backends.get_mut(key.backend) else {
            return;
        };
        let (id, host, config) = (backend.id, backend.host.clone(), backend.config.clone());
        let Some(slot) = backend.slot_mut(key.index) else {
            return;
        };
        // The request threads hear of it first: the log line and the facts are not on their way.
        let instance = slot.instance_ref();
        if !self.reactor.send(ReactorMsg::Backend(BackendEvent {
            backend: id,
            host: host.clone(),
            instance,
            event: event.clone(),
        })) {
            self.reactor_gone = true;
        }
        let name = InstanceName {
            host: &host,
            index: key.index,
        };
        slot.log_event(name, &config, &event, now);
        let process = slot.running.as_ref().map(|r| r.instance.describe());
        backend
            .activity_of(key.index)
            .update_facts(|facts| match &event {
                LifecycleEvent::Starting => {
                    facts.process = process;
                    facts.started_at = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .ok()
                        .map(|d| d.as_secs());
                }
                LifecycleEvent::StartFailed(why) => {
                    facts.process = None;
                    facts.last_start_failure = Some(why.clone());
                }
                LifecycleEvent::Stopped => facts.process = None,
                _ => {}
            });
    }

    fn apply(&mut self, key: InstanceKey, effect: Effect) -> Option<Input> {
        match effect {
            Effect::Emit(event) => {
                self.emit(key, event);
                None
            }
            Effect::Spawn => self.spawn(key),
            Effect::Probe => self.probe(key),
            Effect::CancelProbe => {
                if let Some(watch) = self.listen_watch.as_mut() {
                    watch.forget(key);
                }
                if let Some(probe) = self.slot_mut(key)?.probe.take() {
                    probe.close(self.poll.registry());
                }
                None
            }
            Effect::Terminate => {
                let slot = self.slot_mut(key)?;
                if let Some(Running {
                    instance: Instance::External,
                    ..
                }) = &slot.running
                {
                    // Nothing of ours runs there: it is "stopped" the moment the proxy stops using it.
                    slot.running = None;
                    return Some(Input::Exited("no longer used".to_string()));
                }
                if let Some(running) = &mut slot.running {
                    running.instance.terminate();
                }
                None
            }
            Effect::Kill => {
                if let Some(running) = &mut self.slot_mut(key)?.running {
                    running.instance.kill();
                }
                None
            }
        }
    }

    /// Starts the instance from its spec and the backend's latest config.
    fn spawn(&mut self, key: InstanceKey) -> Option<Input> {
        let now = self.clock.now_ms();
        let backend = self.backends.get_mut(key.backend)?;
        let (host, config) = (backend.host.clone(), backend.config.clone());
        let health = config.health();
        // A session's backend is named `session/{id}`, so its URL is `/ready/session/{id}`.
        let ready_url = match config.is_pool() && config.session.is_none() {
            true => format!("{}/ready/pool/{host}/{}", self.ready_url_base, key.index),
            false => format!("{}/ready/{host}", self.ready_url_base),
        };
        let activity = backend.activity_of(key.index);
        // A new program has said nothing of itself yet.
        activity.set_status(None);
        let output = self.output.sink(&config, key.index, activity);
        let slot = backend.slot_mut(key.index)?;
        let name = InstanceName {
            host: &host,
            index: key.index,
        };
        let spec = slot.spec.clone();
        let notify = self.notify.as_ref().map(|socket| socket.path());
        let docker = &mut self.docker;
        match Instance::start(&config, &spec, &ready_url, notify, docker, key, &output) {
            Ok(instance) => {
                let activated = instance.is_socket_activated();
                match activated {
                    true => log::info!("{name}: started on its listener ({})", instance.describe()),
                    false => log::info!("{name}: started ({})", instance.describe()),
                }
                if let (Some(watchdog), Some(group)) =
                    (self.watchdog.as_mut(), instance.process_group())
                {
                    watchdog.track(group);
                }
                if slot.running.is_some() {
                    // The lifecycle never spawns over a live instance; if it ever did, the old one is
                    // killed and reaped by its drop rather than leaked.
                    log::error!("{name}: spawned while an instance was running");
                }
                slot.running = Some(Running {
                    instance,
                    config,
                    spec,
                    started_ms: now,
                });
                // Its listener already queues connections: requests may go to it now. A pool whose
                // health is the process itself is ready once the process runs.
                match (health, activated) {
                    (Health::Process, _) => Some(Input::NotifyReady),
                    (_, true) => Some(Input::Listening),
                    (_, false) => None,
                }
            }
            Err(why) => Some(Input::SpawnFailed(why)),
        }
    }

    /// Sends one health probe to the running instance. A local program that does not listen yet is told
    /// apart without a handshake (`listening`) and watched until it does; the probe stays in flight
    /// for the lifecycle meanwhile.
    fn probe(&mut self, key: InstanceKey) -> Option<Input> {
        let now = std::time::Instant::now();
        let now_us = self.clock_us(now);
        let slot = self.slot_mut(key)?;
        let starting = matches!(slot.lifecycle, Lifecycle::Starting(_));
        let watchable = match &slot.running {
            Some(running) if starting && matches!(running.instance, Instance::Process(_)) => {
                running
                    .spec
                    .addr
                    .tcp()
                    .map(|addr| (addr.port(), running.started_ms.saturating_mul(1_000)))
            }
            _ => None,
        };
        if let (Some((port, spawned_us)), Some(watch)) = (watchable, self.listen_watch.as_mut()) {
            if let Ok(false) = watch.is_listening(port) {
                watch.watch(key, port, spawned_us, now_us);
                return None;
            }
        }
        self.connect_probe(key)
    }

    /// Connects the health probe to the running instance, at its address, under its own token, and
    /// sends the request at once if the connection is already up (it is on loopback).
    pub(super) fn connect_probe(&mut self, key: InstanceKey) -> Option<Input> {
        let now = self.clock.now_ms();
        let backend = self.backends.get_mut(key.backend)?;
        let host = backend.host.clone();
        let slot = backend.slot_mut(key.index)?;
        let Some(running) = &slot.running else {
            return Some(Input::ProbeResult(false));
        };
        if !running.instance.accepts_probes() {
            return Some(Input::ProbeResult(false));
        }
        let Some(token) = probe_token(key) else {
            log::error!("{host}: instance {} cannot be probed (too many)", key.index);
            return Some(Input::ProbeResult(false));
        };
        let config = &running.config;
        let path = match config.health() {
            // Running is healthy: nothing to ask the program (the exit is what fails it).
            Health::Process => return Some(Input::ProbeResult(true)),
            Health::Tcp => None,
            Health::Http => Some(config.timings.health_path.as_str()),
        };
        let interval = match slot.lifecycle {
            Lifecycle::Starting(_) => config.timings.health_check_interval,
            _ => config.timings.ready_health_check_interval,
        };
        let deadline = now + probe_timeout(interval).as_millis() as u64;
        let registry = self.poll.registry();
        match Probe::start(
            registry,
            token,
            &running.spec.addr,
            &config.hostname,
            path,
            deadline,
        ) {
            Ok(mut probe) => {
                // Connected already (loopback answers the handshake within `connect`): the request
                // goes out now rather than after a trip through the poll.
                let verdict = probe.advance();
                if let Some(old) = slot.probe.replace(probe) {
                    old.close(registry);
                }
                let verdict = verdict?;
                if let Some(probe) = slot.probe.take() {
                    probe.close(registry);
                }
                Some(verdict.input())
            }
            Err(e) if is_fd_exhaustion(&e) => {
                let name = InstanceName {
                    host: &host,
                    index: key.index,
                };
                log::debug!("{name}: health probe skipped: {e}");
                Some(Input::ProbeSkipped)
            }
            Err(e) => Some(Verdict::of_connect_error(&e).input()),
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
