//! What the fuzz targets share: where to cut an input into the reads a socket would have delivered, from
//! a tiny generator seeded by one input byte (so libFuzzer explores the splits along with the bytes).

/// A xorshift generator of cut points.
pub struct Cuts {
    state: u32,
}

impl Cuts {
    pub fn seeded(seed: u8) -> Cuts {
        Cuts {
            state: u32::from(seed).wrapping_mul(2_654_435_761) | 1,
        }
    }

    pub fn next(&mut self) -> usize {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 17;
        self.state ^= self.state << 5;
        self.state as usize
    }

    /// `count` cut points in `0..=len`, sorted (repeats allowed: an empty read).
    pub fn points(&mut self, count: usize, len: usize) -> Vec<usize> {
        let mut cuts: Vec<usize> = (0..count).map(|_| self.next() % (len + 1)).collect();
        cuts.sort_unstable();
        cuts
    }
}
