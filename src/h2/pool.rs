//! The h2 worker's side of the keep-alive pool: its tokio sockets kept by the shared rules
//! ([`crate::upstream::idle_pool`], the same as the reactor's), and the check a pooled socket gets before
//! it is reused. Each thread owns its sockets, so the worker has its own pool.

use std::io;
use std::time::Instant;

use tokio::net::TcpStream;

use crate::upstream::{IdlePool, InstanceId};

/// The worker's idle connections to backends. What it hands back to close is dropped, which closes it.
pub type Pool = IdlePool<TcpStream>;

/// The most recently used live connection to `backend`; expired and dead ones are closed on the way.
pub fn take(pool: &mut Pool, backend: InstanceId, now: Instant) -> Option<TcpStream> {
    pool.take(backend, now, is_alive, drop)
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
    use crate::upstream::PoolLimits;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

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
    fn closed_or_chatty_connections_are_not_reused() {
        run(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let mut pool = Pool::new(PoolLimits {
                max_idle_per_host: 4,
                idle_timeout: Duration::from_secs(10),
            });
            let host = InstanceId {
                backend: crate::upstream::BackendId::new(0, 1),
                slot: 0,
            };
            let (quiet, _quiet_peer) = pair(&listener).await;
            let (closed, closed_peer) = pair(&listener).await;
            let (chatty, mut chatty_peer) = pair(&listener).await;
            let quiet_port = quiet.local_addr().unwrap().port();
            drop(closed_peer);
            chatty_peer.write_all(b"HTTP/1.1 200 OK\r\n").await.unwrap();
            // Let the runtime see both sockets become readable.
            closed.readable().await.unwrap();
            chatty.readable().await.unwrap();
            let now = Instant::now();
            for stream in [quiet, closed, chatty] {
                assert!(pool.put(host, stream, now).close.is_none());
            }
            let reused = take(&mut pool, host, now).expect("the quiet one");
            assert_eq!(reused.local_addr().unwrap().port(), quiet_port);
            assert!(pool.is_empty(), "the dead ones were closed on the way");
        });
    }
}
