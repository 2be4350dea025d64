//! Streams a container's stdout and stderr into the proxy's log and the instance's tail until the
//! container stops (through its [`OutputSink`]: target `container`, stdout at INFO, stderr at WARN,
//! each line tagged with the instance and the stream, as a process's are), and keeps the last few lines
//! for the message that reports its exit.

use std::collections::VecDeque;
use std::io::{self, Read};

use super::client::{clip, Docker};
use super::frames::{Demux, Stream};
use crate::supervisor::output::lines::Lines;
use crate::supervisor::output::OutputSink;
/// Lines kept for an exit message: enough to show the error a program printed before it died.
const TAIL_LINES: usize = 5;
/// Characters of each kept line that go into the exit message.
const TAIL_LINE_CHARS: usize = 200;
/// Bytes read from the stream at a time.
const READ_CHUNK: usize = 8 * 1024;

/// The last lines a container wrote, oldest first.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tail {
    lines: VecDeque<String>,
}

impl Tail {
    fn push(&mut self, line: &str) {
        if self.lines.len() == TAIL_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(clip(line, TAIL_LINE_CHARS));
    }

    /// `"a" | "b"`, or `None` when the container wrote nothing.
    pub fn summary(&self) -> Option<String> {
        if self.lines.is_empty() {
            return None;
        }
        let quoted: Vec<String> = self.lines.iter().map(|l| format!("{l:?}")).collect();
        Some(quoted.join(" | "))
    }
}

/// Follows the container's output until it ends; returns the last lines.
pub fn follow(docker: &Docker, id: &str, hostname: &str, sink: &OutputSink) -> Tail {
    match docker.follow_logs(id) {
        Ok(reader) => copy_to_log(reader, hostname, sink),
        Err(e) => {
            log::warn!("{hostname}: cannot follow the container's output: {e}");
            Tail::default()
        }
    }
}

/// Reads a multiplexed log stream to its end, logging every line. The follower is a thread of its own
/// reading a stream the daemon buffers, so it logs every line: a slow log only slows the stream.
pub fn copy_to_log(mut reader: impl Read, hostname: &str, sink: &OutputSink) -> Tail {
    let mut demux = Demux::default();
    let mut stdout = Lines::default();
    let mut stderr = Lines::default();
    let mut tail = Tail::default();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let read = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                log::debug!("{hostname}: the container's output stream ended: {e}");
                break;
            }
        };
        demux.feed(&buf[..read], |stream, bytes| {
            let lines = match stream {
                Stream::Stdout => &mut stdout,
                Stream::Stderr => &mut stderr,
            };
            lines.push(bytes, |line| emit(sink, stream, line, &mut tail));
        });
    }
    stdout.finish(|line| emit(sink, Stream::Stdout, line, &mut tail));
    stderr.finish(|line| emit(sink, Stream::Stderr, line, &mut tail));
    tail
}

fn emit(sink: &OutputSink, stream: Stream, line: &str, tail: &mut Tail) {
    sink.line(stream, line, true);
    tail.push(line);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::output::CONTAINER_TARGET;

    fn sink() -> OutputSink {
        OutputSink::inherit("app.localhost", CONTAINER_TARGET)
    }

    fn frame(stream: u8, payload: &str) -> Vec<u8> {
        let mut out = vec![stream, 0, 0, 0];
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload.as_bytes());
        out
    }

    #[test]
    fn the_tail_keeps_the_last_lines_of_both_streams() {
        let mut input = Vec::new();
        for i in 0..8 {
            input.extend(frame(1, &format!("out {i}\n")));
        }
        input.extend(frame(2, "fatal: no config\nunfinished"));
        let tail = copy_to_log(&input[..], "app.localhost", &sink());
        assert_eq!(
            tail.summary().as_deref(),
            Some(r#""out 5" | "out 6" | "out 7" | "fatal: no config" | "unfinished""#)
        );
    }

    #[test]
    fn nothing_written_means_no_summary() {
        assert_eq!(copy_to_log(&[][..], "x", &sink()).summary(), None);
    }

    #[test]
    fn a_broken_stream_keeps_what_arrived() {
        struct Breaks(Vec<u8>, bool);
        impl Read for Breaks {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if std::mem::replace(&mut self.1, true) {
                    return Err(io::Error::other("daemon went away"));
                }
                buf[..self.0.len()].copy_from_slice(&self.0);
                Ok(self.0.len())
            }
        }
        let tail = copy_to_log(Breaks(frame(1, "partial line"), false), "x", &sink());
        assert_eq!(tail.summary().as_deref(), Some(r#""partial line""#));
    }
}
