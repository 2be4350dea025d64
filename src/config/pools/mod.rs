//! `[pools.NAME]`: several instances behind one name, how requests are spread over them and how many
//! run. The types the rest of the proxy reads; the submodules read them from the file:
//!
//! * `read`: the `[pools]` table as a whole, each pool's name and keys, the three forms of instances
//!   (single, `replicas`, `[[instances]]`);
//! * `instances`: the instance keys of one instance or template (`port`, `socket` or `address`; local or
//!   Docker), `read_address`;
//! * `slots`: each slot of a template, its substitutions made and checked;
//! * `balancing`: `strategy`, `hash_on`, `hash_over`, `hash_balance_factor`, `sticky`, `health`;
//! * `scaling`: `min_running`, `max_running`, the in-flight limits, `wake`, `always_on`, `start_after`;
//! * `checks`: across pools and `[backends]`: listening addresses, container names, the `start_after`
//!   order.
//!
//! A pool is a [`BackendConfig`](super::BackendConfig) whose `pool` is set: the timings are the pool's
//! (every instance shares them), the instances are listed here in slot order with their substitutions
//! (`{index}`, `{pool}`, `{port}`, `{socket}`) already made, so nothing downstream knows how they were
//! written.

use std::time::Duration;

use crate::upstream::instance::InstanceSpec;

mod balancing;
mod checks;
mod instances;
mod read;
mod scaling;
mod slots;
mod tls_address;

pub(super) use read::read_all;
/// The sessions reader checks its placeholders with it too.
pub(in crate::config) use slots::all_strings;

/// What a pool adds to a backend.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    /// By slot: `instances[i].index == i`.
    pub instances: Vec<InstanceSpec>,
    pub strategy: Strategy,
    /// Soft affinity: the response names the serving slot in this cookie.
    pub sticky: Option<Sticky>,
    pub scaling: Scaling,
    pub health: Health,
}

pub use crate::upstream::balance::{HashOn, HashOver, Strategy};

impl Strategy {
    /// Its name in the config.
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::LeastConn => "least_conn",
            Strategy::RoundRobin => "round_robin",
            Strategy::Weighted => "weighted",
            Strategy::PowerOfTwo => "p2c",
            Strategy::Random => "random",
            Strategy::First => "first",
            Strategy::Hash { on: HashOn::Ip, .. } => "ip_hash",
            Strategy::Hash { .. } => "hash",
        }
    }
}

/// `sticky = { cookie = "...", max_age_secs = N }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sticky {
    pub cookie: Box<str>,
    /// 0: a session cookie.
    pub max_age_secs: u64,
}

/// How many instances run, and how many requests each takes.
#[derive(Debug, Clone, PartialEq)]
pub struct Scaling {
    /// Kept running from the proxy's start, restarted after any exit (with back-off).
    pub min_running: u32,
    /// Never more running or starting.
    pub max_running: u32,
    /// Soft limit per instance: when every ready one is at it, another starts.
    pub target_in_flight: Option<u32>,
    /// Hard limit per instance: beyond it requests wait in the pool's queue.
    pub max_in_flight: Option<u32>,
    /// The longest a request waits for a free instance of a saturated pool (503 QUEUE_TIMEOUT).
    pub queue_timeout: Duration,
    /// With `target_in_flight`: the window over which excess capacity must persist before one instance
    /// drains (at most one per window).
    pub scale_down_delay: Duration,
    pub wake: Wake,
    /// Started with the proxy, never stopped for idleness, restarted after any exit.
    pub always_on: bool,
    /// Pools that must be ready before this one starts (and stop after it).
    pub start_after: Vec<String>,
    /// `reload = "rolling"`: an instance whose spec a reload changed is replaced at once, one at a time
    /// (drain, stop, start with the new spec, ready, next); otherwise it takes the new spec at its next
    /// start.
    pub rolling: bool,
}

/// What a cold request starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The lowest free slot; more follow demand.
    One,
    /// Every instance, which then idle-stop together.
    All,
}

/// How an instance is judged ready and alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// `GET health_path` answers 2xx (the default, as for `[backends]`).
    Http,
    /// A connection is accepted.
    Tcp,
    /// Running is healthy: for workers no route sends requests to.
    Process,
}
