//! The output thread's loop: one `mio::Poll` over every attached pipe, each read (non-blocking) a
//! bounded amount per turn, its lines handed to its sink while the log budget allows.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use mio::unix::pipe;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use super::budget::LogBudget;
use super::lines::Lines;
use super::{Attach, Msg, OutputSink};
use crate::msg::Stream;

/// The waker's token; pipes use their slab keys.
pub const WAKER_TOKEN: Token = Token(usize::MAX);
/// How long the thread keeps reading once the supervisor has ended.
pub const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// Bytes read from a pipe at a time (a pipe holds 64 KiB by default).
const READ_CHUNK: usize = 64 * 1024;
/// Reads of one pipe per turn of the loop.
const READS_PER_TURN: usize = 4;
const EVENT_CAPACITY: usize = 256;

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

pub struct Reader {
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
    pub fn new(poll: Poll, orders: Receiver<Msg>) -> Self {
        Reader {
            poll,
            orders,
            pipes: Slab::new(),
            queued: VecDeque::new(),
            budget: LogBudget::new(Instant::now()),
            closing: None,
            buf: vec![0; READ_CHUNK],
        }
    }

    /// Reads until closed and every pipe has ended (or [`CLOSE_WAIT`] after the close).
    pub fn run(mut self) {
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
