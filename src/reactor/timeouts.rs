//! A session's deadline: what its phase waits for, and what happens when that wait is over.
//!
//! | phase                          | deadline                                  | when it passes             |
//! |--------------------------------|-------------------------------------------|----------------------------|
//! | reading a head (none started)  | keep-alive timeout (header timeout if new)| close quietly              |
//! | TLS handshake (feature `tls`)  | the tighter of the handshake timeout and  | close quietly              |
//! |                                | the header timeout, both from the accept  |                            |
//! | reading a head (bytes arrived) | header read timeout                       | 408, close                 |
//! | holding for a starting backend | startup timeout + slack                   | 503 BACKEND_START_FAILED   |
//! | awaiting the response head     | request timeout                           | 504 REQUEST_TIMEOUT        |
//! | request body streaming         | last client progress + header timeout     | 408 (or close)             |
//! | closing                        | linger                                    | close                      |

use std::time::Duration;

use super::session::Phase;
use super::timers::{TimerKey, TimerTarget};
use super::Reactor;
use crate::error::{ErrorCode, ProxyError};

/// How long a closing connection may take to read our last answer.
const LINGER: Duration = Duration::from_secs(2);

impl Reactor {
    pub(super) fn session_timer(&mut self, key: usize, serial: u64, entry: TimerKey) {
        let now = self.now;
        let Some(session) = self.sessions.get_mut(key) else {
            return;
        };
        if session.serial != serial {
            return;
        }
        let target = TimerTarget::Session { key, serial };
        if !session.deadline.fire(entry, now, target, &mut self.timers) {
            return;
        }
        match &session.phase {
            Phase::ReadingHead {
                head_started: false,
                ..
            } => self.close_session(key),
            Phase::ReadingHead {
                head_started: true, ..
            } => {
                let err = ProxyError::new(
                    ErrorCode::ClientTimeout,
                    "the request head was not received in time",
                );
                self.reject(key, err, None, true, None);
                self.drive(key);
            }
            Phase::Holding { request, .. } => {
                let serial = session.serial;
                let ask = self
                    .routes
                    .abandon(request.backend, |h| h.key == key && h.serial == serial);
                let err = self.routes.wait_expired(request.backend, &request.host);
                let id = request.meta.request_id.clone();
                let close = request.meta.close_after_refusal();
                let routed = Some((request.backend, request.meta.started));
                self.reject(key, err, Some(id), close, routed);
                if let Some(command) = ask {
                    self.send_supervisor(command);
                }
                self.drive(key);
            }
            Phase::Exchanging(ex) if ex.response_deadline.is_none_or(|at| at > now) => {
                // The client stalled in the middle of its request body.
                log::debug!("{}: request body stalled", session.peer);
                let err = ProxyError::new(ErrorCode::ClientTimeout, "the request body stalled");
                if ex.response.is_awaiting_head() {
                    self.abort_exchange(key, err);
                    self.drive(key);
                } else {
                    self.close_session(key);
                }
            }
            Phase::Exchanging(_) => {
                self.abort_exchange(
                    key,
                    ProxyError::new(
                        ErrorCode::RequestTimeout,
                        "the backend did not answer in time",
                    ),
                );
                self.drive(key);
            }
            Phase::Tunnel(_) => {}
            Phase::Closing { .. } => self.close_session(key),
        }
    }

    /// Points the session's deadline at what its phase is waiting for.
    pub(super) fn arm_session_deadline(&mut self, key: usize) {
        let Some(session) = self.sessions.get_mut(key) else {
            return;
        };
        let limits = &self.config.server.limits;
        let wanted = match &session.phase {
            Phase::ReadingHead {
                since,
                head_started,
                ..
            } => {
                let mut at = if *head_started || session.served == 0 {
                    *since + limits.header_read_timeout
                } else {
                    *since + limits.keepalive_timeout
                };
                // A TLS handshake in progress: no plaintext yet, so no head has started and `since` is
                // the accept. The handshake has `handshake_timeout_ms` of the header timeout's time.
                if let (Some(accepted), Some(tls)) =
                    (session.client.handshaking_since(), &self.config.tls)
                {
                    at = at.min(accepted + tls.handshake_timeout);
                }
                Some(at)
            }
            Phase::Holding { until, .. } => Some(*until),
            Phase::Exchanging(ex) => {
                let body_stall = ex
                    .request
                    .body_open()
                    .then(|| ex.client_progress + limits.header_read_timeout);
                match (ex.response_deadline, body_stall) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            Phase::Tunnel(_) => None,
            Phase::Closing { since, .. } => Some(*since + LINGER),
        };
        let target = TimerTarget::Session {
            key,
            serial: session.serial,
        };
        match wanted {
            Some(at) => session.deadline.set(at, target, &mut self.timers),
            None => session.deadline.clear(),
        }
    }
}
