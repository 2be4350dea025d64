//! The h2 worker's connection to a backend instance: tokio TCP or unix-domain, whichever the instance
//! listens on. The exchange itself (`forward`) is generic over the two halves, so each kind runs its own
//! monomorphised copy: the TCP path has no indirection, and the enum is matched once per exchange.

use std::io;

use tokio::net::{TcpStream, UnixStream};

use crate::upstream::UpstreamAddr;

#[derive(Debug)]
pub enum BackendConn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl BackendConn {
    /// Connects to `addr`. TCP connections get `TCP_NODELAY`: heads and small bodies go out in separate
    /// writes, and Nagle would hold the second back for a round trip.
    pub async fn connect(addr: &UpstreamAddr) -> io::Result<BackendConn> {
        match addr {
            UpstreamAddr::Tcp(addr) => {
                let stream = TcpStream::connect(*addr).await?;
                let _ = stream.set_nodelay(true);
                Ok(BackendConn::Tcp(stream))
            }
            UpstreamAddr::Unix(path) => UnixStream::connect(path.as_path())
                .await
                .map(BackendConn::Unix),
        }
    }

    /// A non-blocking read of what the runtime has already seen arrive (the pool's liveness check).
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            BackendConn::Tcp(s) => s.try_read(buf),
            BackendConn::Unix(s) => s.try_read(buf),
        }
    }

    /// Waits until the socket has something to read (or its end): lets tests see what the runtime saw.
    #[cfg(test)]
    pub async fn readable(&self) -> io::Result<()> {
        match self {
            BackendConn::Tcp(s) => s.readable().await,
            BackendConn::Unix(s) => s.readable().await,
        }
    }
}
