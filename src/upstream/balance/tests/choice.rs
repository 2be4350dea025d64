//! The choice among candidates: each strategy's rule, only eligible instances ever, HRW hashing and its
//! bounded load, the hard-affinity owner over every slot and the soft-affinity target.

use std::collections::HashSet;

use super::{idle, loads, without};
use crate::upstream::balance::{
    choose, hash_bytes, owner_slot, soft_target, BalanceState, Candidate, HashOn, HashOver,
    Strategy, STABLE_SEED,
};

fn draws(strategy: &Strategy, candidates: &[Candidate], n: usize) -> Vec<u16> {
    let mut state = BalanceState::new(7, candidates.len());
    (0..n)
        .map(|_| choose(strategy, &mut state, candidates, None).expect("one is eligible"))
        .collect()
}

fn counts(picks: &[u16], slots: usize) -> Vec<usize> {
    let mut counts = vec![0; slots];
    for &p in picks {
        counts[usize::from(p)] += 1;
    }
    counts
}

fn hash(on: HashOn, over: HashOver, balance_factor: Option<u16>) -> Strategy {
    Strategy::Hash {
        on,
        over,
        balance_factor,
    }
}

fn all_strategies() -> Vec<Strategy> {
    vec![
        Strategy::LeastConn,
        Strategy::RoundRobin,
        Strategy::Weighted,
        Strategy::PowerOfTwo,
        Strategy::Random,
        Strategy::First,
        hash(HashOn::Ip, HashOver::Ready, None),
        hash(HashOn::Path, HashOver::Ready, Some(150)),
        hash(HashOn::Path, HashOver::Slots, None),
    ]
}

#[test]
fn nothing_eligible_chooses_nothing() {
    let none = without(idle(3), &[0, 1, 2]);
    for strategy in all_strategies() {
        let mut state = BalanceState::new(1, 3);
        assert_eq!(
            choose(&strategy, &mut state, &none, Some(9)),
            None,
            "{strategy:?}"
        );
        assert_eq!(
            choose(&strategy, &mut state, &[], Some(9)),
            None,
            "{strategy:?}"
        );
    }
}

#[test]
fn only_eligible_instances_are_chosen() {
    let candidates = without(loads(&[0, 9, 0, 3, 0, 1]), &[0, 2, 4]);
    for strategy in all_strategies() {
        let mut state = BalanceState::new(3, candidates.len());
        for i in 0..1000u64 {
            let key = (i % 2 == 0).then(|| hash_bytes(1, &i.to_le_bytes()));
            let slot = choose(&strategy, &mut state, &candidates, key).expect("eligible");
            assert!([1, 3, 5].contains(&slot), "{strategy:?} chose {slot}");
        }
    }
}

#[test]
fn round_robin_cycles_exactly() {
    let picks = draws(&Strategy::RoundRobin, &idle(3), 9);
    assert_eq!(picks, [0, 1, 2, 0, 1, 2, 0, 1, 2]);
    let picks = draws(&Strategy::RoundRobin, &without(idle(4), &[1]), 6);
    assert_eq!(picks, [0, 2, 3, 0, 2, 3]);
}

#[test]
fn round_robin_keeps_its_place_when_an_instance_leaves_or_returns() {
    let mut state = BalanceState::new(0, 4);
    let all = idle(4);
    let rr =
        |state: &mut BalanceState, c: &[Candidate]| choose(&Strategy::RoundRobin, state, c, None);
    assert_eq!(rr(&mut state, &all), Some(0));
    assert_eq!(rr(&mut state, &all), Some(1));
    // Slot 2 leaves: the turn passes to 3, then wraps.
    let fewer = without(idle(4), &[2]);
    assert_eq!(rr(&mut state, &fewer), Some(3));
    assert_eq!(rr(&mut state, &fewer), Some(0));
    // It returns: the cycle goes on from where it was.
    assert_eq!(rr(&mut state, &all), Some(1));
    assert_eq!(rr(&mut state, &all), Some(2));
    assert_eq!(rr(&mut state, &all), Some(3));
}

#[test]
fn weighted_is_nginx_smooth_round_robin() {
    let mut candidates = idle(3);
    candidates[0].weight = 5;
    let picks = draws(&Strategy::Weighted, &candidates, 14);
    // a a b a c a a, twice: the heavy instance's turns are spread out, not a burst of five.
    assert_eq!(picks, [0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0]);
}

#[test]
fn weighted_shares_follow_the_weights_of_the_eligible() {
    let mut candidates = idle(4);
    for (c, w) in candidates.iter_mut().zip([3, 2, 1000, 5]) {
        c.weight = w;
    }
    let candidates = without(candidates, &[2]);
    let picks = draws(&Strategy::Weighted, &candidates, 1000);
    assert_eq!(counts(&picks, 4), [300, 200, 0, 500]);
}

#[test]
fn weighted_gives_a_zero_weight_nothing_unless_it_is_alone() {
    let mut candidates = idle(2);
    candidates[0].weight = 0;
    assert_eq!(
        counts(&draws(&Strategy::Weighted, &candidates, 50), 2),
        [0, 50]
    );
    let alone = without(candidates, &[1]);
    assert_eq!(draws(&Strategy::Weighted, &alone, 3), [0, 0, 0]);
}

#[test]
fn weighted_tolerates_a_slot_beyond_the_state() {
    let mut state = BalanceState::new(0, 1);
    let mut candidates = idle(3);
    candidates[2].weight = 2;
    let picks: Vec<_> = (0..3)
        .map(|_| choose(&Strategy::Weighted, &mut state, &candidates, None))
        .collect();
    assert_eq!(picks, [Some(2), Some(0), Some(1)]);
}

#[test]
fn random_is_uniform_over_the_eligible() {
    let candidates = without(idle(5), &[1]);
    let picks = draws(&Strategy::Random, &candidates, 10_000);
    let counts = counts(&picks, 5);
    assert_eq!(counts[1], 0);
    for slot in [0, 2, 3, 4] {
        // 2,500 expected; the standard deviation is about 43.
        assert!((2300..=2700).contains(&counts[slot]), "{counts:?}");
    }
}

#[test]
fn random_draws_differ_by_seed() {
    let candidates = idle(8);
    let run = |seed| {
        let mut state = BalanceState::new(seed, 8);
        (0..32)
            .map(|_| choose(&Strategy::Random, &mut state, &candidates, None))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
    // Seed 0 is as good as any (xorshift's state is never zero).
    assert!(run(0).iter().collect::<HashSet<_>>().len() > 4);
}

#[test]
fn power_of_two_prefers_the_less_loaded_of_two_distinct() {
    // Equal loads: the lower slot of a uniformly drawn pair, so 3/6, 2/6, 1/6 and never the last.
    let picks = draws(&Strategy::PowerOfTwo, &idle(4), 10_000);
    let even = counts(&picks, 4);
    assert_eq!(even[3], 0, "{even:?}");
    assert!((4750..=5250).contains(&even[0]), "{even:?}");
    assert!((3100..=3550).contains(&even[1]), "{even:?}");
    assert!((1500..=1850).contains(&even[2]), "{even:?}");
    // The idle instance wins every pair it is in: half of them.
    let picks = draws(&Strategy::PowerOfTwo, &loads(&[5, 0, 5, 5]), 10_000);
    let counts = counts(&picks, 4);
    assert!((4750..=5250).contains(&counts[1]), "{counts:?}");
    // The busiest instance never wins, and a single eligible instance is chosen without a draw.
    let picks = draws(&Strategy::PowerOfTwo, &loads(&[3, 1, 2, 0]), 1000);
    assert!(!picks.contains(&0));
    let alone = without(idle(3), &[0, 2]);
    assert_eq!(draws(&Strategy::PowerOfTwo, &alone, 3), [1, 1, 1]);
}

#[test]
fn least_conn_packs_ties_onto_the_lowest_slot() {
    assert_eq!(draws(&Strategy::LeastConn, &idle(4), 3), [0, 0, 0]);
    assert_eq!(draws(&Strategy::LeastConn, &loads(&[2, 1, 1, 3]), 1), [1]);
    assert_eq!(draws(&Strategy::LeastConn, &loads(&[2, 3, 1, 1]), 1), [2]);
    let candidates = without(loads(&[0, 4, 4, 5]), &[0]);
    assert_eq!(draws(&Strategy::LeastConn, &candidates, 1), [1]);
}

#[test]
fn first_is_the_lowest_eligible_slot() {
    assert_eq!(draws(&Strategy::First, &loads(&[9, 0, 0]), 2), [0, 0]);
    let candidates = without(loads(&[0, 9, 0]), &[0]);
    assert_eq!(draws(&Strategy::First, &candidates, 1), [1]);
}

fn keys(n: u64) -> impl Iterator<Item = u64> {
    (0..n).map(|i| hash_bytes(42, format!("user-{i}").as_bytes()))
}

fn hrw(key: u64, candidates: &[Candidate]) -> u16 {
    let strategy = hash(HashOn::Ip, HashOver::Ready, None);
    let mut state = BalanceState::new(0, candidates.len());
    choose(&strategy, &mut state, candidates, Some(key)).expect("eligible")
}

#[test]
fn hrw_spreads_keys_evenly() {
    let candidates = idle(8);
    let picks: Vec<u16> = keys(10_000).map(|k| hrw(k, &candidates)).collect();
    for count in counts(&picks, 8) {
        // 1,250 expected; the standard deviation is about 33.
        assert!((1100..=1400).contains(&count), "{count}");
    }
}

#[test]
fn hrw_moves_only_the_keys_of_an_instance_that_leaves() {
    let all = idle(8);
    let fewer = without(idle(8), &[3]);
    let mut moved = 0;
    for key in keys(10_000) {
        let (before, after) = (hrw(key, &all), hrw(key, &fewer));
        assert_ne!(after, 3);
        if before == 3 {
            moved += 1;
        } else {
            assert_eq!(before, after, "a key not on the leaving instance moved");
        }
    }
    assert!(
        (1100..=1400).contains(&moved),
        "{moved} of 10,000 were on slot 3"
    );
}

#[test]
fn owner_slot_moves_about_one_in_n_keys_to_an_added_slot() {
    let mut moved = 0;
    for key in keys(10_000) {
        let (before, after) = (owner_slot(Some(key), 8), owner_slot(Some(key), 9));
        assert!(before.is_some_and(|s| s < 8));
        if after != before {
            assert_eq!(after, Some(8), "a key moved between old slots");
            moved += 1;
        }
    }
    // 10,000 / 9 = 1,111 expected.
    assert!((980..=1250).contains(&moved), "{moved}");
}

#[test]
fn owner_slot_agrees_with_hrw_over_every_slot() {
    let all = idle(5);
    for key in keys(1000) {
        assert_eq!(owner_slot(Some(key), 5), Some(hrw(key, &all)));
    }
    assert_eq!(owner_slot(Some(1), 0), None);
    assert_eq!(owner_slot(Some(1), 1), Some(0));
    // A request without the key is owned as the empty string is, with the stable seed.
    let empty = hash_bytes(STABLE_SEED, b"");
    assert_eq!(owner_slot(None, 7), owner_slot(Some(empty), 7));
}

#[test]
fn hash_without_a_key_chooses_as_least_conn() {
    let candidates = loads(&[3, 1, 1]);
    let strategy = hash(HashOn::Cookie("s".into()), HashOver::Ready, Some(200));
    assert_eq!(draws(&strategy, &candidates, 2), [1, 1]);
}

/// A key whose first HRW choice among four idle instances is `slot`, and its second choice.
fn key_preferring(slot: u16) -> (u64, u16) {
    let all = idle(4);
    let key = keys(1000).find(|&k| hrw(k, &all) == slot).expect("a key");
    (key, hrw(key, &without(idle(4), &[slot])))
}

#[test]
fn bounded_load_passes_over_an_instance_above_its_share() {
    let (key, second) = key_preferring(2);
    let strategy = |factor| hash(HashOn::Ip, HashOver::Ready, factor);
    let pick = |candidates: &[Candidate], factor| {
        let mut state = BalanceState::new(0, 4);
        choose(&strategy(factor), &mut state, candidates, Some(key))
    };
    // A quiet pool never skips: the cap is at least 1.
    assert_eq!(pick(&idle(4), Some(101)), Some(2));
    // 10 in flight on four instances, factor 150: cap = ceil(11 × 1.5 / 4) = 5.
    let mut busy = loads(&[0, 0, 10, 0]);
    assert_eq!(pick(&busy, None), Some(2), "no factor: plain HRW");
    assert_eq!(pick(&busy, Some(150)), Some(second));
    busy[2].in_flight = 4;
    busy[0].in_flight = 6;
    assert_eq!(pick(&busy, Some(150)), Some(2), "4 is under the cap of 5");
    busy[2].in_flight = 5;
    busy[0].in_flight = 5;
    assert_eq!(pick(&busy, Some(150)), Some(second), "5 is not");
    // Everyone loaded alike: total 20, factor 101, cap = ceil(21 × 1.01 / 4) = 6, all within.
    assert_eq!(pick(&loads(&[5, 5, 5, 5]), Some(101)), Some(2));
}

#[test]
fn bounded_load_always_leaves_someone() {
    let strategy = hash(HashOn::Ip, HashOver::Ready, Some(101));
    let mut state = BalanceState::new(0, 4);
    for key in keys(200) {
        for loads_ in [[0, 0, 0, 50], [7, 7, 7, 8], [100, 0, 0, 0], [1, 2, 3, 4]] {
            let candidates = loads(&loads_);
            let slot = choose(&strategy, &mut state, &candidates, Some(key)).expect("some");
            let total: u32 = loads_.iter().sum();
            let cap = ((total + 1) * 101).div_ceil(400).max(1);
            assert!(loads_[usize::from(slot)] < cap, "{loads_:?} -> {slot}");
        }
    }
    // A factor under 100 (config refuses it) still chooses: plain HRW when nobody is under the cap.
    let strategy = hash(HashOn::Ip, HashOver::Ready, Some(1));
    let (key, _) = key_preferring(1);
    assert_eq!(
        draws_with_key(&strategy, &loads(&[9, 9, 9, 9]), key),
        Some(1)
    );
}

fn draws_with_key(strategy: &Strategy, candidates: &[Candidate], key: u64) -> Option<u16> {
    choose(
        strategy,
        &mut BalanceState::new(0, 4),
        candidates,
        Some(key),
    )
}

#[test]
fn soft_target_only_names_an_eligible_slot() {
    let candidates = without(idle(3), &[1]);
    assert_eq!(soft_target(0, &candidates), Some(0));
    assert_eq!(soft_target(1, &candidates), None);
    assert_eq!(soft_target(3, &candidates), None);
    assert_eq!(soft_target(65535, &candidates), None);
}
