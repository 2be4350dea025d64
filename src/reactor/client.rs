//! The client side of a session: reading heads (routed in `admission`), holding, error answers, closing.

use mio::event::Event;

use super::access::Unexchanged;
use super::metrics::Routed;
use super::session::{Phase, Session};
use super::sockio::Filled;
use super::Reactor;
use crate::error::ProxyError;
use crate::http1::exchange::HeadStep;

/// Passes through the pump per wake-up before a session yields to the others.
const MAX_ROUNDS: usize = 32;
/// Proxy-made bytes (error answers, heads) queued for a client that is not reading; past this, pipelined
/// requests are not parsed until it reads.
const MAX_OUT_BACKLOG: usize = 64 * 1024;

/// What one pass of a phase's pump achieved.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    Progress,
    Idle,
    Close,
    /// The connection speaks HTTP/2 with prior knowledge: it belongs to the h2 worker.
    HandOffH2,
}

impl Reactor {
    pub(super) fn client_ready(&mut self, key: usize, event: &Event) {
        let Some(session) = self.sessions.get_mut(key) else {
            return;
        };
        session.client.on_event(event);
        self.drive(key);
    }

    /// Runs the session's pump until it can make no more progress (or yields to other sessions).
    pub(super) fn drive(&mut self, key: usize) {
        for _ in 0..MAX_ROUNDS {
            let Some(session) = self.sessions.get(key) else {
                return;
            };
            let step = match session.phase {
                Phase::ReadingHead { .. } => self.step_reading(key),
                Phase::Holding { .. } => self.step_holding(key),
                Phase::Exchanging(_) => self.step_exchange(key),
                Phase::Tunnel(_) => self.step_tunnel(key),
                Phase::Closing { .. } => self.step_closing(key),
            };
            match step {
                Step::Progress => continue,
                Step::Idle => {
                    self.arm_session_deadline(key);
                    return;
                }
                Step::Close => {
                    self.close_session(key);
                    return;
                }
                Step::HandOffH2 => {
                    self.hand_off_h2(key);
                    return;
                }
            }
        }
        self.arm_session_deadline(key);
        self.again.push(key);
    }

    fn step_reading(&mut self, key: usize) -> Step {
        let now = self.now;
        let session = &mut self.sessions[key];
        let mut progress = match flush_out(session) {
            Ok(p) => p,
            Err(()) => return Step::Close,
        };
        match session.client.fill(&mut session.inbuf) {
            Ok(Filled::Bytes(_)) | Ok(Filled::Eof) => progress = true,
            Ok(Filled::Nothing) => {}
            Err(_) => return Step::Close,
        }
        if session.out_pending().len() > MAX_OUT_BACKLOG {
            return if progress { Step::Progress } else { Step::Idle };
        }
        let first = session.served == 0;
        let client_eof = session.client.read_eof();
        let Phase::ReadingHead {
            since,
            head_started,
            reader,
        } = &mut session.phase
        else {
            return Step::Idle;
        };
        if !*head_started && !session.inbuf.is_empty() {
            *head_started = true;
            *since = now;
        }
        // ALPN said h2: whatever comes is HTTP/2 (the worker refuses anything but its preface).
        if first && session.client.is_h2_over_tls() {
            return Step::HandOffH2;
        }
        match reader.step(session.inbuf.data(), first, client_eof) {
            HeadStep::Head(head) => {
                self.begin_request(key, head);
                Step::Progress
            }
            HeadStep::Wait if progress => Step::Progress,
            HeadStep::Wait => Step::Idle,
            HeadStep::Http2 => Step::HandOffH2,
            // Nobody is left to answer; what is queued still goes out first.
            HeadStep::Gone if session.out_pending().is_empty() => Step::Close,
            HeadStep::Gone => {
                session.enter(Phase::closing(now));
                Step::Progress
            }
            HeadStep::Refuse(err) => {
                log::debug!("{}: rejected request: {}", session.peer, err.message);
                self.reject(key, err, None, true, None);
                Step::Progress
            }
        }
    }

    fn step_holding(&mut self, key: usize) -> Step {
        let session = &mut self.sessions[key];
        let mut progress = match flush_out(session) {
            Ok(p) => p,
            Err(()) => return Step::Close,
        };
        // Keep reading (bounded by the buffer) so a client that gives up is noticed.
        match session.client.fill(&mut session.inbuf) {
            Ok(Filled::Bytes(_)) => progress = true,
            Ok(Filled::Eof) | Err(_) => return Step::Close,
            Ok(Filled::Nothing) => {}
        }
        if progress {
            Step::Progress
        } else {
            Step::Idle
        }
    }

    fn step_closing(&mut self, key: usize) -> Step {
        let session = &mut self.sessions[key];
        let progress = match flush_out(session) {
            Ok(p) => p,
            Err(()) => return Step::Close,
        };
        if !session.out_pending().is_empty() {
            return if progress { Step::Progress } else { Step::Idle };
        }
        // Answer sent: half-close and read what the client still sends, so unread bytes don't turn our
        // close into a reset that could destroy the answer before the client read it.
        if let Phase::Closing { shut, .. } = &mut session.phase {
            if !*shut {
                *shut = true;
                session.client.shutdown_write();
            }
        }
        loop {
            session.inbuf.consume(session.inbuf.len());
            match session.client.fill(&mut session.inbuf) {
                Ok(Filled::Bytes(_)) => continue,
                Ok(Filled::Nothing) => return Step::Idle,
                Ok(Filled::Eof) | Err(_) => return Step::Close,
            }
        }
    }

    /// Answers the current request with a proxy error; `close` (or shutting down) ends the connection
    /// after it. Returns the phase left, whose backend connection (if any) the caller releases. The
    /// answer is counted under the backend it was `routed` to (and since when), unless it ends an
    /// exchange, which `report_exchange` counts.
    pub(super) fn reject(
        &mut self,
        key: usize,
        err: ProxyError,
        request_id: Option<Vec<u8>>,
        close: bool,
        routed: Option<Routed>,
    ) -> Option<Phase> {
        let hsts = self.hsts_max_age();
        let session = self.sessions.get_mut(key)?;
        let close = close || self.shutting_down;
        log::debug!("{}: {}", session.peer, err);
        let bytes = err.to_http1(request_id.as_deref(), close, &[]);
        let left = session.answer(&bytes, close, self.now, hsts);
        if !matches!(left, Phase::Exchanging(_)) {
            let ended = Unexchanged {
                peer: session.peer,
                seen: session.seen.take(),
                request_id: request_id.as_deref().unwrap_or_default(),
                routed,
                answer: Some((err.code.status(), Some(err.code), bytes.len())),
            };
            self.record_unexchanged(ended);
        }
        Some(left)
    }

    /// `hsts_max_age_secs`, for answers over TLS (the caller checks the connection is TLS).
    pub(super) fn hsts_max_age(&self) -> Option<u64> {
        #[cfg(feature = "tls")]
        return (self.config.tls.as_ref())
            .and_then(|t| t.hsts_max_age)
            .map(|age| age.as_secs());
        #[cfg(not(feature = "tls"))]
        None
    }

    /// Moves a connection that opened with the HTTP/2 preface, and the bytes read so far, to the h2 worker.
    fn hand_off_h2(&mut self, key: usize) {
        let Some(mut session) = self.sessions.try_remove(key) else {
            return;
        };
        session.deadline.cancel(&mut self.timers);
        let hsts = self.hsts_max_age();
        let handed = session.client.into_handoff(self.poll.registry(), hsts);
        log::debug!(
            "{}: HTTP/2 (prior knowledge or ALPN); handing the connection to the h2 worker",
            session.peer
        );
        // Otherwise closed: no worker, or a TLS session that failed.
        if let (Some(h2), Some((stream, tls))) = (&self.h2, handed) {
            h2.hand_off(stream, session.inbuf.data().to_vec(), session.peer, tls);
        }
        if self.accept_paused {
            self.resume_accept();
        }
    }

    pub(super) fn close_session(&mut self, key: usize) {
        let Some(mut session) = self.sessions.try_remove(key) else {
            return;
        };
        session.deadline.cancel(&mut self.timers);
        match session.phase {
            Phase::Holding { request, .. } => {
                self.record_unexchanged(Unexchanged {
                    peer: session.peer,
                    seen: session.seen.take(),
                    request_id: &request.meta.request_id,
                    routed: Some((request.backend, request.meta.started)),
                    answer: None,
                });
                let serial = session.serial;
                let ask = self
                    .routes
                    .abandon(request.backend, |h| h.key == key && h.serial == serial);
                if let Some(command) = ask {
                    self.send_supervisor(command);
                }
            }
            left => {
                self.report_exchange(session.peer, &left, None);
                self.release_upstream(left, false);
            }
        }
        session.client.deregister(self.poll.registry());
        if self.accept_paused {
            self.resume_accept();
        }
    }
}

/// Writes queued proxy-made bytes. `Err` means the client is gone.
pub(super) fn flush_out(session: &mut Session) -> Result<bool, ()> {
    if session.out_pending().is_empty() {
        return Ok(false);
    }
    match session.client.flush(&session.out[session.out_pos..], &[]) {
        Ok(0) => Ok(false),
        Ok(n) => {
            session.consume_out(n);
            Ok(true)
        }
        Err(_) => Err(()),
    }
}
