//! A bounded byte buffer between a socket read and a socket write.
//!
//! Bytes are appended at the back by reads and taken from the front by writes; the storage is allocated on
//! first use and given back when the buffer empties, so an idle keep-alive connection costs no buffer memory.
//!
//! The buffers in use are counted (per thread: the reactor owns them all), so the reactor can tell when a
//! burst is over: see [`burst_over`].

use std::cell::{Cell, RefCell};
use std::io::{self, Read};

/// What a buffer starts with: most request and response heads fit (nginx starts with 1 KiB); it doubles
/// up to its capacity when bytes pile up or a read fills it (a large head, or a body flowing: a few
/// more reads at its start, then full-size ones).
const INITIAL_STORAGE: usize = 4 * 1024;

/// Storages of [`INITIAL_STORAGE`] bytes kept for reuse when their buffers empty (128 KiB at most). A
/// keep-alive connection gives its buffer back after each exchange and takes one with the next request;
/// a fresh storage comes zeroed (16 KiB of `memset` per request with the old initial size was about 2.5%
/// of the reactor's CPU at full load, perf), while a reused one needs nothing: its old bytes lie outside
/// `start..end` and are never read. They go back to the system with a burst's memory ([`drop_spares`]).
const SPARE_STORAGES: usize = 32;

/// Buffers in use at the peak of a burst for it to count as one: 256 of them hold at least 4 MiB, enough
/// to be worth giving back; a steady load of a few dozen connections never gets there.
const BURST_BUFFERS: usize = 256;
/// A burst is over once the buffers in use fell to this fraction of its peak (1/8): far enough that the
/// memory freed is most of what the burst took, while a load that merely dips does not count.
const BURST_OVER_SHIFT: u32 = 3;

/// The buffers holding storage, counted per thread (the reactor's thread owns them all).
#[derive(Clone, Copy)]
struct InUse {
    live: usize,
    /// The most at once since the last burst ended.
    peak: usize,
    /// In a burst's tail: the next trim is due once `live` is down to this. The exchanges still running
    /// when a burst is declared over free their memory after the allocator was told to give it back, and
    /// an idle allocator never looks again; so the tail is trimmed again each time it halves, down to zero
    /// (a dozen times for thousands of connections, never while the load holds).
    tail: Option<usize>,
}

thread_local! {
    static SPARES: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    static IN_USE: Cell<InUse> = const {
        Cell::new(InUse {
            live: 0,
            peak: 0,
            tail: None,
        })
    };
}

fn count_allocated() {
    IN_USE.with(|c| {
        let mut n = c.get();
        n.live += 1;
        if n.tail.is_some() && n.live > n.peak >> BURST_OVER_SHIFT {
            // A new burst began before the last one's tail was trimmed: count it from here.
            n.tail = None;
            n.peak = n.live;
        }
        n.peak = n.peak.max(n.live);
        c.set(n);
    });
}

fn count_freed() {
    IN_USE.with(|c| {
        let mut n = c.get();
        n.live = n.live.saturating_sub(1);
        c.set(n);
    });
}

/// A storage of `size` bytes: a spare one if it is the usual size and one is kept, else a new one.
fn take_storage(size: usize) -> Vec<u8> {
    if size == INITIAL_STORAGE {
        if let Some(spare) = SPARES.with(|s| s.borrow_mut().pop()) {
            return spare;
        }
    }
    vec![0; size]
}

/// Keeps `storage` for the next buffer if it is the usual size and there is room; frees it otherwise.
/// (`try_with`: a buffer dropped while the thread exits finds the list gone, and frees its storage.)
fn give_storage(storage: Vec<u8>) {
    if storage.len() == INITIAL_STORAGE {
        let _ = SPARES.try_with(|s| {
            let mut spares = s.borrow_mut();
            if spares.len() < SPARE_STORAGES {
                spares.push(storage);
            }
        });
    }
}

/// Frees the kept storages (a burst is over: its memory goes back to the system).
pub fn drop_spares() {
    SPARES.with(|s| *s.borrow_mut() = Vec::new());
}

/// Buffers holding storage now (for the log).
pub fn in_use() -> usize {
    IN_USE.with(|c| c.get().live)
}

/// True when memory is due to go back after a burst: buffers in use peaked at [`BURST_BUFFERS`] or more
/// and have since fallen to an eighth of that peak; then again each time what is left halves (see
/// [`InUse::tail`]). False at once otherwise: a steady load, or an idle proxy. The caller gives the memory
/// back, then calls [`trimmed`].
pub fn burst_over() -> bool {
    IN_USE.with(|c| {
        let n = c.get();
        n.peak >= BURST_BUFFERS && n.live <= n.tail.unwrap_or(n.peak >> BURST_OVER_SHIFT)
    })
}

/// The memory of a burst was given back: the next trim is due when what is left halves, or with the
/// next burst if nothing is left.
pub fn trimmed() {
    IN_USE.with(|c| {
        let mut n = c.get();
        if n.live == 0 {
            n.peak = 0;
            n.tail = None;
        } else {
            n.tail = Some(n.live / 2);
        }
        c.set(n);
    });
}

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
            give_storage(std::mem::take(&mut self.storage));
            count_freed();
        }
    }

    /// One `read` into the free space: `(bytes read, bytes offered)`. Zero read means end of stream; a full
    /// buffer is the caller's to check.
    pub fn read_from<R: Read>(&mut self, source: &mut R) -> io::Result<(usize, usize)> {
        if self.storage.is_empty() {
            self.storage = take_storage(INITIAL_STORAGE.min(self.capacity));
            count_allocated();
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

impl Drop for Buffer {
    fn drop(&mut self) {
        if !self.storage.is_empty() {
            give_storage(std::mem::take(&mut self.storage));
            count_freed();
        }
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
    fn an_emptied_storage_is_reused_by_the_next_buffer_and_dropped_after_a_burst() {
        drop_spares();
        let mut first = Buffer::new(64 * 1024);
        first
            .read_from(&mut &b"GET / HTTP/1.1\r\n\r\n"[..])
            .unwrap();
        let storage = first.storage.as_ptr();
        first.consume(first.len());
        first.release_if_empty();
        let mut next = Buffer::new(64 * 1024);
        assert_eq!(
            next.read_from(&mut &b"next"[..]).unwrap(),
            (4, INITIAL_STORAGE)
        );
        assert_eq!(
            next.storage.as_ptr(),
            storage,
            "the spare storage, not a new one"
        );
        assert_eq!(next.data(), b"next", "old bytes are never seen");
        drop(next);
        assert_eq!(SPARES.with(|s| s.borrow().len()), 1);
        // Grown storages are not kept, and the list is bounded.
        let mut grown = Buffer::new(64 * 1024);
        grown.read_from(&mut &[1u8; INITIAL_STORAGE][..]).unwrap();
        assert_eq!(grown.storage.len(), 2 * INITIAL_STORAGE);
        drop(grown);
        let many: Vec<Buffer> = (0..2 * SPARE_STORAGES)
            .map(|_| {
                let mut b = Buffer::new(64 * 1024);
                b.read_from(&mut &b"x"[..]).unwrap();
                b
            })
            .collect();
        drop(many);
        assert_eq!(SPARES.with(|s| s.borrow().len()), SPARE_STORAGES);
        drop_spares();
        assert_eq!(SPARES.with(|s| s.borrow().len()), 0);
    }

    #[test]
    fn starts_small_and_grows_to_its_capacity_while_bytes_pile_up() {
        let mut buf = Buffer::new(64 * 1024);
        let data = vec![7u8; 100 * 1024];
        let mut src: &[u8] = &data;
        assert_eq!(
            buf.read_from(&mut src).unwrap(),
            (INITIAL_STORAGE, INITIAL_STORAGE)
        );
        assert_eq!(
            buf.storage.len(),
            2 * INITIAL_STORAGE,
            "a read that filled it makes it grow"
        );
        while !buf.is_full() {
            buf.read_from(&mut src).unwrap();
        }
        assert_eq!(buf.len(), 64 * 1024);
        assert_eq!(buf.storage.len(), 64 * 1024, "never beyond its capacity");
    }

    #[test]
    fn a_burst_is_over_once_most_of_its_buffers_are_freed_and_again_as_its_tail_halves() {
        // Thread-local counts: this test's thread starts from zero.
        let mut buffers: Vec<Buffer> = (0..BURST_BUFFERS).map(|_| Buffer::new(8)).collect();
        for buf in &mut buffers {
            buf.read_from(&mut &b"x"[..]).unwrap();
        }
        assert!(!burst_over(), "in full swing");
        let eighth = BURST_BUFFERS / 8;
        buffers.truncate(eighth + 1);
        assert!(!burst_over(), "still above an eighth of the peak");
        buffers.pop();
        assert!(burst_over(), "down to an eighth of the peak");
        trimmed();
        assert!(!burst_over(), "reported once");
        buffers.truncate(eighth / 2 + 1);
        assert!(!burst_over(), "the tail has not halved yet");
        buffers.pop();
        assert!(burst_over(), "the tail halved");
        trimmed();
        let mut trims = 0;
        while !buffers.is_empty() {
            buffers.pop();
            if burst_over() {
                trimmed();
                trims += 1;
            }
        }
        assert_eq!(trims, 5, "16 left: trimmed at 8, 4, 2, 1 and none");
        assert!(!burst_over(), "the burst is over for good");
        // A dip in a steady load of fewer than BURST_BUFFERS is no burst.
        let mut steady: Vec<Buffer> = (0..BURST_BUFFERS - 1).map(|_| Buffer::new(8)).collect();
        for buf in &mut steady {
            buf.read_from(&mut &b"x"[..]).unwrap();
        }
        steady.clear();
        assert!(!burst_over());
    }
}
