//! Placeholder until the balancing module lands: least-connections with ties to the lowest slot.

use crate::config::pools::Strategy;

#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    pub slot: u16,
    pub in_flight: u32,
    pub weight: u16,
    pub eligible: bool,
}

#[derive(Debug, Clone)]
pub struct BalanceState {
    cursor: usize,
}

impl BalanceState {
    pub fn new(_seed: u64, _slots: usize) -> Self {
        BalanceState { cursor: 0 }
    }
}

pub fn choose(
    _strategy: &Strategy,
    state: &mut BalanceState,
    candidates: &[Candidate],
    _key: Option<u64>,
) -> Option<u16> {
    state.cursor = state.cursor.wrapping_add(1);
    candidates
        .iter()
        .filter(|c| c.eligible)
        .min_by_key(|c| (c.in_flight, c.slot))
        .map(|c| c.slot)
}

pub fn request_key<S: crate::http1::rewrite::RequestSource>(
    _on: &crate::config::pools::HashOn,
    _request: &S,
    _client_ip: std::net::IpAddr,
) -> Option<u64> {
    None
}

pub fn sticky_slot<S: crate::http1::rewrite::RequestSource>(
    _cookie: &str,
    _request: &S,
) -> Option<u16> {
    None
}
