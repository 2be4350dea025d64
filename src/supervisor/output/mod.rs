//! Backend output: each local process writes its stdout and stderr into pipes that one dedicated
//! "output" thread reads, splitting them into bounded lines (`lines`) that go to the proxy's log under
//! the instance's name and into its tail for `GET /backends/{name}/logs` (`sink`). Containers' output
//! takes the same way from their log follower (`docker::logs`).
//!
//! ```text
//!  supervisor: spawn ─ Attach(sink, pipe) ─▶ output thread: mio::Poll over every pipe
//!                                              read (non-blocking, bounded per turn) ─▶ Lines ─▶ sink
//! ```
//! The thread has its own poll, so a flood of output never delays the supervisor's loop; it sleeps
//! with no timeout when nothing is written. Each pipe is read to its end (the process and whatever it
//! started are gone) and then closed. A pipe is read a bounded amount before the others get their turn
//! (`reader`), so one chatty backend cannot starve another's lines. Reading keeps up with the
//! writers: when the log is slower, lines are left out of it (`budget`), never left in the pipe.
//!
//! The thread starts with the first process spawned, and ends after the supervisor: it goes on reading
//! for at most [`CLOSE_WAIT`], so the last words of the backends stopped at shutdown are logged.

mod budget;
pub mod lines;
mod reader;
mod sink;

pub use sink::OutputSink;
#[cfg(test)]
pub use sink::{CONTAINER_TARGET, PROCESS_TARGET};

use std::io;
use std::process::Child;
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::Duration;

use mio::unix::pipe;
use mio::{Poll, Waker};

use crate::config::{BackendConfig, BackendKind};
use crate::msg::{Activity, Mailbox, Stream};
use reader::{Reader, CLOSE_WAIT};

/// One pipe for the output thread to read.
pub struct Attach {
    sink: OutputSink,
    stream: Stream,
    pipe: pipe::Receiver,
}

impl std::fmt::Debug for Attach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Attach({} {})", self.sink.label(), self.stream.name())
    }
}

pub enum Msg {
    Attach(Attach),
    /// The supervisor is done: read what is left, then end.
    Close,
}

/// The supervisor's handle on the output thread, which it starts when the first process needs it.
#[derive(Default)]
pub struct OutputThread {
    mailbox: Option<Mailbox<Msg>>,
    done: Option<Receiver<()>>,
    /// The thread could not be started: processes write where the proxy does.
    failed: bool,
}

impl std::fmt::Debug for OutputThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OutputThread(running: {})", self.mailbox.is_some())
    }
}

impl OutputThread {
    /// Where instance `index` of `config` writes; for a local process this starts the thread if needed.
    pub fn sink(
        &mut self,
        config: &BackendConfig,
        index: u32,
        activity: Arc<Activity>,
    ) -> OutputSink {
        let thread = match config.kind {
            BackendKind::Local(_) => self.mailbox(),
            BackendKind::Docker(_) | BackendKind::External => None,
        };
        OutputSink::new(config, index, activity, thread)
    }

    fn mailbox(&mut self) -> Option<Mailbox<Msg>> {
        if self.mailbox.is_none() && !self.failed {
            match start() {
                Ok((mailbox, done)) => {
                    self.mailbox = Some(mailbox);
                    self.done = Some(done);
                }
                Err(e) => {
                    log::error!(
                        "cannot start the thread that reads backend output ({e}); backends write to \
                         the proxy's own stdout and stderr"
                    );
                    self.failed = true;
                }
            }
        }
        self.mailbox.clone()
    }

    /// Lets the thread read the last lines of the backends just stopped (at most [`CLOSE_WAIT`]), and
    /// waits for it.
    pub fn close(&mut self) {
        if let Some(mailbox) = self.mailbox.take() {
            mailbox.send(Msg::Close);
        }
        if let Some(done) = self.done.take() {
            let _ = done.recv_timeout(CLOSE_WAIT + Duration::from_secs(1));
        }
    }
}

impl Drop for OutputThread {
    fn drop(&mut self) {
        if let Some(mailbox) = self.mailbox.take() {
            mailbox.send(Msg::Close);
        }
    }
}

/// Takes the pipes a child was spawned with (`Stdio::piped()`) and hands them to the sink's thread.
pub fn attach_child(sink: &OutputSink, child: &mut Child) {
    let pipes = [
        child
            .stdout
            .take()
            .map(|p| (Stream::Stdout, pipe::Receiver::from(p))),
        child
            .stderr
            .take()
            .map(|p| (Stream::Stderr, pipe::Receiver::from(p))),
    ];
    for (stream, pipe) in pipes.into_iter().flatten() {
        // A blocking read would stall every other backend's output: such a pipe is closed instead.
        if let Err(e) = pipe.set_nonblocking(true) {
            log::warn!("{}: cannot read its {}: {e}", sink.label(), stream.name());
            continue;
        }
        if !sink.attach(stream, pipe) {
            log::warn!("{}: nobody reads its {}", sink.label(), stream.name());
        }
    }
}

fn start() -> io::Result<(Mailbox<Msg>, Receiver<()>)> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), reader::WAKER_TOKEN)?);
    let (tx, rx) = mpsc::channel();
    let (done_tx, done) = mpsc::channel();
    let reader = Reader::new(poll, rx);
    std::thread::Builder::new()
        .name("output".to_string())
        .spawn(move || {
            reader.run();
            let _ = done_tx.send(());
        })?;
    Ok((Mailbox::new(tx, waker), done))
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
