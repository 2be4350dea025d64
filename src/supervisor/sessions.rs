//! What the supervisor does differently for a session's backend (`BackendConfig::session`): its
//! instance runs once, and it starts only after the session it waits for is gone.
//!
//! * **Once**: a session that stopped has ended (idle, lifetime, exit, deletion); traffic must never
//!   bring it back, so a start of an instance that has run before is dropped here, whichever way it
//!   comes (`Command::Start`, a pool's demand, a held request during the stop). Restarts after failed
//!   health checks (`unhealthy = "restart"`) happen inside the lifecycle and are not starts from outside.
//! * **One instance per key**: a session made while its key's previous session (or the session evicted
//!   to make room) still drains names that backend in `SessionTag::after`; its start is held until the
//!   supervisor has forgotten that backend, then carried out. A session that waited and ends before it
//!   ran (evicted for another's room) passes its wait on to whoever waited for it, so the chain of
//!   drains and starts never lets two run where there is room for one.

use super::event_loop::Supervisor;
use super::keys::InstanceKey;
use super::lifecycle::{Input, Lifecycle};
use crate::upstream::BackendId;

impl Supervisor {
    /// Whether `Input::Start` may reach the instance at `key`: always for anything but a session.
    pub(super) fn session_may_start(&mut self, key: InstanceKey) -> bool {
        let Some(backend) = self.backends.get(key.backend) else {
            return true;
        };
        if backend.config.session.is_none() {
            return true;
        }
        let up = backend
            .slot(key.index)
            .is_some_and(|s| matches!(s.lifecycle, Lifecycle::Starting(_) | Lifecycle::Ready(_)));
        if up {
            // Idempotent for a running instance.
            return true;
        }
        if backend.activity_of(key.index).facts().started_at.is_some() {
            log::debug!("{}: has run once; not started again", backend.host);
            return false;
        }
        let waits = backend
            .waits_for
            .is_some_and(|after| self.by_id.contains_key(&after));
        if waits {
            log::debug!(
                "{}: waits for the previous session of its key to stop",
                backend.host
            );
            if let Some(backend) = self.backends.get_mut(key.backend) {
                backend.start_held = true;
            }
            return false;
        }
        true
    }

    /// What a session that names `after` waits for: `after`, or, if that one was forgotten before it
    /// ran, what it waited for in turn.
    pub(super) fn passed_wait(&self, after: BackendId) -> BackendId {
        let mut wait = after;
        // Each step goes to a backend that still exists, and entries of forgotten ones are gone.
        for _ in 0..=self.passed_waits.len() {
            match self.passed_waits.get(&wait) {
                Some(&next) => wait = next,
                None => break,
            }
        }
        wait
    }

    /// The backend `gone` was forgotten: a session waiting for it now waits for what `gone` itself
    /// waited for (`gone_waited_for`, still there only if `gone` ended before it ever ran, as a session
    /// evicted while it waited for room does), or may start now (if something asked). A session added
    /// later that names `gone` is pointed the same way (`passed_waits`).
    pub(super) fn predecessor_gone(&mut self, gone: BackendId, gone_waited_for: Option<BackendId>) {
        self.passed_waits.retain(|_, waited| *waited != gone);
        if let Some(still) = gone_waited_for.filter(|id| self.by_id.contains_key(id)) {
            self.passed_waits.insert(gone, still);
        }
        let waiting: Vec<usize> = self
            .backends
            .iter()
            .filter(|(_, b)| b.waits_for == Some(gone))
            .map(|(key, _)| key)
            .collect();
        let still = gone_waited_for.filter(|id| self.by_id.contains_key(id));
        for key in waiting {
            let Some(backend) = self.backends.get_mut(key) else {
                continue;
            };
            backend.waits_for = still;
            if still.is_some() {
                log::debug!("{}: waits on for the session before", backend.host);
                continue;
            }
            if std::mem::take(&mut backend.start_held) {
                self.feed(InstanceKey::new(key, 0), Input::Start);
            }
            self.control(key);
        }
    }
}
