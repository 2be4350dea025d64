//! How sessions end: lifecycle reports about their instances, lifetimes, deletes and evictions begin
//! an end (route published with the reason at once, so new requests get 410 while the instance drains;
//! one `End` effect); the instance's `Stopped` finishes it (key and port released, `ended` frame,
//! tombstone); tombstones expire (`Forget`).

use std::sync::Arc;

use super::json;
use super::{Effect, Registry};
use crate::config::sessions::Unhealthy;
use crate::msg::{LifecycleEvent, StopReason};
use crate::sessions::route::SessionUpdate;
use crate::sessions::{EndReason, SessionState};

impl Registry {
    /// A report about the instance of session `id` (not yet ended).
    pub(super) fn report(
        &mut self,
        id: &Arc<str>,
        event: &LifecycleEvent,
        now_ms: u64,
        effects: &mut Vec<Effect>,
    ) {
        let Some(session) = self.sessions.get_mut(id) else {
            return;
        };
        session.ran = true;
        let ending = matches!(session.state, SessionState::Draining(_));
        let restart_unhealthy = session.template.unhealthy == Unhealthy::Restart;
        match event {
            LifecycleEvent::Starting if !ending => {
                session.restarting = false;
                self.change_state(id, SessionState::Starting, now_ms, effects);
            }
            LifecycleEvent::Ready if !ending => {
                self.change_state(id, SessionState::Ready, now_ms, effects);
            }
            LifecycleEvent::Starting | LifecycleEvent::Ready => {}
            LifecycleEvent::Unhealthy if ending => {}
            // The supervisor stops and starts it again; its `Stopped` meanwhile is no exit.
            LifecycleEvent::Unhealthy if restart_unhealthy => session.restarting = true,
            LifecycleEvent::Unhealthy => {
                self.begin_end(id, EndReason::Unhealthy, false, now_ms, effects);
            }
            LifecycleEvent::Stopping(_) if ending => {}
            LifecycleEvent::Stopping(reason) => {
                let reason = match reason {
                    StopReason::Idle => EndReason::Idle,
                    StopReason::Announced => EndReason::Exited("announced stop".to_string()),
                    StopReason::Restart if restart_unhealthy => {
                        session.restarting = true;
                        return;
                    }
                    StopReason::Restart => EndReason::Unhealthy,
                    StopReason::Removed | StopReason::Terminated => EndReason::Terminated,
                    // `shutdown` ends every session itself; a pool of one instance is never scaled
                    // down or replaced, and if it were, its `Stopped` would say it ended.
                    StopReason::Shutdown | StopReason::ScaleDown | StopReason::Replace => return,
                };
                self.begin_end(id, reason, true, now_ms, effects);
            }
            // Its instance is not running (and never will again): ended at once.
            LifecycleEvent::StartFailed(why) | LifecycleEvent::BackingOff { reason: why, .. } => {
                let reason = match &session.state {
                    SessionState::Draining(reason) => reason.clone(),
                    _ => EndReason::StartFailed(why.clone()),
                };
                self.publish_ended(id, &reason, effects);
                self.send_end(id, false, effects);
                self.finish(id, reason, now_ms, effects);
            }
            LifecycleEvent::Stopped if session.restarting && !ending => {}
            LifecycleEvent::Stopped => {
                let reason = match &session.state {
                    SessionState::Draining(reason) => reason.clone(),
                    _ => {
                        let how = session.activity.facts().last_exit;
                        EndReason::Exited(how.unwrap_or_else(|| "exited".to_string()))
                    }
                };
                self.publish_ended(id, &reason, effects);
                self.send_end(id, false, effects);
                self.finish(id, reason, now_ms, effects);
            }
        }
    }

    /// Session `id`, if running, starts ending for `reason`: its route carries the reason from now on,
    /// its instance is told to stop (`drain`: after its requests finish), it shows `draining`. A
    /// session whose instance never ran ends at once. One already ending or ended is left alone.
    pub(super) fn begin_end(
        &mut self,
        id: &Arc<str>,
        reason: EndReason,
        drain: bool,
        now_ms: u64,
        effects: &mut Vec<Effect>,
    ) {
        let Some(session) = self.sessions.get(id) else {
            return;
        };
        if !session.is_running() {
            return;
        }
        let ran = session.ran;
        if let Some(deadline) = session.deadline_ms {
            self.lifetimes.remove(&(deadline, id.clone()));
        }
        // The route first: a request that finds the backend removed must already get 410.
        self.publish_ended(id, &reason, effects);
        self.send_end(id, drain, effects);
        match ran {
            true => self.change_state(id, SessionState::Draining(reason), now_ms, effects),
            false => self.finish(id, reason, now_ms, effects),
        }
    }

    /// The instance of session `id` is gone: the session has ended. Its key and port are free, its
    /// subscribers get the last frame, and its tombstone is kept for the template's `tombstone_secs`.
    pub(super) fn finish(
        &mut self,
        id: &Arc<str>,
        reason: EndReason,
        now_ms: u64,
        effects: &mut Vec<Effect>,
    ) {
        self.publish_ended(id, &reason, effects);
        let Some(session) = self.sessions.get_mut(id) else {
            return;
        };
        if let Some(deadline) = session.deadline_ms {
            self.lifetimes.remove(&(deadline, id.clone()));
        }
        self.by_backend.remove(&session.backend);
        let until = now_ms.saturating_add(session.template.tombstone.as_millis() as u64);
        session.tombstone_until = Some(until);
        self.change_state(id, SessionState::Ended(reason), now_ms, effects);
        for dropped in self.tombstones.add(id.clone(), until) {
            self.forget(&dropped, effects);
        }
    }

    /// Lifetimes that ran out end their sessions (traffic never extends them); tombstones past their
    /// time are forgotten.
    pub(super) fn run_timers(&mut self, now_ms: u64, effects: &mut Vec<Effect>) {
        while let Some((deadline, id)) = self.lifetimes.first().cloned() {
            if deadline > now_ms {
                break;
            }
            self.lifetimes.pop_first();
            self.begin_end(&id, EndReason::Lifetime, true, now_ms, effects);
        }
        while let Some((due, id)) = self.unstarted.first().cloned() {
            if due > now_ms {
                break;
            }
            self.unstarted.pop_first();
            self.check_unstarted(&id, now_ms, effects);
        }
        for id in self.tombstones.expired(now_ms) {
            self.forget(&id, effects);
        }
    }

    /// An `on_request` session no request has started: idle for its template's `idle_timeout` (a
    /// reconnect restarts the window), it ends, as a running one would; otherwise it is checked again
    /// when the window could next be over.
    fn check_unstarted(&mut self, id: &Arc<str>, now_ms: u64, effects: &mut Vec<Effect>) {
        let Some(session) = self.sessions.get(id) else {
            return;
        };
        if session.ran || !session.is_running() {
            return;
        }
        let idle = session.template.idle_timeout.as_millis() as u64;
        let due = session.last_active_ms().saturating_add(idle);
        if session.activity.in_flight() == 0 && due <= now_ms {
            self.begin_end(id, EndReason::Idle, true, now_ms, effects);
            return;
        }
        // Busy (a request is held for it): look again a whole window later.
        let next = match due > now_ms {
            true => due,
            false => now_ms.saturating_add(idle.max(1)),
        };
        self.unstarted.insert((next, id.clone()));
    }

    /// The proxy stops: every session not ended gets its `ended` frame, and nothing more.
    pub(super) fn end_all(&mut self, now_ms: u64, effects: &mut Vec<Effect>) {
        let mut ids: Vec<(u64, Arc<str>)> = self
            .by_backend
            .values()
            .filter_map(|id| self.sessions.get(id))
            .map(|s| (s.seq, s.id.clone()))
            .collect();
        ids.sort();
        for (_, id) in ids {
            self.change_state(
                &id,
                SessionState::Ended(EndReason::Shutdown),
                now_ms,
                effects,
            );
        }
        self.by_backend.clear();
        self.lifetimes.clear();
        self.unstarted.clear();
    }

    /// A tombstone's time is over: the session is gone from the registry, and its hostname from the
    /// request threads unless a newer session of the key has it.
    fn forget(&mut self, id: &Arc<str>, effects: &mut Vec<Effect>) {
        let Some(session) = self.sessions.remove(id) else {
            return;
        };
        let hostname = &session.route.hostname;
        if self.by_host.get(hostname) == Some(id) {
            self.by_host.remove(hostname);
            effects.push(Effect::Publish(SessionUpdate::Forget(hostname.clone())));
        }
        if self.by_key.get(&session.key) == Some(id) {
            self.by_key.remove(&session.key);
        }
    }

    /// The route of `id` carries `reason` (once), published if the hostname is still this session's.
    fn publish_ended(&mut self, id: &Arc<str>, reason: &EndReason, effects: &mut Vec<Effect>) {
        let Some(session) = self.sessions.get_mut(id) else {
            return;
        };
        if session.route.ended.is_some() {
            return;
        }
        let route = session.change_route(|route| route.ended = Some(reason.clone()));
        if self.by_host.get(&route.hostname) == Some(id) {
            effects.push(Effect::Publish(SessionUpdate::Put(route)));
        }
    }

    /// The one `End` of session `id`.
    fn send_end(&mut self, id: &Arc<str>, drain: bool, effects: &mut Vec<Effect>) {
        let Some(session) = self.sessions.get_mut(id) else {
            return;
        };
        if !session.end_sent {
            session.end_sent = true;
            effects.push(Effect::End {
                backend: session.backend,
                drain,
            });
        }
    }

    /// Session `id` is now `state`: recorded, and told to its subscribers (unless nothing changed).
    fn change_state(
        &mut self,
        id: &Arc<str>,
        state: SessionState,
        now_ms: u64,
        effects: &mut Vec<Effect>,
    ) {
        let Some(session) = self.sessions.get_mut(id) else {
            return;
        };
        if session.state == state {
            return;
        }
        let frame = json::frame(&state, self.unix_epoch_ms.saturating_add(now_ms));
        let last = state.is_ended();
        session.state = state;
        session.history.push(frame.clone());
        effects.push(Effect::Event {
            session: id.clone(),
            frame,
            last,
        });
    }
}
