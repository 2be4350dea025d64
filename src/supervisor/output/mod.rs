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
//! started are gone) and then closed. A pipe is read at most [`READS_PER_TURN`] times before the others
//! get their turn, so one chatty backend cannot starve another's lines. Reading keeps up with the
//! writers: when the log is slower, lines are left out of it (`budget`), never left in the pipe.
//!
//! The thread starts with the first process spawned, and ends after the supervisor: it goes on reading
//! for at most [`CLOSE_WAIT`], so the last words of the backends stopped at shutdown are logged.

mod budget;
pub mod lines;
mod sink;

pub use sink::OutputSink;
#[cfg(test)]
pub use sink::{CONTAINER_TARGET, PROCESS_TARGET};

use std::collections::VecDeque;
use std::io::{self, Read};
use std::process::Child;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::pipe;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use crate::config::{BackendConfig, BackendKind};
use crate::msg::{Activity, Mailbox, Stream};
use budget::LogBudget;
use lines::Lines;

/// The waker's token; pipes use their slab keys.
const WAKER_TOKEN: Token = Token(usize::MAX);
/// Bytes read from a pipe at a time (a pipe holds 64 KiB by default).
const READ_CHUNK: usize = 64 * 1024;
/// Reads of one pipe per turn of the loop.
const READS_PER_TURN: usize = 4;
/// How long the thread keeps reading once the supervisor has ended.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
const EVENT_CAPACITY: usize = 256;

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
    let waker = Arc::new(Waker::new(poll.registry(), WAKER_TOKEN)?);
    let (tx, rx) = mpsc::channel();
    let (done_tx, done) = mpsc::channel();
    let reader = Reader {
        poll,
        orders: rx,
        pipes: Slab::new(),
        queued: VecDeque::new(),
        budget: LogBudget::new(Instant::now()),
        closing: None,
        buf: vec![0; READ_CHUNK],
    };
    std::thread::Builder::new()
        .name("output".to_string())
        .spawn(move || {
            reader.run();
            let _ = done_tx.send(());
        })?;
    Ok((Mailbox::new(tx, waker), done))
}

struct Pipe {
    sink: OutputSink,
    stream: Stream,
    pipe: pipe::Receiver,
    lines: Lines,
    /// Lines left out of the log in this budget window, said when it ends.
    not_logged: u64,
    /// In `Reader::queued`: may have more to read.
    queued: bool,
}

/// What one turn of reading a pipe found.
enum Drain {
    /// Empty for now: the poll says when more arrives.
    Drained,
    /// More may be waiting: read again next turn.
    More,
    /// Its end (or an error): close it.
    Ended,
}

struct Reader {
    poll: Poll,
    orders: Receiver<Msg>,
    pipes: Slab<Pipe>,
    queued: VecDeque<usize>,
    budget: LogBudget,
    /// When the reading stops for good, once the supervisor has closed.
    closing: Option<Instant>,
    buf: Vec<u8>,
}

impl Reader {
    fn run(mut self) {
        let mut events = Events::with_capacity(EVENT_CAPACITY);
        loop {
            let now = Instant::now();
            if self
                .closing
                .is_some_and(|at| self.pipes.is_empty() || now >= at)
            {
                break;
            }
            if let Err(e) = self.poll.poll(&mut events, self.timeout(now)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                log::error!("the backend output thread cannot poll its pipes: {e}");
                break;
            }
            for event in events.iter() {
                match event.token() {
                    WAKER_TOKEN => self.receive(),
                    Token(key) => self.queue(key),
                }
            }
            if self.budget.roll(Instant::now()) {
                self.report_not_logged();
            }
            self.read_queued();
        }
        for key in self.pipes.iter().map(|(key, _)| key).collect::<Vec<_>>() {
            self.close(key);
        }
    }

    /// No timeout when idle; at once when a pipe has more; at the end of the budget window when lines
    /// left out of the log are still to be said; at the closing deadline.
    fn timeout(&self, now: Instant) -> Option<Duration> {
        if !self.queued.is_empty() {
            return Some(Duration::ZERO);
        }
        let report = self
            .pipes
            .iter()
            .any(|(_, p)| p.not_logged > 0)
            .then(|| self.budget.window_end());
        [report, self.closing]
            .into_iter()
            .flatten()
            .min()
            .map(|at| at.saturating_duration_since(now))
    }

    fn receive(&mut self) {
        loop {
            match self.orders.try_recv() {
                Ok(Msg::Attach(attach)) => self.add(attach),
                Ok(Msg::Close) | Err(TryRecvError::Disconnected) => {
                    if self.closing.is_none() {
                        self.closing = Some(Instant::now() + CLOSE_WAIT);
                    }
                    return;
                }
                Err(TryRecvError::Empty) => return,
            }
        }
    }

    fn add(&mut self, attach: Attach) {
        let entry = self.pipes.vacant_entry();
        let key = entry.key();
        let mut pipe = attach.pipe;
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut pipe, Token(key), Interest::READABLE)
        {
            log::warn!(
                "{}: cannot watch its {}: {e}",
                attach.sink.label(),
                attach.stream.name()
            );
            return;
        }
        entry.insert(Pipe {
            sink: attach.sink,
            stream: attach.stream,
            pipe,
            lines: Lines::default(),
            not_logged: 0,
            queued: false,
        });
        // It may hold output already.
        self.queue(key);
    }

    fn queue(&mut self, key: usize) {
        if let Some(pipe) = self.pipes.get_mut(key) {
            if !pipe.queued {
                pipe.queued = true;
                self.queued.push_back(key);
            }
        }
    }

    /// One turn: each pipe that may have output is read a bounded amount.
    fn read_queued(&mut self) {
        for key in std::mem::take(&mut self.queued) {
            match self.read(key) {
                Drain::More => self.queued.push_back(key),
                Drain::Drained => {
                    if let Some(pipe) = self.pipes.get_mut(key) {
                        pipe.queued = false;
                    }
                }
                Drain::Ended => self.close(key),
            }
        }
    }

    fn read(&mut self, key: usize) -> Drain {
        let Some(pipe) = self.pipes.get_mut(key) else {
            return Drain::Drained;
        };
        for _ in 0..READS_PER_TURN {
            match pipe.pipe.read(&mut self.buf) {
                Ok(0) => return Drain::Ended,
                Ok(n) => deliver(pipe, &mut self.budget, &self.buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Drain::Drained,
                Err(e) => {
                    log::debug!(
                        "{}: reading its {}: {e}",
                        pipe.sink.label(),
                        pipe.stream.name()
                    );
                    return Drain::Ended;
                }
            }
        }
        Drain::More
    }

    /// The pipe's end: its unfinished last line is handed out, and it is closed.
    fn close(&mut self, key: usize) {
        let Some(mut pipe) = self.pipes.try_remove(key) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut pipe.pipe);
        let (sink, stream) = (&pipe.sink, pipe.stream);
        let logs = sink.logs(stream);
        pipe.lines.finish(|line| sink.line(stream, line, logs));
        if pipe.not_logged > 0 {
            sink.not_logged(pipe.not_logged);
        }
    }

    fn report_not_logged(&mut self) {
        for (_, pipe) in self.pipes.iter_mut() {
            if pipe.not_logged > 0 {
                pipe.sink.not_logged(std::mem::take(&mut pipe.not_logged));
            }
        }
    }
}

/// Bytes read from `pipe`: each completed line goes to its sink, logged while the budget allows.
fn deliver(pipe: &mut Pipe, budget: &mut LogBudget, bytes: &[u8]) {
    let (sink, stream) = (&pipe.sink, pipe.stream);
    let logs = sink.logs(stream);
    let not_logged = &mut pipe.not_logged;
    pipe.lines.push(bytes, |line| {
        if logs && budget.allows() {
            let began = Instant::now();
            sink.line(stream, line, true);
            budget.spend(began.elapsed());
        } else {
            *not_logged += u64::from(logs);
            sink.line(stream, line, false);
        }
    });
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
