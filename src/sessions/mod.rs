//! Session-lived backends: one backend per user or document, made at run time from a
//! `[sessions.NAME]` template through the admin API, under a hostname of its own.
//!
//! ```text
//!  admin client ──POST /sessions/T──▶ reactor: registry (get-or-create by key, caps, lifetimes,
//!                                     tombstones, ports) ──Reconcile Add/Remove──▶ supervisor, h2
//!                                     │ publishes each session's route (Arc<SessionRoute>) to its own
//!                                     │ SessionHosts and, numbered, to the h2 worker's; answers the
//!                                     │ admin client once the h2 worker acknowledged (H2Ack)
//!  client ──Host: id.domain──▶ reactor or h2 worker: SessionHosts::find, then gate::check
//!                                     (token, cookie, /.spawngate/) → forward with a SessionStamp
//! ```
//!
//! * A session is a one-instance pool (`BackendConfig` with a [`SessionTag`]) added and removed through
//!   the same [`Reconcile`](crate::upstream::Reconcile) a reload uses, so the three threads name it by
//!   the same id. Its instance runs once: the supervisor never starts it again after it stopped.
//! * The [`registry`] is sans-IO and owned by the reactor (the thread every admin request and every
//!   lifecycle report passes through, and the one that gives backend ids), so get-or-create is atomic.
//! * Each request thread keeps a [`route::SessionHosts`]: hostname → immutable [`route::SessionRoute`]
//!   (backend, credentials, secret, end reason), replaced whole on every change.
//! * [`gate`] decides, for both protocols alike, what a request to a session hostname gets.
//! * [`secret`]: random ids, tokens and secrets from the OS, their text form, constant-time comparison.
//!
//! [`SessionTag`]: crate::config::sessions::SessionTag

pub mod gate;
pub mod registry;
pub mod route;
pub mod secret;

use std::fmt;

/// Why a session ended (its tombstone says so, and 410 `SESSION_ENDED` carries it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// Nothing reached it for `idle_timeout_secs`.
    Idle,
    /// Its `lifetime_secs` ran out.
    Lifetime,
    /// Made room for a new session at `max_running`.
    Evicted,
    /// `DELETE /sessions/{id}`.
    Terminated,
    /// The process or container exited on its own (how).
    Exited(String),
    /// It never became ready (why).
    StartFailed(String),
    /// Failed health checks with `unhealthy = "end"`.
    Unhealthy,
    /// The proxy is shutting down.
    Shutdown,
}

impl EndReason {
    /// Its name in the admin API and the events stream.
    pub fn name(&self) -> &'static str {
        match self {
            EndReason::Idle => "idle",
            EndReason::Lifetime => "lifetime",
            EndReason::Evicted => "evicted",
            EndReason::Terminated => "terminated",
            EndReason::Exited(_) => "exited",
            EndReason::StartFailed(_) => "start_failed",
            EndReason::Unhealthy => "unhealthy",
            EndReason::Shutdown => "shutdown",
        }
    }

    /// The details, for an exit or a failed start.
    pub fn detail(&self) -> Option<&str> {
        match self {
            EndReason::Exited(how) | EndReason::StartFailed(how) => Some(how),
            _ => None,
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.detail() {
            Some(detail) => write!(f, "{} ({detail})", self.name()),
            None => f.write_str(self.name()),
        }
    }
}

/// Where a session is in its life; each change is an event of `GET /sessions/{id}/events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionState {
    /// Created, waiting for the instance of its key's previous session (or an evicted one) to stop, or
    /// for its first request (`start = "on_request"`).
    Waiting,
    Starting,
    Ready,
    /// Ending: its instance drains and stops.
    Draining(EndReason),
    Ended(EndReason),
}

impl SessionState {
    pub fn name(&self) -> &'static str {
        match self {
            SessionState::Waiting => "waiting",
            SessionState::Starting => "starting",
            SessionState::Ready => "ready",
            SessionState::Draining(_) => "draining",
            SessionState::Ended(_) => "ended",
        }
    }

    pub fn is_ended(&self) -> bool {
        matches!(self, SessionState::Ended(_))
    }
}
