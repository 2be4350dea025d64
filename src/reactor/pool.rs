//! The reactor's side of the keep-alive pool: the sockets. Which idle connections stay and for how long
//! is `upstream::idle_pool`'s (shared with the h2 worker); here are the readiness of a pooled connection
//! (the backend closing it), handing a connection back or closing it, deregistering what the pool lets
//! go, and the one timer that runs the pool's sweep when it is due.

use mio::event::Event;

use super::session::Phase;
use super::timers::TimerTarget;
use super::Reactor;
use crate::memory::give_back_freed_memory;
use crate::msg::State;
use crate::upstream::{BackendId, InstanceId};

impl Reactor {
    pub(super) fn upstream_ready(&mut self, ukey: usize, event: &Event) {
        let Some(up) = self.upstreams.get_mut(ukey) else {
            return;
        };
        up.on_event(event);
        // An idle pooled connection has nothing to say: readable is the backend closing it (or
        // garbage); a spurious wake-up reads nothing and keeps it.
        let closed_while_idle = up.owner.is_none()
            && (event.is_readable() || event.is_read_closed() || event.is_error())
            && !up.idle_alive();
        match up.owner {
            Some((key, serial)) if self.sessions.get(key).is_some_and(|s| s.serial == serial) => {
                self.drive(key)
            }
            Some(_) => {}
            None if closed_while_idle => {
                let instance = up.instance;
                let _ = self.pool.remove(instance, |&u| u == ukey);
                self.close_upstream(ukey);
            }
            None => {}
        }
    }

    /// Detaches the backend connection of a phase a session has left (pooling it when `reusable`) and ends
    /// its in-flight count; a phase without one is simply dropped.
    pub(super) fn release_upstream(&mut self, left: Phase, reusable: bool) {
        let (ukey, lease, instance) = match left {
            Phase::Exchanging(ex) => (ex.upstream, ex.lease, ex.instance),
            Phase::Tunnel(t) => (t.upstream, t.lease, t.instance),
            _ => return,
        };
        if let Some(lease) = lease {
            lease.end(self.routes.clock().ms(self.now));
            // A pool at its limit may take a held request in the place this one leaves.
            if let Some(outcome) = self.routes.freed(instance, self.now) {
                self.settle(outcome);
            }
            if self.routes.other_waits(instance) {
                if let Some(h2) = &self.h2 {
                    h2.slot_freed(instance);
                }
            }
        }
        let Some(up) = self.upstreams.get_mut(ukey) else {
            return;
        };
        let ready = self
            .routes
            .instance(instance)
            .is_some_and(|i| i.view.state == State::Ready);
        if !(reusable && ready) {
            self.close_upstream(ukey);
            return;
        }
        up.owner = None;
        let put = self.pool.put(instance, ukey, self.now);
        if put.surplus {
            // Likely to be closed after the grace: it need not keep a read buffer meanwhile (a burst hands
            // back thousands at once). One within the cap keeps it for the next response.
            up.inbuf.release_if_empty();
        }
        if let Some(ukey) = put.close {
            self.close_upstream(ukey);
        }
        if let Some(at) = put.sweep_by {
            self.pool_sweep
                .bring_forward(at, TimerTarget::PoolSweep, &mut self.timers);
        }
    }

    /// The newest live idle connection to `backend`, now owned by nobody until the caller lends it; the
    /// expired and the dead found on the way are closed.
    pub(super) fn take_pooled(&mut self, backend: InstanceId) -> Option<usize> {
        let upstreams = &self.upstreams;
        let mut dead = Vec::new();
        let taken = self.pool.take(
            backend,
            self.now,
            |ukey| {
                upstreams
                    .get(*ukey)
                    .is_some_and(|up| up.owner.is_none() && !up.transport.io.read_eof)
            },
            |ukey| dead.push(ukey),
        );
        for ukey in dead {
            // A key the pool still held always names a pooled connection; never close one in use.
            if self
                .upstreams
                .get(ukey)
                .is_some_and(|up| up.owner.is_none())
            {
                self.close_upstream(ukey);
            }
        }
        taken
    }

    pub(super) fn close_upstream(&mut self, ukey: usize) {
        if let Some(mut up) = self.upstreams.try_remove(ukey) {
            let _ = self.poll.registry().deregister(&mut up.transport.socket);
        }
    }

    /// Closes every pooled connection of one instance (it is stopping, was restarted, or is gone), or
    /// with `slot = None` of every instance of the backend.
    pub(super) fn drop_pool_of(&mut self, backend: BackendId, slot: Option<u32>) {
        for ukey in self.pool.drop_backend(backend, slot) {
            self.close_upstream(ukey);
        }
    }

    /// A burst of exchanges is over (`buffer::burst_over`): what it freed goes back to the system. Called
    /// from the event loop on the event that ended the burst (and as its tail halves), never on a timer of
    /// its own. It costs 2 to 15 ms after 3,000 exchanges at once, once per burst.
    pub(super) fn trim_after_burst(&mut self) {
        let started = std::time::Instant::now();
        // Pooled connections within the cap kept their read buffer for the next response; after a burst,
        // the next one is not due soon.
        for (_, up) in self.upstreams.iter_mut() {
            if up.owner.is_none() {
                up.inbuf.release_if_empty();
            }
        }
        self.pool.shrink();
        super::buffer::drop_spares();
        give_back_freed_memory();
        super::buffer::trimmed();
        log::debug!(
            "a burst is over: memory given back in {:?}; {} buffers in use, {} sessions and {} backend \
             connections open",
            started.elapsed(),
            super::buffer::in_use(),
            self.sessions.len(),
            self.upstreams.len()
        );
    }

    /// The pool's timer fired: closes what is past its time and arms the timer for the next one, if any
    /// connection is left.
    pub(super) fn sweep_pool(&mut self) {
        let sweep = self.pool.sweep(self.now);
        let swept = !sweep.close.is_empty();
        for ukey in sweep.close {
            self.close_upstream(ukey);
        }
        match sweep.next {
            Some(at) => self
                .pool_sweep
                .set(at, TimerTarget::PoolSweep, &mut self.timers),
            None => self.pool_sweep.clear(),
        }
        if swept && self.pool.shrink_after_burst() {
            give_back_freed_memory();
        }
    }
}
