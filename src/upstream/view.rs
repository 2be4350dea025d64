//! A backend's lifecycle as the supervisor last reported it, and what that means for a new request: the
//! admission rules (forward, hold, refuse) and the reaction to each report, written once for both
//! protocols. [`super::table`] keeps one view per backend in each thread and acts on the [`Reaction`].

use std::time::Instant;

use crate::error::ProxyError;
use crate::msg::{LifecycleEvent, State, StopReason};

/// What to do with a request for this backend now.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Forward,
    /// Hold the request; `start` says a `Start` command must be sent now (no start is pending yet).
    Hold {
        start: bool,
    },
    Refuse(ProxyError),
}

/// What a report asks of the caller.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reaction {
    /// Release every held request: forward it (`Ok`) or answer it with the error.
    pub release: Option<Result<(), ProxyError>>,
    /// Close the idle pooled connections: the instance behind them is going away.
    pub drop_pool: bool,
    /// Send `Command::Start`: requests wait (or the route is refused) with no start under way.
    pub start: bool,
    /// The backend was removed by a reload and has stopped: forget the route; held requests get 404.
    pub forget: bool,
}

#[derive(Debug)]
pub struct BackendView {
    pub state: State,
    pub stop_reason: Option<StopReason>,
    /// A `Start` was sent and neither Ready nor a failure has come back yet.
    pub start_requested: bool,
    /// Gone from the config; answered 404 once its stop completes.
    pub removed: bool,
    /// Failed its health checks; stays set through the restart that follows, until the new instance is
    /// ready (or fails to start), so requests meanwhile get a prompt 503 BACKEND_UNHEALTHY instead of
    /// waiting on an instance that just proved unreliable.
    pub unhealthy: bool,
    /// Starts are suspended after repeated failures: until then requests are refused with `Retry-After`.
    pub backoff: Option<(Instant, String)>,
}

impl Default for BackendView {
    fn default() -> Self {
        BackendView {
            state: State::Stopped,
            stop_reason: None,
            start_requested: false,
            removed: false,
            unhealthy: false,
            backoff: None,
        }
    }
}

impl BackendView {
    /// The state `/backends` reports.
    pub fn reported_state(&self) -> State {
        if self.unhealthy && !self.going_away() {
            State::Unhealthy
        } else {
            self.state
        }
    }

    pub fn state_is_stopped(&self) -> bool {
        self.state == State::Stopped
    }

    /// Stopping for removal or proxy shutdown: no new request is taken.
    fn going_away(&self) -> bool {
        self.state == State::Stopping && self.stop_reason.is_some_and(StopReason::is_final)
    }

    /// Decides a new request's fate; `held` requests already wait, at most `max_held` may.
    pub fn admit(&mut self, host: &str, held: usize, max_held: usize, now: Instant) -> Verdict {
        if self.going_away() || self.removed {
            return Verdict::Refuse(ProxyError::shutting_down());
        }
        if let Some((until, reason)) = &self.backoff {
            if *until > now {
                let wait = until.saturating_duration_since(now);
                return Verdict::Refuse(ProxyError::keeps_failing(host, reason, wait));
            }
        }
        if self.unhealthy || self.state == State::Unhealthy {
            return Verdict::Refuse(ProxyError::unhealthy());
        }
        if self.state == State::Ready {
            return Verdict::Forward;
        }
        if held >= max_held {
            return Verdict::Refuse(ProxyError::too_many_held());
        }
        let start = !self.start_requested && self.state != State::Starting;
        if start {
            self.start_requested = true;
        }
        Verdict::Hold { start }
    }

    /// Applies one lifecycle report. `has_waiting` says whether requests are held; `shutting_down`
    /// whether the proxy is (then nothing is restarted).
    pub fn apply(
        &mut self,
        host: &str,
        event: LifecycleEvent,
        now: Instant,
        has_waiting: bool,
        shutting_down: bool,
    ) -> Reaction {
        let mut reaction = Reaction::default();
        match event {
            LifecycleEvent::Starting => {
                self.state = State::Starting;
                self.stop_reason = None;
            }
            LifecycleEvent::Ready => {
                self.state = State::Ready;
                self.start_requested = false;
                self.unhealthy = false;
                self.backoff = None;
                reaction.release = Some(Ok(()));
            }
            LifecycleEvent::StartFailed(reason) => {
                self.state = State::Stopped;
                self.start_requested = false;
                self.unhealthy = false;
                reaction.release = Some(Err(ProxyError::start_failed(host, &reason)));
            }
            LifecycleEvent::BackingOff {
                reason,
                retry_after,
            } => {
                self.state = State::Stopped;
                self.start_requested = false;
                self.unhealthy = false;
                reaction.release = Some(Err(ProxyError::keeps_failing(host, &reason, retry_after)));
                self.backoff = Some((now + retry_after, reason));
            }
            LifecycleEvent::Unhealthy => {
                self.state = State::Unhealthy;
                self.unhealthy = true;
                reaction.drop_pool = true;
            }
            LifecycleEvent::Stopping(reason) => {
                self.state = State::Stopping;
                self.stop_reason = Some(reason);
                reaction.drop_pool = true;
                if reason.is_final() {
                    reaction.release = Some(Err(ProxyError::shutting_down()));
                }
            }
            LifecycleEvent::Stopped => {
                self.state = State::Stopped;
                self.stop_reason = None;
                reaction.drop_pool = true;
                if self.removed {
                    reaction.forget = true;
                    return reaction;
                }
                // Requests that arrived during an idle stop, or the restart after an unhealthy verdict:
                // the supervisor restarts on its own, but asking again is harmless and guarantees nothing
                // is left waiting (or refused) with nothing starting.
                if (self.unhealthy || has_waiting) && !self.start_requested && !shutting_down {
                    self.start_requested = true;
                    reaction.start = true;
                }
            }
        }
        reaction
    }

    /// A reload kept this backend; `changed` says whether its settings differ.
    pub fn reloaded(&mut self, changed: bool) {
        if changed {
            // New settings deserve a fresh start: the supervisor forgets the crash record too.
            self.backoff = None;
        }
        if self.removed && self.state == State::Stopping {
            // Put back while still draining: the supervisor turns the removal into an idle stop, so hold
            // requests meanwhile instead of refusing them.
            self.stop_reason = Some(StopReason::Idle);
        }
        self.removed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use std::time::Duration;

    fn refused_code(verdict: Verdict) -> ErrorCode {
        match verdict {
            Verdict::Refuse(err) => err.code,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_stopped_backend_holds_and_asks_for_one_start() {
        let mut view = BackendView::default();
        let now = Instant::now();
        assert_eq!(view.admit("a", 0, 10, now), Verdict::Hold { start: true });
        assert_eq!(view.admit("a", 1, 10, now), Verdict::Hold { start: false });
        assert_eq!(
            refused_code(view.admit("a", 10, 10, now)),
            ErrorCode::TooManyHeld
        );
        let reaction = view.apply("a", LifecycleEvent::Ready, now, true, false);
        assert_eq!(reaction.release, Some(Ok(())));
        assert_eq!(view.admit("a", 0, 10, now), Verdict::Forward);
    }

    #[test]
    fn unhealthy_refuses_through_the_restart_until_ready() {
        let mut view = BackendView::default();
        let now = Instant::now();
        view.apply("a", LifecycleEvent::Ready, now, false, false);
        view.apply("a", LifecycleEvent::Unhealthy, now, false, false);
        view.apply(
            "a",
            LifecycleEvent::Stopping(StopReason::Restart),
            now,
            false,
            false,
        );
        assert_eq!(view.reported_state(), State::Unhealthy);
        assert_eq!(
            refused_code(view.admit("a", 0, 10, now)),
            ErrorCode::BackendUnhealthy
        );
        let stopped = view.apply("a", LifecycleEvent::Stopped, now, false, false);
        assert!(
            stopped.start,
            "nothing may stay refused with nothing starting"
        );
        view.apply("a", LifecycleEvent::Starting, now, false, false);
        assert_eq!(
            refused_code(view.admit("a", 0, 10, now)),
            ErrorCode::BackendUnhealthy
        );
        view.apply("a", LifecycleEvent::Ready, now, false, false);
        assert_eq!(view.admit("a", 0, 10, now), Verdict::Forward);
    }

    #[test]
    fn back_off_refuses_with_retry_after_until_it_passes() {
        let mut view = BackendView::default();
        let now = Instant::now();
        let backing_off = LifecycleEvent::BackingOff {
            reason: "exited".into(),
            retry_after: Duration::from_millis(1500),
        };
        let reaction = view.apply("a", backing_off, now, true, false);
        let Some(Err(err)) = reaction.release else {
            panic!("held requests must be refused")
        };
        assert_eq!(err.retry_after_secs, Some(2));
        let Verdict::Refuse(err) = view.admit("a", 0, 10, now + Duration::from_millis(600)) else {
            panic!("refused while backing off")
        };
        assert_eq!(err.retry_after_secs, Some(1));
        assert_eq!(
            view.admit("a", 0, 10, now + Duration::from_secs(2)),
            Verdict::Hold { start: true }
        );
    }

    #[test]
    fn removal_refuses_then_forgets_and_a_put_back_is_held() {
        let mut view = BackendView::default();
        let now = Instant::now();
        view.apply("a", LifecycleEvent::Ready, now, false, false);
        view.removed = true;
        view.apply(
            "a",
            LifecycleEvent::Stopping(StopReason::Removed),
            now,
            false,
            false,
        );
        assert_eq!(
            refused_code(view.admit("a", 0, 10, now)),
            ErrorCode::BackendShuttingDown
        );
        view.reloaded(false);
        assert_eq!(view.admit("a", 0, 10, now), Verdict::Hold { start: true });
        view.removed = true;
        assert!(
            view.apply("a", LifecycleEvent::Stopped, now, true, false)
                .forget
        );
    }
}
