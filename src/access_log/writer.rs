//! The bounded buffer request threads append lines to, and the one thread that writes it out.
//!
//! A request thread holds the lock only to format a line straight into the buffer (or to count it
//! dropped when the buffer is full): no copy of the line is made on its way. The writer swaps the whole
//! buffer out under the lock and writes it without it. The writer sleeps on a condition variable when
//! there is nothing to do and is woken only when it sleeps; once woken it lets lines gather for up to
//! 20 ms (or until they make a 256 KiB batch) before it writes them. An idle log costs no wake-ups, and a
//! busy one one wake-up and one write per batch, never a system call per line.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::out::Line;

/// Where lines are written.
pub enum Sink {
    Stderr,
    File { path: PathBuf, file: File },
}

impl Sink {
    /// Opens `path` for appending, creating it readable by owner and group only.
    pub fn open(path: &Path) -> io::Result<Sink> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .open(path)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot open the access log {}: {e}", path.display()),
                )
            })?;
        Ok(Sink::File {
            path: path.to_owned(),
            file,
        })
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Sink::Stderr => io::stderr().lock().write_all(bytes),
            Sink::File { file, .. } => file.write_all(bytes),
        }
    }

    /// After a rename (logrotate), lines go to a new file at the same path; on failure the old one stays.
    fn reopen(&mut self) {
        if let Sink::File { path, file } = self {
            match Sink::open(path) {
                Ok(Sink::File { file: new, .. }) => *file = new,
                Ok(Sink::Stderr) => {}
                Err(e) => log::warn!("{e}; still writing to the file opened before"),
            }
        }
    }
}

/// A change of destination, and where in the queued lines it falls: the lines before it were meant for
/// the old destination, the ones after for the new.
enum Change {
    Reopen,
    Switch(Sink),
}

#[derive(Default)]
struct Pending {
    /// The lines queued are `lines[..used]`; the rest of `lines` is initialised room for more (grown
    /// as needed, kept across batches), so a line is written into it without resizing it.
    lines: Vec<u8>,
    used: usize,
    /// The last change asked for (a later one replaces it), at its offset in `lines`.
    change: Option<(usize, Change)>,
    stop: bool,
    /// The writer waits for a signal: the next line must wake it.
    writer_asleep: bool,
    /// The writer lets lines gather: the line that makes a full batch wakes it.
    writer_lingering: bool,
}

impl Pending {
    fn has_work(&self) -> bool {
        self.used > 0 || self.change.is_some() || self.stop
    }
}

/// The buffer between request threads and the writer.
pub struct Queue {
    pending: Mutex<Pending>,
    wake: Condvar,
    /// Bytes of lines waiting at most; a line that does not fit is dropped.
    capacity: usize,
    dropped: AtomicU64,
}

impl Queue {
    pub fn new(capacity: usize) -> Queue {
        Queue {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            capacity,
            dropped: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        // The writer never panics while holding the lock; if anything did, the lines are still valid.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `line`; false (and counted) when the buffer is full.
    #[cfg(test)]
    pub fn push(&self, line: &[u8]) -> bool {
        use super::out::Out;
        self.push_line(line.len(), |out| out.put(line))
    }

    /// Queues the line `write` writes, at most `longest` bytes (under the lock, straight into the
    /// buffer the writer takes); false (nothing queued, and counted) when it does not fit.
    pub fn push_line(&self, longest: usize, write: impl FnOnce(&mut Line<'_>)) -> bool {
        let mut pending = self.lock();
        let Pending { lines, used, .. } = &mut *pending;
        let start = *used;
        let end = start.saturating_add(longest).min(self.capacity);
        if lines.len() < end {
            // Room made in steps (zeroed once, then reused batch after batch), not per line.
            let grown = lines.len().saturating_mul(2).max(GROW_STEP);
            lines.resize(grown.clamp(end, self.capacity.max(end)), 0);
        }
        let mut line = Line::new(&mut lines[start..end]);
        write(&mut line);
        if let Some(len) = line.len() {
            *used += len;
            self.wake_writer(pending);
            return true;
        }
        drop(pending);
        self.dropped.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// Lines dropped because the buffer was full, since the start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn reopen(&self) {
        self.change(Change::Reopen);
    }

    pub fn switch(&self, sink: Sink) {
        self.change(Change::Switch(sink));
    }

    fn change(&self, change: Change) {
        let mut pending = self.lock();
        let at = pending.used;
        // Two changes before the writer ran: a reopen after a switch has nothing to add (the file was
        // just opened); otherwise the later change wins, and lines queued between go to the old one.
        pending.change = match (pending.change.take(), change) {
            (Some(switch @ (_, Change::Switch(_))), Change::Reopen) => Some(switch),
            (_, change) => Some((at, change)),
        };
        self.wake_writer(pending);
    }

    /// Asks the writer to write what is queued and end.
    pub fn stop(&self) {
        let mut pending = self.lock();
        pending.stop = true;
        self.wake_writer(pending);
    }

    fn wake_writer(&self, mut pending: MutexGuard<'_, Pending>) {
        let full = pending.writer_lingering && pending.used >= FULL_BATCH;
        if pending.writer_asleep || full {
            pending.writer_asleep = false;
            pending.writer_lingering = false;
            drop(pending);
            self.wake.notify_one();
        }
    }

    /// The writer thread's loop: until stopped, takes everything queued and writes it to `sink`.
    pub fn run_writer(&self, mut sink: Sink) {
        let mut batch = Vec::new();
        let mut failing = false;
        loop {
            let taken = {
                let mut pending = self.lock();
                while !pending.has_work() {
                    pending.writer_asleep = true;
                    pending = self.wake.wait(pending).unwrap_or_else(|e| e.into_inner());
                }
                pending.writer_asleep = false;
                // Woken by a line: let more gather before writing, so a busy log costs one wake-up and
                // one write per `LINGER` or per `FULL_BATCH` rather than per line. Lines pushed
                // meanwhile do not wake it (it is not asleep) until they make a full batch; a change
                // of destination or the stop is taken at the end of it.
                let until = Instant::now() + LINGER;
                pending.writer_lingering = true;
                while pending.change.is_none() && !pending.stop && pending.used < FULL_BATCH {
                    let left = until.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    pending = self
                        .wake
                        .wait_timeout(pending, left)
                        .map_or_else(|e| e.into_inner().0, |(guard, _)| guard);
                }
                pending.writer_lingering = false;
                std::mem::swap(&mut pending.lines, &mut batch);
                let used = std::mem::take(&mut pending.used);
                (pending.change.take(), pending.stop, used)
            };
            let (change, stop, used) = taken;
            let lines = &batch[..used];
            let at = change.as_ref().map_or(used, |(at, _)| *at);
            write(&mut sink, &lines[..at], &mut failing);
            match change {
                Some((_, Change::Switch(new))) => sink = new,
                Some((_, Change::Reopen)) => sink.reopen(),
                None => {}
            }
            write(&mut sink, &lines[at..], &mut failing);
            // A buffer larger than `KEPT_BUFFER` is kept only while lines come fast; a log gone quiet
            // (a batch of under a quarter of it) gives the rest back, one whose batches hover around
            // it keeps its room rather than zeroing it again for the next burst. What is kept stays
            // initialised: the next lines are written over it.
            if batch.len() > KEPT_BUFFER && used < KEPT_BUFFER / 4 {
                batch.truncate(KEPT_BUFFER);
                batch.shrink_to(KEPT_BUFFER);
            }
            if stop {
                let mut pending = self.lock();
                let used = std::mem::take(&mut pending.used);
                let _ = sink.write_all(&pending.lines[..used]);
                return;
            }
        }
    }
}

/// Writes `bytes`; a failure is logged once until a write succeeds again.
fn write(sink: &mut Sink, bytes: &[u8], failing: &mut bool) {
    if bytes.is_empty() {
        return;
    }
    match sink.write_all(bytes) {
        Ok(()) => *failing = false,
        Err(e) => {
            if !*failing {
                log::warn!("cannot write the access log: {e}");
            }
            *failing = true;
        }
    }
}

/// The least room the buffer grows by (it doubles past it), so a busy log zeroes new room rarely.
const GROW_STEP: usize = 16 * 1024;

/// Bytes of buffer the writer keeps however quiet the log (each of its two buffers).
const KEPT_BUFFER: usize = 64 * 1024;

/// A batch this large is written at once. Large writes cost the kernel about half as much per byte as
/// writes of a few tens of KiB (page-cache folios are sized by the write), and a quarter of the queue
/// leaves room for lines to gather while it is written.
const FULL_BATCH: usize = 256 * 1024;

/// How long the writer waits, once woken, for more lines before it writes (unless they make a full
/// batch first): a line reaches the file at most this late.
const LINGER: Duration = Duration::from_millis(20);
