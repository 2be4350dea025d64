//! The wall-clock time of a monotonic instant, for a line's `time`, without reading the wall clock for
//! every line: each thread pairs the two clocks once a second and adds the monotonic difference. A
//! step of the wall clock shows in the lines within a second; a slew moves them by well under a
//! millisecond, the precision of the line.

use std::cell::Cell;
#[cfg(test)]
use std::time::SystemTime;
use std::time::{Duration, Instant, UNIX_EPOCH};

/// How long one pairing of the clocks is used.
const REPAIR: Duration = Duration::from_secs(1);

thread_local! {
    /// A monotonic instant and the wall-clock time then, as time since the epoch (what a line
    /// writes), so that a line's time is one subtraction and one addition of durations.
    static ANCHOR: Cell<Option<(Instant, Duration)>> = const { Cell::new(None) };
}

/// The wall-clock time at `at`.
#[cfg(test)]
pub(super) fn wall(at: Instant) -> SystemTime {
    UNIX_EPOCH + since_epoch(at)
}

/// The wall-clock time at `at`, as time since the epoch.
pub(super) fn since_epoch(at: Instant) -> Duration {
    if let Some((mono, wall)) = ANCHOR.get() {
        match at.checked_duration_since(mono) {
            Some(since) if since < REPAIR => return wall.checked_add(since).unwrap_or(wall),
            Some(_) => {}
            // Before the pairing (a request that began before it): as far back from it.
            None => return wall.saturating_sub(mono - at),
        }
    }
    let mono = Instant::now();
    let wall = UNIX_EPOCH.elapsed().unwrap_or(Duration::ZERO);
    ANCHOR.set(Some((mono, wall)));
    match at.checked_duration_since(mono) {
        Some(since) => wall.checked_add(since).unwrap_or(wall),
        None => wall.saturating_sub(mono - at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: SystemTime, expect: SystemTime) -> bool {
        let off = got.duration_since(expect).unwrap_or_else(|e| e.duration());
        off < Duration::from_millis(2)
    }

    #[test]
    fn instants_map_to_the_wall_clock() {
        let (now, wall_now) = (Instant::now(), SystemTime::now());
        let ms = Duration::from_millis;
        let before = now.checked_sub(ms(1500)).unwrap_or(now);
        // Paired now; earlier and later instants from the same pairing, then one far enough ahead
        // that the clocks are paired again.
        for (at, expect) in [
            (now, wall_now),
            (before, wall_now - (now - before)),
            (now + ms(250), wall_now + ms(250)),
            (now + ms(2500), wall_now + ms(2500)),
            (now, wall_now),
        ] {
            let got = wall(at);
            assert!(close(got, expect), "{got:?} vs {expect:?}");
        }
    }
}
