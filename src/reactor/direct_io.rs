//! Cleartext socket reads and writes as bare system calls.
//!
//! glibc's `recv` and `writev` are thread cancellation points: each call turns asynchronous cancellation
//! on before the system call and off after it, two atomic read-modify-writes on the thread's state. At
//! full load that was about 2% of the reactor's CPU (perf: `__pthread_enable_asynccancel` and its twin),
//! for a feature the proxy never uses (no thread is ever cancelled). `syscall(2)` is no cancellation
//! point, so the reactor calls the kernel through it; everything else about the call (errors through
//! `errno`, `EAGAIN` on an empty socket, `EPIPE` on a closed one with SIGPIPE ignored) is unchanged.

use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsRawFd, RawFd};

use nix::libc::{self, c_long};

/// Most slices one `writev` takes (the kernel's `UIO_MAXIOV`); the reactor passes two.
const MAX_IOV: usize = 1024;

/// The socket `fd`, read with `recvfrom` and written with `writev`, both direct.
pub struct Direct(RawFd);

impl Direct {
    /// Borrows `socket`'s descriptor for one call; the caller keeps the socket open meanwhile.
    #[inline]
    pub fn of(socket: &impl AsRawFd) -> Direct {
        Direct(socket.as_raw_fd())
    }
}

/// A system call's `long` result: a count, or -1 with `errno` set.
#[inline]
fn outcome(result: c_long) -> io::Result<usize> {
    usize::try_from(result).map_err(|_| io::Error::last_os_error())
}

impl Read for Direct {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Every argument goes as a `long`: `syscall` reads each one as such, so a narrower integer
        // would leave its upper half undefined.
        // SAFETY: the kernel writes at most `buf.len()` bytes at `buf`, which is valid for writes of
        // that length and borrowed exclusively for the call; with null address arguments it writes
        // nothing else.
        let result = unsafe {
            libc::syscall(
                libc::SYS_recvfrom,
                self.0 as c_long,
                buf.as_mut_ptr(),
                buf.len() as c_long,
                0 as c_long,
                std::ptr::null_mut::<libc::sockaddr>(),
                std::ptr::null_mut::<libc::socklen_t>(),
            )
        };
        outcome(result)
    }
}

impl Write for Direct {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    #[inline]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let count = bufs.len().min(MAX_IOV);
        // SAFETY: `IoSlice` is guaranteed ABI-compatible with `struct iovec` on Unix; the kernel only
        // reads `count` of them and the bytes they point at, all borrowed for the call.
        let result = unsafe {
            libc::syscall(
                libc::SYS_writev,
                self.0 as c_long,
                bufs.as_ptr(),
                count as c_long,
            )
        };
        outcome(result)
    }

    #[inline]
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn bytes_go_through_and_errors_come_back_as_errno() {
        let (a, b) = UnixStream::pair().expect("socket pair");
        let written = Direct::of(&a)
            .write_vectored(&[IoSlice::new(b"head "), IoSlice::new(b"body")])
            .expect("writev");
        assert_eq!(written, 9);
        let mut buf = [0u8; 16];
        assert_eq!(Direct::of(&b).read(&mut buf).expect("recv"), 9);
        assert_eq!(&buf[..9], b"head body");
        b.set_nonblocking(true).expect("non-blocking");
        let empty = Direct::of(&b).read(&mut buf).expect_err("nothing to read");
        assert_eq!(empty.kind(), io::ErrorKind::WouldBlock);
        drop(a);
        assert_eq!(Direct::of(&b).read(&mut buf).expect("end of stream"), 0);
        let closed = Direct::of(&b).write(b"x").expect_err("peer gone");
        assert_eq!(closed.kind(), io::ErrorKind::BrokenPipe);
    }
}
