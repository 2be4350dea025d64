//! The worker's idle keep-alive connections to backends, per backend (`pool_max_idle_per_host`,
//! `pool_idle_timeout_secs`). Separate from the reactor's pool: each thread owns its sockets.
//!
//! A multiplexed client moves in bursts: a batch of streams ends together, the next batch opens a moment
//! later. Closing every connection past `pool_max_idle_per_host` between the two would open as many new
//! ones right after, so the surplus is kept for [`SURPLUS_LINGER`] (up to [`MAX_IDLE_PER_HOST`]) and then
//! closed, oldest first; `pool_max_idle_per_host` connections stay for the full idle timeout.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use crate::upstream::BackendId;

/// How long idle connections beyond `pool_max_idle_per_host` are kept for the next burst.
pub const SURPLUS_LINGER: Duration = Duration::from_secs(2);
/// Idle connections kept per host at most, surplus included: as many as a few connections' worth of
/// concurrent streams, far below the descriptor limit.
pub const MAX_IDLE_PER_HOST: usize = 1024;

/// The pool's limits, from `[server]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
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

struct Idle {
    stream: TcpStream,
    since: Instant,
}

pub struct Pool {
    /// Oldest first.
    idle: HashMap<BackendId, VecDeque<Idle>>,
    limits: PoolLimits,
}

impl Pool {
    pub fn new(limits: PoolLimits) -> Self {
        Pool {
            idle: HashMap::new(),
            limits,
        }
    }

    /// The most recently used live connection to `backend`; expired and dead ones are closed on the way.
    pub fn take(&mut self, backend: BackendId, now: Instant) -> Option<TcpStream> {
        let list = self.idle.get_mut(&backend)?;
        let timeout = self.limits.idle_timeout;
        while let Some(idle) = list.pop_back() {
            if now.saturating_duration_since(idle.since) < timeout && is_alive(&idle.stream) {
                return Some(idle.stream);
            }
        }
        None
    }

    /// Keeps a connection whose last exchange ended cleanly. Returns whether the sweeper must be woken:
    /// the pool was empty, or this host's surplus just began (both move the next sweep earlier).
    pub fn put(&mut self, backend: BackendId, stream: TcpStream, now: Instant) -> bool {
        let max_idle = self.limits.max_idle_per_host;
        if max_idle == 0 {
            return false;
        }
        let was_empty = self.is_empty();
        let list = self.idle.entry(backend).or_default();
        if list.len() >= MAX_IDLE_PER_HOST.max(max_idle) {
            // The oldest is the least likely to be reused soon (and the most likely to be closed by the
            // backend first).
            list.pop_front();
        }
        list.push_back(Idle { stream, since: now });
        was_empty || list.len() == max_idle + 1
    }

    /// Closes every idle connection to a backend (its instance is stopping or unhealthy).
    pub fn drop_backend(&mut self, backend: BackendId) {
        self.idle.remove(&backend);
    }

    pub fn clear(&mut self) {
        self.idle.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.idle.values().all(VecDeque::is_empty)
    }

    /// Closes expired connections (and surplus past its linger); returns when the next one is due.
    pub fn sweep(&mut self, now: Instant) -> Option<Instant> {
        let timeout = self.limits.idle_timeout;
        let max_idle = self.limits.max_idle_per_host;
        let mut next: Option<Instant> = None;
        self.idle.retain(|_, list| {
            while let Some(oldest) = list.front() {
                let age = now.saturating_duration_since(oldest.since);
                let surplus = list.len() > max_idle;
                if age >= timeout || (surplus && age >= SURPLUS_LINGER) {
                    list.pop_front();
                } else {
                    let keep_for = if surplus { SURPLUS_LINGER } else { timeout };
                    let at = oldest.since + keep_for;
                    next = Some(next.map_or(at, |n| n.min(at)));
                    break;
                }
            }
            !list.is_empty()
        });
        next
    }
}

/// Whether an idle connection still looks usable: nothing to read (a backend that closed it would show
/// end-of-file; stray bytes would desynchronise the next response). This only sees what the runtime has
/// already noticed, so a connection that dies just now is caught by the one retry of a bodiless request.
fn is_alive(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    match stream.try_read(&mut probe) {
        Err(e) => e.kind() == io::ErrorKind::WouldBlock,
        Ok(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    fn limits(max: usize) -> PoolLimits {
        PoolLimits {
            max_idle_per_host: max,
            idle_timeout: Duration::from_secs(10),
        }
    }

    /// A connected pair: (our side, the backend's side).
    async fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
        let addr = listener.local_addr().unwrap();
        let (ours, theirs) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (ours.unwrap(), theirs.unwrap().0)
    }

    fn run(test: impl std::future::Future<Output = ()>) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(test);
    }

    #[test]
    fn connections_come_back_newest_first_and_expire() {
        run(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let mut pool = Pool::new(limits(2));
            let now = Instant::now();
            let host = BackendId::new(0, 1);
            let (a, _a_peer) = pair(&listener).await;
            let (b, _b_peer) = pair(&listener).await;
            let (c, _c_peer) = pair(&listener).await;
            let c_port = c.local_addr().unwrap().port();
            assert!(pool.put(host, a, now), "first connection");
            assert!(!pool.put(host, b, now));
            assert!(
                pool.put(host, c, now + Duration::from_secs(5)),
                "surplus begins"
            );
            // Three idle for a limit of two: the oldest goes once its linger is over.
            assert_eq!(pool.sweep(now), Some(now + SURPLUS_LINGER));
            assert_eq!(
                pool.sweep(now + SURPLUS_LINGER),
                Some(now + Duration::from_secs(10))
            );
            let first = pool.take(host, now).unwrap();
            assert_eq!(first.local_addr().unwrap().port(), c_port);
            // `b` is past its idle timeout.
            assert!(pool.take(host, now + Duration::from_secs(11)).is_none());
            assert!(pool.is_empty());
        });
    }

    #[test]
    fn closed_or_chatty_connections_are_not_reused() {
        run(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let mut pool = Pool::new(limits(4));
            let host = BackendId::new(0, 1);
            let (closed, closed_peer) = pair(&listener).await;
            let (chatty, mut chatty_peer) = pair(&listener).await;
            drop(closed_peer);
            chatty_peer.write_all(b"HTTP/1.1 200 OK\r\n").await.unwrap();
            // Let the runtime see both sockets become readable.
            closed.readable().await.unwrap();
            chatty.readable().await.unwrap();
            let now = Instant::now();
            pool.put(host, closed, now);
            pool.put(host, chatty, now);
            assert!(pool.take(host, now).is_none());
        });
    }

    #[test]
    fn sweeping_and_dropping_a_backend() {
        run(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let mut pool = Pool::new(limits(4));
            let now = Instant::now();
            let (a, _peer) = pair(&listener).await;
            let (b, _peer2) = pair(&listener).await;
            pool.put(BackendId::new(0, 1), a, now);
            pool.put(BackendId::new(1, 1), b, now + Duration::from_secs(3));
            assert_eq!(
                pool.sweep(now + Duration::from_secs(10)),
                Some(now + Duration::from_secs(13))
            );
            pool.drop_backend(BackendId::new(1, 1));
            assert!(pool.is_empty());
            assert_eq!(pool.sweep(now), None);
            let disabled = Pool::new(limits(0));
            assert!(disabled.is_empty());
        });
    }
}
