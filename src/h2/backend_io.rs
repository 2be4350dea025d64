//! The h2 worker's connection to a backend instance: tokio TCP or unix-domain, whichever the instance
//! listens on, or TCP with TLS for an `https://` address (feature `tls`; `tls_io`'s adapter over a
//! rustls `ClientConnection`, its handshake run in `connect`). The exchange itself (`forward`) is
//! generic over the two halves, so each kind runs its own monomorphised copy: the TCP path has no
//! indirection, and the enum is matched once per exchange.

use std::io;

use tokio::net::{TcpStream, UnixStream};

use crate::upstream::UpstreamAddr;

pub enum BackendConn {
    Tcp(TcpStream),
    Unix(UnixStream),
    #[cfg(feature = "tls")]
    Tls(Box<super::tls_io::TlsIo<rustls::ClientConnection>>),
}

impl std::fmt::Debug for BackendConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendConn::Tcp(s) => f.debug_tuple("Tcp").field(s).finish(),
            BackendConn::Unix(s) => f.debug_tuple("Unix").field(s).finish(),
            #[cfg(feature = "tls")]
            BackendConn::Tls(_) => f.write_str("Tls"),
        }
    }
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
            #[cfg(feature = "tls")]
            UpstreamAddr::Tls(target) => {
                let stream = TcpStream::connect(target.addr).await?;
                let _ = stream.set_nodelay(true);
                let conn = target.connection().map_err(io::Error::other)?;
                let mut tls = super::tls_io::TlsIo::new(stream, conn, Vec::new());
                tls.handshake()
                    .await
                    .map_err(crate::upstream::TlsFailure::wrap)?;
                Ok(BackendConn::Tls(Box::new(tls)))
            }
        }
    }

    /// Whether an idle pooled connection is still usable, from what the runtime has already seen
    /// arrive: nothing to read (a backend that closed it would show end-of-file; stray bytes would
    /// desynchronise the next response). Over TLS, records that carry no data (session tickets) are
    /// taken by rustls and do not count.
    pub fn is_alive(&mut self) -> bool {
        let mut probe = [0u8; 1];
        let read = match self {
            BackendConn::Tcp(s) => s.try_read(&mut probe),
            BackendConn::Unix(s) => s.try_read(&mut probe),
            #[cfg(feature = "tls")]
            BackendConn::Tls(tls) => return tls.is_alive(),
        };
        matches!(read, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Waits until the socket has something to read (or its end): lets tests see what the runtime saw.
    #[cfg(test)]
    pub async fn readable(&self) -> io::Result<()> {
        match self {
            BackendConn::Tcp(s) => s.readable().await,
            BackendConn::Unix(s) => s.readable().await,
            #[cfg(feature = "tls")]
            BackendConn::Tls(_) => Ok(()),
        }
    }
}
