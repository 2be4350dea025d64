//! The reactor's side of the keep-alive pool: the sockets. Which idle connections stay and for how long
//! is `upstream::idle_pool`'s (shared with the h2 worker); here are the readiness of a pooled connection
//! (the backend closing it), handing a connection back or closing it, deregistering what the pool lets
//! go, and the one timer that runs the pool's sweep when it is due.

use std::io::Read;

use mio::event::Event;

use super::session::Phase;
use super::timers::TimerTarget;
use super::Reactor;
use crate::msg::State;
use crate::upstream::BackendId;

impl Reactor {
    pub(super) fn upstream_ready(&mut self, ukey: usize, event: &Event) {
        let Some(up) = self.upstreams.get_mut(ukey) else {
            return;
        };
        up.io.on_event(event);
        match up.owner {
            Some((key, serial)) if self.sessions.get(key).is_some_and(|s| s.serial == serial) => {
                self.drive(key)
            }
            Some(_) => {}
            None if event.is_readable() || event.is_read_closed() || event.is_error() => {
                // An idle pooled connection has nothing to say: anything readable is the backend closing
                // it (or garbage). A spurious wake-up reads nothing and keeps it.
                let mut probe = [0u8; 1];
                let alive = matches!(up.stream.read(&mut probe), Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock);
                if alive {
                    up.io.readable = false;
                } else {
                    let backend = up.backend;
                    let _ = self.pool.remove(backend, |&u| u == ukey);
                    self.close_upstream(ukey);
                }
            }
            None => {}
        }
    }

    /// Detaches the backend connection of a phase a session has left (pooling it when `reusable`) and ends
    /// its in-flight count; a phase without one is simply dropped.
    pub(super) fn release_upstream(&mut self, left: Phase, reusable: bool) {
        let (ukey, activity) = match left {
            Phase::Exchanging(ex) => (ex.upstream, ex.activity),
            Phase::Tunnel(t) => (t.upstream, t.activity),
            _ => return,
        };
        activity.end(self.clock.ms(self.now));
        let Some(up) = self.upstreams.get_mut(ukey) else {
            return;
        };
        let backend = up.backend;
        let ready = self
            .routes
            .get(backend)
            .is_some_and(|route| route.view.state == State::Ready);
        if !(reusable && ready) {
            self.close_upstream(ukey);
            return;
        }
        up.owner = None;
        let put = self.pool.put(backend, ukey, self.now);
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
    pub(super) fn take_pooled(&mut self, backend: BackendId) -> Option<usize> {
        let upstreams = &self.upstreams;
        let mut dead = Vec::new();
        let taken = self.pool.take(
            backend,
            self.now,
            |&ukey| {
                upstreams
                    .get(ukey)
                    .is_some_and(|up| up.owner.is_none() && !up.io.read_eof)
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
            let _ = self.poll.registry().deregister(&mut up.stream);
        }
    }

    /// Closes every pooled connection of one backend (it is stopping, was restarted, or is gone).
    pub(super) fn drop_pool_of(&mut self, backend: BackendId) {
        for ukey in self.pool.drop_backend(backend) {
            self.close_upstream(ukey);
        }
    }

    /// The pool's timer fired: closes what is past its time and arms the timer for the next one, if any
    /// connection is left.
    pub(super) fn sweep_pool(&mut self) {
        let sweep = self.pool.sweep(self.now);
        for ukey in sweep.close {
            self.close_upstream(ukey);
        }
        match sweep.next {
            Some(at) => self
                .pool_sweep
                .set(at, TimerTarget::PoolSweep, &mut self.timers),
            None => self.pool_sweep.clear(),
        }
    }
}
