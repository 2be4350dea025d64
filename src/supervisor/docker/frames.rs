//! Sans-IO reading of a container's log stream: Docker's multiplexed framing (used when the container has
//! no TTY, which Spawngate never asks for). The split into bounded lines is the one processes use
//! (`output::lines`).
//!
//! ```text
//!  frame = [stream: u8] [0 0 0] [length: u32 big-endian] [length bytes of output]
//!  stream: 0 stdin, 1 stdout, 2 stderr (3 = the daemon's own error, shown as stderr)
//! ```
//! A frame's payload is passed on in whatever pieces it arrives, never gathered whole, so a container
//! that writes a 4 GiB line costs only the line limit.

pub use crate::msg::Stream;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::output::lines::{Lines, CUT_MARKER, MAX_LINE_BYTES};

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

    #[test]
    fn random_streams_never_panic_and_lines_stay_bounded() {
        let mut rng = crate::test_rng::XorShift::new(0x9e37_79b9_7f4a_7c15_u64);
        let mut next = || rng.next_u64();
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
                    lines.push(bytes, |line| {
                        assert!(line.len() <= MAX_LINE_BYTES * 3 + CUT_MARKER.len())
                    });
                });
            }
            lines.finish(|_| {});
        }
    }
}
