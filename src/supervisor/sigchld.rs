//! SIGCHLD as a readable socket: the signal handler writes a byte, the supervisor's poll wakes up.
//!
//! Several supervisors (tests run many in one process) may each register one; every one is woken by every
//! SIGCHLD and checks only the children it owns, so none steals another's exit.

use std::io::{self, Read};
use std::os::unix::net::UnixStream as StdUnixStream;

use mio::net::UnixStream;
use mio::{Interest, Registry, Token};
use signal_hook::consts::SIGCHLD;
use signal_hook::SigId;

/// Bytes read from the pipe per drain call; any count of pending signals means "look at the children".
const DRAIN_CHUNK: usize = 64;

#[derive(Debug)]
pub struct SigchldPipe {
    read_end: UnixStream,
    id: SigId,
}

impl SigchldPipe {
    pub fn register(registry: &Registry, token: Token) -> io::Result<SigchldPipe> {
        let (read_end, write_end) = StdUnixStream::pair()?;
        read_end.set_nonblocking(true)?;
        let id = signal_hook::low_level::pipe::register(SIGCHLD, write_end)?;
        let mut pipe = SigchldPipe {
            read_end: UnixStream::from_std(read_end),
            id,
        };
        // On error `pipe` is dropped, which unregisters the handler again.
        registry.register(&mut pipe.read_end, token, Interest::READABLE)?;
        Ok(pipe)
    }

    /// Empties the pipe so the next SIGCHLD wakes the poll again.
    pub fn drain(&mut self) {
        let mut buf = [0u8; DRAIN_CHUNK];
        loop {
            match self.read_end.read(&mut buf) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::warn!("reading the SIGCHLD pipe failed: {e}");
                    return;
                }
            }
        }
    }
}

impl Drop for SigchldPipe {
    fn drop(&mut self) {
        signal_hook::low_level::unregister(self.id);
    }
}
