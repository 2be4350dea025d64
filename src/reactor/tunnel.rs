//! A connection after a `101 Switching Protocols`: bytes relayed both ways until both sides are done.
//!
//! Each direction goes through one bounded buffer, so a side that stops reading stops the other side's
//! reads (backpressure through the sockets); one side's end of stream becomes a write shutdown on the
//! other once everything buffered was delivered, and the tunnel closes when both directions have ended.

use super::client::Step;
use super::session::{consume_out, Phase, Tunnel};
use super::sockio::{split_written, Filled};
use super::Reactor;

impl Reactor {
    pub(super) fn enter_tunnel(&mut self, key: usize) -> Step {
        let session = &mut self.sessions[key];
        let Phase::Exchanging(ex) = &mut session.phase else {
            return Step::Close;
        };
        log::debug!(
            "{} {}: switched protocols; tunnelling",
            session.peer,
            ex.host
        );
        // The backend connection and its in-flight count pass to the tunnel; what is left of the exchange
        // is dropped.
        let tunnel = Tunnel {
            instance: ex.instance,
            host: ex.host.clone(),
            lease: ex.lease.take(),
            upstream: ex.upstream,
            client_shut: false,
            upstream_shut: false,
        };
        let peer = session.peer;
        let mut left = session.enter(Phase::Tunnel(tunnel));
        if let Phase::Exchanging(ex) = &mut left {
            ex.status = Some(101);
        }
        self.report_exchange(peer, &left, None);
        Step::Progress
    }

    pub(super) fn step_tunnel(&mut self, key: usize) -> Step {
        let session = &mut self.sessions[key];
        let Phase::Tunnel(tunnel) = &mut session.phase else {
            return Step::Idle;
        };
        let Some(up) = self.upstreams.get_mut(tunnel.upstream) else {
            return Step::Close;
        };
        let mut progress = false;

        match session.client.fill(&mut session.inbuf) {
            Ok(Filled::Bytes(_)) | Ok(Filled::Eof) => progress = true,
            Ok(Filled::Nothing) => {}
            Err(_) => return Step::Close,
        }
        match up.flush(session.inbuf.data(), &[]) {
            Ok(0) => {}
            Ok(n) => {
                session.inbuf.consume(n);
                progress = true;
            }
            Err(_) => return Step::Close,
        }
        if session.client.read_eof() && session.inbuf.is_empty() && !tunnel.upstream_shut {
            tunnel.upstream_shut = true;
            up.shutdown_write();
            progress = true;
        }

        match up.fill() {
            Ok(Filled::Bytes(_)) | Ok(Filled::Eof) => progress = true,
            Ok(Filled::Nothing) => {}
            Err(_) => return Step::Close,
        }
        let out_left = session.out.len() - session.out_pos;
        match session
            .client
            .flush(&session.out[session.out_pos..], up.inbuf.data())
        {
            Ok(0) => {}
            Ok(n) => {
                let (from_out, from_up) = split_written(n, out_left);
                consume_out(&mut session.out, &mut session.out_pos, from_out);
                up.inbuf.consume(from_up);
                progress = true;
            }
            Err(_) => return Step::Close,
        }
        if up.read_eof()
            && up.inbuf.is_empty()
            && session.out_pos == session.out.len()
            && !tunnel.client_shut
        {
            tunnel.client_shut = true;
            session.client.shutdown_write();
            progress = true;
        }
        if tunnel.client_shut && tunnel.upstream_shut {
            log::debug!(
                "{} {}: tunnel closed by both sides",
                session.peer,
                tunnel.host
            );
            return Step::Close;
        }
        if progress {
            Step::Progress
        } else {
            Step::Idle
        }
    }
}
