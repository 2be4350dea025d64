//! When a growing head is worth parsing. `httparse` cannot resume, so parsing a head on every read costs
//! the whole head each time: a head trickled in small reads costs the square of its size. [`HeadScan`]
//! looks only at the bytes that are new since the last read and asks for a parse only when they can
//! change the answer: the first bytes (garbage is refused at once), the end of the first line (a bad
//! request or status line is refused before the rest arrives), a possible end of the head, and a size
//! limit being crossed. Every other read is a scan of its own bytes, so the work per byte stays flat
//! whatever the head's size.
//!
//! The answer never differs from parsing on every read: a parse that is skipped could only have said
//! "incomplete". An error inside the fields (a bad name, say) is reported when the head ends or a limit
//! is reached, instead of on the read that brought it; the client hears the same status either way.

use super::{MAX_HEAD, MAX_REQUEST_LINE};

/// What has been looked at of the head at the front of a buffer.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HeadScan {
    /// Bytes of the buffer already looked at.
    scanned: usize,
    /// A line feed has been seen: the first line is complete.
    line_done: bool,
}

/// The sizes at which the parser's limits take effect; crossing one needs a parse to report it.
const LIMITS: [usize; 2] = [MAX_REQUEST_LINE, MAX_HEAD];

impl HeadScan {
    /// Looks at what `buf` (the head so far, from its first byte) holds beyond the last call, and says
    /// whether parsing it now can give anything but "incomplete". After the head is consumed from the
    /// buffer, start a new scan ([`HeadScan::default`]).
    pub fn worth_parsing(&mut self, buf: &[u8]) -> bool {
        let from = self.scanned;
        if buf.len() < from {
            // The buffer no longer starts where this scan did; look at all of it.
            *self = HeadScan::default();
            return self.worth_parsing(buf);
        }
        if buf.len() == from {
            return false;
        }
        self.scanned = buf.len();
        let fresh = &buf[from..];
        let mut worth = from == 0;
        if !self.line_done && fresh.contains(&b'\n') {
            self.line_done = true;
            worth = true;
        }
        worth |= LIMITS
            .iter()
            .any(|&limit| from < limit && limit <= buf.len());
        // An end split across reads: the bytes before `from` may hold its first one or two.
        worth || may_end_head(&buf[from.saturating_sub(2)..])
    }
}

/// Whether `bytes` hold an empty line after a line feed: LF LF, or LF CR LF. Every complete head (and every
/// bare-LF head the parser refuses) contains one.
fn may_end_head(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    while let Some(at) = rest.iter().position(|&b| b == b'\n') {
        rest = &rest[at + 1..];
        match rest {
            [b'\n', ..] | [b'\r', b'\n', ..] => return true,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::request::parse_request;

    /// Feeds `head` in pieces of `step` bytes; returns how many parses the scan asked for, and the first
    /// answer that was not "incomplete" (as a debug string), if any.
    fn trickle(head: &[u8], step: usize) -> (usize, Option<String>) {
        let mut scan = HeadScan::default();
        let mut parses = 0;
        for end in (step..head.len() + step).step_by(step) {
            let buf = &head[..end.min(head.len())];
            if scan.worth_parsing(buf) {
                parses += 1;
                match parse_request(buf) {
                    Ok(None) => {}
                    Ok(Some(parsed)) => return (parses, Some(format!("complete {}", parsed.len))),
                    Err(e) => return (parses, Some(format!("error {:?}", e.code))),
                }
            }
        }
        (parses, None)
    }

    /// Parsing on every read, as the reactor did before: the reference answer. Large heads are read in
    /// larger pieces, which gives the same answer (the parser's own prefix property) in less time.
    fn every_read(head: &[u8]) -> Option<String> {
        let stride = if head.len() > 1024 { 256 } else { 1 };
        let ends = (stride..head.len()).step_by(stride).chain([head.len()]);
        ends.into_iter()
            .find_map(|end| match parse_request(&head[..end]) {
                Ok(None) => None,
                Ok(Some(parsed)) => Some(format!("complete {}", parsed.len)),
                Err(e) => Some(format!("error {:?}", e.code)),
            })
    }

    fn big_head(size: usize) -> Vec<u8> {
        let mut head = b"GET /x HTTP/1.1\r\nHost: a.test\r\n".to_vec();
        let mut n = 0;
        while head.len() + 740 < size {
            head.extend_from_slice(format!("X-Filler-{n}: {}\r\n", "v".repeat(700)).as_bytes());
            n += 1;
        }
        head.extend_from_slice(b"\r\n");
        head
    }

    #[test]
    fn a_large_head_trickled_a_byte_at_a_time_is_parsed_a_few_times_not_once_per_byte() {
        let head = big_head(60 * 1024);
        assert!(head.len() > 59 * 1024 && head.len() < MAX_HEAD);
        let (parses, answer) = trickle(&head, 1);
        assert_eq!(answer, Some(format!("complete {}", head.len())));
        // The first byte, the end of the request line, the request-line limit, the end of the head.
        assert!(parses <= 4, "{parses} parses");
    }

    #[test]
    fn the_answer_is_the_one_parsing_every_read_gives_however_the_bytes_are_split() {
        let cases: Vec<Vec<u8>> = vec![
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\nHost: a\n\n".to_vec(),
            b"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\nBad Name: a\r\n\r\n".to_vec(),
            b"GET / HTTP/2.0\r\nHost: a\r\n\r\n".to_vec(),
            b"G@T / HTTP/1.1\r\n\r\n".to_vec(),
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(),
            b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\n\r\n".to_vec(),
            format!(
                "GET /{} HTTP/1.1\r\nHost: a\r\n\r\n",
                "a".repeat(MAX_REQUEST_LINE)
            )
            .into_bytes(),
            big_head(MAX_HEAD + 512),
            big_head(MAX_HEAD - 100),
        ];
        for head in &cases {
            let reference = every_read(head);
            for step in [1, 2, 3, 7, 64, 4096, head.len()] {
                let (_, answer) = trickle(head, step);
                assert_eq!(
                    answer,
                    reference,
                    "step {step}: {:?}",
                    String::from_utf8_lossy(head)
                );
            }
        }
    }

    #[test]
    fn garbage_and_bad_first_lines_are_looked_at_without_waiting_for_the_end() {
        let mut scan = HeadScan::default();
        assert!(scan.worth_parsing(b"\x16\x03"), "the first bytes");
        assert!(!scan.worth_parsing(b"\x16\x03\x01"));
        let mut scan = HeadScan::default();
        assert!(scan.worth_parsing(b"GET"));
        assert!(!scan.worth_parsing(b"GET / HT"));
        assert!(scan.worth_parsing(b"GET / HTTP/9.9\r\n"), "the first line");
        assert!(!scan.worth_parsing(b"GET / HTTP/9.9\r\nHost"));
        assert!(
            !scan.worth_parsing(b"GET / HTTP/9.9\r\nHost"),
            "nothing new"
        );
    }

    #[test]
    fn an_end_split_across_reads_is_seen() {
        let mut scan = HeadScan::default();
        scan.worth_parsing(b"GET / HTTP/1.1\r\nHost: a\r");
        assert!(!scan.worth_parsing(b"GET / HTTP/1.1\r\nHost: a\r\n"));
        assert!(!scan.worth_parsing(b"GET / HTTP/1.1\r\nHost: a\r\n\r"));
        assert!(scan.worth_parsing(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    }

    #[test]
    fn a_shorter_buffer_starts_a_new_scan() {
        let mut scan = HeadScan::default();
        scan.worth_parsing(b"GET / HTTP/1.1\r\nHost: a\r\n");
        assert!(scan.worth_parsing(b"GET"));
    }
}
