//! How a pool spreads requests: `strategy` with `hash_on`, `hash_over` and `hash_balance_factor`,
//! `sticky`, and how an instance is judged ready (`health`).

use super::{HashOn, HashOver, Health, Sticky, Strategy};
use crate::config::reader::{Ctx, Item, Section};
use crate::config::timings;

pub(super) fn read_strategy(section: &mut Section<'_, '_>, ctx: &mut Ctx) -> Option<Strategy> {
    let strategy = section.take("strategy");
    let hash_on = section.take("hash_on");
    let hash_over = section.take("hash_over");
    let factor = section.take("hash_balance_factor");
    let name = match &strategy {
        Some(item) => item.as_str(ctx)?,
        None => "least_conn",
    };
    let plain = match name {
        "least_conn" => Some(Strategy::LeastConn),
        "round_robin" => Some(Strategy::RoundRobin),
        "weighted" => Some(Strategy::Weighted),
        "p2c" => Some(Strategy::PowerOfTwo),
        "random" => Some(Strategy::Random),
        "first" => Some(Strategy::First),
        "hash" | "ip_hash" => None,
        other => {
            let message = format!(
                "must be one of least_conn, round_robin, weighted, p2c, random, first, ip_hash, hash; found \"{other}\""
            );
            strategy.as_ref()?.invalid(ctx, message);
            return None;
        }
    };
    if let Some(plain) = plain {
        for item in [&hash_on, &hash_over, &factor].into_iter().flatten() {
            let message = "only for strategy = \"hash\" or \"ip_hash\"";
            ctx.report(&item.key_span, &item.path, message);
        }
        return Some(plain);
    }
    let on = match (name, &hash_on) {
        ("ip_hash", None) => Some(HashOn::Ip),
        ("ip_hash", Some(item)) => {
            item.invalid(ctx, "ip_hash always hashes the client's address");
            None
        }
        (_, None) => {
            let message = "strategy = \"hash\" needs hash_on (ip, header:NAME, cookie:NAME, path or query:NAME)";
            let item = strategy.as_ref()?;
            ctx.report(&item.key_span, &item.path, message);
            None
        }
        (_, Some(item)) => read_hash_on(item, ctx),
    };
    let over = match &hash_over {
        None => Some(HashOver::Ready),
        Some(item) => match item.as_str(ctx) {
            Some("ready") => Some(HashOver::Ready),
            Some("slots") => Some(HashOver::Slots),
            Some(other) => {
                let message = format!("must be \"ready\" or \"slots\", found \"{other}\"");
                item.invalid(ctx, message);
                None
            }
            None => None,
        },
    };
    let balance_factor = match &factor {
        None => Some(None),
        Some(item) if over == Some(HashOver::Slots) => {
            item.invalid(ctx, "bounded load needs hash_over = \"ready\"");
            None
        }
        Some(item) => item.uint_in(ctx, 101, 1000).map(|f| Some(f as u16)),
    };
    Some(Strategy::Hash {
        on: on?,
        over: over?,
        balance_factor: balance_factor?,
    })
}

fn read_hash_on(item: &Item<'_, '_>, ctx: &mut Ctx) -> Option<HashOn> {
    let text = item.as_str(ctx)?;
    let named = |prefix: &str| {
        text.strip_prefix(prefix)
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_graphic() && b != b';'))
    };
    let on = match text {
        "ip" => Some(HashOn::Ip),
        "path" => Some(HashOn::Path),
        _ => {
            if let Some(n) = named("header:") {
                Some(HashOn::Header(n.to_ascii_lowercase().into()))
            } else if let Some(n) = named("cookie:") {
                Some(HashOn::Cookie(n.into()))
            } else {
                named("query:").map(|n| HashOn::Query(n.into()))
            }
        }
    };
    if on.is_none() {
        let message =
            format!("must be ip, path, header:NAME, cookie:NAME or query:NAME; found \"{text}\"");
        item.invalid(ctx, message);
    }
    on
}

/// `sticky`: absent (`Some(None)`), a valid cookie, or `None` after reporting what is wrong.
pub(super) fn read_sticky(section: &mut Section<'_, '_>, ctx: &mut Ctx) -> Option<Option<Sticky>> {
    match section.take("sticky") {
        None => Some(None),
        Some(item) => sticky_table(&item, ctx).map(Some),
    }
}

/// `sticky = { cookie = "...", max_age_secs = N }`.
fn sticky_table(item: &Item<'_, '_>, ctx: &mut Ctx) -> Option<Sticky> {
    let mut table = item.section(ctx)?;
    let cookie = table.require(ctx, "cookie").and_then(|c| {
        let text = c.text(ctx)?;
        let ok = text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
        if !ok {
            c.invalid(ctx, "a cookie name is letters, digits, '_', '-' and '.'");
        }
        ok.then(|| Box::from(text))
    });
    let max_age_secs = match table.take("max_age_secs") {
        Some(age) => age.uint_in(ctx, 0, 400 * timings::SECS_PER_DAY),
        None => Some(0),
    };
    table.finish(ctx);
    Some(Sticky {
        cookie: cookie?,
        max_age_secs: max_age_secs?,
    })
}

pub(super) fn read_health(section: &mut Section<'_, '_>, ctx: &mut Ctx) -> Option<Health> {
    let Some(item) = section.take("health") else {
        return Some(Health::Http);
    };
    match item.as_str(ctx)? {
        "http" => Some(Health::Http),
        "tcp" => Some(Health::Tcp),
        "process" => Some(Health::Process),
        other => {
            item.invalid(
                ctx,
                format!("must be \"http\", \"tcp\" or \"process\", found \"{other}\""),
            );
            None
        }
    }
}
