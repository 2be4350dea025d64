//! The load-balancing choice (`upstream::balance`): for any strategy, candidates and sequence of
//! requests it never panics and never returns a slot that is not eligible, and returns `None` only when
//! nothing is; `first`, `least_conn` and a hash without its key answer as their plain definitions do,
//! `p2c` never picks the busiest of several, bounded-load hashing stays under its cap, and the hard
//! affinity owner is a configured slot. The cookie and query parsers return a part of their input.
//!
//! Input: strategy byte, balance-factor byte, seed byte, candidate count, request count, then 3 bytes
//! per candidate (slot, load, weight; the top bit of load says eligible), then one byte per request (the
//! low bit says whether it has a key; the rest flips one candidate's eligibility or changes its load
//! between requests); whatever is left is a name and a `Cookie` value or target for the parsers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spawngate::upstream::balance::{
    choose, cookie_value, hash_bytes, owner_slot, query_value, BalanceState, Candidate, HashOn,
    HashOver, Strategy,
};

fn strategy(byte: u8, factor: u8) -> Strategy {
    let balance_factor = match factor {
        0 => None,
        // Mostly the configurable range, sometimes anything a u16 holds.
        f if f < 200 => Some(100 + u16::from(f) * 5),
        f => Some(u16::from(f) << 8),
    };
    match byte % 9 {
        0 => Strategy::LeastConn,
        1 => Strategy::RoundRobin,
        2 => Strategy::Weighted,
        3 => Strategy::PowerOfTwo,
        4 => Strategy::Random,
        5 => Strategy::First,
        6 => Strategy::Hash {
            on: HashOn::Ip,
            over: HashOver::Ready,
            balance_factor,
        },
        7 => Strategy::Hash {
            on: HashOn::Path,
            over: HashOver::Slots,
            balance_factor,
        },
        _ => Strategy::Hash {
            on: HashOn::Path,
            over: HashOver::Ready,
            balance_factor: None,
        },
    }
}

fn least_conn(candidates: &[Candidate]) -> Option<u16> {
    let eligible = candidates.iter().filter(|c| c.eligible);
    eligible
        .min_by_key(|c| (c.in_flight, c.slot))
        .map(|c| c.slot)
}

fn check(strategy: &Strategy, candidates: &[Candidate], key: Option<u64>, chosen: Option<u16>) {
    let eligible: Vec<&Candidate> = candidates.iter().filter(|c| c.eligible).collect();
    let Some(slot) = chosen else {
        assert!(
            eligible.is_empty(),
            "{strategy:?} chose nothing from {candidates:?}"
        );
        return;
    };
    let pick = eligible.iter().find(|c| c.slot == slot);
    let pick = pick.unwrap_or_else(|| panic!("{strategy:?} chose {slot} from {candidates:?}"));
    match strategy {
        Strategy::First => assert_eq!(Some(slot), eligible.iter().map(|c| c.slot).min()),
        Strategy::LeastConn => assert_eq!(Some(slot), least_conn(candidates)),
        Strategy::Hash { .. } if key.is_none() => assert_eq!(Some(slot), least_conn(candidates)),
        Strategy::PowerOfTwo if eligible.len() > 1 => {
            // The loser of a pair is never chosen, so neither is the strictly busiest instance.
            let busiest = eligible.iter().map(|c| (c.in_flight, c.slot)).max();
            let only_one = eligible.iter().filter(|c| c.slot == slot).count() == 1;
            if only_one {
                assert_ne!(Some((pick.in_flight, pick.slot)), busiest, "{candidates:?}");
            }
        }
        Strategy::Hash {
            over: HashOver::Ready,
            balance_factor: Some(factor),
            ..
        } if *factor >= 100 => {
            let total: u64 = eligible.iter().map(|c| u64::from(c.in_flight)).sum();
            let count = eligible.len() as u64;
            let cap = ((total + 1) * u64::from(*factor))
                .div_ceil(100 * count)
                .max(1);
            // Duplicate slots make "the candidate for this slot" ambiguous; any of them within will do.
            let within = eligible
                .iter()
                .any(|c| c.slot == slot && u64::from(c.in_flight) < cap);
            assert!(
                within,
                "{factor}: {slot} over the cap {cap} in {candidates:?}"
            );
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let [kind, factor, seed, count, rounds, rest @ ..] = data else {
        return;
    };
    let strategy = strategy(*kind, *factor);
    let count = usize::from(*count % 72).min(rest.len() / 3);
    let (spec, rest) = rest.split_at(count * 3);
    let mut candidates: Vec<Candidate> = spec
        .chunks_exact(3)
        .map(|c| Candidate {
            // Mostly slots 0..64 (duplicates and gaps too), the odd one beyond, or the last u16.
            slot: match c[0] {
                0..250 => u16::from(c[0] % 64),
                250..255 => 64 + u16::from(c[0]),
                255 => u16::MAX,
            },
            in_flight: if c[1] & 0x40 != 0 {
                u32::MAX - u32::from(c[1] & 0x3f)
            } else {
                u32::from(c[1] & 0x3f)
            },
            weight: u16::from(c[2]) * 4,
            eligible: c[1] & 0x80 != 0,
        })
        .collect();
    let rounds = usize::from(*rounds % 65).min(rest.len());
    let (requests, text) = rest.split_at(rounds);
    let mut state = BalanceState::new(u64::from(*seed), usize::from(*seed % 8));
    for (i, &request) in requests.iter().enumerate() {
        let key = (request & 1 == 1).then(|| hash_bytes(u64::from(*seed), &[request, i as u8]));
        let chosen = choose(&strategy, &mut state, &candidates, key);
        check(&strategy, &candidates, key, chosen);
        if let Some(c) = candidates.get_mut(usize::from(request >> 1) % count.max(1)) {
            if request & 2 == 0 {
                c.eligible = !c.eligible;
            } else {
                c.in_flight = c.in_flight.wrapping_add(u32::from(request >> 2));
            }
        }
        let slots = u16::from(request) * 3;
        let owner = owner_slot(key, slots);
        assert_eq!(owner.is_some(), slots > 0);
        assert!(owner.is_none_or(|s| s < slots));
    }

    // The parsers: whatever they return is a part of their input.
    let (name, text) = text.split_at(text.len().min(usize::from(*seed % 4)));
    let inside = |part: &[u8]| {
        let range = text.as_ptr_range();
        let part = part.as_ptr_range();
        range.start <= part.start && part.end <= range.end
    };
    if let Some(value) = cookie_value(text, name) {
        assert!(inside(value) && !value.contains(&b';'));
    }
    if let Some(value) = query_value(text, name) {
        assert!(inside(value) && !value.contains(&b'&') && !value.contains(&b'#'));
    }
});
