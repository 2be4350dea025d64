//! The requests a backend holds, oldest first: one queue any instance may take from, and for a pool with
//! hard affinity (`hash_over = "slots"`) one queue per slot whose requests only that slot may serve.
//! An instance that can take requests serves its own bound ones before the shared queue.

use std::collections::VecDeque;

use super::backend::{Leased, Waiter};
use crate::error::ProxyError;

/// How a held request's wait ended: the instance it goes to, or the error it is answered with.
pub type Released = Result<Leased, ProxyError>;

fn refused<W>(waiting: Vec<W>, err: &ProxyError) -> Vec<(W, Released)> {
    waiting.into_iter().map(|w| (w, Err(err.clone()))).collect()
}

#[derive(Debug)]
pub struct Queue<W> {
    any: VecDeque<W>,
    /// By slot; empty (never grown) for backends without hard affinity.
    bound: Vec<VecDeque<W>>,
}

impl<W> Default for Queue<W> {
    fn default() -> Self {
        Queue {
            any: VecDeque::new(),
            bound: Vec::new(),
        }
    }
}

impl<W> Queue<W> {
    pub fn len(&self) -> usize {
        self.any.len() + self.bound.iter().map(VecDeque::len).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// At the back of the shared queue, or of `slot`'s own.
    pub fn push(&mut self, waiter: W, slot: Option<u32>) {
        match slot {
            None => self.any.push_back(waiter),
            Some(slot) => {
                let slot = slot as usize;
                if self.bound.len() <= slot {
                    self.bound.resize_with(slot + 1, VecDeque::new);
                }
                self.bound[slot].push_back(waiter);
            }
        }
    }

    /// The next request instance `slot` may serve: its own first, then the shared queue's front.
    pub fn pop_for(&mut self, slot: u32) -> Option<W> {
        let own = self
            .bound
            .get_mut(slot as usize)
            .and_then(VecDeque::pop_front);
        own.or_else(|| self.any.pop_front())
    }

    /// Requests only `slot` may serve.
    pub fn bound_to(&self, slot: u32) -> usize {
        self.bound.get(slot as usize).map_or(0, VecDeque::len)
    }

    /// Takes out the requests only `slot` may serve, each to be answered with `err`.
    pub fn refuse_bound(&mut self, slot: u32, err: &ProxyError) -> Vec<(W, Released)> {
        let bound = self.bound.get_mut(slot as usize);
        let waiting = bound.map(|q| q.drain(..).collect()).unwrap_or_default();
        refused(waiting, err)
    }

    /// Takes out everything (shared queue first), each to be answered with `err`.
    pub fn refuse_all(&mut self, err: &ProxyError) -> Vec<(W, Released)> {
        refused(self.take_all(), err)
    }

    /// Takes out everything, shared queue first.
    pub fn take_all(&mut self) -> Vec<W> {
        let mut all: Vec<W> = self.any.drain(..).collect();
        for queue in &mut self.bound {
            all.extend(queue.drain(..));
        }
        all
    }

    pub fn retain(&mut self, keep: impl Fn(&W) -> bool) {
        self.any.retain(&keep);
        for queue in &mut self.bound {
            queue.retain(&keep);
        }
    }
}

impl<W: Waiter> Queue<W> {
    /// Forgets those that gave up on their own.
    pub fn prune(&mut self) {
        self.retain(|w| !w.is_gone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Waiter for u32 {}

    #[test]
    fn a_slot_serves_its_own_requests_before_the_shared_ones() {
        let mut queue = Queue::default();
        queue.push(1, None);
        queue.push(2, Some(1));
        queue.push(3, None);
        queue.push(4, Some(1));
        assert_eq!(
            (queue.len(), queue.bound_to(1), queue.bound_to(0)),
            (4, 2, 0)
        );
        assert_eq!(queue.pop_for(0), Some(1), "slot 0 takes the shared front");
        assert_eq!(queue.pop_for(1), Some(2), "slot 1 takes its own first");
        assert_eq!(queue.pop_for(1), Some(4));
        assert_eq!(queue.pop_for(1), Some(3), "then the shared queue");
        assert_eq!(queue.pop_for(5), None);
        assert!(queue.is_empty());
    }

    #[test]
    fn bound_requests_are_taken_out_alone_or_with_everything() {
        let mut queue = Queue::default();
        queue.push(1, None);
        queue.push(2, Some(2));
        queue.push(3, Some(0));
        let err = ProxyError::shutting_down();
        let refused: Vec<u32> = queue
            .refuse_bound(2, &err)
            .into_iter()
            .map(|(w, _)| w)
            .collect();
        assert_eq!(refused, vec![2]);
        queue.retain(|&w| w != 1);
        let all = queue.refuse_all(&err);
        assert_eq!(all.len(), 1);
        assert!(matches!(&all[0], (3, Err(e)) if *e == err));
        assert!(queue.is_empty());
    }
}
