//! Where one instance's output goes: the proxy's log, under the instance's name, and the instance's tail
//! ([`crate::msg::output`]). One format for processes and containers, so both read alike:
//!
//! ```text
//! [2026-01-02T03:04:05.678Z INFO  process] hostname=app.localhost stream=stdout: listening on 3000
//! [2026-01-02T03:04:05.678Z WARN  container] hostname=web instance=1 stream=stderr: no config
//! ```
//! stdout at INFO, stderr at WARN; the target says which driver runs it, so `RUST_LOG` can filter them
//! apart from the proxy's own lines. A pool's or session's instances carry their slot.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::{BackendConfig, BackendKind};
use crate::msg::{Activity, Mailbox, OutputLine, Stream};

/// The log target of a local process's output.
pub const PROCESS_TARGET: &str = "process";
/// The log target of a container's output.
pub const CONTAINER_TARGET: &str = "container";

#[derive(Clone)]
pub struct OutputSink {
    /// `hostname=NAME`, plus ` instance=N` for an instance of a pool or session.
    label: Arc<str>,
    target: &'static str,
    activity: Arc<Activity>,
    /// The output thread that reads a process's pipes (`super::spawn`); `None`: the process writes
    /// where the proxy does, as it inherits its stdout and stderr.
    thread: Option<Mailbox<super::Msg>>,
}

impl OutputSink {
    /// The sink of instance `index` of the backend `config` describes, whose tail is in `activity`.
    pub fn new(
        config: &BackendConfig,
        index: u32,
        activity: Arc<Activity>,
        thread: Option<Mailbox<super::Msg>>,
    ) -> Self {
        let label = match config.is_pool() {
            true => format!("hostname={} instance={index}", config.hostname),
            false => format!("hostname={}", config.hostname),
        };
        let target = match config.kind {
            BackendKind::Docker(_) => CONTAINER_TARGET,
            BackendKind::Local(_) | BackendKind::External => PROCESS_TARGET,
        };
        OutputSink {
            label: label.into(),
            target,
            activity,
            thread,
        }
    }

    /// No capture: a process spawned with it inherits the proxy's stdout and stderr; lines given to it
    /// (a container's) are logged under `label`. For tests of the drivers alone.
    #[cfg(test)]
    pub fn inherit(label: &str, target: &'static str) -> Self {
        OutputSink {
            label: format!("hostname={label}").into(),
            target,
            activity: Arc::default(),
            thread: None,
        }
    }

    /// A process should get pipes for its stdout and stderr, as a thread reads them.
    pub fn captures(&self) -> bool {
        self.thread.is_some()
    }

    /// Hands one of a process's pipes to the output thread, which reads it to its end. False when there
    /// is no thread to read it (the pipe is then closed).
    pub fn attach(&self, stream: Stream, pipe: mio::unix::pipe::Receiver) -> bool {
        let Some(thread) = &self.thread else {
            return false;
        };
        thread.send(super::Msg::Attach(super::Attach {
            sink: self.clone(),
            stream,
            pipe,
        }))
    }

    /// Whether a line of `stream` would be written to the log at all (`RUST_LOG`).
    pub fn logs(&self, stream: Stream) -> bool {
        log::log_enabled!(target: self.target, level(stream))
    }

    /// Keeps a line in the tail, and logs it when `log`.
    pub fn line(&self, stream: Stream, text: &str, log: bool) {
        if log {
            log::log!(target: self.target, level(stream), "{} stream={}: {text}", self.label, stream.name());
        }
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.activity.push_output(OutputLine {
            unix_ms,
            stream,
            text: text.into(),
        });
    }

    /// `lines` were kept but not logged (the log could not keep up): counted, and said once.
    pub fn not_logged(&self, lines: u64) {
        self.activity.count_not_logged(lines);
        log::warn!(
            target: self.target,
            "{}: {lines} lines of output not logged (written faster than the log takes them; the last \
             ones are kept for /backends/.../logs)",
            self.label
        );
    }

    pub fn label(&self) -> &str {
        &self.label
    }
}

impl std::fmt::Debug for OutputSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "OutputSink({}, captures: {})",
            self.label,
            self.captures()
        )
    }
}

fn level(stream: Stream) -> log::Level {
    match stream {
        Stream::Stdout => log::Level::Info,
        Stream::Stderr => log::Level::Warn,
    }
}
