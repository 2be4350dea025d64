//! Which instance of a pool serves a request: the load-balancing choice, written once for both protocol
//! threads. Sans-IO and pure apart from the small per-thread [`BalanceState`]; no allocation and no lock
//! per request.
//!
//! ```text
//!  request ──request_key(on, request, peer, key_seed(over, process seed))──▶ Option<u64>
//!     hash_over = "slots":  owner_slot(key, slots)                 hard affinity, every configured slot
//!     otherwise:            sticky_slot → soft_target(slot, …)     a sticky cookie naming an eligible slot
//!                           choose(strategy, state, candidates, key)   everything else
//! ```
//!
//! * The caller builds one [`Candidate`] per slot of the pool, in slot order, and marks `eligible` what
//!   admission may use (ready, not draining, not unhealthy, below `max_in_flight`). [`choose`] only ever
//!   returns an eligible candidate's slot, and `None` only when none is eligible.
//! * Ties go to the lowest slot (packing: the highest slots idle and can stop).
//! * Hash keys are hashed with a secret per-process seed (clients choose them) for soft affinity, and
//!   with a fixed one for hard affinity, whose shards must keep their keys across proxy restarts
//!   ([`key_seed`]). Both protocol threads must use the same process seed, so that a key lands on the
//!   same instance whether it arrives over HTTP/1 or h2.
//!
//! Two files:
//! * this one: the vocabulary ([`Strategy`], [`HashOn`], [`HashOver`], [`Candidate`], [`BalanceState`])
//!   and the choice: [`choose`] and each strategy's rule, [`owner_slot`] for hard affinity and
//!   [`soft_target`] for a sticky slot. Slots and loads in, a slot out; no request in sight.
//! * `keys`: what a request contributes, read through `RequestSource` so both protocols share it: its
//!   hash key ([`request_key`]), its sticky slot ([`sticky_slot`]), the cookie and query parsers behind
//!   them ([`cookie_value`], [`query_value`]), the keyed hash ([`hash_bytes`]) and its seeds
//!   ([`key_seed`], [`STABLE_SEED`], [`random_seed`]).

mod keys;

// The request side lives in `keys`, private: callers name everything as `balance::NAME`, as before the
// split (pool_view, config's re-export of the types, the fuzz target).
pub use keys::{
    cookie_value, hash_bytes, key_seed, query_value, random_seed, request_key, sticky_slot,
    STABLE_SEED,
};

// The splitmix64 mixer the keyed hash is built on; the generator's seeding and the HRW score use it too.
use keys::{mix, GOLDEN};

/// How a pool spreads requests over its eligible instances (`strategy` in `[pools.NAME]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// Fewest requests in flight; ties to the lowest slot.
    LeastConn,
    /// Each eligible slot in turn.
    RoundRobin,
    /// Smooth weighted round-robin (nginx's): deterministic interleaving by `weight`, no bursts.
    Weighted,
    /// Two distinct eligible instances drawn at random, the one with fewer in flight (then the lower slot).
    PowerOfTwo,
    /// Uniform over the eligible instances.
    Random,
    /// The lowest eligible slot.
    First,
    /// Rendezvous (HRW) hashing of a request key. `ip_hash` is `Hash { on: HashOn::Ip, .. }`.
    Hash {
        on: HashOn,
        over: HashOver,
        /// Bounded load (HAProxy's `hash-balance-factor`, 101..1000): only with [`HashOver::Ready`].
        balance_factor: Option<u16>,
    },
}

/// What a hashing strategy hashes (`hash_on`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashOn {
    /// The client's address as the TCP peer (never `X-Forwarded-For`).
    Ip,
    /// The first value of a header field, by name (matched without regard to case).
    Header(Box<str>),
    /// A cookie's value, by name (case-sensitive, as cookie names are).
    Cookie(Box<str>),
    /// The path part of the target as sent (no query; not normalised).
    Path,
    /// A query parameter's value, by raw name, not percent-decoded.
    Query(Box<str>),
}

/// Over which instances a hashing strategy hashes (`hash_over`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashOver {
    /// The eligible instances now: soft affinity, through [`choose`].
    Ready,
    /// Every configured slot: hard affinity, through [`owner_slot`]; the owner is started on demand.
    Slots,
}

/// One instance as the chooser sees it. The caller builds these in slot order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub slot: u16,
    pub in_flight: u32,
    /// For [`Strategy::Weighted`] (1..1000 from config); other strategies ignore it.
    pub weight: u16,
    /// Admission may send this request here.
    pub eligible: bool,
}

/// One pool's balancing state on one protocol thread: the round-robin cursor, the smooth weighted
/// round-robin current weights and the xorshift generator. Built anew when the pool's config is
/// reloaded (so the cursor and weights start over).
#[derive(Debug, Clone)]
pub struct BalanceState {
    /// The round-robin pick is the lowest eligible slot at or after this one, wrapping.
    cursor: u16,
    /// Smooth weighted round-robin's current weight of each slot.
    current: Vec<i64>,
    /// xorshift64* state, never zero.
    rng: u64,
}

impl BalanceState {
    /// `seed` should be random (see [`random_seed`]), and differ between threads; `slots` is the pool's
    /// number of instances.
    pub fn new(seed: u64, slots: usize) -> BalanceState {
        let rng = match mix(seed) {
            0 => GOLDEN,
            state => state,
        };
        BalanceState {
            cursor: 0,
            current: vec![0; slots],
            rng,
        }
    }

    /// xorshift64* (Vigna): fast, and good enough to spread requests.
    fn next_u64(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (`n > 0`), by multiply-shift: no division, bias below 2^-32 for n ≤ 2^32.
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// The instance to send a request to, by `strategy` among the eligible `candidates`; `None` when no
/// candidate is eligible. `key` is [`request_key`]'s for a hashing strategy (ignored by the others).
///
/// [`HashOver::Slots`] is hard affinity, which admission decides with [`owner_slot`] instead; given to
/// `choose` it hashes over the eligible instances as [`HashOver::Ready`] does (no balance factor).
///
/// A caller whose chosen instance then refuses (its `try_begin` fails) marks it not eligible and calls
/// again: the round-robin cursor has already moved past it.
pub fn choose(
    strategy: &Strategy,
    state: &mut BalanceState,
    candidates: &[Candidate],
    key: Option<u64>,
) -> Option<u16> {
    let eligible = || candidates.iter().filter(|c| c.eligible);
    match strategy {
        Strategy::First => eligible().map(|c| c.slot).min(),
        Strategy::LeastConn => least_conn(candidates),
        Strategy::RoundRobin => round_robin(state, candidates),
        Strategy::Weighted => weighted(state, candidates),
        Strategy::Random => {
            let count = eligible().count();
            if count == 0 {
                return None;
            }
            let pick = state.below(count);
            eligible().nth(pick).map(|c| c.slot)
        }
        Strategy::PowerOfTwo => power_of_two(state, candidates),
        Strategy::Hash {
            over,
            balance_factor,
            ..
        } => match key {
            None => least_conn(candidates),
            Some(key) => {
                let factor = match over {
                    HashOver::Ready => *balance_factor,
                    HashOver::Slots => None,
                };
                rendezvous(key, candidates, factor)
            }
        },
    }
}

/// Fewest in flight, ties to the lowest slot.
fn least_conn(candidates: &[Candidate]) -> Option<u16> {
    let eligible = candidates.iter().filter(|c| c.eligible);
    eligible
        .min_by_key(|c| (c.in_flight, c.slot))
        .map(|c| c.slot)
}

/// The lowest eligible slot at or after the cursor, else the lowest eligible slot; the cursor then moves
/// past it. An instance leaving or joining does not disturb the order of the others.
fn round_robin(state: &mut BalanceState, candidates: &[Candidate]) -> Option<u16> {
    let mut lowest: Option<u16> = None;
    let mut next: Option<u16> = None;
    for c in candidates.iter().filter(|c| c.eligible) {
        lowest = Some(lowest.map_or(c.slot, |l| l.min(c.slot)));
        if c.slot >= state.cursor {
            next = Some(next.map_or(c.slot, |n| n.min(c.slot)));
        }
    }
    let pick = next.or(lowest)?;
    // Past u16::MAX the cursor wraps to 0, which is where the search wraps to anyway.
    state.cursor = pick.wrapping_add(1);
    Some(pick)
}

/// nginx's smooth weighted round-robin: every eligible instance's current weight grows by its weight,
/// the largest (first in slot order on a tie) is chosen and loses the eligible weights' total.
fn weighted(state: &mut BalanceState, candidates: &[Candidate]) -> Option<u16> {
    let mut total: i64 = 0;
    let mut best: Option<(u16, i64)> = None;
    for c in candidates.iter().filter(|c| c.eligible) {
        let index = usize::from(c.slot);
        if index >= state.current.len() {
            // Only when the caller's slot count was wrong: grow once rather than fail.
            state.current.resize(index + 1, 0);
        }
        let weight = i64::from(c.weight);
        let current = state.current[index].saturating_add(weight);
        state.current[index] = current;
        total += weight;
        if best.is_none_or(|(_, b)| current > b) {
            best = Some((c.slot, current));
        }
    }
    let (slot, _) = best?;
    let index = usize::from(slot);
    state.current[index] = state.current[index].saturating_sub(total);
    Some(slot)
}

/// Two distinct eligible instances at random; fewer in flight wins, then the lower slot.
fn power_of_two(state: &mut BalanceState, candidates: &[Candidate]) -> Option<u16> {
    let eligible = || candidates.iter().filter(|c| c.eligible);
    let count = eligible().count();
    if count <= 1 {
        return eligible().next().map(|c| c.slot);
    }
    let first = state.below(count);
    let mut second = state.below(count - 1);
    if second >= first {
        second += 1;
    }
    let a = eligible().nth(first)?;
    let b = eligible().nth(second)?;
    Some(if (a.in_flight, a.slot) <= (b.in_flight, b.slot) {
        a.slot
    } else {
        b.slot
    })
}

/// Rendezvous hashing over the eligible instances: the highest score wins. With a balance factor an
/// instance over its share is passed over for the next highest score (HAProxy's bounded load, which
/// always leaves at least one instance under its share).
fn rendezvous(key: u64, candidates: &[Candidate], balance_factor: Option<u16>) -> Option<u16> {
    let cap = balance_factor.map(|factor| load_cap(candidates, factor));
    let within = |c: &&Candidate| cap.is_none_or(|cap| u64::from(c.in_flight) < cap);
    let best = |only_within: bool| {
        candidates
            .iter()
            .filter(|c| c.eligible)
            .filter(|c| !only_within || within(c))
            .max_by_key(|c| (score(key, c.slot), std::cmp::Reverse(c.slot)))
            .map(|c| c.slot)
    };
    // The cap leaves an instance under it whenever the factor is at least 100, as config ensures; with
    // a smaller one plain HRW is the answer rather than none.
    best(true).or_else(|| best(false))
}

/// How many requests in flight an instance may hold before bounded-load hashing passes it over: the
/// eligible instances' total plus this request, times `factor` percent, shared out evenly and rounded
/// up, and at least 1 so a quiet pool never skips (HAProxy's `chash_server_is_eligible` with equal
/// weights). An instance is within it while `in_flight < cap`; since `total < (total + 1) × factor/100 ≤
/// count × cap` for `factor ≥ 100`, some instance always is.
fn load_cap(candidates: &[Candidate], factor: u16) -> u64 {
    let (count, total) = candidates
        .iter()
        .filter(|c| c.eligible)
        .fold((0u64, 0u64), |(n, sum), c| {
            (n + 1, sum + u64::from(c.in_flight))
        });
    if count == 0 {
        return 1;
    }
    let share = (total + 1)
        .saturating_mul(u64::from(factor))
        .div_ceil(100 * count);
    share.max(1)
}

/// The slot that owns `key` among all `slots` (hard affinity): HRW over `0..slots`, so growing or
/// shrinking the pool by one slot moves only about 1/N of the keys. A request without the key is owned
/// as the empty string is (`key` = `None`). `None` only for an empty pool.
pub fn owner_slot(key: Option<u64>, slots: u16) -> Option<u16> {
    let key = key.unwrap_or_else(|| hash_bytes(STABLE_SEED, b""));
    (0..slots).max_by_key(|&slot| (score(key, slot), std::cmp::Reverse(slot)))
}

/// `slot` when a candidate for it is eligible: the soft-affinity target (a sticky cookie's slot) is
/// taken only then, and never wakes or overloads an instance.
pub fn soft_target(slot: u16, candidates: &[Candidate]) -> Option<u16> {
    candidates
        .iter()
        .any(|c| c.eligible && c.slot == slot)
        .then_some(slot)
}

/// The HRW score of `slot` for `key`: splitmix64's output at position `slot + 1` of the sequence
/// started at `key`, so each slot's scores are an independent-looking function of the key.
fn score(key: u64, slot: u16) -> u64 {
    mix(key.wrapping_add(GOLDEN.wrapping_mul(u64::from(slot) + 1)))
}

#[cfg(test)]
mod tests;
