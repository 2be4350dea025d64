//! Forwarding one request: acquiring a backend connection, pumping the request and response through it,
//! and deciding whether both connections go on. After a 101 the pair becomes a tunnel (`tunnel.rs`); the
//! backend connection goes back to its pool in `pool.rs`.

use std::net::SocketAddr;

use mio::Token;

use super::access;
use super::client::{flush_out, Step};
use super::session::{consume_out, Exchange, Phase, Request};
use super::sockio::{split_written, Filled};
use super::upstream::Upstream;
use super::{Reactor, UPSTREAM_BASE};
use crate::error::{ErrorCode, ProxyError};
use crate::http1::exchange::RequestHalf;
use crate::http1::exchange::{Advance, Asked, ExchangeEnd, Fault, ResponsePhase};
use crate::metrics::Protocol;
use crate::upstream::{InstanceId, Leased, TlsFailure};

impl Reactor {
    /// Sends a routed request to the instance it was admitted to (`to`), on a pooled connection if one
    /// is idle.
    pub(super) fn start_exchange(&mut self, key: usize, mut request: Request, to: Leased) {
        if let Some(editing) = &mut request.meta.editing {
            editing.answered_by(to.slot);
        }
        let instance = InstanceId {
            backend: request.backend,
            slot: to.slot,
        };
        let reused = self.take_pooled(instance);
        let backend = self.routes.get(request.backend);
        let Some((route, target)) = backend.and_then(|b| Some((b, b.instance(to.slot)?))) else {
            // Nothing is pooled for a backend that is gone; were it otherwise, it is closed here.
            if let Some(ukey) = reused {
                self.close_upstream(ukey);
            }
            let err = ProxyError::unknown_host(&request.host);
            let close = request.meta.close_after_refusal();
            let routed = Some((request.backend, request.meta.started));
            self.reject(key, err, Some(request.meta.request_id), close, routed);
            return;
        };
        let upstream = match reused {
            Some(u) => u,
            None => {
                let entry = self.upstreams.vacant_entry();
                let token = Token(UPSTREAM_BASE + entry.key());
                match Upstream::connect(&target.addr, instance, self.poll.registry(), token) {
                    Ok(up) => {
                        let u = entry.key();
                        entry.insert(up);
                        u
                    }
                    Err(e) => {
                        let err = ProxyError::connect_failed(&e);
                        let close = request.meta.close_after_refusal();
                        let routed = Some((request.backend, request.meta.started));
                        self.reject(key, err, Some(request.meta.request_id), close, routed);
                        return;
                    }
                }
            }
        };
        let session = &mut self.sessions[key];
        self.upstreams[upstream].owner = Some((key, session.serial));
        let half = RequestHalf::new(request.head, request.meta.framing, request.meta.max_body);
        let seen = access::forwarded(session.seen.take(), self.now);
        let cold = request
            .meta
            .cold
            .then(|| self.now.saturating_duration_since(request.meta.started));
        session.enter(Phase::Exchanging(Box::new(Exchange {
            instance,
            host: request.host,
            lease: Some(to.lease),
            upstream,
            reused: reused.is_some(),
            response_deadline: Some(
                self.now
                    + request
                        .meta
                        .request_timeout
                        .unwrap_or(route.config.timings.request_timeout),
            ),
            client_progress: self.now,
            meta: request.meta,
            request: half,
            status: None,
            bytes_out: 0,
            head_wait: None,
            cold,
            server_timing: route.config.timings.server_timing,
            response: ResponsePhase::awaiting_head(),
            response_head_at: 0,
            client_keep_alive: false,
            seen,
        })));
    }

    pub(super) fn step_exchange(&mut self, key: usize) -> Step {
        let now = self.now;
        let session = &mut self.sessions[key];
        let Phase::Exchanging(ex) = &mut session.phase else {
            return Step::Idle;
        };
        let Some(up) = self.upstreams.get_mut(ex.upstream) else {
            return Step::Close;
        };
        let mut progress = false;

        if !up.connected {
            if !(up.transport.io.writable || up.transport.io.readable) {
                return Step::Idle;
            }
            match up.finish_connect() {
                Ok(true) => progress = true,
                Ok(false) => {
                    up.transport.io.writable = false;
                    up.transport.io.readable = false;
                    return Step::Idle;
                }
                Err(e) => {
                    return self.fail_exchange(
                        key,
                        ErrorCode::ConnectionFailed,
                        format!("cannot connect to the backend: {e}"),
                    )
                }
            }
        }

        // Client -> buffer (request body, or the next pipelined request waiting its turn).
        match session.client.fill(&mut session.inbuf) {
            Ok(Filled::Bytes(_)) => {
                progress = true;
                ex.client_progress = now;
            }
            Ok(Filled::Eof) => progress = true,
            Ok(Filled::Nothing) => {}
            Err(_) => return Step::Close,
        }

        // Request -> backend.
        if let Err((code, why)) = ex.request.take_body(session.inbuf.data()) {
            return self.fail_exchange(key, code, why);
        }
        let (head_left, body) = ex.request.to_write(session.inbuf.data());
        if !head_left.is_empty() || !body.is_empty() {
            match up.flush(head_left, body) {
                Ok(0) => {}
                Ok(n) => {
                    let from_body = ex.request.wrote(n);
                    session.inbuf.consume(from_body);
                    progress = true;
                }
                Err(e) => {
                    // The backend stopped reading, maybe because it already answered (an early 413,
                    // say): stop sending and let the read side deliver whatever answer there is. The
                    // request is incomplete, so neither connection is reused afterwards.
                    log::debug!("{}: writing to {} failed: {e}", session.peer, ex.host);
                    ex.request.abandon();
                    progress = true;
                }
            }
        }
        if ex.request.cut_by(session.client.read_eof()) {
            log::debug!(
                "{}: client left in the middle of its request body",
                session.peer
            );
            return Step::Close;
        }

        // Backend -> buffer.
        match up.fill() {
            Ok(Filled::Bytes(_)) | Ok(Filled::Eof) => progress = true,
            Ok(Filled::Nothing) => {}
            Err(e) if TlsFailure::is(&e) => {
                return self.fail_exchange(
                    key,
                    ErrorCode::BackendTls,
                    format!("TLS with the backend failed: {e}"),
                )
            }
            Err(e) => {
                if ex.response.is_awaiting_head() {
                    return self.backend_gone(key, format!("reading from the backend failed: {e}"));
                }
                return Step::Close;
            }
        }

        // Backend bytes -> what the response calls for.
        let asked = Asked {
            version: ex.meta.version,
            is_head: ex.meta.is_head,
            upgrade: ex.meta.upgrade,
            keep_alive: ex.meta.keep_alive,
            request_id: &ex.meta.request_id,
            editing: ex.meta.editing.as_deref(),
            cold_start: ex.cold.filter(|_| ex.server_timing),
        };
        let client_eof = session.client.read_eof();
        let mut advanced = ex.response.advance(
            up.inbuf.data(),
            up.read_eof(),
            client_eof,
            &asked,
            &mut session.out,
        );
        if let Ok(Advance::Head {
            consumed,
            status,
            head_at,
            keep,
        }) = advanced
        {
            up.inbuf.consume(consumed);
            progress = true;
            ex.status = Some(status);
            ex.client_keep_alive = keep;
            ex.response_head_at = head_at;
            ex.response_deadline = None;
            ex.head_wait = Some(now.saturating_duration_since(ex.meta.started));
            // `hsts_max_age_secs`: responses over TLS tell the browser to stay on HTTPS.
            #[cfg(feature = "tls")]
            if let (true, Some(age)) = (
                session.client.is_tls(),
                self.config.tls.as_ref().and_then(|t| t.hsts_max_age),
            ) {
                super::https::add_hsts(&mut session.out, head_at, age.as_secs());
            }
            // The body's first bytes may have come with the head.
            advanced = ex.response.advance(
                up.inbuf.data(),
                up.read_eof(),
                client_eof,
                &asked,
                &mut session.out,
            );
        }
        let pending = match advanced {
            Ok(Advance::Relay { pending }) => pending,
            Ok(Advance::Tunnel { consumed }) => {
                up.inbuf.consume(consumed);
                return self.enter_tunnel(key);
            }
            Ok(Advance::Wait | Advance::Interim { .. } | Advance::Head { .. }) => {
                if let Ok(Advance::Interim { consumed }) = advanced {
                    up.inbuf.consume(consumed);
                    progress = true;
                }
                return match flush_out(session) {
                    Ok(p) if p || progress => Step::Progress,
                    Ok(_) => Step::Idle,
                    Err(()) => Step::Close,
                };
            }
            Err(Fault::Gone(why)) => return self.backend_gone(key, why.to_string()),
            Err(Fault::BadHead(why)) => return self.fail_exchange(key, ErrorCode::BadGateway, why),
            Err(Fault::Broken(why)) => return self.fail_response(key, why),
        };
        let out_left = session.out.len() - session.out_pos;
        if out_left > 0 || pending > 0 {
            let written = session
                .client
                .flush(&session.out[session.out_pos..], &up.inbuf.data()[..pending]);
            match written {
                Ok(0) => {}
                Ok(n) => {
                    let (from_out, from_body) = split_written(n, out_left);
                    consume_out(&mut session.out, &mut session.out_pos, from_out);
                    up.inbuf.consume(from_body);
                    ex.response.relayed(from_body);
                    ex.bytes_out += n as u64;
                    progress = true;
                }
                Err(_) => return Step::Close,
            }
        }
        if ex.response.is_complete() && session.out_pos == session.out.len() {
            return self.finish_exchange(key);
        }
        if progress {
            Step::Progress
        } else {
            Step::Idle
        }
    }

    /// The response went out completely: pool the backend connection if it is clean, and go on.
    fn finish_exchange(&mut self, key: usize) -> Step {
        let session = &self.sessions[key];
        let Phase::Exchanging(ex) = &session.phase else {
            return Step::Idle;
        };
        let complete = ex.request_complete();
        let reusable = self.upstreams.get(ex.upstream).is_some_and(|up| {
            ex.response.backend_reusable()
                && complete
                && up.inbuf.is_empty()
                && !up.read_eof()
                && !up.transport.io.read_eof
        });
        let keep = ex.client_keep_alive && complete && !session.client.read_eof();
        let session = &mut self.sessions[key];
        let next = if keep {
            Phase::reading(self.now)
        } else {
            Phase::closing(self.now)
        };
        let peer = session.peer;
        let left = session.enter(next);
        if keep {
            // An idle keep-alive connection keeps no buffer: not the read buffer, not the head it sent.
            session.inbuf.release_if_empty();
            if session.out_pending().is_empty() {
                session.out = Vec::new();
                session.out_pos = 0;
            }
        }
        self.report_exchange(peer, &left, None);
        self.release_upstream(left, reusable);
        Step::Progress
    }

    /// Reports how the exchange in `left` (a phase just left) ended; a phase that is not an exchange has
    /// nothing to report. Called wherever `Exchanging` is left (finished, answered by the proxy, cut,
    /// switched to a tunnel), so every exchange is reported once. `answered` is the proxy's answer, with
    /// the bytes it queued.
    pub(super) fn report_exchange(
        &self,
        peer: SocketAddr,
        left: &Phase,
        answered: Option<(ErrorCode, usize)>,
    ) {
        let Phase::Exchanging(ex) = left else {
            return;
        };
        let (status, code, queued) = match answered {
            Some((code, queued)) => (Some(code.status()), Some(code), queued as u64),
            None => (ex.status, None, 0),
        };
        let end = ExchangeEnd {
            protocol: Protocol::Http1,
            status,
            code,
            bytes_in: ex.request.bytes_in(),
            bytes_out: ex.bytes_out + queued,
            duration: self.now.saturating_duration_since(ex.meta.started),
            head_wait: ex.head_wait,
            cold: ex.cold,
        };
        log::debug!("{peer} {}: {end:?}", ex.host);
        self.record_exchange(peer, ex, &end);
    }
}
