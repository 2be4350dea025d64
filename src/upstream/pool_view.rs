//! A pool's admission and release, as each request thread applies them over its view of the pool's
//! instances (`table.rs` keeps that view). Written once for both protocols.
//!
//! * **Admission**: among the eligible instances (ready, healthy, below `max_in_flight`) a sticky cookie's
//!   slot if it names one, else the strategy's choice ([`super::balance`]); the place is taken with a
//!   [`Lease`] (one atomic step on the shared counter, so the two threads together never exceed
//!   `max_in_flight`). With nothing eligible the request waits at the back of the pool's queue.
//! * **Late binding**: held requests are not bound to an instance. Whichever instance becomes ready or
//!   frees a place first takes the front of the queue, up to its `max_in_flight`.
//! * **Demand**: the supervisor's pool controller decides how many instances run; this thread tells it how
//!   many requests it holds whenever that count crosses another instance's worth, and when every ready
//!   instance is at `target_in_flight`.
//! * **Failure**: a failed start answers the held requests only when no other instance is ready or
//!   starting: one failing slot among several is not the client's problem.

use std::time::Instant;

use super::affinity::Affinity;
use super::backend::{Admission, Backend, Instance, Leased, Outcome, Waiter};
use super::balance::{self, Candidate};
use super::pool_owner;
use crate::config::pools::{HashOver, PoolConfig, Strategy};
use crate::error::ProxyError;
use crate::msg::{Command, Lease, LifecycleEvent, Stamp, State, StopReason, Thread};

/// Most instances a pool may have (the config's bound): candidates fit on the stack.
const MAX_SLOTS: usize = 64;

/// Decides a new request's fate for a pool; `held` requests already wait for it.
pub fn admit<W: Waiter, X, R>(
    backend: &mut Backend<W, X>,
    held: usize,
    max_held: usize,
    affinity: &impl Affinity,
    (shutting_down, now, thread): (bool, Stamp, Thread),
    waiter: impl FnOnce() -> (W, R),
) -> Admission<R> {
    let Some(pool) = backend.config.pool.clone() else {
        return Admission::Refuse(ProxyError::unknown_host(&backend.host));
    };
    if backend.is_removed() || backend.instances.iter().any(going_away) {
        return Admission::Refuse(ProxyError::shutting_down());
    }
    if let Strategy::Hash {
        on,
        over: HashOver::Slots,
        ..
    } = &pool.strategy
    {
        let key = affinity.hash_key(on, HashOver::Slots);
        let context = (shutting_down, now, thread);
        return pool_owner::admit(backend, &pool, key, (held, max_held), context, waiter);
    }
    let mut leased = lease_one(backend, &pool, affinity, now);
    if leased.is_none() && pool.scaling.max_in_flight.is_some() {
        // Full, as far as this thread can see. Say so to the other thread first, then look once more:
        // a place it freed after our first look is seen now, or it sees our flag and tells us.
        backend.waiting_flags.set(thread, true);
        leased = lease_one(backend, &pool, affinity, now);
        if leased.is_some() && backend.held() == 0 {
            backend.waiting_flags.set(thread, false);
        }
    }
    if let Some(to) = leased {
        let ask = saturated(backend, &pool).then(|| {
            backend.demand_sent = true;
            demand(backend, thread, true)
        });
        return Admission::Forward {
            to,
            ask: ask.filter(|_| !shutting_down),
        };
    }
    if shutting_down {
        return Admission::Refuse(ProxyError::shutting_down());
    }
    let any_ready = backend
        .instances
        .iter()
        .any(|i| i.view.state == State::Ready);
    let coming = backend.instances.iter().any(|i| may_come_up(i, now.at));
    if !any_ready && !coming {
        return Admission::Refuse(refusal(backend, now.at));
    }
    if held >= max_held {
        return Admission::Refuse(ProxyError::too_many_held());
    }
    let (waiter, receipt) = waiter();
    backend.waiting.push(waiter, None);
    let starting = backend
        .instances
        .iter()
        .any(|i| i.view.state == State::Starting);
    let until = match any_ready && !starting {
        // Saturated: it waits for a free place, not for a start.
        true => now.at + pool.scaling.queue_timeout,
        false => now.at + backend.hold_limit(),
    };
    Admission::Hold {
        ask: report_demand(backend, &pool, thread, false),
        until,
        receipt,
    }
}

/// Applies a pool-level reaction to one instance's report (the instance's own view is updated already).
pub fn on_event<W: Waiter, X>(
    backend: &mut Backend<W, X>,
    slot: u32,
    event: &LifecycleEvent,
    shutting_down: bool,
    now: Stamp,
    thread: Thread,
    outcome: &mut Outcome<W, X>,
) {
    let Some(pool) = backend.config.pool.clone() else {
        return;
    };
    // Whatever changed, the controller may need to hear the queue again.
    backend.demand_sent = false;
    if matches!(
        pool.strategy,
        Strategy::Hash {
            over: HashOver::Slots,
            ..
        }
    ) {
        pool_owner::on_event(backend, slot, event, (shutting_down, now), outcome);
        if backend.held() == 0 {
            backend.waiting_flags.set(thread, false);
        }
        return;
    }
    match event {
        LifecycleEvent::Ready => outcome.release = release_to(backend, slot, now),
        LifecycleEvent::StartFailed(_) | LifecycleEvent::BackingOff { .. }
            if !backend.instances.iter().any(may_serve_soon) =>
        {
            let err = match event {
                LifecycleEvent::StartFailed(reason) => {
                    ProxyError::start_failed(&backend.host, reason)
                }
                _ => refusal(backend, now.at),
            };
            outcome.release = backend.waiting.refuse_all(&err);
        }
        LifecycleEvent::Stopping(reason)
            if reason.is_final() && backend.instances.iter().all(going_away_or_stopped) =>
        {
            outcome.release = backend.waiting.refuse_all(&ProxyError::shutting_down());
        }
        _ => {}
    }
    if backend.held() == 0 {
        backend.waiting_flags.set(thread, false);
    }
    if !shutting_down && !backend.is_removed() {
        // What is coming up for the held requests changed: the controller hears the count again (and
        // hears when none are left).
        outcome.ask = report_demand(backend, &pool, thread, true);
    }
}

/// Hands held requests, oldest first, to the instance in `slot` while it has room.
pub fn release_to<W: Waiter, X>(
    backend: &mut Backend<W, X>,
    slot: u32,
    now: Stamp,
) -> Vec<(W, Result<Leased, ProxyError>)> {
    let limit = backend
        .config
        .pool
        .as_ref()
        .and_then(|p| p.scaling.max_in_flight);
    let mut out = Vec::new();
    let Some(instance) = backend.instances.get(slot as usize) else {
        return out;
    };
    if !eligible(instance) {
        return out;
    }
    let activity = instance.activity.clone();
    while backend.held() > 0 {
        let Some(lease) = Lease::take(&activity, limit, now) else {
            break;
        };
        match backend.waiting.pop_for(slot) {
            Some(w) => out.push((w, Ok(Leased { slot, lease }))),
            None => break,
        }
    }
    out
}

/// Takes a place on the instance the request should go to, if any has room.
fn lease_one<W, X>(
    backend: &mut Backend<W, X>,
    pool: &PoolConfig,
    affinity: &impl Affinity,
    now: Stamp,
) -> Option<Leased> {
    let limit = pool.scaling.max_in_flight;
    let count = backend.instances.len().min(MAX_SLOTS);
    let mut candidates = [Candidate {
        slot: 0,
        in_flight: 0,
        weight: 0,
        eligible: false,
    }; MAX_SLOTS];
    for (slot, instance) in backend.instances.iter().take(count).enumerate() {
        let in_flight = instance.activity.in_flight();
        candidates[slot] = Candidate {
            slot: slot as u16,
            in_flight: u32::try_from(in_flight).unwrap_or(u32::MAX),
            weight: instance.weight,
            eligible: eligible(instance) && limit.is_none_or(|l| in_flight < l as usize),
        };
    }
    let candidates = &mut candidates[..count];
    let sticky = pool
        .sticky
        .as_ref()
        .and_then(|s| affinity.sticky_slot(&s.cookie));
    let sticky = sticky.and_then(|s| balance::soft_target(u16::try_from(s).ok()?, candidates));
    if let Some(slot) = sticky.map(u32::from) {
        let activity = &backend.instances[slot as usize].activity;
        if let Some(lease) = Lease::take(activity, limit, now) {
            return Some(Leased { slot, lease });
        }
        candidates[slot as usize].eligible = false;
    }
    let key = match &pool.strategy {
        Strategy::Hash { on, over, .. } => affinity.hash_key(on, *over),
        _ => None,
    };
    // A place taken by the other thread meanwhile makes that candidate ineligible; try the next choice.
    for _ in 0..count {
        let slot = balance::choose(&pool.strategy, &mut backend.balance, candidates, key)?;
        let activity = &backend.instances[slot as usize].activity;
        if let Some(lease) = Lease::take(activity, limit, now) {
            return Some(Leased {
                slot: u32::from(slot),
                lease,
            });
        }
        candidates[slot as usize].eligible = false;
    }
    None
}

/// The ready instances carry more than `target_in_flight` each and the pool may run more: ask for one
/// now, while this request is served (once per lifecycle change). The same rule as the controller's
/// (`ceil(load / target)` instances), so the ask is never one it ignores.
fn saturated<W, X>(backend: &Backend<W, X>, pool: &PoolConfig) -> bool {
    let Some(target) = pool.scaling.target_in_flight else {
        return false;
    };
    if backend.demand_sent || !may_start_more(backend, pool) {
        return false;
    }
    let (count, load) = backend
        .instances
        .iter()
        .filter(|i| eligible(i))
        .fold((0usize, 0usize), |(n, load), i| {
            (n + 1, load + i.activity.in_flight())
        });
    count > 0 && load > count * target as usize
}

/// Nothing is starting and fewer than `max_running` run: the controller could start another.
fn may_start_more<W, X>(backend: &Backend<W, X>, pool: &PoolConfig) -> bool {
    let mut up = 0;
    for instance in &backend.instances {
        match instance.view.state {
            State::Starting => return false,
            State::Ready => up += 1,
            _ => {}
        }
    }
    up < pool.scaling.max_running as usize
}

/// `Demand` with this thread's held count when the supervisor should hear it: the count fell to zero
/// (which lifts the controller's veto on idle stops), rose from zero, or crossed another instance's
/// worth while the controller could start something for it; with `force`, whenever requests are held
/// (a report changed what is coming up for them). An instance's worth is what the controller counts:
/// `target_in_flight`, else `max_in_flight`, else all of them. `reported` is what the supervisor
/// last heard, and nothing else.
pub(super) fn report_demand<W, X>(
    backend: &mut Backend<W, X>,
    pool: &PoolConfig,
    thread: Thread,
    force: bool,
) -> Option<Command> {
    let scaling = &pool.scaling;
    let per = scaling
        .target_in_flight
        .or(scaling.max_in_flight)
        .unwrap_or(u32::MAX)
        .max(1);
    let bucket = |held: u32| held.div_ceil(per);
    let held = u32::try_from(backend.held()).unwrap_or(u32::MAX);
    let ups = backend
        .instances
        .iter()
        .filter(|i| matches!(i.view.state, State::Ready | State::Starting))
        .count();
    let reported = backend.reported;
    let send = match held {
        0 => reported != 0,
        _ if force || reported == 0 => true,
        _ => bucket(held) != bucket(reported) && ups < scaling.max_running as usize,
    };
    if !send {
        return None;
    }
    backend.reported = held;
    Some(demand(backend, thread, false))
}

fn demand<W, X>(backend: &Backend<W, X>, thread: Thread, grow: bool) -> Command {
    Command::Demand {
        backend: backend.id,
        from: thread,
        held: u32::try_from(backend.held()).unwrap_or(u32::MAX),
        grow,
    }
}

/// Why nothing of the pool can take a request: every instance is backing off (the soonest retry), or
/// unhealthy.
fn refusal<W, X>(backend: &Backend<W, X>, now: Instant) -> ProxyError {
    let soonest = backend
        .instances
        .iter()
        .filter_map(|i| i.view.backoff.as_ref())
        .filter(|(until, _)| *until > now)
        .min_by_key(|(until, _)| *until);
    match soonest {
        Some((until, reason)) => {
            ProxyError::keeps_failing(&backend.host, reason, until.saturating_duration_since(now))
        }
        None => ProxyError::unhealthy(),
    }
}

pub(super) fn eligible(instance: &Instance) -> bool {
    instance.view.state == State::Ready && !instance.view.unhealthy
}

/// Stopping for good (removal, shutdown): takes nothing new.
pub(super) fn going_away(instance: &Instance) -> bool {
    instance.view.state == State::Stopping
        && instance.view.stop_reason.is_some_and(StopReason::is_final)
}

fn going_away_or_stopped(instance: &Instance) -> bool {
    going_away(instance) || instance.view.state == State::Stopped
}

/// Could take requests soon: starting, or ready.
fn may_serve_soon(instance: &Instance) -> bool {
    matches!(instance.view.state, State::Starting | State::Ready)
}

/// Can be (re)started or is coming up: not backing off, not unhealthy.
fn may_come_up(instance: &Instance, now: Instant) -> bool {
    let backing_off = instance
        .view
        .backoff
        .as_ref()
        .is_some_and(|(until, _)| *until > now);
    match instance.view.state {
        State::Starting => true,
        State::Ready | State::Unhealthy => false,
        State::Stopped | State::Stopping => !backing_off && !instance.view.unhealthy,
    }
}

#[cfg(test)]
#[path = "pool_view_tests.rs"]
mod tests;
