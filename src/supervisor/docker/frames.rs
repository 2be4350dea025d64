//! Sans-IO reading of a container's log stream: Docker's multiplexed framing (used when the container has
//! no TTY, which Spawngate never asks for) and the split into bounded lines.
//!
//! ```text
//!  frame = [stream: u8] [0 0 0] [length: u32 big-endian] [length bytes of output]
//!  stream: 0 stdin, 1 stdout, 2 stderr (3 = the daemon's own error, shown as stderr)
//! ```
//! A frame's payload is passed on in whatever pieces it arrives, never gathered whole, so a container
//! that writes a 4 GiB line costs only the line limit.

/// Longest line logged as one; a longer one is logged in pieces of this size. Keeps one chatty
/// container from building an unbounded buffer.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

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

const HEADER_LEN: usize = 8;

#[derive(Debug, Clone)]
enum Phase {
    Header {
        bytes: [u8; HEADER_LEN],
        have: usize,
    },
    Payload {
        stream: Stream,
        left: u32,
    },
}

/// Splits the multiplexed stream into (stream, bytes) pieces.
#[derive(Debug, Clone)]
pub struct Demux {
    phase: Phase,
}

impl Default for Demux {
    fn default() -> Self {
        Demux {
            phase: Phase::Header {
                bytes: [0; HEADER_LEN],
                have: 0,
            },
        }
    }
}

impl Demux {
    /// Consumes all of `input`, handing each piece of output to `sink` in order.
    pub fn feed(&mut self, mut input: &[u8], mut sink: impl FnMut(Stream, &[u8])) {
        while !input.is_empty() {
            match &mut self.phase {
                Phase::Header { bytes, have } => {
                    let take = (HEADER_LEN - *have).min(input.len());
                    bytes[*have..*have + take].copy_from_slice(&input[..take]);
                    *have += take;
                    input = &input[take..];
                    if *have == HEADER_LEN {
                        let stream = match bytes[0] {
                            1 => Stream::Stdout,
                            _ => Stream::Stderr,
                        };
                        let left = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
                        self.phase = if left == 0 {
                            Demux::default().phase
                        } else {
                            Phase::Payload { stream, left }
                        };
                    }
                }
                Phase::Payload { stream, left } => {
                    let take = input.len().min(*left as usize);
                    sink(*stream, &input[..take]);
                    input = &input[take..];
                    // `take` <= `left`, which is a u32, so the cast is exact.
                    *left -= take as u32;
                    if *left == 0 {
                        self.phase = Demux::default().phase;
                    }
                }
            }
        }
    }
}

/// Gathers one stream's bytes into lines of at most [`MAX_LINE_BYTES`].
#[derive(Debug, Default)]
pub struct Lines {
    pending: Vec<u8>,
}

impl Lines {
    /// Appends `bytes`, handing each completed line (without its line ending) to `emit`.
    pub fn push(&mut self, mut bytes: &[u8], mut emit: impl FnMut(&str)) {
        while !bytes.is_empty() {
            if self.pending.len() == MAX_LINE_BYTES {
                // Cut only once the next byte is known, so a line of exactly the limit stays one line.
                if bytes[0] == b'\n' {
                    bytes = &bytes[1..];
                }
                self.flush(&mut emit);
                continue;
            }
            let room = MAX_LINE_BYTES - self.pending.len();
            let window = &bytes[..bytes.len().min(room)];
            match window.iter().position(|&b| b == b'\n') {
                Some(newline) => {
                    self.pending.extend_from_slice(&window[..newline]);
                    bytes = &bytes[newline + 1..];
                    self.flush(&mut emit);
                }
                None => {
                    self.pending.extend_from_slice(window);
                    bytes = &bytes[window.len()..];
                }
            }
        }
    }

    /// Emits what is left of an unfinished last line.
    pub fn finish(&mut self, mut emit: impl FnMut(&str)) {
        if !self.pending.is_empty() {
            self.flush(&mut emit);
        }
    }

    fn flush(&mut self, emit: &mut impl FnMut(&str)) {
        if self.pending.last() == Some(&b'\r') {
            self.pending.pop();
        }
        emit(&String::from_utf8_lossy(&self.pending));
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![stream, 0, 0, 0];
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn demux_all(input: &[u8], piece: usize) -> Vec<(Stream, Vec<u8>)> {
        let mut demux = Demux::default();
        let mut out: Vec<(Stream, Vec<u8>)> = Vec::new();
        for chunk in input.chunks(piece) {
            demux.feed(chunk, |stream, bytes| match out.last_mut() {
                Some((s, acc)) if *s == stream => acc.extend_from_slice(bytes),
                _ => out.push((stream, bytes.to_vec())),
            });
        }
        out
    }

    #[test]
    fn frames_split_at_any_byte_come_out_whole() {
        let mut input = frame(1, b"hello\n");
        input.extend(frame(2, b"oops\n"));
        input.extend(frame(1, b""));
        input.extend(frame(1, b"again"));
        for piece in 1..=input.len() {
            let out = demux_all(&input, piece);
            assert_eq!(
                out,
                vec![
                    (Stream::Stdout, b"hello\n".to_vec()),
                    (Stream::Stderr, b"oops\n".to_vec()),
                    (Stream::Stdout, b"again".to_vec()),
                ],
                "piece size {piece}"
            );
        }
    }

    #[test]
    fn a_huge_frame_header_only_streams() {
        let mut demux = Demux::default();
        let mut seen = 0usize;
        demux.feed(&[2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff], |_, b| {
            seen += b.len()
        });
        demux.feed(&[b'x'; 1000], |s, b| {
            assert_eq!(s, Stream::Stderr);
            seen += b.len();
        });
        assert_eq!(seen, 1000);
    }

    #[test]
    fn stdin_and_unknown_streams_count_as_stderr() {
        assert_eq!(
            demux_all(&frame(0, b"a"), 3),
            vec![(Stream::Stderr, b"a".to_vec())]
        );
        assert_eq!(
            demux_all(&frame(3, b"b"), 3),
            vec![(Stream::Stderr, b"b".to_vec())]
        );
    }

    fn lines_of(pieces: &[&[u8]]) -> Vec<String> {
        let mut lines = Lines::default();
        let mut out = Vec::new();
        for piece in pieces {
            lines.push(piece, |l| out.push(l.to_string()));
        }
        lines.finish(|l| out.push(l.to_string()));
        out
    }

    #[test]
    fn lines_join_pieces_and_drop_line_endings() {
        assert_eq!(
            lines_of(&[b"one\r\ntw", b"o\n", b"\n", b"three"]),
            vec!["one", "two", "", "three"]
        );
        assert_eq!(lines_of(&[b"\xffok\n"]), vec!["\u{FFFD}ok"]);
        assert!(lines_of(&[]).is_empty());
    }

    #[test]
    fn long_lines_are_cut_into_bounded_pieces() {
        let long = vec![b'y'; MAX_LINE_BYTES * 2 + 5];
        let mut input = long.clone();
        input.push(b'\n');
        let out = lines_of(&[&input]);
        assert_eq!(
            out.iter().map(String::len).collect::<Vec<_>>(),
            vec![MAX_LINE_BYTES, MAX_LINE_BYTES, 5]
        );
        let exact = [vec![b'z'; MAX_LINE_BYTES], b"\nnext\n".to_vec()].concat();
        let out = lines_of(&[&exact[..MAX_LINE_BYTES], &exact[MAX_LINE_BYTES..]]);
        assert_eq!(out.len(), 2, "a line of exactly the limit is one line");
        assert_eq!(out[1], "next");
    }

    #[test]
    fn random_streams_never_panic_and_lines_stay_bounded() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2_000 {
            let mut demux = Demux::default();
            let mut lines = Lines::default();
            let len = (next() % 4096) as usize;
            // Small values make short frames of both streams; the rest is payload.
            const BYTES: [u8; 9] = [0, 1, 2, 0, 0, 3, b'\n', b'a', 0xff];
            let input: Vec<u8> = (0..len)
                .map(|_| BYTES[(next() % BYTES.len() as u64) as usize])
                .collect();
            for chunk in input.chunks((next() % 64 + 1) as usize) {
                demux.feed(chunk, |_, bytes| {
                    lines.push(bytes, |line| assert!(line.len() <= MAX_LINE_BYTES * 3));
                });
            }
            lines.finish(|_| {});
        }
    }
}
