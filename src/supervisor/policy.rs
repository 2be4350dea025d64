//! A backend's policy: how its set of instances is run. The reactor speaks about backends, each named by
//! its id (`Start(id)`, a ready callback, reload, shutdown); the policy says which instances each such
//! order reaches, and every instance then runs its own lifecycle. On demand is the policy of a
//! `[backends]` entry; a pool's instances are started by its controller (`pool_ctl`) from the demand the
//! request threads report, and stopped by these orders like any other.

use std::ops::Range;

use super::lifecycle::Input;
use crate::msg::StopReason;

/// What the rest of the proxy can ask of a backend as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// A request needs the backend.
    Start,
    /// The backend called its ready URL (`/ready/{hostname}`), which names the backend only.
    ReadyCallback,
    /// Removal from the config, or the proxy shutting down.
    Stop(StopReason),
}

impl Order {
    /// The input each instance the order reaches is fed.
    pub fn input(self) -> Input {
        match self {
            Order::Start => Input::Start,
            Order::ReadyCallback => Input::ReadyCallback,
            Order::Stop(reason) => Input::Stop(reason),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Started by the first request that needs it, stopped when idle: a `[backends]` entry.
    OnDemand,
}

impl Policy {
    /// The indices of the instances (of `count`) that `order` reaches.
    pub fn targets(self, order: Order, count: u32) -> Range<u32> {
        match (self, order) {
            // One instance serves an on-demand backend: its first, which is the one instance of a
            // `[backends]` entry. The ready URL names no instance, so the callback goes there too; a
            // policy that runs several instances gives each its own ready URL or readies them by probe.
            (Policy::OnDemand, Order::Start | Order::ReadyCallback) => 0..count.min(1),
            // Whatever runs stops.
            (_, Order::Stop(_)) => 0..count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_demand_starts_and_readies_the_first_instance_and_stops_them_all() {
        let on_demand = Policy::OnDemand;
        assert_eq!(on_demand.targets(Order::Start, 1), 0..1);
        assert_eq!(on_demand.targets(Order::Start, 3), 0..1);
        assert_eq!(on_demand.targets(Order::ReadyCallback, 3), 0..1);
        for reason in [StopReason::Removed, StopReason::Shutdown] {
            assert_eq!(on_demand.targets(Order::Stop(reason), 1), 0..1);
            assert_eq!(on_demand.targets(Order::Stop(reason), 3), 0..3);
        }
        assert!(on_demand.targets(Order::Start, 0).is_empty());
    }

    #[test]
    fn orders_become_the_lifecycle_inputs_they_stand_for() {
        assert_eq!(Order::Start.input(), Input::Start);
        assert_eq!(Order::ReadyCallback.input(), Input::ReadyCallback);
        assert_eq!(
            Order::Stop(StopReason::Shutdown).input(),
            Input::Stop(StopReason::Shutdown)
        );
    }
}
