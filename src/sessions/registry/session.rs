//! One session's record, its bounded event history, and the bounded set of tombstones.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use crate::config::sessions::SessionTemplate;
use crate::msg::Activity;
use crate::sessions::route::SessionRoute;
use crate::sessions::SessionState;
use crate::upstream::BackendId;

/// Frames kept from the start of a session's history, and as many from its end: a session that
/// restarts over and over must not grow without bound, and the first and latest changes are the ones
/// worth replaying.
pub(super) const HISTORY_KEEP: usize = 32;

/// Tombstones kept at most; beyond, the oldest go first.
pub(super) const MAX_TOMBSTONES: usize = 10_000;

#[derive(Debug)]
pub(super) struct Session {
    pub id: Arc<str>,
    pub key: Box<str>,
    /// The template as it was when the session was made (a reload does not change a live session).
    pub template: Arc<SessionTemplate>,
    pub backend: BackendId,
    /// The instance's live traffic counter (the `BackendEntry`'s `activity[0]`).
    pub activity: Arc<Activity>,
    /// Host port on 127.0.0.1, held until the session has ended.
    pub port: u16,
    /// Creation order.
    pub seq: u64,
    pub created_ms: u64,
    /// The lifetime's end (`Clock` ms), if the template has one.
    pub deadline_ms: Option<u64>,
    pub state: SessionState,
    /// What the request threads route by; replaced whole on every change.
    pub route: Arc<SessionRoute>,
    pub history: History,
    /// The supervisor has reported about its instance: ending it must wait for `Stopped`. Until then
    /// no instance has run, and an ending session is ended at once (the supervisor forgets a stopped
    /// backend without a report).
    pub ran: bool,
    /// `End` was emitted (exactly once per session).
    pub end_sent: bool,
    /// `unhealthy = "restart"`: the supervisor is restarting it, so its `Stopped` is not an exit.
    pub restarting: bool,
    /// Until when its tombstone answers (`Clock` ms); set once ended.
    pub tombstone_until: Option<u64>,
}

impl Session {
    /// Counts toward `max_running` and answers a connect for its key: waiting, starting or ready.
    pub fn is_running(&self) -> bool {
        matches!(
            self.state,
            SessionState::Waiting | SessionState::Starting | SessionState::Ready
        )
    }

    /// What `GET` shows: anything but a tombstone past its time (`tick` may not have removed it yet).
    pub fn visible(&self, now_ms: u64) -> bool {
        self.tombstone_until.is_none_or(|until| now_ms < until)
    }

    /// When it was last active for LRU and the admin API: its traffic, or its creation if later (a
    /// new session has carried nothing yet, and is the newest, not the oldest).
    pub fn last_active_ms(&self) -> u64 {
        self.activity.last_active_ms().max(self.created_ms)
    }

    /// Replaces the route with a changed copy, and returns it to publish.
    pub fn change_route(&mut self, change: impl FnOnce(&mut SessionRoute)) -> Arc<SessionRoute> {
        let mut route = SessionRoute::clone(&self.route);
        change(&mut route);
        self.route = Arc::new(route);
        self.route.clone()
    }
}

/// The first and the last [`HISTORY_KEEP`] frames of a session.
#[derive(Debug, Default)]
pub(super) struct History {
    head: Vec<Box<str>>,
    tail: VecDeque<Box<str>>,
}

impl History {
    pub fn push(&mut self, frame: Box<str>) {
        if self.head.len() < HISTORY_KEEP {
            self.head.push(frame);
            return;
        }
        if self.tail.len() == HISTORY_KEEP {
            self.tail.pop_front();
        }
        self.tail.push_back(frame);
    }

    pub fn frames(&self) -> Vec<Box<str>> {
        self.head.iter().chain(&self.tail).cloned().collect()
    }
}

/// Ended sessions still answered for, by age (to drop the oldest beyond the limit) and by expiry (for
/// `tick`).
#[derive(Debug)]
pub(super) struct Tombstones {
    /// Ending order → (expiry, id).
    by_age: BTreeMap<u64, (u64, Arc<str>)>,
    /// (expiry, ending order).
    by_expiry: BTreeSet<(u64, u64)>,
    next: u64,
    /// [`MAX_TOMBSTONES`]; smaller in scenario tests.
    limit: usize,
}

impl Default for Tombstones {
    fn default() -> Self {
        Tombstones::with_limit(MAX_TOMBSTONES)
    }
}

impl Tombstones {
    pub fn with_limit(limit: usize) -> Tombstones {
        Tombstones {
            by_age: BTreeMap::new(),
            by_expiry: BTreeSet::new(),
            next: 0,
            limit,
        }
    }

    /// Keeps `id` until `until`; returns the oldest tombstones dropped to stay within the bound.
    pub fn add(&mut self, id: Arc<str>, until: u64) -> Vec<Arc<str>> {
        let age = self.next;
        self.next += 1;
        self.by_age.insert(age, (until, id));
        self.by_expiry.insert((until, age));
        let mut dropped = Vec::new();
        while self.by_age.len() > self.limit {
            let Some((age, (until, id))) = self.by_age.pop_first() else {
                break;
            };
            self.by_expiry.remove(&(until, age));
            dropped.push(id);
        }
        dropped
    }

    /// Removes and returns the tombstones whose time is over by `now_ms`.
    pub fn expired(&mut self, now_ms: u64) -> Vec<Arc<str>> {
        let mut gone = Vec::new();
        while let Some(&(until, age)) = self.by_expiry.first() {
            if until > now_ms {
                break;
            }
            self.by_expiry.pop_first();
            if let Some((_, id)) = self.by_age.remove(&age) {
                gone.push(id);
            }
        }
        gone
    }

    pub fn next_expiry(&self) -> Option<u64> {
        self.by_expiry.first().map(|(until, _)| *until)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_age.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_ten_thousand_tombstones_the_oldest_dropped_first() {
        let mut t = Tombstones::default();
        for n in 0..MAX_TOMBSTONES {
            // Expiries out of ending order: templates keep tombstones for different times.
            let until = 1_000_000 - (n as u64 % 7) * 1000;
            assert!(t.add(n.to_string().into(), until).is_empty());
        }
        let dropped = t.add("newest".into(), 5);
        assert_eq!(dropped, [Arc::<str>::from("0")]);
        let dropped = t.add("newer".into(), 6);
        assert_eq!(dropped, [Arc::<str>::from("1")]);
        assert_eq!(t.len(), MAX_TOMBSTONES);
        assert_eq!(t.next_expiry(), Some(5));
        assert_eq!(t.expired(6), [Arc::<str>::from("newest"), "newer".into()]);
        assert_eq!(t.len(), MAX_TOMBSTONES - 2);
    }

    #[test]
    fn history_keeps_the_first_and_last_frames() {
        let mut h = History::default();
        for n in 0..100 {
            h.push(n.to_string().into());
        }
        let frames = h.frames();
        assert_eq!(frames.len(), 2 * HISTORY_KEEP);
        assert_eq!(&*frames[0], "0");
        assert_eq!(&*frames[HISTORY_KEEP - 1], "31");
        assert_eq!(&*frames[HISTORY_KEEP], "68");
        assert_eq!(&*frames[2 * HISTORY_KEEP - 1], "99");
    }
}
