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
    pub(super) fn accept_clients(&mut self) {
        let limit = self.config.server.limits.max_connections;
        loop {
            if self.sessions.len() >= limit {
                log::warn!("connection limit ({limit}) reached; pausing accept");
                self.pause_accept(None);
                return;
            }
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => {
                    if self.fd_exhausted {
                        self.fd_exhausted = false;
                        log::info!("accepting connections again");
                    }
                    let entry = self.sessions.vacant_entry();
                    let key = entry.key();
                    let token = Token(SESSION_BASE + key);
                    let client = match ClientStream::register(stream, self.poll.registry(), token) {
                        Ok(client) => client,
                        Err(e) => {
                            log::warn!("cannot register client {peer}: {e}");
                            continue;
                        }
                    };
                    self.next_serial += 1;
                    entry.insert(Session::new(self.next_serial, client, peer, self.now));
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

    fn pause_accept(&mut self, retry_at: Option<Instant>) {
        if !self.accept_paused {
            if let Some(listener) = self.listener.as_mut() {
                let _ = self.poll.registry().deregister(listener);
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
                // Connections may have queued while paused; edge-triggered readiness won't repeat itself.
                self.accept_clients();
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
