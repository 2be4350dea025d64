//! The facts the threads share without messages: each instance's traffic ([`Activity`], written by
//! whoever carries a request and read by the supervisor), the place a request holds on it ([`Lease`]),
//! which threads wait on a full pool ([`Waiting`]), and the one clock they stamp it all with.

use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::output::{OutputLine, OutputTail};
use super::Thread;
/// One flag per request thread: it holds requests for a pool whose instances are at `max_in_flight`.
/// A thread whose request on that pool ends tells the other thread when its flag is set, so a place the
/// one frees is never left empty while the other's queue waits. A thread sets its flag *before* its last
/// try for a place and the other ends its request *before* reading the flag (both sequentially
/// consistent), so one of the two always sees the other.
#[derive(Debug, Default)]
pub struct Waiting(AtomicU8);

impl Waiting {
    pub fn set(&self, thread: Thread, on: bool) {
        let bit = 1u8 << thread as u8;
        match on {
            true => self.0.fetch_or(bit, Ordering::SeqCst),
            false => self.0.fetch_and(!bit, Ordering::SeqCst),
        };
    }

    pub fn is_set(&self, thread: Thread) -> bool {
        self.0.load(Ordering::SeqCst) & (1u8 << thread as u8) != 0
    }
}

/// One request (or stream, or tunnel) counted in flight on an instance until it is dropped: admission
/// takes it (so a `max_in_flight` is never exceeded, whichever thread admits), and whatever carries the
/// request keeps it, so no path can forget to count the end.
#[derive(Debug)]
pub struct Lease {
    /// `None` once ended.
    activity: Option<Arc<Activity>>,
    clock: Clock,
}

impl Lease {
    /// Counts one more in flight if fewer than `limit` are (`None`: no limit), at `now`.
    pub fn take(activity: &Arc<Activity>, limit: Option<u32>, now: Stamp) -> Option<Lease> {
        activity.try_begin(limit, now.ms).then(|| Lease {
            activity: Some(activity.clone()),
            clock: now.clock,
        })
    }

    /// Counts one more in flight, with no limit to respect.
    pub fn begin(activity: &Arc<Activity>, now: Stamp) -> Lease {
        activity.begin(now.ms);
        Lease {
            activity: Some(activity.clone()),
            clock: now.clock,
        }
    }

    /// Ends the count at `now_ms`, a time the caller has already read (dropping reads the clock).
    pub fn end(mut self, now_ms: u64) {
        if let Some(activity) = self.activity.take() {
            activity.end(now_ms);
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(activity) = self.activity.take() {
            activity.end(self.clock.now_ms());
        }
    }
}

/// One reading of the time, as an `Instant` and as [`Clock`] milliseconds: a thread reads the clock
/// once per turn and stamps what it does with that.
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    pub clock: Clock,
    pub at: Instant,
    pub ms: u64,
}

/// Traffic through one backend, counted by the threads that carry it and read by the supervisor.
#[derive(Debug, Default)]
pub struct Activity {
    /// Requests being forwarded plus open tunnels.
    in_flight: AtomicUsize,
    /// `Clock` milliseconds when `in_flight` last dropped to zero (or traffic last began).
    last_active_ms: AtomicU64,
    /// The most in flight at once since the pool controller last looked ([`take_peak`]); kept by pool
    /// admission only (`try_begin`), so a `[backends]` request pays nothing for it.
    ///
    /// [`take_peak`]: Self::take_peak
    peak_in_flight: AtomicUsize,
    /// What the supervisor knows of the instance for the admin API (`/backends`, `/pools`): written
    /// at lifecycle transitions, read per admin request; rare on both sides, so a lock.
    facts: Mutex<Facts>,
    /// The instance's last lines of output (`GET /backends/{name}/logs`): written per line by the
    /// thread that reads its output, read per admin request; uncontended, so a lock.
    output: Mutex<OutputTail>,
}

/// What the admin API shows of an instance beyond its state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// What the running program last said of itself (`STATUS=` on its `NOTIFY_SOCKET`).
    pub status: Option<String>,
    /// "pid 1234" or "container NAME ID" while it runs.
    pub process: Option<String>,
    /// Unix seconds of its last start.
    pub started_at: Option<u64>,
    /// How the last run ended ("status 0", "signal SIGKILL").
    pub last_exit: Option<String>,
    /// Why the last failed start failed.
    pub last_start_failure: Option<String>,
}

impl Activity {
    pub fn begin(&self, now_ms: u64) {
        self.last_active_ms.store(now_ms, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::SeqCst);
    }

    /// [`begin`](Self::begin), unless `limit` are in flight already: one atomic step, so two threads
    /// admitting at once cannot both take the last place.
    pub fn try_begin(&self, limit: Option<u32>, now_ms: u64) -> bool {
        let limit = limit.map_or(usize::MAX, |l| l as usize);
        let taken = self
            .in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            });
        let Ok(before) = taken else {
            return false;
        };
        self.last_active_ms.store(now_ms, Ordering::Relaxed);
        self.peak_in_flight.fetch_max(before + 1, Ordering::Relaxed);
        true
    }

    /// The most requests in flight at once since the last call (at least those in flight now), and a
    /// new window begins.
    pub fn take_peak(&self) -> usize {
        let now = self.in_flight.load(Ordering::Acquire);
        self.peak_in_flight.swap(now, Ordering::Relaxed).max(now)
    }

    pub fn end(&self, now_ms: u64) {
        self.last_active_ms.store(now_ms, Ordering::Relaxed);
        // Saturate rather than wrap if a bug ever ends more than it began.
        let _ = self
            .in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    pub fn last_active_ms(&self) -> u64 {
        self.last_active_ms.load(Ordering::Relaxed)
    }

    /// Replaces the program's status line (`None`: it has said nothing since it was started).
    pub fn set_status(&self, status: Option<String>) {
        self.update_facts(|facts| facts.status = status);
    }

    pub fn status(&self) -> Option<String> {
        self.facts().status
    }

    pub fn facts(&self) -> Facts {
        // A poisoned lock only means a panic elsewhere mid-write of plain strings: take it anyway.
        self.facts.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn update_facts(&self, change: impl FnOnce(&mut Facts)) {
        change(&mut self.facts.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Keeps one line the instance wrote (the oldest beyond the bounds are forgotten).
    pub fn push_output(&self, line: OutputLine) {
        self.output_tail().push(line);
    }

    /// Counts lines kept but left out of the proxy's log.
    pub fn count_not_logged(&self, lines: u64) {
        self.output_tail().count_not_logged(lines);
    }

    /// The kept lines, oldest first, and how many lines were left out of the log.
    pub fn output(&self) -> (Vec<OutputLine>, u64) {
        let tail = self.output_tail();
        (tail.lines().cloned().collect(), tail.not_logged())
    }

    fn output_tail(&self) -> std::sync::MutexGuard<'_, OutputTail> {
        // As for the facts: a panic mid-push leaves whole lines only.
        self.output.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Monotonic milliseconds since the process started, shared by all threads so `Activity` stamps agree.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: Instant,
}

impl Clock {
    pub fn new() -> Self {
        Clock {
            epoch: Instant::now(),
        }
    }

    pub fn ms(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_millis() as u64
    }

    pub fn now_ms(&self) -> u64 {
        self.ms(Instant::now())
    }

    /// `at`, in both forms.
    pub fn stamp(self, at: Instant) -> Stamp {
        Stamp {
            clock: self,
            at,
            ms: self.ms(at),
        }
    }

    pub fn instant(&self, ms: u64) -> Instant {
        self.epoch + Duration::from_millis(ms)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(clock: Clock, ms: u64) -> Stamp {
        clock.stamp(clock.instant(ms))
    }

    #[test]
    fn a_lease_takes_a_place_under_the_limit_and_gives_it_back_once() {
        let clock = Clock::new();
        let activity = Arc::new(Activity::default());
        let first = Lease::take(&activity, Some(2), stamp(clock, 10)).expect("room");
        let second = Lease::take(&activity, Some(2), stamp(clock, 20)).expect("room");
        assert!(
            Lease::take(&activity, Some(2), stamp(clock, 30)).is_none(),
            "full"
        );
        assert_eq!(activity.in_flight(), 2);
        assert_eq!(
            activity.last_active_ms(),
            20,
            "a refused take stamps nothing"
        );
        first.end(40);
        assert_eq!((activity.in_flight(), activity.last_active_ms()), (1, 40));
        drop(second);
        assert_eq!(activity.in_flight(), 0, "dropping ends it too");
        let unlimited: Vec<Lease> = (0..5)
            .map(|_| Lease::begin(&activity, stamp(clock, 50)))
            .collect();
        assert_eq!(activity.in_flight(), 5);
        drop(unlimited);
        assert_eq!(activity.in_flight(), 0);
    }

    #[test]
    fn two_threads_never_take_more_places_than_the_limit() {
        let clock = Clock::new();
        let activity = Arc::new(Activity::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let activity = activity.clone();
                std::thread::spawn(move || {
                    let mut most = 0;
                    for _ in 0..10_000 {
                        if let Some(lease) =
                            Lease::take(&activity, Some(3), clock.stamp(Instant::now()))
                        {
                            most = most.max(activity.in_flight());
                            drop(lease);
                        }
                    }
                    most
                })
            })
            .collect();
        for thread in threads {
            assert!(thread.join().expect("a thread") <= 3);
        }
        assert_eq!(activity.in_flight(), 0);
    }

    #[test]
    fn each_thread_has_its_own_waiting_flag() {
        let waiting = Waiting::default();
        waiting.set(Thread::H2, true);
        assert!(waiting.is_set(Thread::H2) && !waiting.is_set(Thread::Reactor));
        waiting.set(Thread::Reactor, true);
        waiting.set(Thread::H2, false);
        assert!(!waiting.is_set(Thread::H2) && waiting.is_set(Thread::Reactor));
        assert_eq!(Thread::H2.other(), Thread::Reactor);
    }
}
