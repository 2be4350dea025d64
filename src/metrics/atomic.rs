//! The three kinds of value the metrics are made of, each a handful of atomics written with relaxed adds
//! (no lock, no allocation on the request path) and read at scrape time. A scrape may see one histogram
//! observation counted in its bucket but not yet in its sum; Prometheus tolerates that.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Only ever goes up.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Goes up and down (open connections, streams).
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn set(&self, value: i64) {
        self.0.store(value, Ordering::Relaxed);
    }

    /// Never below zero, even if a decrement raced ahead of its increment.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed).max(0) as u64
    }
}

/// Upper bounds of a histogram's buckets, in seconds (ascending; `+Inf` is implied).
#[derive(Debug)]
pub struct Buckets {
    /// As Prometheus prints them in `le`.
    pub labels: &'static [&'static str],
    pub micros: &'static [u64],
}

/// Request and response-head durations: 5 ms to a minute.
pub const REQUEST_BUCKETS: Buckets = Buckets {
    labels: &[
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60",
    ],
    micros: &[
        5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
        10_000_000, 30_000_000, 60_000_000,
    ],
};

/// Start-to-ready durations: 50 ms (a small native program) to two minutes (an image pull).
pub const START_BUCKETS: Buckets = Buckets {
    labels: &[
        "0.05", "0.1", "0.25", "0.5", "1", "2", "5", "10", "30", "60", "120",
    ],
    micros: &[
        50_000,
        100_000,
        250_000,
        500_000,
        1_000_000,
        2_000_000,
        5_000_000,
        10_000_000,
        30_000_000,
        60_000_000,
        120_000_000,
    ],
};

/// Room for the largest bucket set above, plus `+Inf`.
const MAX_SLOTS: usize = 14;

/// Fixed buckets counted separately (made cumulative when rendered); the sum in microseconds.
#[derive(Debug)]
pub struct Histogram {
    buckets: &'static Buckets,
    counts: [AtomicU64; MAX_SLOTS],
    sum_micros: AtomicU64,
}

/// One reading of a histogram, cumulative as the exposition wants it.
#[derive(Debug, Clone)]
pub struct HistogramSnapshot {
    pub buckets: &'static Buckets,
    /// Per bound, then `+Inf` (= the count).
    pub cumulative: Vec<u64>,
    pub sum_seconds: f64,
}

impl HistogramSnapshot {
    pub fn count(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0)
    }
}

impl Histogram {
    pub fn new(buckets: &'static Buckets) -> Histogram {
        debug_assert!(buckets.micros.len() < MAX_SLOTS);
        debug_assert_eq!(buckets.micros.len(), buckets.labels.len());
        Histogram {
            buckets,
            counts: Default::default(),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: Duration) {
        // In 64-bit arithmetic (a `u128` product and division otherwise); saturating past 584,000 years.
        let micros = value
            .as_secs()
            .saturating_mul(1_000_000)
            .saturating_add(u64::from(value.subsec_micros()));
        // The first bucket that holds it, scanned from the shortest: a proxied request usually lands in
        // the first few, where this beats a binary search (which takes four steps for every value).
        let slot = self
            .buckets
            .micros
            .iter()
            .position(|&bound| micros <= bound)
            .unwrap_or(self.buckets.micros.len());
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Observations so far (a total for the status view, without a snapshot's allocation).
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let slots = self.buckets.micros.len() + 1;
        let mut total = 0;
        let cumulative = self.counts[..slots]
            .iter()
            .map(|c| {
                total += c.load(Ordering::Relaxed);
                total
            })
            .collect();
        HistogramSnapshot {
            buckets: self.buckets,
            cumulative,
            sum_seconds: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them_and_add_up() {
        let h = Histogram::new(&REQUEST_BUCKETS);
        h.observe(Duration::from_millis(5)); // on the bound: le="0.005"
        h.observe(Duration::from_millis(7));
        h.observe(Duration::from_secs(61)); // past the last bound: +Inf only
        let s = h.snapshot();
        assert_eq!(s.cumulative.len(), REQUEST_BUCKETS.micros.len() + 1);
        assert_eq!(&s.cumulative[..3], &[1, 2, 2]);
        assert_eq!(s.cumulative[REQUEST_BUCKETS.micros.len() - 1], 2);
        assert_eq!(s.count(), 3);
        assert!((s.sum_seconds - 61.012).abs() < 1e-9);
    }

    #[test]
    fn bucket_labels_match_their_bounds() {
        for buckets in [&REQUEST_BUCKETS, &START_BUCKETS] {
            assert!(buckets.micros.len() < MAX_SLOTS);
            for (label, micros) in buckets.labels.iter().zip(buckets.micros) {
                let seconds: f64 = label.parse().expect("a number");
                assert_eq!((seconds * 1e6).round() as u64, *micros);
            }
            assert!(buckets.micros.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn a_gauge_never_reads_below_zero() {
        let g = Gauge::default();
        g.dec();
        assert_eq!(g.get(), 0);
        g.inc();
        g.inc();
        assert_eq!(g.get(), 1);
    }
}
