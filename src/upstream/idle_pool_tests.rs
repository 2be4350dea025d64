//! The pool's rules on a fake clock: connections are plain numbers and time is an offset from one instant.

use super::*;

const TIMEOUT: Duration = Duration::from_secs(90);

fn limits(max_idle_per_host: usize) -> PoolLimits {
    PoolLimits {
        max_idle_per_host,
        idle_timeout: TIMEOUT,
    }
}

/// A fake clock: `at(ms)` is that many milliseconds after the start.
struct Clock(Instant);

impl Clock {
    fn new() -> Clock {
        Clock(Instant::now())
    }

    fn at(&self, ms: u64) -> Instant {
        self.0 + Duration::from_millis(ms)
    }
}

const A: (u32, u32) = (0, 1);
const B: (u32, u32) = (1, 1);

fn id((slot, generation): (u32, u32)) -> InstanceId {
    InstanceId {
        backend: BackendId::new(slot, generation),
        slot: 0,
    }
}

fn alive(_: &mut u32) -> bool {
    true
}

fn take(pool: &mut IdlePool<u32>, backend: InstanceId, now: Instant) -> Option<u32> {
    let mut closed = Vec::new();
    let found = pool.take(backend, now, alive, |c| closed.push(c));
    assert!(closed.is_empty(), "closed {closed:?} on the way");
    found
}

fn put_kept(
    pool: &mut IdlePool<u32>,
    backend: InstanceId,
    conn: u32,
    now: Instant,
) -> Option<Instant> {
    let put = pool.put(backend, conn, now);
    assert_eq!(put.close, None, "{conn} was not kept");
    put.sweep_by
}

#[test]
fn reuse_is_newest_first_and_skips_the_expired_and_the_dead() {
    let clock = Clock::new();
    let mut pool = IdlePool::new(limits(4));
    for conn in 1..=4 {
        let _ = put_kept(&mut pool, id(A), conn, clock.at(u64::from(conn)));
    }
    assert_eq!(take(&mut pool, id(A), clock.at(10)), Some(4));
    let mut closed = Vec::new();
    let found = pool.take(id(A), clock.at(10), |c| *c != 3, |c| closed.push(c));
    assert_eq!((found, closed), (Some(2), vec![3]), "3 is dead");
    // 1 is past its idle timeout: closed on the way, and nothing is left.
    let mut closed = Vec::new();
    let late = clock.at(1) + TIMEOUT;
    assert_eq!(pool.take(id(A), late, alive, |c| closed.push(c)), None);
    assert_eq!(closed, vec![1]);
    assert!(pool.is_empty());
    assert_eq!(
        take(&mut pool, id(B), late),
        None,
        "another backend has its own list"
    );
}

#[test]
fn the_cap_stays_for_the_idle_timeout_and_the_surplus_for_the_grace() {
    let clock = Clock::new();
    let mut pool = IdlePool::new(limits(2));
    assert_eq!(
        put_kept(&mut pool, id(A), 1, clock.at(0)),
        Some(clock.at(0) + TIMEOUT)
    );
    assert_eq!(put_kept(&mut pool, id(A), 2, clock.at(100)), None);
    // The first connection past the cap makes the oldest surplus: the sweep is due sooner.
    assert_eq!(
        put_kept(&mut pool, id(A), 3, clock.at(200)),
        Some(clock.at(0) + SURPLUS_GRACE)
    );
    assert_eq!(put_kept(&mut pool, id(A), 4, clock.at(300)), None);
    let early = pool.sweep(clock.at(1000));
    assert!(early.close.is_empty());
    assert_eq!(early.next, Some(clock.at(0) + SURPLUS_GRACE));
    // Two surplus, oldest first; each goes once it has been idle for the grace.
    let first = pool.sweep(clock.at(0) + SURPLUS_GRACE);
    assert_eq!(first.close, vec![1]);
    assert_eq!(first.next, Some(clock.at(100) + SURPLUS_GRACE));
    let second = pool.sweep(clock.at(150) + SURPLUS_GRACE);
    assert_eq!(second.close, vec![2]);
    // Back at the cap: the rest stay for the idle timeout.
    assert_eq!(second.next, Some(clock.at(200) + TIMEOUT));
    assert_eq!(pool.idle(id(A)), 2);
    let expired = pool.sweep(clock.at(300) + TIMEOUT);
    assert_eq!((expired.close, expired.next), (vec![3, 4], None));
    assert!(pool.is_empty());
}

#[test]
fn clients_above_the_cap_keep_their_connections_under_load() {
    // 32 keep-alive clients, a cap of 10: each request takes a connection (or opens one) and hands it
    // back a millisecond later; the timer runs the sweep whenever it is due.
    let clock = Clock::new();
    let mut pool = IdlePool::new(limits(10));
    let mut opened = 0;
    let mut closed = 0;
    let mut timer: Option<Instant> = None;
    for ms in 0..10_000u64 {
        let now = clock.at(ms);
        if timer.is_some_and(|at| at <= now) {
            let sweep = pool.sweep(now);
            closed += sweep.close.len();
            timer = sweep.next;
        }
        let in_use: Vec<u32> = (0..32)
            .map(|_| {
                take(&mut pool, id(A), now).unwrap_or_else(|| {
                    opened += 1;
                    opened
                })
            })
            .collect();
        for conn in in_use {
            let put = pool.put(id(A), conn, clock.at(ms) + Duration::from_micros(500));
            closed += usize::from(put.close.is_some());
            timer = match (timer, put.sweep_by) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
    }
    assert_eq!((opened, closed), (32, 0));
    // The load stops: the surplus goes after the grace, the cap stays.
    let after = clock.at(10_000) + SURPLUS_GRACE;
    let sweep = pool.sweep(after);
    assert_eq!((sweep.close.len(), pool.idle(id(A))), (22, 10));
    assert_eq!(
        sweep.next,
        Some(clock.at(9_999) + Duration::from_micros(500) + TIMEOUT)
    );
}

#[test]
fn the_timer_is_never_later_than_the_earliest_due_connection() {
    // Puts, takes and sweeps in a scrambled order over two backends: whenever the caller's timer (the
    // earliest `sweep_by` and sweep `next`) is not due yet, nothing in the pool is overdue. (A put can make
    // a long-idle oldest surplus, already past the grace: then `sweep_by` is now or earlier.)
    let clock = Clock::new();
    let mut pool = IdlePool::new(limits(3));
    let mut timer: Option<Instant> = None;
    let mut seed = 7u64;
    let mut next_conn = 0;
    for step in 0..5_000u64 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let roll = seed >> 33;
        let now = clock.at(step * 37);
        let backend = id(if roll % 2 == 0 { A } else { B });
        if timer.is_some_and(|at| at <= now) {
            timer = pool.sweep(now).next;
        }
        if roll % 5 < 3 {
            next_conn += 1;
            let put = pool.put(backend, next_conn, now);
            if let Some(by) = put.sweep_by {
                timer = Some(timer.map_or(by, |t| t.min(by)));
            }
        } else {
            let _ = pool.take(backend, now, alive, drop);
        }
        if timer.is_none_or(|at| at > now) {
            // A sweep that finds nothing to close changes nothing.
            let overdue = pool.sweep(now).close;
            assert!(overdue.is_empty(), "step {step}: {overdue:?} overdue");
        }
        if pool.is_empty() {
            // A stale timer may fire once more; it then finds nothing and arms nothing.
            assert_eq!(pool.sweep(now).next, None);
        }
    }
}

#[test]
fn past_the_ceiling_the_oldest_goes_at_once() {
    let clock = Clock::new();
    let mut pool = IdlePool::new(limits(2));
    for conn in 0..MAX_IDLE_PER_HOST as u32 {
        let _ = put_kept(&mut pool, id(A), conn, clock.at(0));
    }
    let put = pool.put(id(A), 9999, clock.at(1));
    assert_eq!((put.close, put.sweep_by), (Some(0), None));
    assert_eq!(pool.idle(id(A)), MAX_IDLE_PER_HOST);
    // A cap above the ceiling raises it.
    let mut big = IdlePool::new(limits(MAX_IDLE_PER_HOST + 5));
    for conn in 0..(MAX_IDLE_PER_HOST + 5) as u32 {
        let _ = put_kept(&mut big, id(A), conn, clock.at(0));
    }
}

#[test]
fn a_cap_of_zero_pools_nothing_and_arms_nothing() {
    let clock = Clock::new();
    let mut pool = IdlePool::new(limits(0));
    let put = pool.put(id(A), 1, clock.at(0));
    assert_eq!((put.close, put.sweep_by), (Some(1), None));
    assert!(pool.is_empty());
    assert_eq!(pool.sweep(clock.at(0)).next, None);
}

#[test]
fn an_idle_timeout_shorter_than_the_grace_wins() {
    let clock = Clock::new();
    let short = Duration::from_secs(1);
    let mut pool = IdlePool::new(PoolLimits {
        max_idle_per_host: 1,
        idle_timeout: short,
    });
    let _ = put_kept(&mut pool, id(A), 1, clock.at(0));
    assert_eq!(
        put_kept(&mut pool, id(A), 2, clock.at(0)),
        Some(clock.at(0) + short)
    );
    let sweep = pool.sweep(clock.at(0) + short);
    assert_eq!((sweep.close, sweep.next), (vec![1, 2], None));
}

#[test]
fn removing_dropping_and_clearing() {
    let clock = Clock::new();
    let mut pool = IdlePool::new(limits(4));
    for conn in 1..=3 {
        let _ = put_kept(&mut pool, id(A), conn, clock.at(0));
    }
    let _ = put_kept(&mut pool, id(B), 10, clock.at(0));
    assert_eq!(pool.remove(id(A), |&c| c == 2), Some(2));
    assert_eq!(pool.remove(id(A), |&c| c == 2), None);
    assert_eq!(pool.remove(id(B), |&c| c == 1), None, "1 is A's");
    assert_eq!(pool.drop_backend(id(A).backend, None), vec![1, 3]);
    assert_eq!(pool.idle(id(A)), 0);
    assert_eq!(pool.remove(id(B), |&c| c == 10), Some(10));
    assert!(pool.is_empty(), "an emptied backend leaves no entry behind");
    let _ = put_kept(&mut pool, id(A), 5, clock.at(0));
    let _ = put_kept(&mut pool, id(B), 6, clock.at(0));
    let mut all = pool.clear();
    all.sort_unstable();
    assert_eq!(all, vec![5, 6]);
    assert!(pool.is_empty());
    assert_eq!(
        pool.sweep(clock.at(0)).next,
        None,
        "an empty pool wants no timer"
    );
}

#[test]
fn connections_beyond_the_cap_are_put_as_surplus_and_a_shrink_keeps_them() {
    let clock = Clock::new();
    let mut pool = IdlePool::new(limits(2));
    let surplus: Vec<bool> = (0..4)
        .map(|conn| pool.put(id(A), conn, clock.at(0)).surplus)
        .collect();
    assert_eq!(surplus, [false, false, true, true]);
    let swept = pool.sweep(clock.at(0) + SURPLUS_GRACE);
    assert_eq!(swept.close, [0, 1]);
    pool.shrink();
    assert_eq!(pool.idle(id(A)), 2);
    assert_eq!(take(&mut pool, id(A), clock.at(2001)), Some(3));
}

#[test]
fn the_room_a_surplus_left_counts_once_it_is_swept() {
    let clock = Clock::new();
    let mut pool = IdlePool::new(limits(2));
    for conn in 0..100u32 {
        let _ = pool.put(id(A), conn, clock.at(conn.into()));
    }
    pool.shrink();
    assert_eq!(pool.room_after_surplus(), 0, "nothing is swept yet");
    let swept = pool.sweep(clock.at(49) + SURPLUS_GRACE);
    assert_eq!(swept.close.len(), 50);
    assert_eq!(pool.room_after_surplus(), 0, "half the surplus is left");
    let swept = pool.sweep(clock.at(99) + SURPLUS_GRACE);
    assert_eq!(swept.close.len(), 48);
    assert!(pool.room_after_surplus() >= 98, "the burst's room is left");
    pool.shrink();
    assert!(pool.room_after_surplus() < 98);
    assert_eq!(pool.idle(id(A)), 2);
}

#[test]
fn a_burst_of_a_thousand_is_shrunk_once_its_surplus_is_swept_and_a_small_one_is_left() {
    let clock = Clock::new();
    let mut pool = IdlePool::new(limits(2));
    for conn in 0..1000u32 {
        let _ = pool.put(id(A), conn, clock.at(conn.into()));
    }
    assert!(!pool.shrink_after_burst(), "the surplus is still there");
    let swept = pool.sweep(clock.at(999) + SURPLUS_GRACE);
    assert_eq!(swept.close.len(), 998);
    assert!(pool.shrink_after_burst(), "a burst's room is given back");
    assert_eq!(pool.room_after_surplus(), 0);
    assert_eq!(pool.idle(id(A)), 2);

    // A load just over the cap leaves less room than a burst: nothing to give back.
    for conn in 0..10u32 {
        let _ = pool.put(id(A), conn, clock.at(2000 + u64::from(conn)));
    }
    let swept = pool.sweep(clock.at(2009) + SURPLUS_GRACE);
    assert!(!swept.close.is_empty());
    assert!(!pool.shrink_after_burst());
}
