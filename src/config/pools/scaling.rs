//! How many instances of a pool run and how many requests each takes.

use std::time::Duration;

use super::instances::{at, At};
use super::{Scaling, Wake};
use crate::config::reader::{Ctx, Item, Section};

/// `queue_timeout_secs`: 1 s to 1 hour.
const QUEUE_TIMEOUT_SECS: (u64, u64) = (1, 3_600);
const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(10);
/// `scale_down_delay_secs`: 1 s to 1 day.
const SCALE_DOWN_DELAY_SECS: (u64, u64) = (1, 86_400);
const DEFAULT_SCALE_DOWN_DELAY: Duration = Duration::from_secs(60);
/// `target_in_flight` and `max_in_flight`: requests per instance.
const MAX_IN_FLIGHT: u64 = 1_000_000;

/// The scaling keys: those checked on their own are read at once, the rest once the number of instances
/// is known (`finish`). For each, `None` is absent, `Some(None)` reported as invalid.
pub(super) struct ScalingKeys<'t, 'i> {
    min_running: Option<Item<'t, 'i>>,
    max_running: Option<Item<'t, 'i>>,
    target: Option<Option<u64>>,
    max_in_flight: Option<(Item<'t, 'i>, Option<u64>)>,
    queue_timeout: Option<Option<u64>>,
    scale_down_delay: Option<Option<u64>>,
    rolling: Option<Option<bool>>,
    wake: Option<Option<Wake>>,
    always_on: Option<Option<bool>>,
    start_after: Option<(Item<'t, 'i>, Option<Vec<String>>)>,
}

impl<'t, 'i> ScalingKeys<'t, 'i> {
    pub(super) fn take(section: &mut Section<'t, 'i>, ctx: &mut Ctx) -> Self {
        let (min, max) = QUEUE_TIMEOUT_SECS;
        ScalingKeys {
            min_running: section.take("min_running"),
            max_running: section.take("max_running"),
            target: section
                .take("target_in_flight")
                .map(|t| t.uint_in(ctx, 1, MAX_IN_FLIGHT)),
            max_in_flight: section.take("max_in_flight").map(|m| {
                let n = m.uint_in(ctx, 1, MAX_IN_FLIGHT);
                (m, n)
            }),
            queue_timeout: section
                .take("queue_timeout_secs")
                .map(|t| t.uint_in(ctx, min, max)),
            rolling: section.take("reload").map(|r| match r.as_str(ctx)? {
                "next_start" => Some(false),
                "rolling" => Some(true),
                other => {
                    let message =
                        format!("must be \"next_start\" or \"rolling\", found \"{other}\"");
                    r.invalid(ctx, message);
                    None
                }
            }),
            scale_down_delay: section.take("scale_down_delay_secs").map(|t| {
                let (min, max) = SCALE_DOWN_DELAY_SECS;
                t.uint_in(ctx, min, max)
            }),
            wake: section.take("wake").map(|w| match w.as_str(ctx)? {
                "one" => Some(Wake::One),
                "all" => Some(Wake::All),
                other => {
                    let message = format!("must be \"one\" or \"all\", found \"{other}\"");
                    w.invalid(ctx, message);
                    None
                }
            }),
            always_on: section.take("always_on").map(|a| a.as_bool(ctx)),
            start_after: section.take("start_after").map(|s| {
                let names = s.string_list(ctx);
                (s, names)
            }),
        }
    }

    /// Where `start_after` is written, for the checks across pools.
    pub(super) fn start_after_at(&self) -> Option<At> {
        self.start_after.as_ref().map(|(item, _)| at(item))
    }

    /// The scaling of a pool of `count` instances; every problem is reported.
    pub(super) fn finish(self, count: u32, ctx: &mut Ctx) -> Option<Scaling> {
        let always_on = self.always_on.unwrap_or(Some(false));
        let min_running = self
            .min_running
            .as_ref()
            .map(|item| item.uint_in(ctx, 0, u64::from(count)));
        let max_running = self
            .max_running
            .as_ref()
            .map(|item| item.uint_in(ctx, 1, u64::from(count)));
        let mut ok = true;
        if always_on == Some(true) {
            for item in [&self.min_running, &self.max_running].into_iter().flatten() {
                let message = "always_on runs every instance; leave it out";
                ctx.report(&item.key_span, &item.path, message);
                ok = false;
            }
        }
        if let (Some(Some(min)), Some(Some(max)), Some(item)) =
            (min_running, max_running, &self.min_running)
        {
            if min > max {
                item.invalid(ctx, format!("is more than max_running ({max})"));
                ok = false;
            }
        }
        let target_in_flight = self.target.unwrap_or(Some(0));
        let max_in_flight = match &self.max_in_flight {
            Some((item, Some(max))) => {
                if target_in_flight.is_some_and(|target| target > *max) {
                    item.invalid(ctx, "is below target_in_flight");
                    ok = false;
                }
                Some(Some(*max as u32))
            }
            Some((_, None)) => None,
            None => Some(None),
        };
        let (min_running, max_running) = match always_on? {
            true => (count, count),
            false => (
                min_running.unwrap_or(Some(0))? as u32,
                max_running.unwrap_or(Some(u64::from(count)))? as u32,
            ),
        };
        let scaling = Scaling {
            min_running,
            max_running,
            target_in_flight: Some(target_in_flight? as u32).filter(|t| *t > 0),
            max_in_flight: max_in_flight?,
            queue_timeout: match self.queue_timeout {
                Some(secs) => Duration::from_secs(secs?),
                None => DEFAULT_QUEUE_TIMEOUT,
            },
            scale_down_delay: match self.scale_down_delay {
                Some(secs) => Duration::from_secs(secs?),
                None => DEFAULT_SCALE_DOWN_DELAY,
            },
            wake: self.wake.unwrap_or(Some(Wake::One))?,
            always_on: always_on?,
            start_after: match self.start_after {
                Some((_, names)) => names?,
                None => Vec::new(),
            },
            rolling: self.rolling.unwrap_or(Some(false))?,
        };
        ok.then_some(scaling)
    }
}
