//! A bounded byte buffer between a socket read and a socket write.
//!
//! Bytes are appended at the back by reads and taken from the front by writes; the storage is allocated on
//! first use and given back when the buffer empties, so an idle keep-alive connection costs no buffer memory.

use std::io::{self, Read};

/// What a buffer starts with: most heads and small bodies fit, and allocating it (zeroed) per request is
/// cheap; it doubles up to its capacity when bytes pile up or a read fills it (a large body flowing).
const INITIAL_STORAGE: usize = 16 * 1024;

pub struct Buffer {
    storage: Vec<u8>,
    start: usize,
    end: usize,
    capacity: usize,
}

impl Buffer {
    pub fn new(capacity: usize) -> Self {
        Buffer {
            storage: Vec::new(),
            start: 0,
            end: 0,
            capacity,
        }
    }

    pub fn data(&self) -> &[u8] {
        &self.storage[self.start..self.end]
    }

    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub fn is_full(&self) -> bool {
        self.len() >= self.capacity
    }

    pub fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.start += n.min(self.len());
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Frees the storage if nothing is buffered (called when a connection goes idle).
    pub fn release_if_empty(&mut self) {
        if self.is_empty() && !self.storage.is_empty() {
            self.storage = Vec::new();
        }
    }

    /// One `read` into the free space: `(bytes read, bytes offered)`. Zero read means end of stream; a full
    /// buffer is the caller's to check.
    pub fn read_from<R: Read>(&mut self, source: &mut R) -> io::Result<(usize, usize)> {
        if self.storage.is_empty() {
            self.storage = vec![0; INITIAL_STORAGE.min(self.capacity)];
        }
        if self.end == self.storage.len() {
            if self.start > 0 {
                // Slide the unread bytes to the front so the tail has room again.
                self.storage.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.storage.len() < self.capacity {
                // Full of unread bytes (a large head, or a peer that reads slower than we do): grow.
                let grown = (self.storage.len() * 2).min(self.capacity);
                self.storage.resize(grown, 0);
            }
        }
        let offered = self.storage.len() - self.end;
        let n = source.read(&mut self.storage[self.end..])?;
        self.end += n;
        if n == offered && self.storage.len() < self.capacity {
            // The peer had at least a full buffer to give: a large body is flowing, and bigger reads
            // mean fewer system calls for it.
            let grown = (self.storage.len() * 2).min(self.capacity);
            self.storage.resize(grown, 0);
        }
        Ok((n, offered))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_consumes_and_compacts() {
        let mut buf = Buffer::new(8);
        let mut src: &[u8] = b"abcdefghij";
        assert_eq!(buf.read_from(&mut src).unwrap(), (8, 8));
        assert!(buf.is_full());
        buf.consume(6);
        assert_eq!(buf.data(), b"gh");
        assert_eq!(buf.read_from(&mut src).unwrap(), (2, 6));
        assert_eq!(buf.data(), b"ghij");
        buf.consume(4);
        buf.release_if_empty();
        assert!(buf.storage.is_empty());
    }

    #[test]
    fn starts_small_and_grows_to_its_capacity_while_bytes_pile_up() {
        let mut buf = Buffer::new(64 * 1024);
        let data = vec![7u8; 100 * 1024];
        let mut src: &[u8] = &data;
        assert_eq!(buf.read_from(&mut src).unwrap(), (16 * 1024, 16 * 1024));
        assert_eq!(
            buf.storage.len(),
            32 * 1024,
            "a read that filled it makes it grow"
        );
        while !buf.is_full() {
            buf.read_from(&mut src).unwrap();
        }
        assert_eq!(buf.len(), 64 * 1024);
        assert_eq!(buf.storage.len(), 64 * 1024, "never beyond its capacity");
    }
}
