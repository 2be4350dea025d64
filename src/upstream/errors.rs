//! The wording of every answer the upstream core gives instead of a backend's: one constructor per
//! situation, so HTTP/1 and h2 clients read the same code, status and message.

use std::fmt;
use std::io;
use std::time::Duration;

use crate::error::{ErrorCode, ProxyError};

/// Marks an I/O error as TLS with a backend failing (handshake, certificate, a peer that does not speak
/// TLS), so both request threads answer it as `BACKEND_TLS` rather than a refused connection.
#[derive(Debug)]
pub struct TlsFailure(pub String);

impl TlsFailure {
    /// `e`, marked.
    pub fn wrap(e: io::Error) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, TlsFailure(e.to_string()))
    }

    /// A marked error with this reason.
    pub fn because(why: impl Into<String>) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, TlsFailure(why.into()))
    }

    pub fn is(e: &io::Error) -> bool {
        e.get_ref().is_some_and(|inner| inner.is::<TlsFailure>())
    }
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsFailure {}

impl ProxyError {
    pub fn unknown_host(host: &str) -> ProxyError {
        ProxyError::new(
            ErrorCode::UnknownHost,
            format!("no backend for host {host}"),
        )
    }

    /// The backend is stopping for removal or proxy shutdown, or the proxy starts nothing any more.
    pub fn shutting_down() -> ProxyError {
        ProxyError::new(ErrorCode::BackendShuttingDown, "backend is shutting down")
    }

    pub fn start_failed(host: &str, reason: &str) -> ProxyError {
        ProxyError::new(
            ErrorCode::BackendStartFailed,
            format!("backend {host} could not be started: {reason}"),
        )
    }

    /// Starts are suspended after repeated failures; `wait` is how long until one is allowed again.
    pub fn keeps_failing(host: &str, reason: &str, wait: Duration) -> ProxyError {
        ProxyError::new(
            ErrorCode::BackendStartFailed,
            format!("backend {host} keeps failing to start: {reason}"),
        )
        .with_retry_after(seconds_rounded_up(wait))
    }

    /// A held request's wait ran out before the backend became ready.
    pub fn not_ready_in_time(host: &str) -> ProxyError {
        ProxyError::new(
            ErrorCode::BackendStartFailed,
            format!("{host} did not become ready in time"),
        )
    }

    pub fn unhealthy() -> ProxyError {
        ProxyError::new(
            ErrorCode::BackendUnhealthy,
            "backend failed its health checks and is restarting",
        )
    }

    /// A pool's ready instances stayed at their `max_in_flight` for the whole wait.
    pub fn queue_timeout(pool: &str, waited: Duration) -> ProxyError {
        let message = format!(
            "every instance of {pool} stayed at its limit of requests in flight for {} s",
            waited.as_secs()
        );
        ProxyError::new(ErrorCode::QueueTimeout, message).with_retry_after(1)
    }

    pub fn too_many_held() -> ProxyError {
        ProxyError::new(
            ErrorCode::TooManyHeld,
            "too many requests are waiting for this backend to start",
        )
    }

    /// A backend connection could not be made (or, over TLS, established).
    pub fn connect_failed(e: &std::io::Error) -> ProxyError {
        if TlsFailure::is(e) {
            return ProxyError::new(
                ErrorCode::BackendTls,
                format!("TLS with the backend failed: {e}"),
            );
        }
        ProxyError::new(
            ErrorCode::ConnectionFailed,
            format!("cannot connect to the backend: {e}"),
        )
    }

    pub fn connect_timed_out() -> ProxyError {
        ProxyError::new(
            ErrorCode::RequestTimeout,
            "the backend did not accept a connection in time",
        )
    }

    pub fn body_too_large(max: u64) -> ProxyError {
        ProxyError::new(
            ErrorCode::PayloadTooLarge,
            format!("request body over {max} bytes"),
        )
    }
}

/// `Retry-After` in whole seconds, rounded up: a client that waits that long finds starts allowed again.
fn seconds_rounded_up(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}
