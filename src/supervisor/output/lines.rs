//! Sans-IO split of one output stream into bounded lines, the one rule for processes and containers:
//! bytes in, in pieces cut anywhere; lines out, without their line ending (`\n` or `\r\n`), invalid
//! UTF-8 shown lossily. A line longer than [`MAX_LINE_BYTES`] is cut there (at a character boundary)
//! with [`CUT_MARKER`], and the rest of it up to the next newline is skipped, so a program that writes a
//! 4 GiB line costs only the limit. An unfinished last line is handed out by [`Lines::finish`].

/// Longest line kept whole.
pub const MAX_LINE_BYTES: usize = 8 * 1024;
/// Appended to a line that was cut.
pub const CUT_MARKER: &str = " [cut: line longer than 8 KiB]";

#[derive(Debug, Default)]
pub struct Lines {
    pending: Vec<u8>,
    /// The current line was cut: its rest is skipped up to the next newline.
    skipping: bool,
}

impl Lines {
    /// Appends `bytes`, handing each completed line to `emit`.
    pub fn push(&mut self, mut bytes: &[u8], mut emit: impl FnMut(&str)) {
        while !bytes.is_empty() {
            if self.skipping {
                match bytes.iter().position(|&b| b == b'\n') {
                    Some(newline) => {
                        bytes = &bytes[newline + 1..];
                        self.skipping = false;
                    }
                    None => return,
                }
                continue;
            }
            let room = MAX_LINE_BYTES - self.pending.len();
            // The byte just past the room may be the newline of a line of exactly the limit.
            let window = &bytes[..bytes.len().min(room + 1)];
            match window.iter().position(|&b| b == b'\n') {
                Some(newline) => {
                    self.pending.extend_from_slice(&window[..newline]);
                    bytes = &bytes[newline + 1..];
                    self.flush(false, &mut emit);
                }
                None if bytes.len() <= room => {
                    self.pending.extend_from_slice(bytes);
                    return;
                }
                None => {
                    self.pending.extend_from_slice(&bytes[..room]);
                    bytes = &bytes[room..];
                    self.flush(true, &mut emit);
                    self.skipping = true;
                }
            }
        }
    }

    /// Hands out what is left of an unfinished last line (the stream ended).
    pub fn finish(&mut self, mut emit: impl FnMut(&str)) {
        if !self.pending.is_empty() {
            self.flush(false, &mut emit);
        }
        self.skipping = false;
    }

    fn flush(&mut self, cut: bool, emit: &mut impl FnMut(&str)) {
        if cut {
            self.pending.truncate(complete_utf8_len(&self.pending));
        } else if self.pending.last() == Some(&b'\r') {
            self.pending.pop();
        }
        let text = String::from_utf8_lossy(&self.pending);
        match cut {
            true => emit(&format!("{text}{CUT_MARKER}")),
            false => emit(&text),
        }
        self.pending.clear();
    }
}

/// `bytes` without a multi-byte character that the end cuts in two (which would show as U+FFFD).
fn complete_utf8_len(bytes: &[u8]) -> usize {
    // The last byte that is not a continuation byte starts the last character.
    let Some(start) = bytes
        .iter()
        .rev()
        .take(4)
        .position(|&b| b & 0b1100_0000 != 0b1000_0000)
        .map(|from_end| bytes.len() - 1 - from_end)
    else {
        return bytes.len();
    };
    let lead = bytes[start];
    let needs = match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => 1,
    };
    match start + needs > bytes.len() {
        true => start,
        false => bytes.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(pieces: &[&[u8]]) -> Vec<String> {
        let mut lines = Lines::default();
        let mut out = Vec::new();
        for piece in pieces {
            lines.push(piece, |l| out.push(l.to_string()));
        }
        lines.finish(|l| out.push(l.to_string()));
        out
    }

    /// Every way of cutting `input` into two or three pieces gives the same lines.
    fn same_however_cut(input: &[u8]) -> Vec<String> {
        let whole = lines_of(&[input]);
        for a in 0..=input.len() {
            assert_eq!(lines_of(&[&input[..a], &input[a..]]), whole, "cut at {a}");
        }
        let step = (input.len() / 97).max(1);
        for a in (0..=input.len()).step_by(step) {
            for b in (a..=input.len()).step_by(step) {
                let pieces = [&input[..a], &input[a..b], &input[b..]];
                assert_eq!(lines_of(&pieces), whole, "cut at {a} and {b}");
            }
        }
        whole
    }

    #[test]
    fn lines_join_pieces_and_drop_line_endings() {
        assert_eq!(
            same_however_cut(b"one\r\ntwo\n\nthree"),
            vec!["one", "two", "", "three"]
        );
        assert_eq!(lines_of(&[b"\xffok\n"]), vec!["\u{FFFD}ok"]);
        assert!(lines_of(&[]).is_empty());
        assert!(lines_of(&[b"", b""]).is_empty());
    }

    #[test]
    fn a_partial_last_line_comes_out_at_the_end_only() {
        let mut lines = Lines::default();
        let mut out = Vec::new();
        lines.push(b"done\nhalf", |l| out.push(l.to_string()));
        assert_eq!(out, vec!["done"]);
        lines.finish(|l| out.push(l.to_string()));
        assert_eq!(out, vec!["done", "half"]);
        lines.finish(|l| out.push(l.to_string()));
        assert_eq!(out.len(), 2, "nothing twice");
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_whole_and_a_longer_one_is_cut_once() {
        let exact = [vec![b'z'; MAX_LINE_BYTES], b"\nnext\n".to_vec()].concat();
        let out = same_however_cut(&exact);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), MAX_LINE_BYTES);
        assert_eq!(out[1], "next");

        let long = [vec![b'y'; MAX_LINE_BYTES * 3 + 5], b"\nafter".to_vec()].concat();
        let out = same_however_cut(&long);
        assert_eq!(
            out.len(),
            2,
            "{:?}",
            out.iter().map(String::len).collect::<Vec<_>>()
        );
        assert_eq!(out[0].len(), MAX_LINE_BYTES + CUT_MARKER.len());
        assert!(out[0].ends_with(CUT_MARKER));
        assert_eq!(out[1], "after");
    }

    #[test]
    fn a_cut_never_splits_a_character() {
        // 'é' is two bytes: with one byte of padding the limit falls inside one of them.
        let mut input = b"a".to_vec();
        input.extend("é".repeat(MAX_LINE_BYTES).as_bytes());
        input.push(b'\n');
        let out = same_however_cut(&input);
        assert_eq!(out.len(), 1);
        let text = out[0].strip_suffix(CUT_MARKER).expect("cut");
        assert!(!text.contains('\u{FFFD}'));
        assert_eq!(text.len(), MAX_LINE_BYTES - 1);
        for emoji in ["€", "😀"] {
            let mut input = b"ab".to_vec();
            input.extend(emoji.repeat(MAX_LINE_BYTES).as_bytes());
            let out = lines_of(&[&input]);
            assert!(!out[0].contains('\u{FFFD}'), "{emoji}");
        }
        // Invalid bytes at the cut are still shown (lossily), not taken for a cut character.
        let invalid = vec![0x80u8; MAX_LINE_BYTES + 10];
        let out = lines_of(&[&invalid]);
        assert_eq!(out.len(), 1);
        assert!(out[0].starts_with('\u{FFFD}'));
    }

    #[test]
    fn random_streams_keep_lines_bounded_and_whole_however_cut() {
        let mut rng = crate::test_rng::XorShift::new(0x9e37_79b9_7f4a_7c15_u64);
        let mut next = || rng.next_u64();
        for _ in 0..300 {
            let len = (next() % (3 * MAX_LINE_BYTES as u64)) as usize;
            // Mostly letters, some newlines, some bytes of multi-byte characters.
            const BYTES: [u8; 8] = [b'a', b'b', b'a', b'\n', 0xC3, 0xA9, b'\r', 0xF0];
            let gap = next() % (2 * MAX_LINE_BYTES as u64) + 1;
            let input: Vec<u8> = (0..len)
                .map(|i| match (i as u64) % gap == 0 {
                    true => b'\n',
                    false => BYTES[(next() % BYTES.len() as u64) as usize],
                })
                .collect();
            let whole = lines_of(&[&input]);
            for line in &whole {
                assert!(line.len() <= MAX_LINE_BYTES * 3 + CUT_MARKER.len());
            }
            let mut pieces = Vec::new();
            let mut rest = &input[..];
            while !rest.is_empty() {
                let take = ((next() % 3000) as usize + 1).min(rest.len());
                pieces.push(&rest[..take]);
                rest = &rest[take..];
            }
            assert_eq!(lines_of(&pieces), whole);
        }
    }
}
