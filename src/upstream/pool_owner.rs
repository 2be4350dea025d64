//! Hard affinity (`hash_over = "slots"`): every key belongs to one slot of the pool, found by
//! rendezvous hashing over all slots with a fixed seed (so a key keeps its owner across restarts, as a
//! shard's state requires). Only the owner serves the key: a request for an owner that is stopped or
//! starting waits bound to it and asks for exactly that slot to start; an owner that is unhealthy or
//! backing off is the client's answer (503 with today's code); there is no fail-over to another slot.

use super::backend::{Admission, Backend, Leased, Outcome, Waiter};
use super::balance;
use super::pool_view::{eligible, going_away, release_to};
use crate::config::pools::PoolConfig;
use crate::error::ProxyError;
use crate::msg::{Command, Lease, LifecycleEvent, Stamp, State, Thread};

/// Decides a request's fate for a pool with hard affinity; `key` is the request's (hashed with the
/// stable seed), `held` what the pool already holds.
pub fn admit<W: Waiter, X, R>(
    backend: &mut Backend<W, X>,
    pool: &PoolConfig,
    key: Option<u64>,
    (held, max_held): (usize, usize),
    (shutting_down, now, thread): (bool, Stamp, Thread),
    waiter: impl FnOnce() -> (W, R),
) -> Admission<R> {
    let slots = u16::try_from(backend.instances.len()).unwrap_or(u16::MAX);
    let Some(owner) = balance::owner_slot(key, slots) else {
        return Admission::Refuse(ProxyError::unknown_host(&backend.host));
    };
    let slot = u32::from(owner);
    let limit = pool.scaling.max_in_flight;
    let instance = &backend.instances[usize::from(owner)];
    if going_away(instance) {
        return Admission::Refuse(ProxyError::shutting_down());
    }
    if eligible(instance) {
        let activity = instance.activity.clone();
        let mut lease = Lease::take(&activity, limit, now);
        if lease.is_none() {
            // Full: the other thread must learn that this one waits before the last look (see
            // `pool_view::admit`).
            backend.waiting_flags.set(thread, true);
            lease = Lease::take(&activity, limit, now);
        }
        if let Some(lease) = lease {
            return Admission::Forward {
                to: Leased { slot, lease },
                ask: None,
            };
        }
    }
    if shutting_down {
        return Admission::Refuse(ProxyError::shutting_down());
    }
    let instance = &mut backend.instances[usize::from(owner)];
    if let Some((until, reason)) = instance.view.backoff.as_ref().filter(|(u, _)| *u > now.at) {
        let wait = until.saturating_duration_since(now.at);
        return Admission::Refuse(ProxyError::keeps_failing(&backend.host, reason, wait));
    }
    if instance.view.unhealthy {
        return Admission::Refuse(ProxyError::unhealthy());
    }
    if held >= max_held {
        return Admission::Refuse(ProxyError::too_many_held());
    }
    let ask = start_owner(backend, slot);
    let full = backend.instances[usize::from(owner)].view.state == State::Ready;
    let (waiter, receipt) = waiter();
    backend.waiting.push(waiter, Some(slot));
    let until = match full {
        true => now.at + pool.scaling.queue_timeout,
        false => now.at + backend.hold_limit(),
    };
    Admission::Hold {
        ask,
        until,
        receipt,
    }
}

/// `StartSlot` for the owner `slot`, unless it is up, starting or already asked for.
pub fn start_owner<W, X>(backend: &mut Backend<W, X>, slot: u32) -> Option<Command> {
    let id = backend.id;
    let view = &mut backend.instances.get_mut(slot as usize)?.view;
    if matches!(view.state, State::Ready | State::Starting) || view.start_requested {
        return None;
    }
    view.start_requested = true;
    Some(Command::StartSlot { backend: id, slot })
}

/// What one instance's report means for the requests bound to it (the instance's view is updated
/// already): a ready owner takes its own first, a failed one answers them at once, a stopped one with
/// requests still bound to it is started again.
pub fn on_event<W: Waiter, X>(
    backend: &mut Backend<W, X>,
    slot: u32,
    event: &LifecycleEvent,
    (shutting_down, now): (bool, Stamp),
    outcome: &mut Outcome<W, X>,
) {
    let host = backend.host.clone();
    let answer =
        |backend: &mut Backend<W, X>, err: ProxyError| backend.waiting.refuse_bound(slot, &err);
    match event {
        LifecycleEvent::Ready => outcome.release = release_to(backend, slot, now),
        LifecycleEvent::StartFailed(reason) => {
            outcome.release = answer(backend, ProxyError::start_failed(&host, reason));
        }
        LifecycleEvent::BackingOff {
            reason,
            retry_after,
        } => {
            outcome.release = answer(
                backend,
                ProxyError::keeps_failing(&host, reason, *retry_after),
            );
        }
        LifecycleEvent::Stopping(reason) if reason.is_final() => {
            outcome.release = answer(backend, ProxyError::shutting_down());
        }
        LifecycleEvent::Stopped => {
            // The view may have marked a start as asked for; the owner's start is asked here.
            if let Some(instance) = backend.instances.get_mut(slot as usize) {
                instance.view.start_requested = false;
            }
            if backend.waiting.bound_to(slot) > 0 && !shutting_down && !backend.is_removed() {
                outcome.ask = start_owner(backend, slot);
            }
        }
        _ => {}
    }
}
