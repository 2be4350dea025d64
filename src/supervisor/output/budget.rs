//! How much of the output thread's time writing the log may take. Reading the pipes must keep up with
//! the backends (a pipe not drained blocks the program on its next write); the log is written where the
//! proxy's stderr goes, which may be slower than a backend in a loop of prints. So each window of
//! [`WINDOW`] the log gets [`LOG_SHARE`] of it: once the lines logged in a window took that long, the rest
//! of the window's lines are kept (for `/backends/{name}/logs`) but not logged, and counted. A log that
//! keeps up never hits the bound; one that does not still gets most of the thread's time. Sans-IO: the
//! caller measures and passes the time.

use std::time::{Duration, Instant};

pub const WINDOW: Duration = Duration::from_secs(1);
pub const LOG_SHARE: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct LogBudget {
    window_start: Instant,
    spent: Duration,
}

impl LogBudget {
    pub fn new(now: Instant) -> Self {
        LogBudget {
            window_start: now,
            spent: Duration::ZERO,
        }
    }

    /// Whether one more line may be logged in this window.
    pub fn allows(&self) -> bool {
        self.spent < LOG_SHARE
    }

    /// Logging took `took`.
    pub fn spend(&mut self, took: Duration) {
        self.spent = self.spent.saturating_add(took);
    }

    /// When the current window ends.
    pub fn window_end(&self) -> Instant {
        self.window_start + WINDOW
    }

    /// Begins a new window if the current one is over; true when it did.
    pub fn roll(&mut self, now: Instant) -> bool {
        if now < self.window_end() {
            return false;
        }
        self.window_start = now;
        self.spent = Duration::ZERO;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fast_log_is_never_refused() {
        let start = Instant::now();
        let mut budget = LogBudget::new(start);
        for i in 0..10_000u32 {
            assert!(budget.allows());
            // 10,000 lines at 10 µs each within one window: 100 ms of it.
            budget.spend(Duration::from_micros(10));
            assert!(!budget.roll(start + Duration::from_micros(u64::from(i))));
        }
    }

    #[test]
    fn a_slow_log_gets_its_share_then_waits_for_the_next_window() {
        let start = Instant::now();
        let mut budget = LogBudget::new(start);
        let mut logged = 0;
        while budget.allows() {
            budget.spend(Duration::from_millis(20));
            logged += 1;
        }
        assert_eq!(logged, 25, "500 ms at 20 ms a line");
        assert!(!budget.roll(start + Duration::from_millis(999)));
        assert!(!budget.allows());
        assert_eq!(budget.window_end(), start + WINDOW);
        assert!(budget.roll(start + WINDOW));
        assert!(budget.allows());
        assert_eq!(budget.window_end(), start + WINDOW * 2);
    }
}
