//! One `[[hosts."HOST".routes]]` entry: its conditions (all optional, ANDed), its one action and the
//! modifiers of a `to` action. Every problem is reported at its key; a route with any problem is dropped
//! (the config is rejected anyway), the others are still read so every mistake shows at once.

use super::reader::{Ctx, Item, Section};
use crate::http1::fields::is_token;
use crate::http1::rewrite::{ForwardPlan, PathEdit, PathPrefix};
use crate::upstream::route_match::{Conditions, HeaderCond, HeaderTest, PathCond, Pattern};

/// A route as the config describes it.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// Where the route's table starts, for messages (shadowing names both routes' lines).
    pub line: usize,
    pub conditions: Conditions,
    pub action: RouteAction,
}

#[derive(Debug, Clone)]
pub enum RouteAction {
    /// Forward to the backend (or pool) of that name, with the route's edits.
    To { target: String, plan: ForwardPlan },
    /// Answer with a redirect; `location` may hold `{host}`, `{path}` and `{query}`.
    Redirect { location: String, status: u16 },
    /// Answer with a small fixed response; no backend is involved.
    Respond {
        status: u16,
        body: String,
        content_type: String,
    },
}

/// Statuses a redirect may use.
const REDIRECT_STATUSES: [u16; 5] = [301, 302, 303, 307, 308];
/// Largest body of a fixed response: small answers (`/robots.txt`, a health text), not a file server.
pub const MAX_RESPOND_BODY: usize = 4096;
const DEFAULT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

pub(super) fn read(mut section: Section<'_, '_>, ctx: &mut Ctx) -> Option<RouteConfig> {
    let errors_before = ctx.errors.len();
    let line = ctx.line_of(section.span().start);
    let path = read_path(&mut section, ctx);
    let methods = section
        .take("methods")
        .and_then(|item| read_methods(&item, ctx));
    let headers = match section.take("headers") {
        Some(item) => read_headers(&item, ctx),
        None => Vec::new(),
    };
    let prefix = match &path {
        PathCond::Prefix(prefix) => Some(prefix.clone()),
        _ => None,
    };
    let action = read_action(&mut section, prefix.as_deref(), ctx);
    section.finish(ctx);
    let conditions = Conditions {
        path,
        methods,
        headers,
    };
    match action {
        Some(action) if ctx.errors.len() == errors_before => Some(RouteConfig {
            line,
            conditions,
            action,
        }),
        _ => None,
    }
}

/// `path`, `path_prefix` or `path_regex`: at most one.
fn read_path(section: &mut Section<'_, '_>, ctx: &mut Ctx) -> PathCond {
    let exact = section.take("path");
    let prefix = section.take("path_prefix");
    let regex = section.take("path_regex");
    let given: Vec<&Item<'_, '_>> = [&exact, &prefix, &regex].into_iter().flatten().collect();
    if let [_, second, ..] = given.as_slice() {
        second.invalid(
            ctx,
            "a route has at most one of path, path_prefix and path_regex",
        );
        return PathCond::Any;
    }
    if let Some(item) = exact {
        return absolute_path(&item, ctx).map_or(PathCond::Any, PathCond::Exact);
    }
    if let Some(item) = prefix {
        let Some(path) = absolute_path(&item, ctx) else {
            return PathCond::Any;
        };
        // `/api/` and `/api` name the same segments.
        let trimmed = path.trim_end_matches('/');
        let prefix = if trimmed.is_empty() { "/" } else { trimmed };
        return PathCond::Prefix(prefix.to_string());
    }
    if let Some(item) = regex {
        return read_pattern(&item, ctx).map_or(PathCond::Any, PathCond::Regex);
    }
    PathCond::Any
}

/// A normalised absolute path: what requests are matched against, so a condition that is not in that
/// form could never match.
fn absolute_path(item: &Item<'_, '_>, ctx: &mut Ctx) -> Option<String> {
    let text = item.text(ctx)?;
    let mut normal = Vec::new();
    let rules = crate::http1::path::PathRules::default();
    let normalised = crate::http1::path::normalize(text.as_bytes(), rules, &mut normal);
    if !text.starts_with('/') || text.contains(['?', '#']) || normalised.is_err() {
        item.invalid(
            ctx,
            "must be an absolute path without query or fragment, e.g. \"/api\"",
        );
        return None;
    }
    if normal != text.as_bytes() {
        let normal = String::from_utf8_lossy(&normal);
        item.invalid(
            ctx,
            format!("requests are matched on normalised paths, so this can never match; write \"{normal}\""),
        );
        return None;
    }
    Some(text.to_string())
}

fn read_pattern(item: &Item<'_, '_>, ctx: &mut Ctx) -> Option<Pattern> {
    let text = item.text(ctx)?;
    match Pattern::new(text) {
        Ok(pattern) => Some(pattern),
        Err(e) => {
            item.invalid(ctx, format!("not a valid regular expression: {e}"));
            None
        }
    }
}

fn read_methods(item: &Item<'_, '_>, ctx: &mut Ctx) -> Option<Vec<String>> {
    let methods = item.string_list(ctx)?;
    let valid = |m: &String| {
        !m.is_empty() && is_token(m.as_bytes()) && !m.bytes().any(|b| b.is_ascii_lowercase())
    };
    if methods.is_empty() || !methods.iter().all(valid) {
        item.invalid(
            ctx,
            "must be a non-empty list of upper-case methods, e.g. [\"GET\", \"HEAD\"]",
        );
        return None;
    }
    Some(methods)
}

/// `headers = [{ name = "X", value = "v" }, { name = "Y", regex = "..." }, { name = "Z", present = true }]`
fn read_headers(item: &Item<'_, '_>, ctx: &mut Ctx) -> Vec<HeaderCond> {
    let mut out = Vec::new();
    for mut table in item.tables(ctx).unwrap_or_default() {
        let name = table.require(ctx, "name").and_then(|name| {
            let text = name.text(ctx)?;
            if !is_token(text.as_bytes()) {
                name.invalid(ctx, "must be a header field name");
                return None;
            }
            Some(text.to_ascii_lowercase())
        });
        let value = table.take("value");
        let regex = table.take("regex");
        let present = table.take("present");
        let test = match (value, regex, present) {
            (Some(value), None, None) => {
                value.as_str(ctx).map(|v| HeaderTest::Equals(v.to_string()))
            }
            (None, Some(regex), None) => read_pattern(&regex, ctx).map(HeaderTest::Regex),
            (None, None, Some(present)) => present.as_bool(ctx).map(HeaderTest::Present),
            _ => {
                let (span, path) = (table.span(), table.path().to_string());
                ctx.report(
                    &span,
                    &path,
                    "needs exactly one of value, regex and present",
                );
                None
            }
        };
        table.finish(ctx);
        if let (Some(name), Some(test)) = (name, test) {
            out.push(HeaderCond { name, test });
        }
    }
    out
}

/// Exactly one of `to`, `redirect` and `respond`; `strip_prefix` and `rewrite_prefix` with `to` only,
/// and only on a `path_prefix` route.
fn read_action(
    section: &mut Section<'_, '_>,
    prefix: Option<&str>,
    ctx: &mut Ctx,
) -> Option<RouteAction> {
    let to = section.take("to");
    let redirect = section.take("redirect");
    let respond = section.take("respond");
    let strip = section.take("strip_prefix");
    let rewrite_prefix = section.take("rewrite_prefix");
    let edits: Vec<&Item<'_, '_>> = [&strip, &rewrite_prefix].into_iter().flatten().collect();
    let action = match (to, redirect, respond) {
        (Some(to), None, None) => {
            let target = to.text(ctx)?.to_string();
            let plan = read_path_edit(strip.as_ref(), rewrite_prefix.as_ref(), prefix, ctx)?;
            return Some(RouteAction::To { target, plan });
        }
        (None, Some(redirect), None) => read_redirect(&redirect, ctx),
        (None, None, Some(respond)) => read_respond(&respond, ctx),
        _ => {
            let (span, path) = (section.span(), section.path().to_string());
            ctx.report(
                &span,
                &path,
                "a route needs exactly one of to, redirect and respond",
            );
            None
        }
    };
    if let Some(edit) = edits.first() {
        edit.invalid(ctx, "applies only to a route with `to`");
    }
    action
}

fn read_path_edit(
    strip: Option<&Item<'_, '_>>,
    rewrite: Option<&Item<'_, '_>>,
    prefix: Option<&str>,
    ctx: &mut Ctx,
) -> Option<ForwardPlan> {
    let mut plan = ForwardPlan::default();
    let strip_it = match strip {
        Some(item) => item.as_bool(ctx)?,
        None => false,
    };
    let needs_prefix = |item: &Item<'_, '_>, ctx: &mut Ctx| {
        item.invalid(ctx, "needs a path_prefix condition on the same route");
    };
    let with = match rewrite {
        Some(item) => Some((item, absolute_path(item, ctx)?)),
        None => None,
    };
    let prefix_of = |p: &str| PathPrefix::new(p).ok();
    plan.path = match (strip_it, with, prefix.and_then(prefix_of)) {
        (false, None, _) => PathEdit::Keep,
        (true, Some((item, _)), _) => {
            item.invalid(ctx, "strip_prefix and rewrite_prefix cannot both be given");
            return None;
        }
        (true, None, Some(prefix)) => PathEdit::StripPrefix(prefix),
        (false, Some((_, with)), Some(prefix)) => PathEdit::ReplacePrefix {
            prefix,
            with: PathPrefix::new(&with).ok()?,
        },
        (true, None, None) => {
            needs_prefix(strip?, ctx);
            return None;
        }
        (false, Some((item, _)), None) => {
            needs_prefix(item, ctx);
            return None;
        }
    };
    Some(plan)
}

fn read_redirect(item: &Item<'_, '_>, ctx: &mut Ctx) -> Option<RouteAction> {
    let mut table = item.section(ctx)?;
    let location = table.require(ctx, "location").and_then(|l| {
        let text = l.text(ctx)?;
        if text.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
            l.invalid(
                ctx,
                "must be visible ASCII without spaces (percent-encode the rest)",
            );
            return None;
        }
        Some(text.to_string())
    });
    let status = match table.take("status") {
        Some(status) => status.uint_in(ctx, 0, 999).and_then(|s| {
            let s = u16::try_from(s).ok()?;
            if !REDIRECT_STATUSES.contains(&s) {
                status.invalid(ctx, "must be 301, 302, 303, 307 or 308");
                return None;
            }
            Some(s)
        }),
        None => Some(308),
    };
    table.finish(ctx);
    Some(RouteAction::Redirect {
        location: location?,
        status: status?,
    })
}

fn read_respond(item: &Item<'_, '_>, ctx: &mut Ctx) -> Option<RouteAction> {
    let mut table = item.section(ctx)?;
    let status = match table.take("status") {
        Some(status) => status
            .uint_in(ctx, 200, 599)
            .and_then(|s| u16::try_from(s).ok()),
        None => Some(200),
    };
    let body = match table.take("body") {
        Some(body) => body.as_str(ctx).and_then(|text| {
            if text.len() > MAX_RESPOND_BODY {
                body.invalid(ctx, format!("must be at most {MAX_RESPOND_BODY} bytes"));
                return None;
            }
            Some(text.to_string())
        }),
        None => Some(String::new()),
    };
    let content_type = match table.take("content_type") {
        Some(ct) => ct.text(ctx).and_then(|text| {
            if text.bytes().any(|b| !(0x20..0x7f).contains(&b)) {
                ct.invalid(ctx, "must be visible ASCII");
                return None;
            }
            Some(text.to_string())
        }),
        None => Some(DEFAULT_CONTENT_TYPE.to_string()),
    };
    table.finish(ctx);
    Some(RouteAction::Respond {
        status: status?,
        body: body?,
        content_type: content_type?,
    })
}
