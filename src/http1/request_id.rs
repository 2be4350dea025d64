//! `X-Request-ID` values: the client's own if it is sane, otherwise one we make.
//!
//! Generated ids are 32 lower-case hex digits. The first half is a keyed bijection of a per-generator
//! counter, so ids never repeat within one generator (2^64 calls); the second half mixes the counter with
//! the other key so ids from different processes (different seeds) do not share structure.

/// Longest client-supplied id we pass on; longer ones are replaced, which bounds what a client can make
/// us copy into every forwarded head and log line.
pub const MAX_CLIENT_ID_LEN: usize = 200;

/// Makes request ids. Not cryptographic: ids must be unique and not trivially sequential, not secret.
#[derive(Debug, Clone)]
pub struct RequestIdGenerator {
    keys: [u64; 2],
    counter: u64,
}

impl RequestIdGenerator {
    /// A generator seeded from std's per-process random keys (no extra dependency for randomness);
    /// each call gives another seed, so the reactor's and the h2 worker's ids do not share structure.
    pub fn seeded() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let state = std::collections::hash_map::RandomState::new();
        let mut a = state.build_hasher();
        a.write_u64(u64::from(std::process::id()));
        let mut b = state.build_hasher();
        b.write_u64(a.finish() ^ 0x9e37_79b9_7f4a_7c15);
        Self::new([a.finish(), b.finish()])
    }

    /// `seed` should come from a random source (the caller uses std's `RandomState`).
    pub fn new(seed: [u64; 2]) -> Self {
        RequestIdGenerator {
            keys: seed,
            counter: 0,
        }
    }

    pub fn next_id(&mut self) -> [u8; 32] {
        let count = self.counter;
        self.counter = self.counter.wrapping_add(1);
        let unique_half = mix(count.wrapping_add(self.keys[0]));
        let keyed_half = mix(count.rotate_left(32) ^ self.keys[1]);
        let mut id = [0u8; 32];
        write_hex(unique_half, &mut id[..16]);
        write_hex(keyed_half, &mut id[16..]);
        id
    }
}

/// The splitmix64 finaliser: a bijection on u64 whose output bits all depend on every input bit.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn write_hex(value: u64, out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, slot) in out.iter_mut().enumerate().take(16) {
        let shift = 60 - 4 * i as u32;
        *slot = DIGITS[((value >> shift) & 0xf) as usize];
    }
}

/// Whether a client's `X-Request-ID` is passed on as is: 1 to [`MAX_CLIENT_ID_LEN`] bytes of visible
/// ASCII. Spaces, control characters and non-ASCII are refused so the id is safe in logs and headers.
pub fn is_acceptable_client_id(value: &[u8]) -> bool {
    !value.is_empty()
        && value.len() <= MAX_CLIENT_ID_LEN
        && value.iter().all(|b| (0x21..=0x7e).contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_32_lower_case_hex_digits() {
        let mut ids = RequestIdGenerator::new([1, 2]);
        for _ in 0..100 {
            let id = ids.next_id();
            assert!(id
                .iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)));
        }
    }

    #[test]
    fn ids_do_not_repeat() {
        let mut ids = RequestIdGenerator::new([0xdead_beef, 42]);
        let mut seen = HashSet::new();
        for _ in 0..100_000 {
            assert!(seen.insert(ids.next_id()));
        }
    }

    #[test]
    fn different_seeds_give_different_sequences() {
        let mut a = RequestIdGenerator::new([1, 2]);
        let mut b = RequestIdGenerator::new([3, 4]);
        assert_ne!(a.next_id(), b.next_id());
        let mut c = RequestIdGenerator::new([1, 2]);
        let mut d = RequestIdGenerator::new([1, 2]);
        assert_eq!(c.next_id(), d.next_id());
    }

    #[test]
    fn the_counter_wraps_instead_of_panicking() {
        let mut ids = RequestIdGenerator::new([0, 0]);
        ids.counter = u64::MAX;
        let last = ids.next_id();
        let first = ids.next_id();
        assert_ne!(last, first);
    }

    #[test]
    fn client_ids_must_be_short_visible_ascii() {
        assert!(is_acceptable_client_id(b"abc-123"));
        assert!(is_acceptable_client_id(b"~!{}[]"));
        assert!(is_acceptable_client_id(&[b'a'; MAX_CLIENT_ID_LEN]));
        assert!(!is_acceptable_client_id(&[b'a'; MAX_CLIENT_ID_LEN + 1]));
        assert!(!is_acceptable_client_id(b""));
        assert!(!is_acceptable_client_id(b"a b"));
        assert!(!is_acceptable_client_id(b"a\tb"));
        assert!(!is_acceptable_client_id(b"a\x7fb"));
        assert!(!is_acceptable_client_id("é".as_bytes()));
    }
}
