//! Backend connections between requests: readiness of pooled connections, returning a connection to its
//! backend's pool (or closing it), and the sweep that closes connections idle longer than the pool allows.

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
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            up.io.readable = true;
            up.io.peer_closed |= event.is_read_closed() || event.is_error();
        }
        if event.is_writable() || event.is_write_closed() || event.is_error() {
            up.io.writable = true;
        }
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
                    self.drop_pooled(ukey);
                }
            }
            None => {}
        }
    }

    /// Detaches the session's backend connection (pooling it when `reusable`) and ends its in-flight count.
    /// Leaves the session in `Closing`; the caller sets the phase that follows.
    pub(super) fn release_upstream_of(&mut self, key: usize, reusable: bool) {
        let session = &mut self.sessions[key];
        let phase = std::mem::replace(&mut session.phase, Phase::Closing { shut: false });
        let (ukey, activity) = match phase {
            Phase::Exchanging(ex) => (ex.upstream, ex.activity),
            Phase::Tunnel(t) => (t.upstream, t.activity),
            other => {
                session.phase = other;
                return;
            }
        };
        activity.end(self.clock.ms(self.now));
        let pool_max = self.config.server.pool_max_idle_per_host;
        let pool_timeout = self.config.server.pool_idle_timeout;
        let Some(up) = self.upstreams.get_mut(ukey) else {
            return;
        };
        let route = self.routes.get_mut(up.backend);
        match route {
            Some(route)
                if reusable && route.view.state == State::Ready && route.extra.len() < pool_max =>
            {
                up.owner = None;
                up.idle_since = self.now;
                route.extra.push(ukey);
                self.pool_sweep.set(
                    self.now + pool_timeout,
                    TimerTarget::PoolSweep,
                    &mut self.timers,
                );
            }
            _ => self.close_upstream(ukey),
        }
    }

    pub(super) fn close_upstream(&mut self, ukey: usize) {
        if let Some(mut up) = self.upstreams.try_remove(ukey) {
            let _ = self.poll.registry().deregister(&mut up.stream);
        }
    }

    fn drop_pooled(&mut self, ukey: usize) {
        if let Some(up) = self.upstreams.get(ukey) {
            if let Some(route) = self.routes.get_mut(up.backend) {
                route.extra.retain(|&u| u != ukey);
            }
        }
        self.close_upstream(ukey);
    }

    /// Closes every pooled connection of one backend (it is stopping, or was restarted).
    pub(super) fn drop_pool_of(&mut self, backend: BackendId) {
        let Some(route) = self.routes.get_mut(backend) else {
            return;
        };
        for ukey in std::mem::take(&mut route.extra) {
            self.close_upstream(ukey);
        }
    }

    pub(super) fn sweep_pool(&mut self) {
        let timeout = self.config.server.pool_idle_timeout;
        let now = self.now;
        let mut expired = Vec::new();
        let mut next: Option<std::time::Instant> = None;
        for route in self.routes.iter_mut() {
            route.extra.retain(|&ukey| match self.upstreams.get(ukey) {
                Some(up) if up.idle_since + timeout > now => {
                    let due = up.idle_since + timeout;
                    next = Some(next.map_or(due, |n| n.min(due)));
                    true
                }
                _ => {
                    expired.push(ukey);
                    false
                }
            });
        }
        for ukey in expired {
            self.close_upstream(ukey);
        }
        if let Some(at) = next {
            self.pool_sweep
                .set(at, TimerTarget::PoolSweep, &mut self.timers);
        }
    }
}
