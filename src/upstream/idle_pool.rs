//! The keep-alive pool's rules, written once for both request threads: which idle backend connections
//! stay, which are closed, and when the next one is due. Sans-IO and generic over what a connection is
//! (the reactor's upstream slab key, the h2 worker's tokio socket): the pool hands back what must be
//! closed, the caller closes it, checks liveness on reuse, and keeps one timer for the deadline it is told.
//!
//! Per backend:
//! * a connection comes back to the back of the list and is reused newest first, so under a steady load
//!   the same few connections serve and the rest of the list grows old;
//! * `pool_max_idle_per_host` connections stay until they pass `pool_idle_timeout`;
//! * the surplus beyond them stays for [`SURPLUS_GRACE`] and is then closed, oldest first. Clients that
//!   outnumber the cap hand their connection back and take it again a moment later; closing it on return
//!   made them reopen one per request (64 clients lost 40 to 60 % of their requests/s with the default cap);
//! * at most [`MAX_IDLE_PER_HOST`] (or the cap, if higher) are kept: past that the oldest goes at once.
//!
//! While the pool is empty nothing is due: no timer, so an idle proxy does not wake up.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::{Duration, Instant};

use super::{BackendId, InstanceId};

/// How long idle connections beyond `pool_max_idle_per_host` are kept for the next request or burst.
///
/// 2 s for both protocols. Under load a connection comes back and is taken again within milliseconds, so
/// any grace of a second or more keeps what a busy backend needs; the grace only decides how long a
/// finished burst keeps its connections. HAProxy's `pool-purge-delay` is 5 s, but common backends close idle
/// keep-alive connections themselves after about that (Node.js `keepAliveTimeout` is 5 s): a surplus kept
/// that long would more and more often be found dead on reuse, and a request with a body on a dead
/// connection cannot be retried. 2 s still bridges the gaps between bursts of a busy client.
pub const SURPLUS_GRACE: Duration = Duration::from_secs(2);

/// Idle connections kept per backend at most, surplus included (unless the cap is higher): a few
/// connections' worth of concurrent clients, far below the descriptor limit.
pub const MAX_IDLE_PER_HOST: usize = 1024;

/// Room for this many idle connections left in the lists once a surplus is swept is a burst's (as the
/// reactor's `buffer::BURST_BUFFERS` counts one).
const SURPLUS_ROOM: usize = 256;

/// The pool's limits, from `[server]` (fixed until a restart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
    /// Idle connections kept for the full idle timeout; 0 turns pooling off.
    pub max_idle_per_host: usize,
    pub idle_timeout: Duration,
}

impl From<&crate::config::ServerConfig> for PoolLimits {
    fn from(server: &crate::config::ServerConfig) -> Self {
        PoolLimits {
            max_idle_per_host: server.pool_max_idle_per_host,
            idle_timeout: server.pool_idle_timeout,
        }
    }
}

impl PoolLimits {
    /// When the oldest of `list` is due: at the idle timeout, or sooner while it is surplus.
    fn due<C>(&self, list: &VecDeque<Idle<C>>) -> Option<Instant> {
        let oldest = list.front()?;
        let keep_for = if list.len() > self.max_idle_per_host {
            SURPLUS_GRACE.min(self.idle_timeout)
        } else {
            self.idle_timeout
        };
        Some(oldest.since + keep_for)
    }

    fn ceiling(&self) -> usize {
        MAX_IDLE_PER_HOST.max(self.max_idle_per_host)
    }
}

struct Idle<C> {
    conn: C,
    since: Instant,
}

/// What became of a connection handed back with [`IdlePool::put`].
#[derive(Debug)]
#[must_use]
pub struct Put<C> {
    /// A connection the pool does not keep, for the caller to close: the one handed back when pooling is
    /// off, or the backend's oldest once the ceiling is passed.
    pub close: Option<C>,
    /// The pool's next deadline may have moved earlier (the backend's first idle connection, or the start
    /// of its surplus): the sweep must run by then.
    pub sweep_by: Option<Instant>,
    /// The connection kept is surplus (beyond `pool_max_idle_per_host`), likely to be closed after the
    /// grace: it need not keep anything for a next request meanwhile.
    pub surplus: bool,
}

/// What a [`IdlePool::sweep`] found.
#[derive(Debug)]
pub struct Sweep<C> {
    /// Connections past their time, for the caller to close.
    pub close: Vec<C>,
    /// When the next sweep is due; `None` while the pool is empty.
    pub next: Option<Instant>,
}

/// Every backend's idle connections, as one thread keeps them.
pub struct IdlePool<C> {
    /// Oldest first; a backend with no idle connection has no entry.
    lists: HashMap<InstanceId, VecDeque<Idle<C>>, BuildHasherDefault<IdHasher>>,
    limits: PoolLimits,
}

impl<C> IdlePool<C> {
    pub fn new(limits: PoolLimits) -> Self {
        IdlePool {
            lists: HashMap::default(),
            limits,
        }
    }

    /// Keeps a connection whose last exchange ended cleanly.
    pub fn put(&mut self, backend: InstanceId, conn: C, now: Instant) -> Put<C> {
        let limits = self.limits;
        if limits.max_idle_per_host == 0 {
            return Put {
                close: Some(conn),
                sweep_by: None,
                surplus: false,
            };
        }
        let list = self.lists.entry(backend).or_default();
        let was_empty = list.is_empty();
        list.push_back(Idle { conn, since: now });
        // The oldest is the least likely to be reused soon (and the most likely to be closed by the
        // backend first).
        let close = if list.len() > limits.ceiling() {
            list.pop_front().map(|idle| idle.conn)
        } else {
            None
        };
        let surplus_began = list.len() == limits.max_idle_per_host + 1;
        let sweep_by = if was_empty || surplus_began {
            limits.due(list)
        } else {
            None
        };
        Put {
            close,
            sweep_by,
            surplus: list.len() > limits.max_idle_per_host,
        }
    }

    /// The most recently returned connection to `backend` that is within its idle timeout and passes
    /// `is_alive`; those found expired or dead on the way go to `close`.
    pub fn take(
        &mut self,
        backend: InstanceId,
        now: Instant,
        mut is_alive: impl FnMut(&mut C) -> bool,
        mut close: impl FnMut(C),
    ) -> Option<C> {
        let list = self.lists.get_mut(&backend)?;
        let timeout = self.limits.idle_timeout;
        let mut found = None;
        while let Some(mut idle) = list.pop_back() {
            if now.saturating_duration_since(idle.since) < timeout && is_alive(&mut idle.conn) {
                found = Some(idle.conn);
                break;
            }
            close(idle.conn);
        }
        if list.is_empty() {
            self.lists.remove(&backend);
        }
        found
    }

    /// Takes one particular idle connection out (its backend closed it); `None` if it is not pooled.
    pub fn remove(&mut self, backend: InstanceId, is_it: impl Fn(&C) -> bool) -> Option<C> {
        let list = self.lists.get_mut(&backend)?;
        let at = list.iter().position(|idle| is_it(&idle.conn))?;
        let removed = list.remove(at).map(|idle| idle.conn);
        if list.is_empty() {
            self.lists.remove(&backend);
        }
        removed
    }

    /// Empties an instance's list (it is stopping, restarting or gone), or with `slot = None` those of
    /// every instance of the backend; the caller closes them.
    pub fn drop_backend(&mut self, backend: BackendId, slot: Option<u32>) -> Vec<C> {
        if let Some(slot) = slot {
            let list = self.lists.remove(&InstanceId { backend, slot });
            return list
                .unwrap_or_default()
                .into_iter()
                .map(|i| i.conn)
                .collect();
        }
        let mut out = Vec::new();
        self.lists.retain(|id, list| {
            let mine = id.backend == backend;
            if mine {
                out.extend(list.drain(..).map(|idle| idle.conn));
            }
            !mine
        });
        out
    }

    /// Empties the whole pool; the caller closes what it gets.
    pub fn clear(&mut self) -> Vec<C> {
        let lists = std::mem::take(&mut self.lists);
        lists
            .into_values()
            .flatten()
            .map(|idle| idle.conn)
            .collect()
    }

    /// Gives back the room a burst left in the lists (a list grows to every connection that came back at
    /// once, and keeps that capacity after the surplus is swept).
    pub fn shrink(&mut self) {
        for list in self.lists.values_mut() {
            list.shrink_to_fit();
        }
        self.lists.shrink_to_fit();
    }

    /// Room for idle connections the lists hold beyond those they keep, once no backend has a surplus
    /// left (0 while one has): what a burst's surplus left behind after its sweep, for [`IdlePool::shrink`].
    pub fn room_after_surplus(&self) -> usize {
        let max = self.limits.max_idle_per_host;
        if self.lists.values().any(|list| list.len() > max) {
            return 0;
        }
        self.lists
            .values()
            .map(|list| list.capacity() - list.len())
            .sum()
    }

    /// After a sweep that closed connections: when what is left is a burst's room (its surplus is gone
    /// but the lists kept their size), gives that room back and returns true, so the caller's thread
    /// can return the freed memory to the system. The lists are allocated in the burst's tail, often on
    /// pages the burst had just freed: those few KiB would keep a whole dirty page of up to 512 KiB
    /// for good. A steady load just over `pool_max_idle_per_host` leaves less room and is left alone.
    pub fn shrink_after_burst(&mut self) -> bool {
        if self.room_after_surplus() < SURPLUS_ROOM {
            return false;
        }
        self.shrink();
        true
    }

    /// Takes out what is past its time at `now` (expired, or surplus past the grace), oldest first, and
    /// says when the next sweep is due.
    pub fn sweep(&mut self, now: Instant) -> Sweep<C> {
        let limits = self.limits;
        let mut close = Vec::new();
        let mut next: Option<Instant> = None;
        self.lists.retain(|_, list| {
            while let Some(due) = limits.due(list) {
                if due > now {
                    next = Some(next.map_or(due, |n| n.min(due)));
                    break;
                }
                if let Some(idle) = list.pop_front() {
                    close.push(idle.conn);
                }
            }
            !list.is_empty()
        });
        Sweep { close, next }
    }

    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }

    /// How many idle connections `backend` has.
    pub fn idle(&self, backend: InstanceId) -> usize {
        self.lists.get(&backend).map_or(0, VecDeque::len)
    }
}

/// Hashes the ids the proxy gives its instances (small numbers it chose, never a client's input), for
/// the two lookups every request makes in its thread's pool: a multiply-rotate per word instead of
/// SipHash, which cost about 450 instructions per request there (callgrind,
/// `benches/load/instructions.sh`).
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

#[cfg(test)]
#[path = "idle_pool_tests.rs"]
mod tests;
