//! What the supervisor does differently for a session's backend (`BackendConfig::session`): its
//! instance runs once, and it starts only after the session it waits for is gone.
//!
//! * **Once**: a session that stopped has ended (idle, lifetime, exit, deletion); traffic must never
//!   bring it back, so a start of an instance that has run before is dropped here, whichever way it
//!   comes (`Command::Start`, a pool's demand, a held request during the stop). Restarts after failed
//!   health checks (`unhealthy = "restart"`) happen inside the lifecycle and are not starts from outside.
//! * **One instance per key**: a session made while its key's previous session (or the session evicted
//!   to make room) still drains names that backend in `SessionTag::after`; its start is held until the
//!   supervisor has forgotten that backend, then carried out.

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
        let Some(tag) = backend.config.session.clone() else {
            return true;
        };
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
        let waits = tag
            .after
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

    /// The backend `gone` was forgotten: a session waiting for it may start now (if something asked).
    pub(super) fn predecessor_gone(&mut self, gone: BackendId) {
        let waiting: Vec<usize> = self
            .backends
            .iter()
            .filter(|(_, b)| b.config.session.as_ref().and_then(|t| t.after) == Some(gone))
            .map(|(key, _)| key)
            .collect();
        for key in waiting {
            let held = self
                .backends
                .get_mut(key)
                .is_some_and(|b| std::mem::take(&mut b.start_held));
            if held {
                self.feed(InstanceKey::new(key, 0), Input::Start);
            }
            self.control(key);
        }
    }
}
