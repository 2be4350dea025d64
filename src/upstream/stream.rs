//! A non-blocking connection to an instance, over TCP or a unix-domain socket, for the two `mio` users:
//! the reactor's backend connections and the supervisor's health probes. (The h2 worker has its tokio
//! counterpart, `h2::backend_io`.)
//!
//! A two-variant enum rather than a trait object: the TCP path stays a direct call behind one
//! predictable branch, with no allocation and no vtable, and the generic socket code (`sockio`'s
//! `fill`/`flush`, the buffers) takes it as any `Read + Write`.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;

use mio::event::Source;
use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};

use super::UpstreamAddr;

#[derive(Debug)]
pub enum UpstreamStream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl UpstreamStream {
    /// Starts a non-blocking connect to `addr` (for a TLS address, its TCP connection: the TLS session
    /// lives beside the stream, with its user). A TCP connect completes later (writable event; see
    /// [`UpstreamStream::is_connected`]). A unix-domain connect is decided at once: it succeeds (the
    /// listener's backlog holds it) or fails here, `ENOENT` when there is no socket file, `ECONNREFUSED`
    /// when the file is left but nothing listens on it, `EAGAIN` (`WouldBlock`) when the backlog is full.
    pub fn connect(addr: &UpstreamAddr) -> io::Result<UpstreamStream> {
        match addr {
            UpstreamAddr::Tcp(addr) => TcpStream::connect(*addr).map(UpstreamStream::Tcp),
            UpstreamAddr::Unix(path) => {
                UnixStream::connect(path.as_path()).map(UpstreamStream::Unix)
            }
            #[cfg(feature = "tls")]
            UpstreamAddr::Tls(target) => TcpStream::connect(target.addr).map(UpstreamStream::Tcp),
        }
    }

    /// The socket's pending error (`SO_ERROR`), which a failed non-blocking connect leaves.
    #[inline]
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            UpstreamStream::Tcp(s) => s.take_error(),
            UpstreamStream::Unix(s) => s.take_error(),
        }
    }

    /// Whether the connect has completed: a connected socket has a peer, a connecting one reports
    /// `ENOTCONN` (`Ok(false)`). Other errors are the connect's failure.
    #[inline]
    pub fn is_connected(&self) -> io::Result<bool> {
        let peer = match self {
            UpstreamStream::Tcp(s) => s.peer_addr().map(drop),
            UpstreamStream::Unix(s) => s.peer_addr().map(drop),
        };
        match peer {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Once connected: heads and small bodies go out in separate writes, so Nagle must not hold them
    /// back. Unix-domain sockets have no Nagle to turn off.
    #[inline]
    pub fn set_nodelay(&self) -> io::Result<()> {
        match self {
            UpstreamStream::Tcp(s) => s.set_nodelay(true),
            UpstreamStream::Unix(_) => Ok(()),
        }
    }

    #[inline]
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            UpstreamStream::Tcp(s) => s.shutdown(how),
            UpstreamStream::Unix(s) => s.shutdown(how),
        }
    }
}

impl std::os::fd::AsRawFd for UpstreamStream {
    #[inline]
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        match self {
            UpstreamStream::Tcp(s) => s.as_raw_fd(),
            UpstreamStream::Unix(s) => s.as_raw_fd(),
        }
    }
}

impl Read for UpstreamStream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            UpstreamStream::Tcp(s) => s.read(buf),
            UpstreamStream::Unix(s) => s.read(buf),
        }
    }

    #[inline]
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        match self {
            UpstreamStream::Tcp(s) => s.read_vectored(bufs),
            UpstreamStream::Unix(s) => s.read_vectored(bufs),
        }
    }
}

impl Write for UpstreamStream {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            UpstreamStream::Tcp(s) => s.write(buf),
            UpstreamStream::Unix(s) => s.write(buf),
        }
    }

    /// Forwarded, not left to the default (which writes only the first non-empty slice): a head and a
    /// body piece go out in one `writev`.
    #[inline]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            UpstreamStream::Tcp(s) => s.write_vectored(bufs),
            UpstreamStream::Unix(s) => s.write_vectored(bufs),
        }
    }

    #[inline]
    fn flush(&mut self) -> io::Result<()> {
        match self {
            UpstreamStream::Tcp(s) => s.flush(),
            UpstreamStream::Unix(s) => s.flush(),
        }
    }
}

impl Source for UpstreamStream {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            UpstreamStream::Tcp(s) => s.register(registry, token, interests),
            UpstreamStream::Unix(s) => s.register(registry, token, interests),
        }
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            UpstreamStream::Tcp(s) => s.reregister(registry, token, interests),
            UpstreamStream::Unix(s) => s.reregister(registry, token, interests),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            UpstreamStream::Tcp(s) => s.deregister(registry),
            UpstreamStream::Unix(s) => s.deregister(registry),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;
    use std::sync::Arc;

    fn socket_path(name: &str) -> std::path::PathBuf {
        let file = format!("spawngate-{}-stream-{name}", std::process::id());
        let path = std::env::temp_dir().join(file);
        let _ = std::fs::remove_file(&path);
        path
    }

    #[test]
    fn a_unix_connect_is_decided_at_once() {
        let path = socket_path("decided.sock");
        let addr = UpstreamAddr::Unix(Arc::new(path.clone()));
        let missing = UpstreamStream::connect(&addr).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound, "no socket file");

        let listener = UnixListener::bind(&path).unwrap();
        let mut stream = UpstreamStream::connect(&addr).unwrap();
        assert_eq!(stream.take_error().unwrap().map(|e| e.kind()), None);
        assert!(stream.is_connected().unwrap(), "in the backlog already");
        stream.set_nodelay().unwrap();
        let (mut theirs, _) = listener.accept().unwrap();
        let slices = [IoSlice::new(b"GET / "), IoSlice::new(b"HTTP/1.1\r\n")];
        assert_eq!(stream.write_vectored(&slices).unwrap(), 16, "one writev");
        stream.shutdown(Shutdown::Write).unwrap();
        let mut got = String::new();
        theirs.read_to_string(&mut got).unwrap();
        assert_eq!(got, "GET / HTTP/1.1\r\n");

        drop((listener, theirs, stream));
        let stale = UpstreamStream::connect(&addr).unwrap_err();
        assert_eq!(
            stale.kind(),
            io::ErrorKind::ConnectionRefused,
            "a socket file nobody listens on"
        );
        let _ = std::fs::remove_file(path);
    }
}
