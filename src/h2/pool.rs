//! The h2 worker's side of the keep-alive pool: its tokio sockets (TCP or unix-domain) kept by the shared rules
//! ([`crate::upstream::idle_pool`], the same as the reactor's), and the check a pooled socket gets before
//! it is reused. Each thread owns its sockets, so the worker has its own pool.

use std::time::Instant;

use super::backend_io::BackendConn;
use crate::upstream::{IdlePool, InstanceId};

/// The worker's idle connections to backends. What it hands back to close is dropped, which closes it.
pub type Pool = IdlePool<BackendConn>;

/// The most recently used live connection to `backend`; expired and dead ones are closed on the way.
pub fn take(pool: &mut Pool, backend: InstanceId, now: Instant) -> Option<BackendConn> {
    pool.take(backend, now, is_alive, drop)
}

/// Whether an idle connection still looks usable ([`BackendConn::is_alive`]). This only sees what the
/// runtime has already noticed, so a connection that dies just now is caught by the one retry of a
/// bodiless request.
fn is_alive(stream: &mut BackendConn) -> bool {
    stream.is_alive()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::{PoolLimits, UpstreamAddr};
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, UnixListener};

    /// Accepts one connection on either kind of listener, as the writable peer of a pooled socket.
    trait Accept {
        fn addr(&self) -> UpstreamAddr;
        async fn accept_one(&self) -> Box<dyn tokio::io::AsyncWrite + Unpin>;
    }

    impl Accept for TcpListener {
        fn addr(&self) -> UpstreamAddr {
            UpstreamAddr::Tcp(self.local_addr().unwrap())
        }
        async fn accept_one(&self) -> Box<dyn tokio::io::AsyncWrite + Unpin> {
            Box::new(self.accept().await.unwrap().0)
        }
    }

    impl Accept for (UnixListener, UpstreamAddr) {
        fn addr(&self) -> UpstreamAddr {
            self.1.clone()
        }
        async fn accept_one(&self) -> Box<dyn tokio::io::AsyncWrite + Unpin> {
            Box::new(self.0.accept().await.unwrap().0)
        }
    }

    /// A connected pair: (our side, the backend's side).
    async fn pair(listener: &impl Accept) -> (BackendConn, Box<dyn tokio::io::AsyncWrite + Unpin>) {
        let addr = listener.addr();
        let (ours, theirs) = tokio::join!(BackendConn::connect(&addr), listener.accept_one());
        (ours.unwrap(), theirs)
    }

    fn run(test: impl std::future::Future<Output = ()>) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(test);
    }

    /// Pools a quiet, a closed and a chatty connection from `listener`; only the quiet one comes back.
    async fn only_the_quiet_one_is_reused(listener: &impl Accept) {
        let mut pool = Pool::new(PoolLimits {
            max_idle_per_host: 4,
            idle_timeout: Duration::from_secs(10),
        });
        let host = InstanceId {
            backend: crate::upstream::BackendId::new(0, 1),
            slot: 0,
        };
        let (quiet, _quiet_peer) = pair(listener).await;
        let (closed, closed_peer) = pair(listener).await;
        let (chatty, mut chatty_peer) = pair(listener).await;
        drop(closed_peer);
        chatty_peer.write_all(b"HTTP/1.1 200 OK\r\n").await.unwrap();
        // Let the runtime see both sockets become readable.
        closed.readable().await.unwrap();
        chatty.readable().await.unwrap();
        let now = Instant::now();
        let quiet_fd = raw_fd(&quiet);
        for stream in [quiet, closed, chatty] {
            assert!(pool.put(host, stream, now).close.is_none());
        }
        let reused = take(&mut pool, host, now).expect("the quiet one");
        assert_eq!(raw_fd(&reused), quiet_fd);
        assert!(pool.is_empty(), "the dead ones were closed on the way");
    }

    fn raw_fd(conn: &BackendConn) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        match conn {
            BackendConn::Tcp(s) => s.as_raw_fd(),
            BackendConn::Unix(s) => s.as_raw_fd(),
            #[cfg(feature = "tls")]
            BackendConn::Tls(_) => unreachable!("the tests pool no TLS connection"),
        }
    }

    #[test]
    fn closed_or_chatty_connections_are_not_reused() {
        run(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            only_the_quiet_one_is_reused(&listener).await;
        });
    }

    #[test]
    fn closed_or_chatty_unix_connections_are_not_reused() {
        run(async {
            let dir = std::env::temp_dir().join(format!("spawngate-h2pool-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("pool.sock");
            let _ = std::fs::remove_file(&path);
            let listener = UnixListener::bind(&path).unwrap();
            let addr = UpstreamAddr::Unix(Arc::new(path.clone()));
            only_the_quiet_one_is_reused(&(listener, addr)).await;
            let _ = std::fs::remove_dir_all(dir);
        });
    }
}
