//! The reactor's side of session-lived backends (`crate::sessions`): it owns the registry and its own
//! copy of the session routes, carries out the registry's effects, numbers the updates it sends to the
//! h2 worker, holds admin answers until the worker has applied them, and feeds event streams.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::timers::{Deadline, TimerTarget};
use super::Reactor;
use crate::msg::{Clock, Command};
use crate::sessions::registry::{Effect, Registry};
use crate::sessions::route::SessionHosts;
use crate::upstream::{Change, Reconcile};

/// Event streams open at once (of `MAX_ADMIN_CONNECTIONS`, so the API stays reachable).
pub const MAX_STREAMS: usize = 32;

pub struct SessionCtl {
    pub registry: Registry,
    /// The reactor's copy of the session routes (the h2 worker keeps its own).
    pub hosts: SessionHosts,
    pub clock: Clock,
    /// The number of the last session update sent to the h2 worker, and of the last it applied.
    sent: u64,
    acked: u64,
    /// Admin answers waiting until the h2 worker routes what they hand out: (admin key, update number,
    /// the answer).
    parked: Vec<(usize, u64, Vec<u8>)>,
    /// Event streams: session id → admin keys.
    streams: HashMap<Arc<str>, Vec<usize>>,
    deadline: Deadline,
}

impl SessionCtl {
    pub fn new(registry: Registry, clock: Clock) -> SessionCtl {
        SessionCtl {
            registry,
            hosts: SessionHosts::default(),
            clock,
            sent: 0,
            acked: 0,
            parked: Vec::new(),
            streams: HashMap::new(),
            deadline: Deadline::default(),
        }
    }

    pub fn now_ms(&self, now: Instant) -> u64 {
        self.clock.ms(now)
    }

    /// Whether answers sent now would hand out something the h2 worker does not route yet.
    pub fn unacknowledged(&self) -> Option<u64> {
        (self.sent > self.acked).then_some(self.sent)
    }

    pub fn park(&mut self, key: usize, seq: u64, answer: Vec<u8>) {
        self.parked.push((key, seq, answer));
    }

    pub fn streams(&self) -> usize {
        self.streams.values().map(Vec::len).sum()
    }

    pub fn subscribe(&mut self, id: Arc<str>, key: usize) {
        self.streams.entry(id).or_default().push(key);
    }

    /// An admin connection closed: it no longer waits or listens.
    pub fn forget_conn(&mut self, key: usize) {
        self.parked.retain(|(k, _, _)| *k != key);
        self.streams.retain(|_, keys| {
            keys.retain(|k| *k != key);
            !keys.is_empty()
        });
    }
}

impl Reactor {
    /// At start and after a reload: the templates' hostname spaces to both request threads, and the
    /// Docker daemons their containers run on swept of a killed proxy's leftover sessions.
    pub(super) fn sessions_configured(&mut self) {
        let spaces = self.session_ctl.registry.spaces();
        self.session_effects(vec![Effect::Publish(spaces)]);
        for template in &self.config.sessions {
            self.send_supervisor(Command::Sweep(template.instance.clone()));
        }
    }

    /// Carries out what the registry asked, in order.
    pub(super) fn session_effects(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Add { id, entry } => {
                    let reconcile = Reconcile {
                        routes: self.routes.shared_routes(),
                        changes: vec![Change::Add { id, entry }],
                    };
                    self.share_reconcile(reconcile, true);
                }
                Effect::Start(id) => {
                    self.send_supervisor(Command::StartSlot {
                        backend: id,
                        slot: 0,
                    });
                }
                Effect::End { backend, drain } => {
                    self.send_supervisor(Command::End { backend, drain });
                    let reconcile = Reconcile {
                        routes: self.routes.shared_routes(),
                        changes: vec![Change::Remove { id: backend }],
                    };
                    // The supervisor was told by `End`, with the drain it asks for.
                    self.share_reconcile(reconcile, false);
                }
                Effect::Publish(update) => {
                    self.session_ctl.hosts.apply(update.clone());
                    if let Some(h2) = &self.h2 {
                        self.session_ctl.sent += 1;
                        h2.sessions(self.session_ctl.sent, update);
                    }
                }
                Effect::Event {
                    session,
                    frame,
                    last,
                } => self.stream_event(&session, frame.as_bytes(), last),
            }
        }
        self.arm_session_timer();
    }

    /// Applies a reconcile of sessions here and sends it to the h2 worker (and the supervisor).
    fn share_reconcile(&mut self, mut reconcile: Reconcile, supervisor: bool) {
        self.metrics.adopt(&mut reconcile);
        if let Some(h2) = &self.h2 {
            h2.reconcile(reconcile.clone());
        }
        if supervisor {
            self.send_supervisor(Command::Reload(reconcile.clone()));
        }
        for outcome in self.routes.apply(&reconcile) {
            self.settle(outcome);
        }
    }

    /// The h2 worker routes every session update up to `seq`: answers waiting for that go out.
    pub(super) fn session_ack(&mut self, seq: u64) {
        let ctl = &mut self.session_ctl;
        ctl.acked = ctl.acked.max(seq);
        let acked = ctl.acked;
        let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut ctl.parked)
            .into_iter()
            .partition(|(_, seq, _)| *seq <= acked);
        ctl.parked = waiting;
        for (key, _, answer) in due {
            let done = self
                .admins
                .get_mut(key)
                .is_some_and(|conn| conn.respond(answer));
            if done {
                self.close_admin(key);
            }
        }
    }

    fn stream_event(&mut self, session: &Arc<str>, frame: &[u8], last: bool) {
        let keys = match last {
            true => self.session_ctl.streams.remove(session).unwrap_or_default(),
            false => match self.session_ctl.streams.get(session) {
                Some(keys) => keys.clone(),
                None => return,
            },
        };
        for key in keys {
            let done = self
                .admins
                .get_mut(key)
                .is_none_or(|conn| conn.push(frame, last));
            if done {
                self.close_admin(key);
            }
        }
    }

    /// Lifetimes and tombstones that ran out.
    pub(super) fn registry_timer(&mut self, at: super::timers::TimerKey) {
        let now = Instant::now();
        if !self
            .session_ctl
            .deadline
            .fire(at, now, TimerTarget::Sessions, &mut self.timers)
        {
            return;
        }
        let now_ms = self.session_ctl.now_ms(now);
        let effects = self.session_ctl.registry.tick(now_ms);
        self.session_effects(effects);
    }

    fn arm_session_timer(&mut self) {
        let ctl = &mut self.session_ctl;
        match ctl.registry.next_deadline() {
            Some(ms) => {
                let at = ctl.clock.instant(ms);
                ctl.deadline
                    .set(at, TimerTarget::Sessions, &mut self.timers);
            }
            None => ctl.deadline.clear(),
        }
    }
}
