//! Byte-level checks shared by request and response heads.

use std::ops::Range;

/// Whether a head has a line feed not preceded by a carriage return. httparse accepts bare LF as a line
/// ending; RFC 9112 section 2.2 lets a recipient do so, but a proxy that does while its backend does not
/// (or the reverse) disagrees about where fields end, so we refuse them.
pub fn has_bare_lf(head: &[u8]) -> bool {
    // Eight bytes at a time: a head is parsed for every request and response, and this scan used to
    // cost as much as httparse itself.
    let mut words = head.chunks_exact(8);
    let mut previous_was_cr = false;
    for chunk in words.by_ref() {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        let word = u64::from_le_bytes(bytes);
        let lf = bytes_equal_to(word, b'\n');
        let cr = bytes_equal_to(word, b'\r');
        // Byte k's flag moves to byte k + 1: "the byte before this one is CR".
        let cr_before = (cr << 8) | if previous_was_cr { 0x80 } else { 0 };
        if lf & !cr_before != 0 {
            return true;
        }
        previous_was_cr = cr >> 63 == 1;
    }
    let mut previous = if previous_was_cr { b'\r' } else { 0 };
    for &b in words.remainder() {
        if b == b'\n' && previous != b'\r' {
            return true;
        }
        previous = b;
    }
    false
}

/// The high bit of each byte of `word` that equals `byte`, and no other bit (exact, no false positives).
fn bytes_equal_to(word: u64, byte: u8) -> u64 {
    const LOW_SEVEN: u64 = u64::from_ne_bytes([0x7f; 8]);
    let x = word ^ u64::from_ne_bytes([byte; 8]);
    // A byte of x is zero exactly when neither its low seven bits carry into the high bit nor is the
    // high bit set.
    !(((x & LOW_SEVEN).wrapping_add(LOW_SEVEN)) | x | LOW_SEVEN)
}

/// Where `part`, a sub-slice httparse handed back, sits inside `buf`; `None` if it is not inside.
pub fn range_in(buf: &[u8], part: &[u8]) -> Option<Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(buf.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= buf.len()).then_some(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_lf_is_found_anywhere() {
        assert!(!has_bare_lf(b"a\r\nb\r\n\r\n"));
        assert!(has_bare_lf(b"\n"));
        assert!(has_bare_lf(b"a\r\nb\n"));
        assert!(has_bare_lf(b"a\r\r\n\n"));
    }

    fn bare_lf_bytewise(head: &[u8]) -> bool {
        head.iter()
            .enumerate()
            .any(|(i, &b)| b == b'\n' && (i == 0 || head[i - 1] != b'\r'))
    }

    #[test]
    fn word_scan_agrees_with_a_bytewise_scan_at_every_position() {
        // Every placement of LF, CRLF and near-misses across word boundaries, in heads of many lengths.
        let fillers: [&[u8]; 5] = [b"\n", b"\r\n", b"\r", b"\r\r\n", b"\n\r"];
        for len in 0..40 {
            for at in 0..len {
                for filler in fillers {
                    for background in [b'a', b'\r', 0x8a, 0x0d ^ 0x80, 0xff] {
                        let mut head = vec![background; len];
                        let end = (at + filler.len()).min(len);
                        head[at..end].copy_from_slice(&filler[..end - at]);
                        assert_eq!(has_bare_lf(&head), bare_lf_bytewise(&head), "{head:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn ranges_of_sub_slices() {
        let buf = b"hello world";
        assert_eq!(range_in(buf, &buf[6..]), Some(6..11));
        assert_eq!(range_in(buf, &buf[11..]), Some(11..11));
        assert_eq!(range_in(buf, b"elsewhere"), None);
    }
}
