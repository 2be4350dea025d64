//! How many instances of a pool run and how many requests each takes.

use std::time::Duration;

use super::{Scaling, Wake};
use crate::config::reader::{Ctx, Item, Section};

/// `queue_timeout_secs`: 1 s to 1 hour.
const QUEUE_TIMEOUT_SECS: (u64, u64) = (1, 3_600);
const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

/// The scaling keys, taken early (so the timings reader does not see them) and checked once the number
/// of instances is known.
pub(super) struct ScalingKeys<'t, 'i> {
    min_running: Option<Item<'t, 'i>>,
    max_running: Option<Item<'t, 'i>>,
    target: Option<Option<u64>>,
    max_in_flight: Option<Item<'t, 'i>>,
    queue_timeout: Option<Option<u64>>,
    wake: Option<Option<Wake>>,
    always_on: Option<Option<bool>>,
    start_after: Option<Option<Vec<String>>>,
}

impl<'t, 'i> ScalingKeys<'t, 'i> {
    pub(super) fn take(section: &mut Section<'t, 'i>, ctx: &mut Ctx) -> Self {
        ScalingKeys {
            min_running: section.take("min_running"),
            max_running: section.take("max_running"),
            target: section
                .take("target_in_flight")
                .map(|t| t.uint_in(ctx, 1, 1_000_000)),
            max_in_flight: section.take("max_in_flight"),
            queue_timeout: section
                .take("queue_timeout_secs")
                .map(|t| t.uint_in(ctx, QUEUE_TIMEOUT_SECS.0, QUEUE_TIMEOUT_SECS.1)),
            wake: section.take("wake").map(|w| match w.as_str(ctx)? {
                "one" => Some(Wake::One),
                "all" => Some(Wake::All),
                other => {
                    w.invalid(
                        ctx,
                        format!("must be \"one\" or \"all\", found \"{other}\""),
                    );
                    None
                }
            }),
            always_on: section.take("always_on").map(|a| a.as_bool(ctx)),
            start_after: section.take("start_after").map(|s| s.string_list(ctx)),
        }
    }

    pub(super) fn finish(self, count: u32, ctx: &mut Ctx) -> Option<Scaling> {
        let always_on = self.always_on.unwrap_or(Some(false))?;
        let mut min_running = match &self.min_running {
            Some(item) => item.uint_in(ctx, 0, u64::from(count))? as u32,
            None => 0,
        };
        let mut max_running = match &self.max_running {
            Some(item) => item.uint_in(ctx, 1, u64::from(count))? as u32,
            None => count,
        };
        if always_on {
            for item in [&self.min_running, &self.max_running].into_iter().flatten() {
                let message = "always_on runs every instance; leave it out";
                ctx.report(&item.key_span, &item.path, message);
            }
            min_running = count;
            max_running = count;
        }
        if min_running > max_running {
            if let Some(item) = &self.min_running {
                item.invalid(ctx, format!("is more than max_running ({max_running})"));
            }
            return None;
        }
        let target = self.target.unwrap_or(Some(0))?;
        let target_in_flight = (target > 0).then_some(target as u32);
        let max_in_flight = match &self.max_in_flight {
            Some(item) => {
                let n = item.uint_in(ctx, 1, 1_000_000)? as u32;
                if target_in_flight.is_some_and(|t| t > n) {
                    item.invalid(ctx, "is below target_in_flight");
                    return None;
                }
                Some(n)
            }
            None => None,
        };
        let queue_timeout = match self.queue_timeout {
            Some(secs) => Duration::from_secs(secs?),
            None => DEFAULT_QUEUE_TIMEOUT,
        };
        let start_after = self.start_after.unwrap_or(Some(Vec::new()))?;
        Some(Scaling {
            min_running,
            max_running,
            target_in_flight,
            max_in_flight,
            queue_timeout,
            wake: self.wake.unwrap_or(Some(Wake::One))?,
            always_on,
            start_after,
        })
    }
}
