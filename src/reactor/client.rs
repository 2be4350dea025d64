//! The client side of a session: reading heads, routing, holding, error answers, closing, deadlines.

use mio::event::Event;

use super::access::{self, Unexchanged};
use super::routes::Held;
use super::session::{close_after_answer, Phase, Request, RequestMeta, Session};
use super::sockio::Filled;

use super::metrics::Routed;
use super::Reactor;
use crate::access_log;
use crate::error::{ErrorCode, ProxyError};
use crate::http1::exchange::HeadStep;
use crate::http1::request::RequestHead;
use crate::http1::request_id::is_acceptable_client_id;
use crate::http1::rewrite::{write_request, ForwardInfo, Http1Source, ResponseContext};
use crate::http1::Framing;
use crate::upstream::affinity::RequestAffinity;
use crate::upstream::{body_too_large, normalize_host, route, Admission, Caller, Routing};

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

    /// A complete head is at the front of the session's buffer: route it and forward, hold or answer it.
    fn begin_request(&mut self, key: usize, head: RequestHead) {
        let session = &mut self.sessions[key];
        session.served += 1;
        let data = session.inbuf.data();
        session.seen = access::capture(&self.access_log, data, &head, self.now);

        let request_id = match &head.request_id {
            Some(h) if is_acceptable_client_id(&data[h.value.clone()]) => {
                data[h.value.clone()].to_vec()
            }
            _ => self.ids.next_id().to_vec(),
        };
        let has_body = !matches!(head.framing, Framing::None | Framing::Length(0));
        let keep_alive = head.keep_alive && !self.shutting_down;

        let Some(host_range) = head.host.clone() else {
            let err = ProxyError::new(
                ErrorCode::MissingHostHeader,
                "the request has no Host header",
            );
            return self.refuse(key, head.len, err, request_id, true, None);
        };
        let Some(host) = normalize_host(&data[host_range], &mut self.host_scratch) else {
            let err = ProxyError::new(ErrorCode::BadRequest, "invalid Host");
            return self.refuse(key, head.len, err, request_id, true, None);
        };
        let source = Http1Source {
            buf: data,
            head: &head,
        };
        let caller = Caller {
            request_id: &request_id,
            client_ip: session.peer.ip(),
        };
        let routing = route(
            self.routes.routes(),
            &self.session_ctl.hosts,
            host,
            &source,
            caller,
            &mut self.route_scratch,
        );
        let (to, edited, stamp) = match routing {
            Routing::Forward { to, target, stamp } => (to, target.is_some(), stamp),
            Routing::Answer { answer, spend } => {
                let close = close_after_answer(has_body, keep_alive, false) || self.shutting_down;
                let bytes = answer.to_http1(&request_id, close, head.is_head);
                session.inbuf.consume(head.len);
                session.answer(&bytes, close, self.now);
                let ended = Unexchanged {
                    peer: session.peer,
                    seen: session.seen.take(),
                    request_id: &request_id,
                    routed: None,
                    answer: Some((answer.status, None, bytes.len())),
                };
                if let Some(index) = spend {
                    let host = host.to_owned();
                    let effects = self.session_ctl.registry.spend(&host, index);
                    self.session_effects(effects);
                }
                self.record_unexchanged(ended);
                return;
            }
            Routing::Refuse(err) => {
                let close = close_after_answer(has_body, keep_alive, false);
                return self.refuse(key, head.len, err, request_id, close, None);
            }
            Routing::UnknownHost => {
                let err = ProxyError::unknown_host(host);
                let close = close_after_answer(has_body, keep_alive, false);
                return self.refuse(key, head.len, err, request_id, close, None);
            }
        };
        let max_body = to
            .limits
            .max_body(self.config.server.limits.max_request_body_bytes);
        let declared = match head.framing {
            Framing::Length(n) => Some(n),
            _ => None,
        };
        let routed = Some((to.backend, self.now));
        if let Some(err) = body_too_large(declared, max_body) {
            return self.refuse(key, head.len, err, request_id, true, routed);
        }
        let serial = session.serial;
        let held = || (Held { key, serial }, ());
        let affinity = RequestAffinity {
            request: &source,
            client_ip: session.peer.ip(),
        };
        let admission = self
            .routes
            .admit(Some(to.backend), host, self.now, &affinity, held);
        let (admitted, hold) = match admission {
            Admission::Forward { to, ask } => (Some((to, ask)), None),
            Admission::Hold { ask, until, .. } => (
                None,
                Some((ask, to.limits.hold_until(self.now).unwrap_or(until))),
            ),
            Admission::Refuse(err) => {
                let close = close_after_answer(has_body, keep_alive, false);
                return self.refuse(key, head.len, err, request_id, close, routed);
            }
        };

        // A held request whose admission asks for a start is the one that wakes the backend.
        let woke = matches!(hold, Some((Some(_), _)));
        access::routed(&mut session.seen, &to.host, (hold.is_some(), woke));
        let mut forwarded = Vec::with_capacity(head.len + 256);
        let info = ForwardInfo {
            client_ip: session.peer.ip().into(),
            request_id: &request_id,
            target: edited.then(|| self.route_scratch.target()),
            session: stamp.as_ref(),
        };
        write_request(data, &head, &to.plan, &info, &mut forwarded);
        session.inbuf.consume(head.len);

        let meta = RequestMeta {
            version: head.version,
            framing: head.framing,
            keep_alive,
            upgrade: head.upgrade,
            is_head: head.is_head,
            request_id,
            started: self.now,
            cold: hold.is_some(),
            max_body,
            request_timeout: to.limits.request_timeout,
            editing: ResponseContext::for_plan(&to.plan, host, session.peer.ip(), &to.host),
        };
        let request = Request {
            backend: to.backend,
            host: to.host,
            head: forwarded,
            meta,
        };
        match (admitted, hold) {
            (Some((to, ask)), _) => {
                self.start_exchange(key, request, to);
                if let Some(command) = ask {
                    self.send_supervisor(command);
                }
            }
            (None, Some((ask, until))) => {
                if ask.is_some() {
                    access_log::note_wake(&request.host, &request.meta.request_id);
                }
                let request = Box::new(request);
                session.enter(Phase::Holding { request, until });
                if let Some(command) = ask {
                    self.send_supervisor(command);
                }
            }
            (None, None) => {}
        }
    }

    /// Answers a request that will not be forwarded; its head is dropped from the buffer first so the
    /// next pipelined request (if the connection stays open) starts at the front.
    fn refuse(
        &mut self,
        key: usize,
        head_len: usize,
        err: ProxyError,
        request_id: Vec<u8>,
        close: bool,
        routed: Option<Routed>,
    ) {
        self.sessions[key].inbuf.consume(head_len);
        self.reject(key, err, Some(request_id), close, routed);
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
        let session = self.sessions.get_mut(key)?;
        let close = close || self.shutting_down;
        log::debug!("{}: {}", session.peer, err);
        let bytes = err.to_http1(request_id.as_deref(), close, &[]);
        let left = session.answer(&bytes, close, self.now);
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

    /// Moves a connection that opened with the HTTP/2 preface, and the bytes read so far, to the h2 worker.
    fn hand_off_h2(&mut self, key: usize) {
        let Some(mut session) = self.sessions.try_remove(key) else {
            return;
        };
        session.deadline.cancel(&mut self.timers);
        let stream = session.client.into_handoff(self.poll.registry());
        log::debug!(
            "{}: HTTP/2 prior knowledge; handing the connection to the h2 worker",
            session.peer
        );
        match &self.h2 {
            Some(h2) => h2.hand_off(stream, session.inbuf.data().to_vec(), session.peer),
            None => drop(stream),
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
