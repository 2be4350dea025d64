//! The reactor's adapter over the upstream core ([`crate::upstream`]): a held request is its session's
//! slab key and serial. Routing, admission, holding, reload and the reaction to reports are the core's,
//! shared with the h2 worker; so are the pool's rules (`Reactor::pool`, an [`IdlePool`] of slab keys).
//!
//! [`IdlePool`]: crate::upstream::IdlePool

use crate::upstream::{Upstreams, Waiter};

/// A session held until its backend is ready. A session that closed meanwhile is recognised by its
/// serial when the hold is released.
#[derive(Debug, Clone, Copy)]
pub struct Held {
    pub key: usize,
    pub serial: u64,
}

impl Waiter for Held {}

/// Every backend as the reactor sees it.
pub type Routes = Upstreams<Held, ()>;
