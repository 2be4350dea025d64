//! When forwarding goes wrong: an error answer while nothing of the response has reached the client, a
//! close after that, and the one retry a dead pooled connection earns.

use mio::Token;

use super::client::Step;
use super::session::{close_after_answer, Phase, ResponsePhase};
use super::upstream::Upstream;
use super::{Reactor, UPSTREAM_BASE};
use crate::error::{ErrorCode, ProxyError};
use crate::upstream;

impl Reactor {
    /// The response broke after its head was parsed. While none of it has reached the client yet, its
    /// queued head is taken back and the client gets 502 instead; after that, closing the connection is the
    /// only honest signal left.
    pub(super) fn fail_response(&mut self, key: usize, why: String) -> Step {
        let session = &mut self.sessions[key];
        let Phase::Exchanging(ex) = &mut session.phase else {
            return Step::Close;
        };
        log::warn!("{} {}: {why}", session.peer, ex.host);
        let at = ex.response_head_at;
        let untouched = session.out.len() > at && session.out_pos <= at;
        if !untouched {
            return Step::Close;
        }
        session.out.truncate(at);
        ex.response = ResponsePhase::awaiting_head();
        // Whatever else that backend sent on this exchange is suspect: end the client connection too.
        ex.meta.keep_alive = false;
        self.fail_exchange(key, ErrorCode::BadGateway, why)
    }

    /// An error before any response byte reached the client becomes an error response; after that, the
    /// only honest signal left is closing the connection.
    pub(super) fn fail_exchange(&mut self, key: usize, code: ErrorCode, message: String) -> Step {
        let awaiting = matches!(&self.sessions[key].phase, Phase::Exchanging(ex) if ex.response.is_awaiting_head());
        if !awaiting {
            return Step::Close;
        }
        self.abort_exchange(key, ProxyError::new(code, message));
        Step::Progress
    }

    pub(super) fn abort_exchange(&mut self, key: usize, err: ProxyError) {
        let session = &self.sessions[key];
        let Phase::Exchanging(ex) = &session.phase else {
            return;
        };
        let close = close_after_answer(
            !ex.request_complete(),
            ex.meta.keep_alive,
            session.client.read_eof(),
        );
        let id = ex.meta.request_id.clone();
        if err.code.status() >= 500 {
            log::warn!("{} {}: {}", session.peer, ex.host, err);
        }
        let (peer, queued_before) = (session.peer, session.out.len());
        let code = err.code;
        if let Some(left) = self.reject(key, err, Some(id), close, None) {
            let queued = self.sessions[key].out.len().saturating_sub(queued_before);
            self.report_exchange(peer, &left, Some((code, queued)));
            self.release_upstream(left, false);
        }
    }

    /// The backend connection failed before any response byte. A pooled connection that the backend closed
    /// while idle fails exactly like this, so a request without a body is retried once on a new connection.
    pub(super) fn backend_gone(&mut self, key: usize, why: String) -> Step {
        let retry = match &self.sessions[key].phase {
            Phase::Exchanging(ex) => upstream::may_retry(
                ex.reused,
                ex.meta.has_body(),
                !ex.response.is_awaiting_head(),
                false,
            ),
            _ => false,
        };
        if !retry {
            return self.fail_exchange(key, ErrorCode::ConnectionFailed, why);
        }
        let session = &mut self.sessions[key];
        let serial = session.serial;
        let Phase::Exchanging(ex) = &mut session.phase else {
            return Step::Close;
        };
        let old = ex.upstream;
        let Some(addr) = self.routes.instance(ex.instance).map(|i| i.addr.clone()) else {
            return self.fail_exchange(key, ErrorCode::ConnectionFailed, why);
        };
        let entry = self.upstreams.vacant_entry();
        let token = Token(UPSTREAM_BASE + entry.key());
        match Upstream::connect(&addr, ex.instance, self.poll.registry(), token) {
            Ok(mut up) => {
                log::debug!(
                    "{}: pooled connection was dead ({why}); retrying on a new one",
                    ex.host
                );
                up.owner = Some((key, serial));
                ex.upstream = entry.key();
                entry.insert(up);
                ex.reused = false;
                ex.request.restart();
                self.close_upstream(old);
                Step::Progress
            }
            Err(e) => self.fail_exchange(
                key,
                ErrorCode::ConnectionFailed,
                ProxyError::connect_failed(&e).message,
            ),
        }
    }
}
