//! How many in-progress streams a client may reset before its connection is cut off.
//!
//! A stream reset by the client after it was accepted still cost a routing decision and often a backend
//! request; a client that opens and resets streams in a loop (the "Rapid Reset" attack, CVE-2023-44487)
//! makes the proxy do that work without ever reading a response. The h2 crate already caps resets of
//! streams not yet accepted (`max_pending_accept_reset_streams`); this token bucket covers the rest. A
//! browser cancelling a page's requests spends a burst once; only a sustained stream of resets runs out.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct ResetBudget {
    /// Tokens left, in thousandths so refills are exact integers.
    milli_tokens: u64,
    capacity_milli: u64,
    refill_per_sec: u64,
    last: Instant,
}

impl ResetBudget {
    /// `burst` resets at once, refilled at `per_sec`.
    pub fn new(burst: u32, per_sec: u32, now: Instant) -> Self {
        let capacity_milli = u64::from(burst) * 1000;
        ResetBudget {
            milli_tokens: capacity_milli,
            capacity_milli,
            refill_per_sec: u64::from(per_sec),
            last: now,
        }
    }

    /// Counts one client reset; false once the budget is spent (the caller cuts the connection off).
    pub fn spend(&mut self, now: Instant) -> bool {
        let elapsed_ms = now.saturating_duration_since(self.last).as_millis();
        let elapsed_ms = u64::try_from(elapsed_ms).unwrap_or(u64::MAX);
        // Advance by whole milliseconds only, so frequent calls do not lose the fractions.
        if let Some(advanced) = self.last.checked_add(Duration::from_millis(elapsed_ms)) {
            self.last = advanced;
        }
        let refill = elapsed_ms.saturating_mul(self.refill_per_sec);
        self.milli_tokens = self
            .milli_tokens
            .saturating_add(refill)
            .min(self.capacity_milli);
        match self.milli_tokens.checked_sub(1000) {
            Some(left) => {
                self.milli_tokens = left;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refilled_at_the_rate() {
        let start = Instant::now();
        let mut budget = ResetBudget::new(3, 10, start);
        assert!(budget.spend(start));
        assert!(budget.spend(start));
        assert!(budget.spend(start));
        assert!(!budget.spend(start));
        // 10 per second: one token every 100 ms.
        assert!(!budget.spend(start + Duration::from_millis(50)));
        assert!(budget.spend(start + Duration::from_millis(100)));
        assert!(!budget.spend(start + Duration::from_millis(100)));
        // Never more than the burst, however long the pause.
        let later = start + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(budget.spend(later));
        }
        assert!(!budget.spend(later));
    }

    #[test]
    fn time_going_backwards_does_not_refill() {
        let start = Instant::now() + Duration::from_secs(10);
        let mut budget = ResetBudget::new(1, 1000, start);
        assert!(budget.spend(start));
        assert!(!budget.spend(start - Duration::from_secs(5)));
    }
}
