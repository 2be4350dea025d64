//! Deadlines for the reactor, consulted for the poll timeout.
//!
//! Each owner (a session, the pool sweep) has at most one entry: a later deadline keeps the entry and
//! re-arms when it fires early, an earlier one replaces it, and an owner that goes away removes it. So the
//! map is bounded by the number of owners and holds nothing for connections that are gone.

use std::collections::BTreeMap;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimerTarget {
    /// A client session, named by slab key and the serial that tells reused keys apart.
    Session { key: usize, serial: u64 },
    /// Closing pooled upstream connections that sat idle too long.
    PoolSweep,
    /// Retrying `accept` after the process ran out of file descriptors.
    ResumeAccept,
    /// Session lifetimes and tombstones (`session_ctl`).
    Sessions,
    /// The next snapshot for open status streams (`status_feed`).
    Status,
}

/// One entry: its deadline and a sequence number that keeps equal deadlines apart.
pub type TimerKey = (Instant, u64);

/// Ordered deadlines. Entries are removed when their owner goes away, so a burst of short-lived
/// connections leaves nothing behind to wake the proxy once it is idle again.
#[derive(Default)]
pub struct Timers {
    entries: BTreeMap<TimerKey, TimerTarget>,
    next_seq: u64,
}

impl Timers {
    pub fn push(&mut self, at: Instant, target: TimerTarget) -> TimerKey {
        self.next_seq += 1;
        let key = (at, self.next_seq);
        self.entries.insert(key, target);
        key
    }

    pub fn cancel(&mut self, key: TimerKey) {
        self.entries.remove(&key);
    }

    /// The earliest deadline, for the poll timeout.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.entries.keys().next().map(|(at, _)| *at)
    }

    /// Pops the next entry that is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(TimerKey, TimerTarget)> {
        let (&key, _) = self.entries.iter().next()?;
        if key.0 > now {
            return None;
        }
        self.entries.remove(&key).map(|target| (key, target))
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The deadline an owner wants, and the entry that will wake it. Moving the deadline later keeps the
/// entry (it re-arms when it fires early), so a busy keep-alive connection touches the map rarely.
#[derive(Debug, Default, Clone, Copy)]
pub struct Deadline {
    wanted: Option<Instant>,
    armed: Option<TimerKey>,
}

impl Deadline {
    /// Sets the wanted deadline; replaces the armed entry only if the new deadline is earlier.
    pub fn set(&mut self, at: Instant, target: TimerTarget, timers: &mut Timers) {
        self.wanted = Some(at);
        match self.armed {
            Some(armed) if armed.0 <= at => {}
            Some(armed) => {
                timers.cancel(armed);
                self.armed = Some(timers.push(at, target));
            }
            None => self.armed = Some(timers.push(at, target)),
        }
    }

    /// Moves the wanted deadline to `at` if that is earlier (a later one is left as it is, unlike `set`):
    /// for an owner that wants the earliest of several deadlines.
    pub fn bring_forward(&mut self, at: Instant, target: TimerTarget, timers: &mut Timers) {
        if self.wanted.is_none_or(|wanted| at < wanted) {
            self.set(at, target, timers);
        }
    }

    pub fn clear(&mut self) {
        self.wanted = None;
    }

    /// Removes the armed entry (the owner is going away).
    pub fn cancel(&mut self, timers: &mut Timers) {
        if let Some(armed) = self.armed.take() {
            timers.cancel(armed);
        }
        self.wanted = None;
    }

    /// The entry `key` for this owner fired. Returns true if the wanted deadline has passed; otherwise
    /// re-arms for the wanted deadline (if any) and returns false. Entries this owner no longer holds
    /// return false.
    pub fn fire(
        &mut self,
        key: TimerKey,
        now: Instant,
        target: TimerTarget,
        timers: &mut Timers,
    ) -> bool {
        if self.armed != Some(key) {
            return false;
        }
        self.armed = None;
        match self.wanted {
            Some(at) if at <= now => {
                self.wanted = None;
                true
            }
            Some(at) => {
                self.armed = Some(timers.push(at, target));
                false
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn later_deadlines_do_not_grow_the_heap() {
        let mut timers = Timers::default();
        let mut d = Deadline::default();
        let t0 = Instant::now();
        let target = TimerTarget::Session { key: 1, serial: 1 };
        for i in 1..1000 {
            d.set(t0 + Duration::from_millis(i), target, &mut timers);
        }
        assert_eq!(timers.len(), 1);
        // The early entry fires, finds the deadline moved, re-arms once.
        let (key, _) = timers.pop_due(t0 + Duration::from_millis(1)).unwrap();
        assert!(!d.fire(key, t0 + Duration::from_millis(1), target, &mut timers));
        assert_eq!(timers.len(), 1);
        let (key, _) = timers.pop_due(t0 + Duration::from_secs(1)).unwrap();
        assert!(d.fire(key, t0 + Duration::from_secs(1), target, &mut timers));
        assert!(timers.is_empty());
    }

    #[test]
    fn earlier_deadline_wins_and_stale_entry_is_ignored() {
        let mut timers = Timers::default();
        let mut d = Deadline::default();
        let t0 = Instant::now();
        let target = TimerTarget::PoolSweep;
        d.set(t0 + Duration::from_secs(10), target, &mut timers);
        d.set(t0 + Duration::from_secs(1), target, &mut timers);
        assert_eq!(
            timers.len(),
            1,
            "the earlier deadline replaces the later entry"
        );
        let (key, _) = timers.pop_due(t0 + Duration::from_secs(1)).unwrap();
        assert!(d.fire(key, t0 + Duration::from_secs(1), target, &mut timers));
        assert!(timers.pop_due(t0 + Duration::from_secs(10)).is_none());
    }

    #[test]
    fn bring_forward_keeps_the_earliest() {
        let mut timers = Timers::default();
        let mut d = Deadline::default();
        let t0 = Instant::now();
        let target = TimerTarget::PoolSweep;
        d.bring_forward(t0 + Duration::from_secs(5), target, &mut timers);
        d.bring_forward(t0 + Duration::from_secs(9), target, &mut timers);
        d.bring_forward(t0 + Duration::from_secs(2), target, &mut timers);
        assert_eq!(timers.len(), 1);
        let (key, _) = timers.pop_due(t0 + Duration::from_secs(2)).unwrap();
        assert!(d.fire(key, t0 + Duration::from_secs(2), target, &mut timers));
        assert!(timers.is_empty(), "the later wishes were not kept");
    }

    #[test]
    fn cancel_leaves_nothing_behind() {
        let mut timers = Timers::default();
        let mut d = Deadline::default();
        d.set(Instant::now(), TimerTarget::PoolSweep, &mut timers);
        d.cancel(&mut timers);
        assert!(timers.is_empty());
    }
}
