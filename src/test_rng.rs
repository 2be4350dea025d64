//! The unit tests' one source of pseudo-random input: a xorshift generator, seeded, so a test that
//! feeds random streams or bytes repeats exactly.

pub struct XorShift(u64);

impl XorShift {
    /// `seed` must not be zero (xorshift would stay at zero).
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}
