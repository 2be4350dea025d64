//! Connections to backends, and the keep-alive pool they return to between requests.
//!
//! Every upstream connection has a stable slot (and so a stable mio token) from connect to close; lending
//! it to a session or pooling it (`Reactor::pool`, by slab key) changes only its `owner`, so reuse costs
//! no system call.

use std::io;

use mio::{Interest, Registry, Token};

use super::buffer::Buffer;
use super::sockio::Readiness;
use crate::upstream::{InstanceId, UpstreamAddr, UpstreamStream};

/// How much of a backend's response is read ahead of the client.
pub const UPSTREAM_BUFFER: usize = 64 * 1024;

pub struct Upstream {
    /// TCP or unix-domain, whichever the instance listens on.
    pub stream: UpstreamStream,
    pub instance: InstanceId,
    pub io: Readiness,
    pub connected: bool,
    pub inbuf: Buffer,
    /// The session using it: (slab key, serial); `None` while pooled.
    pub owner: Option<(usize, u64)>,
}

impl Upstream {
    pub fn connect(
        addr: &UpstreamAddr,
        instance: InstanceId,
        registry: &Registry,
        token: Token,
    ) -> io::Result<Self> {
        let mut stream = UpstreamStream::connect(addr)?;
        registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
        Ok(Upstream {
            stream,
            instance,
            io: Readiness::default(),
            connected: false,
            inbuf: Buffer::new(UPSTREAM_BUFFER),
            owner: None,
        })
    }

    /// After a writable (or error) event on a connecting socket: `Ok(true)` connected, `Ok(false)` not yet.
    /// (A unix-domain connect has completed by the time `connect` returns; its first event finds it so.)
    pub fn finish_connect(&mut self) -> io::Result<bool> {
        if self.connected {
            return Ok(true);
        }
        if let Some(err) = self.stream.take_error()? {
            return Err(err);
        }
        if !self.stream.is_connected()? {
            return Ok(false);
        }
        self.connected = true;
        // Heads and small bodies go out in separate writes; don't let Nagle hold them back (TCP only).
        let _ = self.stream.set_nodelay();
        Ok(true)
    }
}
