//! The access log: one line per request, HTTP/2 stream or tunnel (`access_log`, `access_log_format`).
//!
//! * [`record`]: what a line says ([`Seen`] is copied from the request head when the log is on; a
//!   [`Record`] borrows the rest from the thread that served the request).
//! * `format`: the combined and JSON lines, sans-IO.
//! * `writer`: the bounded buffer and the writer thread; the request threads never block on the log,
//!   and a line that finds the buffer full is dropped and counted ([`AccessLog::dropped`]).
//!
//! One [`AccessLog`] is shared (by `Arc`) by the reactor and the h2 worker. Both check
//! [`AccessLog::enabled`] before copying anything out of a request, so a log that is off costs one atomic
//! load per request. The reactor reopens the file on SIGUSR1 and applies a reload's settings.

mod clock;
pub mod format;
mod out;
pub mod record;
mod text;
mod time_text;
mod writer;

#[cfg(test)]
mod tests;

use std::io;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::config::{AccessLogFormat, AccessLogTarget, ServerConfig};
pub use format::{format_line, line_from_bytes, Timing};
pub use record::{Parts, Protocol, Record, Seen};
use writer::{Queue, Sink};

/// The proxy's own log line for a start that a request began: its id ties the start to that request's
/// access-log line (`woke=1`), and to the lines of the requests held for the same start (`cold=1`).
pub fn note_wake(backend: &str, request_id: &[u8]) {
    log::info!(
        "{backend}: starting on demand for request {}",
        String::from_utf8_lossy(request_id)
    );
}

/// Bytes of lines waiting for the writer at most (a few thousand lines); past it lines are dropped.
pub const QUEUE_BYTES: usize = 1 << 20;

const OFF: u8 = 0;
const COMBINED: u8 = 1;
const JSON: u8 = 2;

pub struct AccessLog {
    /// `OFF`, `COMBINED` or `JSON`: read by both request threads on every request.
    mode: AtomicU8,
    queue: Arc<Queue>,
    /// Where lines go now, and the writer thread once one runs (reactor only: start, reload, close).
    state: Mutex<State>,
}

struct State {
    target: AccessLogTarget,
    writer: Option<JoinHandle<()>>,
}

impl AccessLog {
    /// A log that writes nothing (for threads started without one, as in tests).
    pub fn off() -> Arc<AccessLog> {
        Arc::new(AccessLog {
            mode: AtomicU8::new(OFF),
            queue: Arc::new(Queue::new(QUEUE_BYTES)),
            state: Mutex::new(State {
                target: AccessLogTarget::Off,
                writer: None,
            }),
        })
    }

    /// The log `server` asks for, its file opened (an error names the path) and its writer running.
    pub fn start(server: &ServerConfig) -> io::Result<Arc<AccessLog>> {
        let log = AccessLog::off();
        log.configure(server)?;
        Ok(log)
    }

    /// Whether lines are written: callers copy request parts only then.
    pub fn enabled(&self) -> bool {
        self.mode.load(Ordering::Relaxed) != OFF
    }

    /// Lines dropped because the writer fell behind (`spawngate_access_log_dropped_total`).
    pub fn dropped(&self) -> u64 {
        self.queue.dropped()
    }

    /// Writes the line for `record`, which ends at `now` (a request thread's clock of this turn): it
    /// began `record.seen.started`, or now if its head was never read.
    pub fn record(&self, record: &Record<'_>, now: Instant) {
        let format = match self.mode.load(Ordering::Relaxed) {
            COMBINED => AccessLogFormat::Combined,
            JSON => AccessLogFormat::Json,
            _ => return,
        };
        let started = record.seen.map_or(now, |seen| seen.started);
        let began = clock::since_epoch(started);
        let duration = now.saturating_duration_since(started);
        // Formatted straight into the queue: no line is copied on the request thread.
        self.queue.push_line(format::longest_line(record), |line| {
            format::format_line_since(record, began, duration, format, line)
        });
    }

    /// SIGUSR1: the writer opens the file at the configured path again (after logrotate renamed it).
    pub fn reopen(&self) {
        self.queue.reopen();
    }

    /// Applies `access_log` and `access_log_format` (at start and on reload). A new file is opened here,
    /// so a reload can say when it cannot be; the old destination then stays.
    pub fn configure(&self, server: &ServerConfig) -> io::Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.target != server.access_log {
            let sink = match &server.access_log {
                AccessLogTarget::Off => None,
                AccessLogTarget::Stderr => Some(Sink::Stderr),
                AccessLogTarget::File(path) => Some(Sink::open(path)?),
            };
            if let Some(sink) = sink {
                match &state.writer {
                    Some(_) => self.queue.switch(sink),
                    None => {
                        let queue = self.queue.clone();
                        let writer = std::thread::Builder::new()
                            .name("access-log".into())
                            .spawn(move || queue.run_writer(sink))?;
                        state.writer = Some(writer);
                    }
                }
            }
            state.target = server.access_log.clone();
        }
        let mode = match (&state.target, server.access_log_format) {
            (AccessLogTarget::Off, _) => OFF,
            (_, AccessLogFormat::Combined) => COMBINED,
            (_, AccessLogFormat::Json) => JSON,
        };
        self.mode.store(mode, Ordering::Relaxed);
        Ok(())
    }

    /// At exit: writes what is queued and ends the writer. Lines recorded afterwards are not written.
    pub fn close(&self) {
        self.mode.store(OFF, Ordering::Relaxed);
        let writer = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.writer.take()
        };
        if let Some(writer) = writer {
            self.queue.stop();
            if writer.join().is_err() {
                log::error!("the access log writer panicked");
            }
        }
    }
}
