//! Accepting connections: clients up to `max_connections` (paused at the limit, resumed below 90 %), a
//! back-off when the process runs out of descriptors, and the admin listener's own small connections.

use std::io;
use std::time::Instant;

use mio::{Interest, Token};

use super::admin_conn::AdminConn;
use super::client_stream::ClientStream;
use super::session::Session;
use super::timers::TimerTarget;
use super::{
    is_fd_exhaustion, Reactor, ACCEPT_BACKOFF, ADMIN_BASE, LISTENER, MAX_ADMIN_CONNECTIONS,
    SESSION_BASE,
};

impl Reactor {
    /// Accepts what waits on the cleartext listener, or on the HTTPS one (`https`, feature `tls`): both
    /// count against the one connection limit.
    pub(super) fn accept_clients(&mut self, https: bool) {
        let limit = self.config.server.limits.max_connections;
        loop {
            if self.sessions.len() >= limit {
                log::warn!("connection limit ({limit}) reached; pausing accept");
                self.pause_accept(None);
                return;
            }
            let accepted = if https {
                self.accept_https()
            } else {
                self.listener.as_ref().map(|l| l.accept())
            };
            let Some(accepted) = accepted else {
                return;
            };
            match accepted {
                Ok((stream, peer)) => {
                    if self.fd_exhausted {
                        self.fd_exhausted = false;
                        log::info!("accepting connections again");
                    }
                    let key = self.sessions.vacant_key();
                    let token = Token(SESSION_BASE + key);
                    let client = match self.register_client(stream, token, https) {
                        Ok(client) => client,
                        Err(e) => {
                            log::warn!("cannot register client {peer}: {e}");
                            continue;
                        }
                    };
                    self.next_serial += 1;
                    let session = Session::new(self.next_serial, client, peer, self.now);
                    self.sessions.insert(session);
                    self.arm_session_deadline(key);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_fd_exhaustion(&e) => {
                    // Said once per episode: the retries that follow would otherwise flood the log.
                    if !self.fd_exhausted {
                        self.fd_exhausted = true;
                        log::warn!(
                            "accept failed: {e}; pausing accept until a descriptor frees up"
                        );
                    }
                    self.pause_accept(Some(self.now + ACCEPT_BACKOFF));
                    return;
                }
                // The connection died in the backlog (ECONNABORTED and friends): try the next one.
                Err(e) => log::debug!("accept failed: {e}"),
            }
        }
    }

    /// One accept on the HTTPS listener; `None` without one.
    fn accept_https(&self) -> Option<io::Result<(mio::net::TcpStream, std::net::SocketAddr)>> {
        #[cfg(feature = "tls")]
        if let Some(https) = &self.https {
            return Some(https.listener.accept());
        }
        None
    }

    fn register_client(
        &self,
        stream: mio::net::TcpStream,
        token: Token,
        https: bool,
    ) -> io::Result<ClientStream> {
        #[cfg(feature = "tls")]
        if let (true, Some(listener)) = (https, &self.https) {
            let store = std::sync::Arc::clone(&listener.store);
            return ClientStream::register_tls(
                stream,
                self.poll.registry(),
                token,
                store,
                self.now,
            );
        }
        debug_assert!(!https);
        ClientStream::register(stream, self.poll.registry(), token)
    }

    fn pause_accept(&mut self, retry_at: Option<Instant>) {
        if !self.accept_paused {
            if let Some(listener) = self.listener.as_mut() {
                let _ = self.poll.registry().deregister(listener);
            }
            #[cfg(feature = "tls")]
            if let Some(https) = self.https.as_mut() {
                let _ = self.poll.registry().deregister(&mut https.listener);
            }
            self.accept_paused = true;
        }
        if let Some(at) = retry_at {
            self.timers.push(at, TimerTarget::ResumeAccept);
        }
    }

    /// Called when a connection closes or the back-off passes.
    pub(super) fn resume_accept(&mut self) {
        let resume_below = self.config.server.limits.max_connections * 9 / 10;
        if !self.accept_paused || self.sessions.len() > resume_below.max(1) {
            return;
        }
        let Some(listener) = self.listener.as_mut() else {
            return;
        };
        match self
            .poll
            .registry()
            .register(listener, LISTENER, Interest::READABLE)
        {
            Ok(()) => {
                self.accept_paused = false;
                #[cfg(feature = "tls")]
                if let Some(https) = self.https.as_mut() {
                    let registry = self.poll.registry();
                    let token = super::HTTPS_LISTENER;
                    if let Err(e) =
                        registry.register(&mut https.listener, token, Interest::READABLE)
                    {
                        log::error!("cannot resume accepting HTTPS: {e}");
                    }
                    self.accept_clients(true);
                }
                // Connections may have queued while paused; edge-triggered readiness won't repeat itself.
                self.accept_clients(false);
            }
            Err(e) => log::error!("cannot resume accepting: {e}"),
        }
    }

    pub(super) fn accept_admins(&mut self) {
        loop {
            match self.admin_listener.accept() {
                Ok((mut stream, _peer)) => {
                    if self.admins.len() >= MAX_ADMIN_CONNECTIONS {
                        continue; // dropped: closes it
                    }
                    let entry = self.admins.vacant_entry();
                    let token = Token(ADMIN_BASE + entry.key());
                    if self
                        .poll
                        .registry()
                        .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
                        .is_ok()
                    {
                        entry.insert(AdminConn::new(stream));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_fd_exhaustion(&e) => return,
                Err(e) => log::debug!("admin accept failed: {e}"),
            }
        }
    }
}
