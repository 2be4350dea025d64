//! The reactor's adapter over the upstream core ([`crate::upstream`]): a held request is its session's
//! slab key and serial, and each backend carries the reactor's idle pooled connections to it. Routing,
//! admission, holding, reload and the reaction to reports are the core's, shared with the h2 worker.

use crate::upstream::{Upstreams, Waiter};

/// A session held until its backend is ready. A session that closed meanwhile is recognised by its
/// serial when the hold is released.
#[derive(Debug, Clone, Copy)]
pub struct Held {
    pub key: usize,
    pub serial: u64,
}

impl Waiter for Held {}

/// Every backend as the reactor sees it, with its pooled upstream connections (upstream slab keys, most
/// recently used last).
pub type Routes = Upstreams<Held, Vec<usize>>;
