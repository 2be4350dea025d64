//! The last lines an instance wrote on its stdout and stderr ([`OutputTail`]), kept next to its
//! [`Activity`](super::Activity): written by whoever reads the instance's output (the supervisor's output
//! thread for a process, the log follower for a container), read by the admin API
//! (`GET /backends/{name}/logs`). Bounded by lines and by bytes, whichever comes first, so a chatty
//! backend costs at most [`TAIL_MAX_BYTES`] of text here.

use std::collections::VecDeque;

/// Lines kept per instance.
pub const TAIL_MAX_LINES: usize = 200;
/// Bytes of text kept per instance.
pub const TAIL_MAX_BYTES: usize = 64 * 1024;

/// Which of a backend's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One line of output, without its line ending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    /// Wall-clock milliseconds since the Unix epoch when the proxy read it.
    pub unix_ms: u64,
    pub stream: Stream,
    pub text: Box<str>,
}

/// The last lines of one instance, oldest first, across its runs (the lines of a run that crashed are
/// what an operator wants to see after the restart).
#[derive(Debug, Default)]
pub struct OutputTail {
    lines: VecDeque<OutputLine>,
    /// Bytes of text in `lines`.
    bytes: usize,
    /// Lines kept here but not written to the proxy's log because the log could not keep up.
    not_logged: u64,
}

impl OutputTail {
    /// Appends `line`, forgetting the oldest lines beyond either bound.
    pub fn push(&mut self, line: OutputLine) {
        self.bytes += line.text.len();
        self.lines.push_back(line);
        while self.lines.len() > TAIL_MAX_LINES || self.bytes > TAIL_MAX_BYTES {
            match self.lines.pop_front() {
                Some(old) => self.bytes -= old.text.len(),
                None => break,
            }
        }
    }

    pub fn lines(&self) -> impl Iterator<Item = &OutputLine> {
        self.lines.iter()
    }

    pub fn count_not_logged(&mut self, lines: u64) {
        self.not_logged = self.not_logged.saturating_add(lines);
    }

    pub fn not_logged(&self) -> u64 {
        self.not_logged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: usize, len: usize) -> OutputLine {
        let mut text = format!("{n} ");
        text.extend(std::iter::repeat_n('x', len.saturating_sub(text.len())));
        OutputLine {
            unix_ms: n as u64,
            stream: Stream::Stdout,
            text: text.into(),
        }
    }

    fn numbers(tail: &OutputTail) -> Vec<u64> {
        tail.lines().map(|l| l.unix_ms).collect()
    }

    #[test]
    fn short_lines_are_bounded_by_count_and_keep_their_order() {
        let mut tail = OutputTail::default();
        for n in 0..TAIL_MAX_LINES + 50 {
            tail.push(line(n, 10));
        }
        let kept = numbers(&tail);
        assert_eq!(kept.len(), TAIL_MAX_LINES);
        assert_eq!(kept.first(), Some(&50));
        assert!(kept.windows(2).all(|w| w[0] + 1 == w[1]));
    }

    #[test]
    fn long_lines_are_bounded_by_bytes() {
        let mut tail = OutputTail::default();
        for n in 0..40 {
            tail.push(line(n, 8 * 1024));
        }
        let kept = numbers(&tail);
        assert_eq!(kept.len(), TAIL_MAX_BYTES / (8 * 1024));
        assert_eq!(kept.last(), Some(&39));
        assert!(tail.lines().map(|l| l.text.len()).sum::<usize>() <= TAIL_MAX_BYTES);
        // Short lines after long ones: the long ones go first, whichever bound they break.
        for n in 40..240 {
            tail.push(line(n, 5));
        }
        assert_eq!(numbers(&tail).first(), Some(&40));
        assert_eq!(tail.lines().count(), TAIL_MAX_LINES);
    }

    #[test]
    fn lines_not_logged_are_counted() {
        let mut tail = OutputTail::default();
        tail.count_not_logged(3);
        tail.count_not_logged(u64::MAX);
        assert_eq!(tail.not_logged(), u64::MAX);
    }
}
