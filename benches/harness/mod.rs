//! A small timing harness for `harness = false` benchmarks.
//!
//! `cargo bench` passes `--bench`: each case is warmed up, its iteration count calibrated so one sample
//! lasts about [`SAMPLE_TARGET`], and the median of [`SAMPLES`] samples is reported. Without `--bench`
//! (as `cargo test --all-targets` runs it) each case runs once, so the cases are checked, not timed.
//! Any other argument is a filter: only cases whose name contains it run.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Time spent running a case before measuring, so caches and branch predictors settle.
const WARM_UP: Duration = Duration::from_millis(300);
/// How long one sample should last: long enough that `Instant` resolution and loop overhead vanish.
const SAMPLE_TARGET: Duration = Duration::from_millis(50);
/// Samples per case; an odd count gives a true median. 21 x 50 ms keeps each case near one second.
const SAMPLES: usize = 21;

pub struct Harness {
    timing: bool,
    filter: Option<String>,
    ran: usize,
}

/// What a measured case reports.
struct Measurement {
    median_ns: f64,
    min_ns: f64,
    max_ns: f64,
}

impl Harness {
    pub fn from_args() -> Harness {
        let mut timing = false;
        let mut filter = None;
        for arg in std::env::args().skip(1) {
            if arg == "--bench" {
                timing = true;
            } else if !arg.starts_with('-') {
                filter = Some(arg);
            }
        }
        if timing {
            println!(
                "{:<52} {:>12} {:>12} {:>12} {:>12}",
                "case", "median", "min", "max", "throughput"
            );
        }
        Harness {
            timing,
            filter,
            ran: 0,
        }
    }

    /// Runs `routine` as the case `name`. `bytes` is the input size of one iteration, for a MB/s figure.
    pub fn run<T>(&mut self, name: &str, bytes: Option<u64>, mut routine: impl FnMut() -> T) {
        if self.filter.as_deref().is_some_and(|f| !name.contains(f)) {
            return;
        }
        self.ran += 1;
        if !self.timing {
            black_box(routine());
            println!("{name}: ok");
            return;
        }
        let m = measure(&mut routine);
        let throughput = match bytes {
            Some(b) => format!("{:.0} MB/s", b as f64 / m.median_ns * 1e3),
            None => format!("{:.2} M/s", 1e3 / m.median_ns),
        };
        println!(
            "{name:<52} {:>12} {:>12} {:>12} {throughput:>12}",
            show_ns(m.median_ns),
            show_ns(m.min_ns),
            show_ns(m.max_ns)
        );
    }

    /// Says how many cases ran, so a filter that matched nothing is visible. A case that failed its
    /// checks has already panicked, so every case counted here passed.
    pub fn finish(self) {
        if self.timing {
            println!("{} cases measured", self.ran);
        } else {
            println!("{} passed, 0 failed", self.ran);
        }
    }
}

fn measure<T>(routine: &mut impl FnMut() -> T) -> Measurement {
    let warm_until = Instant::now() + WARM_UP;
    let mut warm_iterations: u64 = 0;
    let warm_start = Instant::now();
    while Instant::now() < warm_until {
        black_box(routine());
        warm_iterations += 1;
    }
    let per_iteration = warm_start.elapsed().as_secs_f64() / warm_iterations.max(1) as f64;
    let iterations = ((SAMPLE_TARGET.as_secs_f64() / per_iteration) as u64).max(1);

    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let start = Instant::now();
        for _ in 0..iterations {
            black_box(routine());
        }
        samples.push(start.elapsed().as_nanos() as f64 / iterations as f64);
    }
    samples.sort_by(f64::total_cmp);
    Measurement {
        median_ns: samples[SAMPLES / 2],
        min_ns: samples[0],
        max_ns: samples[SAMPLES - 1],
    }
}

fn show_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} us", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}
