//! SIGHUP, SIGTERM, SIGINT and SIGUSR1 as poll events: each handler sets a flag and writes to one
//! self-pipe.

use std::io::{self, Read};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mio::net::UnixStream;
use mio::{Interest, Registry, Token};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};

pub struct Signals {
    pipe: UnixStream,
    reload: Arc<AtomicBool>,
    terminate: Arc<AtomicBool>,
    reopen_log: Arc<AtomicBool>,
}

/// What arrived since the last look.
#[derive(Debug, Default)]
pub struct Pending {
    pub reload: bool,
    pub terminate: bool,
    /// SIGUSR1: reopen the access log file (logrotate).
    pub reopen_log: bool,
}

impl Signals {
    pub fn register(registry: &Registry, token: Token) -> io::Result<Self> {
        let (read_end, write_end) = StdUnixStream::pair()?;
        read_end.set_nonblocking(true)?;
        write_end.set_nonblocking(true)?;
        let reload = Arc::new(AtomicBool::new(false));
        let terminate = Arc::new(AtomicBool::new(false));
        let reopen_log = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(SIGHUP, reload.clone())?;
        signal_hook::flag::register(SIGUSR1, reopen_log.clone())?;
        for signal in [SIGTERM, SIGINT] {
            signal_hook::flag::register(signal, terminate.clone())?;
        }
        for signal in [SIGHUP, SIGTERM, SIGINT, SIGUSR1] {
            signal_hook::low_level::pipe::register(signal, write_end.try_clone()?)?;
        }
        let mut pipe = UnixStream::from_std(read_end);
        registry.register(&mut pipe, token, Interest::READABLE)?;
        Ok(Signals {
            pipe,
            reload,
            terminate,
            reopen_log,
        })
    }

    pub fn take(&mut self) -> Pending {
        let mut sink = [0u8; 64];
        loop {
            match self.pipe.read(&mut sink) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        Pending {
            reload: self.reload.swap(false, Ordering::AcqRel),
            terminate: self.terminate.swap(false, Ordering::AcqRel),
            reopen_log: self.reopen_log.swap(false, Ordering::AcqRel),
        }
    }
}
