//! When the ACME thread acts for one certificate: at start-up (use what storage holds or order now),
//! after an issue (renew when a third of the lifetime is left) and after a failure (back off). Sans-IO
//! on Unix seconds, so every rule is a unit test; the thread only reads the clock and sleeps.

use std::time::Duration;

/// Waits after consecutive failures (certmagic's `retryIntervals`, shortened at the start): quick
/// retries for a passing problem (a restarting CA, a listener not yet reachable), then slower ones so a
/// lasting problem does not spend the CA's failed-validation limit (5 per name per hour at Let's
/// Encrypt). The last one repeats.
const BACKOFF_SECS: [i64; 10] = [
    60,
    2 * 60,
    5 * 60,
    10 * 60,
    20 * 60,
    30 * 60,
    60 * 60,
    2 * 60 * 60,
    4 * 60 * 60,
    6 * 60 * 60,
];

/// Longest the thread sleeps before it looks at the clock again: timers run on the monotonic clock,
/// which stops while a VM is suspended, and a certificate's dates are wall-clock time.
pub const MAX_SLEEP: Duration = Duration::from_secs(60 * 60);

/// The start and end of a certificate's validity, Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    pub not_before: i64,
    pub not_after: i64,
}

impl Lifetime {
    /// When to renew: a third of the lifetime before its end (certmagic's default ratio, certbot's
    /// too), so a 90-day certificate is renewed 30 days early and a CA outage of weeks is survived.
    pub fn renew_at(&self) -> i64 {
        let lifetime = (self.not_after - self.not_before).max(0);
        self.not_after - lifetime / 3
    }

    pub fn is_valid(&self, now: i64) -> bool {
        self.not_before <= now && now < self.not_after
    }
}

/// What to do at start-up with what storage holds for a name set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Serve the stored certificate now and renew at `renew_at` (which may be now already).
    Use { renew_at: i64 },
    /// Nothing usable is stored (none, expired, or not yet valid): order now.
    OrderNow,
}

pub fn at_start(stored: Option<Lifetime>, now: i64) -> Start {
    match stored {
        Some(lifetime) if lifetime.is_valid(now) => Start::Use {
            renew_at: lifetime.renew_at(),
        },
        _ => Start::OrderNow,
    }
}

/// One certificate's timer: when it is next due and how many orders in a row failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertSchedule {
    due: i64,
    failures: u32,
}

impl CertSchedule {
    /// The schedule for what storage holds at start-up, and whether to serve it.
    pub fn start(stored: Option<Lifetime>, now: i64) -> (CertSchedule, Start) {
        let start = at_start(stored, now);
        let due = match start {
            Start::Use { renew_at } => renew_at,
            Start::OrderNow => now,
        };
        (CertSchedule { due, failures: 0 }, start)
    }

    /// A certificate was issued (or found in storage, fresh, after waiting for another proxy's order).
    pub fn issued(&mut self, lifetime: Lifetime) {
        self.failures = 0;
        self.due = lifetime.renew_at();
    }

    /// An order failed at `now`; returns when to try again.
    pub fn failed(&mut self, now: i64) -> i64 {
        let index = (self.failures as usize).min(BACKOFF_SECS.len() - 1);
        self.failures = self.failures.saturating_add(1);
        self.due = now + BACKOFF_SECS[index];
        self.due
    }

    pub fn due(&self) -> i64 {
        self.due
    }

    pub fn is_due(&self, now: i64) -> bool {
        self.due <= now
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// How long to sleep at `now` for something due at `due`: not past it, and never longer than
/// [`MAX_SLEEP`].
pub fn sleep_for(due: i64, now: i64) -> Duration {
    let secs = u64::try_from(due.saturating_sub(now)).unwrap_or(0);
    Duration::from_secs(secs).min(MAX_SLEEP)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 24 * 60 * 60;

    fn life(not_before: i64, not_after: i64) -> Lifetime {
        Lifetime {
            not_before,
            not_after,
        }
    }

    #[test]
    fn renews_with_a_third_of_the_lifetime_left() {
        assert_eq!(life(0, 90 * DAY).renew_at(), 60 * DAY);
        assert_eq!(
            life(1000, 1120).renew_at(),
            1080,
            "120 s: 40 s before the end"
        );
        assert_eq!(life(0, 45 * DAY).renew_at(), 30 * DAY);
        // Dates the wrong way round (a broken certificate): due at its end, not before its start.
        assert_eq!(life(500, 100).renew_at(), 100);
    }

    #[test]
    fn start_up_uses_a_valid_certificate_and_orders_otherwise() {
        let stored = life(0, 90 * DAY);
        assert_eq!(
            at_start(Some(stored), DAY),
            Start::Use { renew_at: 60 * DAY }
        );
        // In the renewal window: served meanwhile, renewed at once.
        let (schedule, start) = CertSchedule::start(Some(stored), 70 * DAY);
        assert_eq!(start, Start::Use { renew_at: 60 * DAY });
        assert!(schedule.is_due(70 * DAY));
        // Expired, not yet valid, or nothing: order now.
        assert_eq!(at_start(Some(stored), 90 * DAY), Start::OrderNow);
        assert_eq!(at_start(Some(life(10, 20)), 5), Start::OrderNow);
        assert_eq!(at_start(None, 5), Start::OrderNow);
        let (schedule, _) = CertSchedule::start(None, 5);
        assert_eq!(schedule.due(), 5);
    }

    #[test]
    fn failures_back_off_up_to_six_hours_and_an_issue_resets() {
        let (mut schedule, _) = CertSchedule::start(None, 0);
        let waits: Vec<i64> = (0..12).map(|_| schedule.failed(1_000) - 1_000).collect();
        assert_eq!(
            waits,
            [60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 21600, 21600, 21600]
        );
        assert_eq!(schedule.failures(), 12);
        schedule.issued(life(2_000, 2_000 + 90 * DAY));
        assert_eq!(schedule.failures(), 0);
        assert_eq!(schedule.due(), 2_000 + 60 * DAY);
        assert!(!schedule.is_due(2_000 + 59 * DAY));
        assert_eq!(schedule.failed(3_000), 3_060, "back to the first wait");
    }

    #[test]
    fn sleeps_are_capped_and_never_negative() {
        assert_eq!(sleep_for(100, 40), Duration::from_secs(60));
        assert_eq!(sleep_for(100, 400), Duration::ZERO);
        assert_eq!(sleep_for(60 * DAY, 0), MAX_SLEEP);
        assert_eq!(sleep_for(i64::MAX, i64::MIN), MAX_SLEEP);
    }
}
