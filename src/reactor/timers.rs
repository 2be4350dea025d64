//! Deadlines for the reactor: a min-heap consulted for the poll timeout.
//!
//! Each owner (a session, the pool sweep) keeps its own current deadline; the heap holds at most a few
//! entries per owner because a later deadline never pushes a new entry: when an entry fires early the owner
//! re-arms it. That keeps the heap bounded by the number of owners, however often deadlines move.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimerTarget {
    /// A client session, named by slab key and the serial that tells reused keys apart.
    Session { key: usize, serial: u64 },
    /// Closing pooled upstream connections that sat idle too long.
    PoolSweep,
    /// Retrying `accept` after the process ran out of file descriptors.
    ResumeAccept,
}

#[derive(Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, TimerTarget)>>,
}

impl Timers {
    pub fn push(&mut self, at: Instant, target: TimerTarget) {
        self.heap.push(Reverse((at, target)));
    }

    /// The earliest deadline, for the poll timeout.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Pops the next entry that is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, TimerTarget)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(entry)| entry),
            _ => None,
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// The deadline an owner wants, and the heap entry that will wake it.
#[derive(Debug, Default, Clone, Copy)]
pub struct Deadline {
    wanted: Option<Instant>,
    armed: Option<Instant>,
}

impl Deadline {
    /// Sets the wanted deadline; pushes a heap entry only if nothing earlier is armed already.
    pub fn set(&mut self, at: Instant, target: TimerTarget, timers: &mut Timers) {
        self.wanted = Some(at);
        if self.armed.is_none_or(|armed| at < armed) {
            self.armed = Some(at);
            timers.push(at, target);
        }
    }

    pub fn clear(&mut self) {
        self.wanted = None;
    }

    /// A heap entry for this owner fired at `entry_at`. Returns true if the wanted deadline has passed;
    /// otherwise re-arms for the wanted deadline (if any) and returns false. Stale entries return false.
    pub fn fire(
        &mut self,
        entry_at: Instant,
        now: Instant,
        target: TimerTarget,
        timers: &mut Timers,
    ) -> bool {
        if self.armed != Some(entry_at) {
            return false;
        }
        self.armed = None;
        match self.wanted {
            Some(at) if at <= now => {
                self.wanted = None;
                true
            }
            Some(at) => {
                self.armed = Some(at);
                timers.push(at, target);
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
        let (at, _) = timers.pop_due(t0 + Duration::from_millis(1)).unwrap();
        assert!(!d.fire(at, t0 + Duration::from_millis(1), target, &mut timers));
        assert_eq!(timers.len(), 1);
        let (at, _) = timers.pop_due(t0 + Duration::from_secs(1)).unwrap();
        assert!(d.fire(at, t0 + Duration::from_secs(1), target, &mut timers));
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
        let (at, _) = timers.pop_due(t0 + Duration::from_secs(1)).unwrap();
        assert!(d.fire(at, t0 + Duration::from_secs(1), target, &mut timers));
        let (at, _) = timers.pop_due(t0 + Duration::from_secs(10)).unwrap();
        assert!(!d.fire(at, t0 + Duration::from_secs(10), target, &mut timers));
    }
}
