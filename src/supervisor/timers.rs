//! One wake-up deadline per key (per instance, in the supervisor), kept in a min-heap; and the
//! [`Alarm`] that wakes the supervisor's poll at the earliest of them, to the microsecond.
//!
//! Re-arming does not search the heap: it pushes a new entry under a fresh generation, and entries whose
//! generation is no longer the key's current one are dropped when they reach the top (lazy cancellation).
//! Generations come from one counter for all keys, so an entry left over from before a key was disarmed
//! and forgotten can never pass for a later arming of the same key.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

/// Stale entries allowed per live one before the heap is rebuilt. Each re-arm leaves one stale entry that
/// would otherwise sit there until its (possibly distant, e.g. idle-timeout) deadline.
const STALE_PER_LIVE: usize = 4;
/// Below this size stale entries are left alone: rebuilding a tiny heap saves nothing.
const MIN_COMPACT_LEN: usize = 64;

#[derive(Debug)]
pub struct Timers<K> {
    heap: BinaryHeap<Reverse<(u64, u64, K)>>,
    /// The keys with a deadline armed: (generation, deadline). A disarmed key has no entry.
    armed: HashMap<K, (u64, u64)>,
    next_generation: u64,
}

impl<K: Copy + Ord + Hash> Default for Timers<K> {
    fn default() -> Self {
        Timers {
            heap: BinaryHeap::new(),
            armed: HashMap::new(),
            next_generation: 0,
        }
    }
}

impl<K: Copy + Ord + Hash> Timers<K> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the one deadline of `key` (`None` disarms it). Cheap when it does not change.
    pub fn set(&mut self, key: K, deadline: Option<u64>) {
        let current = self.armed.get(&key).map(|&(_, at)| at);
        if current == deadline {
            return;
        }
        match deadline {
            None => {
                self.armed.remove(&key);
            }
            Some(at) => {
                self.next_generation += 1;
                self.armed.insert(key, (self.next_generation, at));
                self.heap.push(Reverse((at, self.next_generation, key)));
            }
        }
        self.compact_if_bloated();
    }

    /// The deadline armed for `key`, if any.
    pub fn deadline_of(&self, key: K) -> Option<u64> {
        self.armed.get(&key).map(|&(_, at)| at)
    }

    /// The earliest live deadline (stale entries at the top are discarded on the way).
    pub fn next_deadline(&mut self) -> Option<u64> {
        while let Some(Reverse((at, generation, key))) = self.heap.peek().copied() {
            if self.is_live(key, generation) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }

    /// Removes and returns one key whose deadline is at or before `now`; the key is disarmed.
    pub fn pop_due(&mut self, now: u64) -> Option<K> {
        while let Some(Reverse((at, generation, key))) = self.heap.peek().copied() {
            if !self.is_live(key, generation) {
                self.heap.pop();
                continue;
            }
            if at > now {
                return None;
            }
            self.heap.pop();
            self.armed.remove(&key);
            return Some(key);
        }
        None
    }

    fn is_live(&self, key: K, generation: u64) -> bool {
        self.armed
            .get(&key)
            .is_some_and(|&(current, _)| current == generation)
    }

    fn compact_if_bloated(&mut self) {
        if self.heap.len() < MIN_COMPACT_LEN || self.heap.len() <= self.armed.len() * STALE_PER_LIVE
        {
            return;
        }
        let armed = &self.armed;
        self.heap.retain(|Reverse((_, generation, key))| {
            armed
                .get(key)
                .is_some_and(|&(current, _)| current == *generation)
        });
    }
}

/// A `timerfd` in the supervisor's poll, armed at the exact moment of the next deadline. `epoll_wait`
/// takes its timeout in whole milliseconds, which mio rounds up: a wait for 0.3 ms would last 1 ms,
/// and a wait for 1 ms anywhere up to 2 ms of clock reading. The listen watch looks every quarter or
/// half millisecond, so its wake-ups need the alarm's precision.
#[derive(Debug)]
pub struct Alarm {
    fd: TimerFd,
    /// The moment it is armed for; `None` once it has gone off or was disarmed.
    armed: Option<Instant>,
}

impl Alarm {
    pub fn register(registry: &Registry, token: Token) -> io::Result<Alarm> {
        let fd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        registry.register(
            &mut SourceFd(&fd.as_fd().as_raw_fd()),
            token,
            Interest::READABLE,
        )?;
        Ok(Alarm { fd, armed: None })
    }

    /// Arms the alarm for `at` (`None`: disarms it, so an idle supervisor sleeps with no timer at all)
    /// and returns the poll's timeout: none, as the alarm wakes the poll, or zero when `at` has come.
    /// Setting the timer again also clears an expiry the poll reported, so the descriptor never needs
    /// reading (its registration is edge-triggered).
    pub fn set(&mut self, at: Option<Instant>, now: Instant) -> io::Result<Option<Duration>> {
        match at {
            Some(at) if at <= now => Ok(Some(Duration::ZERO)),
            _ if at == self.armed => Ok(None),
            Some(at) => {
                // Relative to `now`: the microsecond spent between reading the clock and this call
                // only makes the wake-up that much later.
                let spec = TimeSpec::from_duration(at - now);
                self.fd
                    .set(Expiration::OneShot(spec), TimerSetTimeFlags::empty())?;
                self.armed = Some(at);
                Ok(None)
            }
            None => {
                self.fd.unset()?;
                self.armed = None;
                Ok(None)
            }
        }
    }

    /// The poll reported the expiry: it is armed no more.
    pub fn rang(&mut self) {
        self.armed = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        let mut t = Timers::new();
        t.set(2, Some(300));
        t.set(0, Some(100));
        t.set(1, Some(200));
        assert_eq!(t.next_deadline(), Some(100));
        assert_eq!(t.pop_due(99), None);
        assert_eq!(t.pop_due(250), Some(0));
        assert_eq!(t.pop_due(250), Some(1));
        assert_eq!(t.pop_due(250), None);
        assert_eq!(t.next_deadline(), Some(300));
    }

    #[test]
    fn rearming_replaces_the_old_deadline() {
        let mut t = Timers::new();
        t.set(0, Some(100));
        t.set(0, Some(500));
        assert_eq!(t.next_deadline(), Some(500));
        assert_eq!(t.pop_due(400), None);
        t.set(0, None);
        assert_eq!(t.next_deadline(), None);
        assert_eq!(t.pop_due(1_000), None);
    }

    #[test]
    fn a_popped_key_can_be_armed_again_at_the_same_time() {
        let mut t = Timers::new();
        t.set(0, Some(100));
        assert_eq!(t.pop_due(100), Some(0));
        t.set(0, Some(100));
        assert_eq!(t.pop_due(100), Some(0));
    }

    #[test]
    fn a_key_disarmed_and_armed_again_is_not_woken_by_its_old_entry() {
        let mut t = Timers::new();
        t.set((0, 1), Some(100));
        t.set((0, 1), None);
        t.set((0, 1), Some(500));
        t.set((0, 0), Some(200));
        assert_eq!(t.pop_due(300), Some((0, 0)));
        assert_eq!(t.pop_due(300), None, "the entry at 100 is stale");
        assert_eq!(t.pop_due(500), Some((0, 1)));
    }

    #[test]
    fn the_alarm_wakes_the_poll_at_its_moment_and_not_once_disarmed() {
        use mio::{Events, Poll};
        let mut poll = Poll::new().expect("poll");
        let mut events = Events::with_capacity(4);
        let token = Token(7);
        let mut alarm = Alarm::register(poll.registry(), token).expect("timerfd");
        let start = Instant::now();
        let at = start + Duration::from_micros(300);
        assert_eq!(
            alarm.set(Some(at), start).expect("arm"),
            None,
            "the alarm wakes"
        );
        // The poll's own timeout only keeps a broken alarm from hanging the test.
        poll.poll(&mut events, Some(Duration::from_secs(5)))
            .expect("poll");
        let woke = Instant::now();
        assert!(
            events.iter().any(|e| e.token() == token),
            "woken by the alarm"
        );
        assert!(woke >= at, "not before its moment");
        assert!(woke < start + Duration::from_secs(1), "{:?}", woke - start);
        alarm.rang();
        // Past moments are due now; no moment means no alarm at all.
        let now = Instant::now();
        assert_eq!(
            alarm.set(Some(start), now).expect("due"),
            Some(Duration::ZERO)
        );
        alarm
            .set(Some(now + Duration::from_millis(5)), now)
            .expect("arm");
        assert_eq!(alarm.set(None, now).expect("disarm"), None);
        poll.poll(&mut events, Some(Duration::from_millis(30)))
            .expect("poll");
        assert!(events.is_empty(), "a disarmed alarm stays silent");
    }

    #[test]
    fn stale_entries_do_not_pile_up() {
        let mut t = Timers::new();
        for i in 0..10_000 {
            t.set(0, Some(1_000_000 + i));
        }
        assert!(t.heap.len() <= MIN_COMPACT_LEN);
        assert_eq!(t.next_deadline(), Some(1_000_000 + 9_999));
    }
}
