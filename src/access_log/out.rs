//! Where a line's pieces are written: a `Vec` (tests, the fuzz target), or a [`Line`], a window of the
//! queue's buffer that is already initialised and large enough for the longest the line can be. Writing
//! a piece into a `Line` is a bounds test and a copy, with the position in a register; a `Vec` also
//! loads, tests and stores its length and capacity for every piece, and a line has about forty.

/// Takes the pieces of a line.
pub(super) trait Out {
    fn put(&mut self, bytes: &[u8]);
    fn byte(&mut self, b: u8);
}

impl Out for Vec<u8> {
    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }

    #[inline(always)]
    fn byte(&mut self, b: u8) {
        self.push(b);
    }
}

/// A line written into `buf` from its start. A piece that does not fit is not written and marks the
/// line as cut (`fits` false), so that it is dropped rather than queued in part: the caller sizes `buf`
/// for the longest line the record can make, so that happens only when the queue itself is full.
pub(super) struct Line<'a> {
    /// The room not written yet: a piece goes at its start, and it shrinks past it.
    rest: &'a mut [u8],
    room: usize,
    cut: bool,
}

impl<'a> Line<'a> {
    pub(super) fn new(buf: &'a mut [u8]) -> Line<'a> {
        Line {
            room: buf.len(),
            rest: buf,
            cut: false,
        }
    }

    /// The length of the line, if every piece fitted.
    pub(super) fn len(&self) -> Option<usize> {
        (!self.cut).then_some(self.room - self.rest.len())
    }
}

impl Out for Line<'_> {
    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) {
        if bytes.len() <= self.rest.len() {
            let (to, rest) = std::mem::take(&mut self.rest).split_at_mut(bytes.len());
            to.copy_from_slice(bytes);
            self.rest = rest;
        } else {
            self.cut = true;
        }
    }

    #[inline(always)]
    fn byte(&mut self, b: u8) {
        match std::mem::take(&mut self.rest).split_first_mut() {
            Some((to, rest)) => {
                *to = b;
                self.rest = rest;
            }
            None => self.cut = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_its_pieces_or_cut_when_one_does_not_fit() {
        let mut buf = [0u8; 8];
        let mut line = Line::new(&mut buf);
        line.put(b"abc");
        line.byte(b'-');
        line.put(b"defg");
        assert_eq!(line.len(), Some(8));
        assert_eq!(&buf, b"abc-defg");

        let mut buf = [0u8; 4];
        let mut line = Line::new(&mut buf);
        line.put(b"abc");
        line.put(b"de");
        line.put(b"f");
        assert_eq!(line.len(), None, "a piece did not fit: the line is cut");
        let mut line = Line::new(&mut buf[..0]);
        line.byte(b'x');
        assert_eq!(line.len(), None);
    }
}
