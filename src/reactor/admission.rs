//! A request head has arrived: route it by Host (and its route table), then refuse it, answer it in the
//! proxy's place, hold it while its backend starts, or forward it, recording what its access-log line
//! and metrics need on the way.

use super::access::{self, Unexchanged};
use super::metrics::Routed;
use super::routes::Held;
use super::session::{close_after_answer, Phase, Request, RequestMeta};
use super::Reactor;
use crate::access_log;
use crate::error::{ErrorCode, ProxyError};
use crate::http1::request::RequestHead;
use crate::http1::request_id::is_acceptable_client_id;
use crate::http1::rewrite::{write_request, ForwardInfo, Http1Source, Proto, ResponseContext};
use crate::http1::Framing;
use crate::upstream::affinity::RequestAffinity;
use crate::upstream::{body_too_large, normalize_host, route, Admission, Caller, Routing};

impl Reactor {
    /// A complete head is at the front of the session's buffer: route it and forward, hold or answer it.
    pub(super) fn begin_request(&mut self, key: usize, head: RequestHead) {
        let hsts = self.hsts_max_age();
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
        // ACME HTTP-01 challenges are answered here, before routing, so they never wake a backend.
        #[cfg(feature = "acme")]
        let challenge =
            (self.acme.as_ref()).and_then(|acme| acme.http01_answer(&data[head.target.clone()]));
        #[cfg(not(feature = "acme"))]
        let challenge: Option<crate::upstream::LocalAnswer> = None;
        // `redirect_http`: the cleartext listener sends every request (but ACME challenges) to HTTPS.
        #[cfg(feature = "tls")]
        let here = challenge.or_else(|| match (&self.https, &self.config.tls) {
            (Some(https), Some(tls)) if tls.redirect_http && !session.client.is_tls() => {
                super::https::redirect(host, &data[head.target.clone()], https.port)
            }
            _ => None,
        });
        #[cfg(not(feature = "tls"))]
        let here = challenge;
        let routing = match here {
            Some(answer) => Routing::Answer {
                answer,
                spend: None,
            },
            None => route(
                self.routes.routes(),
                &self.session_ctl.hosts,
                host,
                &source,
                caller,
                &mut self.route_scratch,
            ),
        };
        let (to, edited, stamp) = match routing {
            Routing::Forward { to, target, stamp } => (to, target.is_some(), stamp),
            Routing::Answer { answer, spend } => {
                let close = close_after_answer(has_body, keep_alive, false) || self.shutting_down;
                let bytes = answer.to_http1(&request_id, close, head.is_head);
                session.inbuf.consume(head.len);
                session.answer(&bytes, close, self.now, hsts);
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
            proto: if session.client.is_tls() {
                Proto::Https
            } else {
                Proto::Http
            },
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
}
