//! Byte-level checks shared by request and response heads.

use std::ops::Range;

/// Whether a head has a line feed not preceded by a carriage return. httparse accepts bare LF as a line
/// ending; RFC 9112 section 2.2 lets a recipient do so, but a proxy that does while its backend does not
/// (or the reverse) disagrees about where fields end, so we refuse them.
pub fn has_bare_lf(head: &[u8]) -> bool {
    let mut previous = 0u8;
    for &b in head {
        if b == b'\n' && previous != b'\r' {
            return true;
        }
        previous = b;
    }
    false
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

    #[test]
    fn ranges_of_sub_slices() {
        let buf = b"hello world";
        assert_eq!(range_in(buf, &buf[6..]), Some(6..11));
        assert_eq!(range_in(buf, &buf[11..]), Some(11..11));
        assert_eq!(range_in(buf, b"elsewhere"), None);
    }
}
