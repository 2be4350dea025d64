//! One HTTP/2 stream: inspect the request, route it, hold it while its backend starts, forward it, and
//! answer any failure on this stream alone.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::server::SendResponse;
use h2::RecvStream;
use http::Request;
use tokio::sync::oneshot;

use super::access::StreamRecord;
use super::conn::Via;
use super::errors::{self, Failure};
use super::forward::{self, Exchange};
use super::request::{self, BodyPlan, H2Source};
use super::routes::{self, Admission, Release};
use super::tally::Tally;
use super::worker::Worker;
use crate::access_log;
use crate::error::ProxyError;
use crate::http1::rewrite::{ClientIp, ForwardInfo, Proto, ResponseContext};
use crate::metrics::BackendMetrics;
use crate::msg::{Lease, ReactorMsg};
use crate::upstream::{BackendId, Caller, InstanceId};

/// How a stream ended, as its connection needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    Done,
    /// The client reset the stream (or broke it) while the proxy was still working on it.
    ClientReset,
}

pub async fn serve(
    worker: Rc<Worker>,
    request: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    (peer, via): (SocketAddr, Via),
    client_ip: Rc<str>,
) -> StreamEnd {
    let hsts = via.hsts_max_age;
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let request_id = request::request_id(&parts, &mut worker.ids.borrow_mut());
    let outputs = (&*worker.access_log, &*worker.metrics);
    let mut line = StreamRecord::begin(outputs, &parts, peer.ip(), &request_id, started);
    let has_body = !body.is_end_stream();
    // The body limit is the route's: checked once the stream is routed.
    let inspected = match request::inspect(&parts, has_body, None) {
        Ok(inspected) => inspected,
        Err(err) => {
            log::debug!("{peer}: h2 request refused: {err}");
            errors::answer(&mut respond, &err, (&request_id[..], hsts), &line.tally);
            return StreamEnd::Done;
        }
    };
    let source = H2Source {
        parts: &parts,
        inspected: &inspected,
    };
    let server_max = worker.limits.max_request_body_bytes;
    let declared = match inspected.body {
        BodyPlan::Length(n) => Some(n),
        _ => None,
    };
    let (admission, ask) = routes::admit(
        &mut worker.routes.borrow_mut(),
        &worker.sessions.borrow(),
        &inspected.host,
        &source,
        Caller {
            request_id: &request_id,
            client_ip: peer.ip(),
        },
        (declared, server_max),
        Instant::now(),
    );
    // A held stream whose admission asks for a start is the one that wakes the backend.
    let woke = ask.is_some() && matches!(admission, Admission::Hold { .. });
    if let Some(command) = ask {
        worker.ask(command);
    }
    let (target, lease, forwarding) = match admission {
        Admission::Forward(target, lease, forwarding) => {
            line.routed(&target.host, (false, false));
            (target, lease, forwarding)
        }
        Admission::Answer { answer, spend } => {
            let is_head = inspected.is_head;
            let reply = (&request_id[..], hsts);
            errors::answer_local(&mut respond, &answer, is_head, reply, &line.tally);
            if let Some(index) = spend {
                worker.spend(&inspected.host, index);
            }
            return StreamEnd::Done;
        }
        Admission::Reject(err, routed) => {
            if let Some(id) = routed {
                count_under(&worker, id, &line.tally);
            }
            errors::answer(&mut respond, &err, (&request_id[..], hsts), &line.tally);
            return StreamEnd::Done;
        }
        Admission::Hold {
            id,
            host,
            release,
            limit,
            forwarding,
        } => {
            line.routed(&host, (true, woke));
            if woke {
                access_log::note_wake(&host, &request_id);
            }
            let metrics = count_under(&worker, id, &line.tally);
            metrics.as_ref().inspect(|m| m.h2_held.inc());
            let held = hold(&mut respond, release, limit).await;
            metrics.as_ref().inspect(|m| m.h2_held.dec());
            if !matches!(held, Held::Released(_)) {
                // It gave up (its receiver is gone now): the pool's controller may need the count.
                let ask = worker.routes.borrow_mut().abandon(id, |_| false);
                if let Some(command) = ask {
                    worker.ask(command);
                }
            }
            let released = match held {
                Held::Released(released) => released,
                Held::TimedOut => Err(worker.routes.borrow().wait_expired(id, &host)),
                Held::ClientGone => return StreamEnd::ClientReset,
            };
            let target = released.and_then(|to| {
                let target =
                    routes::target(&worker.routes.borrow(), id, to.slot, &forwarding.limits);
                target
                    .map(|target| (target, to.lease))
                    .ok_or_else(|| ProxyError::unknown_host(&host))
            });
            match target {
                Ok((target, lease)) => {
                    line.tally.held_until_now();
                    (target, lease, forwarding)
                }
                Err(err) => {
                    errors::answer(&mut respond, &err, (&request_id[..], hsts), &line.tally);
                    return StreamEnd::Done;
                }
            }
        }
    };
    let max_body = forwarding.limits.max_body(server_max);
    line.wait_over(Some(target.instance.slot));
    count_under(&worker, target.instance.backend, &line.tally);
    let server_timing = worker
        .routes
        .borrow()
        .get(target.instance.backend)
        .is_some_and(|b| b.config.timings.server_timing);

    let mut head = Vec::with_capacity(512);
    let info = ForwardInfo {
        target: forwarding.target.as_deref(),
        session: forwarding.session.as_ref(),
        proto: if via.tls { Proto::Https } else { Proto::Http },
        ..ForwardInfo::new(ClientIp::Text(&client_ip), &request_id)
    };
    request::write_forwarded(&parts, &inspected, &forwarding.plan, &info, &mut head);
    let _in_flight = InFlight {
        lease: Some(lease),
        worker: worker.clone(),
        instance: target.instance,
    };
    let mut editing =
        ResponseContext::for_plan(&forwarding.plan, &inspected.host, peer.ip(), &target.host);
    if let Some(editing) = &mut editing {
        editing.answered_by(target.instance.slot);
    }
    let exchange = Exchange {
        target: &target,
        head: &head,
        body: inspected.body,
        is_head: inspected.is_head,
        request_id: &request_id,
        max_body,
        body_stall_limit: worker.limits.header_read_timeout,
        editing: editing.as_deref(),
        cold_start: line.tally.cold().filter(|_| server_timing),
        hsts,
        tally: &line.tally,
    };
    match forward::exchange(&worker, exchange, body, &mut respond).await {
        Ok(()) => StreamEnd::Done,
        Err(Failure::Answer(err)) => {
            if err.code.status() >= 500 {
                log::warn!("{peer} {}: {err}", target.host);
            }
            errors::answer(&mut respond, &err, (&request_id[..], hsts), &line.tally);
            StreamEnd::Done
        }
        Err(Failure::Reset(why)) => {
            log::warn!("{peer} {}: response cut short: {why}", target.host);
            errors::reset(&mut respond);
            StreamEnd::Done
        }
        Err(Failure::ResetForClient(why)) => {
            log::debug!("{peer} {}: stream reset: {why}", target.host);
            errors::reset(&mut respond);
            StreamEnd::Done
        }
        Err(Failure::ClientGone) => StreamEnd::ClientReset,
    }
}

/// Counts the stream under backend `id` from now on; its counters, while it is configured.
fn count_under(worker: &Worker, id: BackendId, tally: &Tally) -> Option<Arc<BackendMetrics>> {
    let metrics = worker.routes.borrow().get(id)?.metrics.clone();
    tally.routed(metrics.clone());
    Some(metrics)
}

enum Held {
    Released(Release),
    TimedOut,
    ClientGone,
}

/// Waits for the backend to become ready (or fail), at most `limit`, while watching for the client
/// giving up.
async fn hold(
    respond: &mut SendResponse<Bytes>,
    release: oneshot::Receiver<Release>,
    limit: Duration,
) -> Held {
    tokio::select! {
        released = tokio::time::timeout(limit, release) => match released {
            Ok(Ok(outcome)) => Held::Released(outcome),
            // The route went away without a word (the worker is ending).
            Ok(Err(_)) => Held::Released(Err(ProxyError::shutting_down())),
            Err(_) => Held::TimedOut,
        },
        _ = poll_fn(|cx| respond.poll_reset(cx)) => Held::ClientGone,
    }
}

/// Counts a stream as in flight on its instance for idle, drain and `max_in_flight` decisions, until
/// dropped (which also covers a stream cancelled with its connection); then a held stream may take the
/// place it leaves.
struct InFlight {
    lease: Option<Lease>,
    worker: Rc<Worker>,
    instance: InstanceId,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let now = Instant::now();
        // Never borrowed across an await, so free here; `try_` in case a drop ever happens inside one
        // (the lease then ends on its own drop).
        let Ok(mut routes) = self.worker.routes.try_borrow_mut() else {
            return;
        };
        if let Some(lease) = self.lease.take() {
            lease.end(routes.clock().ms(now));
        }
        let freed = routes.freed(self.instance, now);
        let other_waits = routes.other_waits(self.instance);
        drop(routes);
        if let Some(outcome) = freed {
            self.worker.settle(outcome);
        }
        if other_waits {
            if let Some(reactor) = self.worker.reactor.borrow().as_ref() {
                reactor.send(ReactorMsg::SlotFreed(self.instance));
            }
        }
    }
}
