//! One wake-up deadline per backend, kept in a min-heap.
//!
//! Re-arming does not search the heap: it bumps the backend's generation and pushes a new entry, and entries
//! whose generation is no longer current are dropped when they reach the top (lazy cancellation).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Stale entries allowed per live one before the heap is rebuilt. Each re-arm leaves one stale entry that
/// would otherwise sit there until its (possibly distant, e.g. idle-timeout) deadline.
const STALE_PER_LIVE: usize = 4;
/// Below this size stale entries are left alone: rebuilding a tiny heap saves nothing.
const MIN_COMPACT_LEN: usize = 64;

#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(u64, usize, u64)>>,
    /// Per key: (generation, armed deadline).
    armed: Vec<(u64, Option<u64>)>,
    /// Keys with a deadline armed.
    live: usize,
}

impl Timers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the one deadline of `key` (`None` disarms it). Cheap when it does not change.
    pub fn set(&mut self, key: usize, deadline: Option<u64>) {
        if self.armed.len() <= key {
            self.armed.resize(key + 1, (0, None));
        }
        let slot = &mut self.armed[key];
        if slot.1 == deadline {
            return;
        }
        match (slot.1, deadline) {
            (None, Some(_)) => self.live += 1,
            (Some(_), None) => self.live -= 1,
            _ => {}
        }
        slot.0 += 1;
        slot.1 = deadline;
        if let Some(at) = deadline {
            self.heap.push(Reverse((at, key, slot.0)));
        }
        self.compact_if_bloated();
    }

    /// The earliest live deadline (stale entries at the top are discarded on the way).
    pub fn next_deadline(&mut self) -> Option<u64> {
        while let Some(Reverse((at, key, generation))) = self.heap.peek().copied() {
            if self.is_live(key, generation) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }

    /// Removes and returns one key whose deadline is at or before `now`; the key is disarmed.
    pub fn pop_due(&mut self, now: u64) -> Option<usize> {
        while let Some(Reverse((at, key, generation))) = self.heap.peek().copied() {
            if !self.is_live(key, generation) {
                self.heap.pop();
                continue;
            }
            if at > now {
                return None;
            }
            self.heap.pop();
            self.armed[key].1 = None;
            self.live -= 1;
            return Some(key);
        }
        None
    }

    fn is_live(&self, key: usize, generation: u64) -> bool {
        self.armed
            .get(key)
            .is_some_and(|&(current, armed)| current == generation && armed.is_some())
    }

    fn compact_if_bloated(&mut self) {
        if self.heap.len() < MIN_COMPACT_LEN || self.heap.len() <= self.live * STALE_PER_LIVE {
            return;
        }
        let armed = &self.armed;
        self.heap.retain(|Reverse((_, key, generation))| {
            armed
                .get(*key)
                .is_some_and(|&(current, at)| current == *generation && at.is_some())
        });
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
    fn stale_entries_do_not_pile_up() {
        let mut t = Timers::new();
        for i in 0..10_000 {
            t.set(0, Some(1_000_000 + i));
        }
        assert!(t.heap.len() <= MIN_COMPACT_LEN);
        assert_eq!(t.next_deadline(), Some(1_000_000 + 9_999));
    }
}
