//! One `[[hosts."HOST".routes]]` entry: its conditions (all optional, ANDed), its one action and the
//! modifiers of a `to` action. Every problem is reported at its key; a route with any problem is dropped
//! (the config is rejected anyway), the others are still read so every mistake shows at once.
//!
//! `response_headers` apply to whatever a route answers: the backend's response for `to`, and the
//! proxy's own redirect or fixed response otherwise (a host's `Strict-Transport-Security` belongs on
//! its redirects too). `request_headers`, `strip_prefix`, `rewrite_prefix`, `rewrite` and the limits
//! concern a forwarded request, so they need `to`.

use super::reader::{Ctx, Item, Section};
use crate::http1::fields::is_token;
use crate::http1::rewrite::{CaptureNames, Form, ForwardPlan, ResponseEdits, Template};
use crate::upstream::route_match::{Conditions, HeaderCond, HeaderTest, PathCond, Pattern};

#[path = "route_modifiers.rs"]
mod modifiers;

pub(super) use modifiers::read_edits;
pub use modifiers::RouteLimits;

/// A route as the config describes it.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// Where the route's table starts, for messages (shadowing names both routes' lines).
    pub line: usize,
    pub conditions: Conditions,
    pub action: RouteAction,
    /// Overrides of the backend's and server's limits (`to` routes only; default otherwise).
    pub limits: RouteLimits,
}

/// What a route does. Header edits are the host's followed by the route's (merged when the host is
/// read; `HeaderEdits::then`).
#[derive(Debug, Clone)]
pub enum RouteAction {
    /// Forward to the backend (or pool) of that name, with the route's edits (request edits and path
    /// edit in the plan, response edits in `plan.response`).
    To { target: String, plan: ForwardPlan },
    /// Answer without any backend. The route table keeps this as it is.
    Answer(LocalRoute),
}

/// A route that answers itself.
#[derive(Debug, Clone)]
pub enum LocalRoute {
    /// Answer with a redirect to `location` (a [`Form::Location`] template over `{host}`, `{path}`,
    /// `{query}` and captures).
    Redirect {
        location: Template,
        status: u16,
        response: ResponseEdits,
    },
    /// Answer with a small fixed response. `body` is a [`Form::Text`] template.
    Respond {
        status: u16,
        body: Template,
        content_type: String,
        response: ResponseEdits,
    },
}

impl RouteAction {
    /// The response edits of whatever the route answers.
    pub fn response_edits_mut(&mut self) -> &mut ResponseEdits {
        match self {
            RouteAction::To { plan, .. } => &mut plan.response,
            RouteAction::Answer(LocalRoute::Redirect { response, .. })
            | RouteAction::Answer(LocalRoute::Respond { response, .. }) => response,
        }
    }
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
    let path_refused = ctx.errors.len() > errors_before;
    let methods = section
        .take("methods")
        .and_then(|item| read_methods(&item, ctx));
    let headers = match section.take("headers") {
        Some(item) => read_headers(&item, ctx),
        None => Vec::new(),
    };
    let action = read_action(&mut section, &path, path_refused, ctx);
    section.finish(ctx);
    let conditions = Conditions {
        path,
        methods,
        headers,
    };
    match action {
        Some((action, limits)) if ctx.errors.len() == errors_before => Some(RouteConfig {
            line,
            conditions,
            action,
            limits,
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
    if let Some(c) = text.chars().find(|c| !c.is_ascii_graphic()) {
        // Request targets are visible ASCII: anything else arrives percent-encoded, and stays so.
        let mut encoded = String::new();
        for b in text.bytes() {
            if b.is_ascii_graphic() {
                encoded.push(b as char);
            } else {
                encoded.push_str(&format!("%{b:02X}"));
            }
        }
        item.invalid(
            ctx,
            format!("{c:?} never appears in a request path (it arrives percent-encoded); write \"{encoded}\""),
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

/// Exactly one of `to`, `redirect` and `respond`; the modifiers of a forwarded request with `to` only.
/// `path_refused`: the route's path condition was refused (and reported), so the edits that need one
/// are not blamed for its absence.
fn read_action(
    section: &mut Section<'_, '_>,
    path: &PathCond,
    path_refused: bool,
    ctx: &mut Ctx,
) -> Option<(RouteAction, RouteLimits)> {
    let names = match path {
        PathCond::Regex(pattern) => pattern.capture_names(),
        _ => CaptureNames::none(),
    };
    let to = section.take("to");
    let redirect = section.take("redirect");
    let respond = section.take("respond");
    let strip = section.take("strip_prefix");
    let rewrite_prefix = section.take("rewrite_prefix");
    let rewrite = section.take("rewrite");
    let request_headers = section.take("request_headers");
    let response = match section.take("response_headers") {
        Some(item) => read_edits(&item, true, ctx),
        None => Some(ResponseEdits::default()),
    };
    let (limits, limit_items) = modifiers::read_limits(section, ctx);
    let mut action = match (to, redirect, respond) {
        (Some(to), None, None) => {
            let target = to.text(ctx).map(str::to_string);
            let edit = modifiers::read_path_edit(
                strip.as_ref(),
                rewrite_prefix.as_ref(),
                rewrite.as_ref(),
                (!path_refused).then_some(path),
                &names,
                ctx,
            );
            let request = match &request_headers {
                Some(item) => read_edits(item, false, ctx),
                None => Some(Default::default()),
            };
            let mut plan = ForwardPlan {
                path: edit?,
                ..ForwardPlan::default()
            };
            plan.set_request_edits(request?);
            return Some((
                RouteAction::To {
                    target: target?,
                    plan: ForwardPlan {
                        response: response?,
                        ..plan
                    },
                },
                limits,
            ));
        }
        (None, Some(redirect), None) => read_redirect(&redirect, &names, ctx),
        (None, None, Some(respond)) => read_respond(&respond, &names, ctx),
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
    let forwarding_only = [strip, rewrite_prefix, rewrite, request_headers];
    for item in forwarding_only.iter().flatten().chain(&limit_items) {
        item.invalid(ctx, "applies only to a route with `to`");
    }
    if let Some(action) = &mut action {
        *action.response_edits_mut() = response?;
    }
    action.map(|action| (action, RouteLimits::default()))
}

fn read_redirect(item: &Item<'_, '_>, names: &CaptureNames, ctx: &mut Ctx) -> Option<RouteAction> {
    let mut table = item.section(ctx)?;
    let location = table
        .require(ctx, "location")
        .and_then(|l| modifiers::template(&l, Form::Location, names, ctx));
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
    Some(RouteAction::Answer(LocalRoute::Redirect {
        location: location?,
        status: status?,
        response: ResponseEdits::default(),
    }))
}

/// The body limit is on the text as written: placeholders add at most what the request itself holds.
fn read_respond(item: &Item<'_, '_>, names: &CaptureNames, ctx: &mut Ctx) -> Option<RouteAction> {
    let mut table = item.section(ctx)?;
    let status = match table.take("status") {
        Some(status) => status
            .uint_in(ctx, 200, 599)
            .and_then(|s| u16::try_from(s).ok()),
        None => Some(200),
    };
    let body = match table.take("body") {
        Some(body) => match body.as_str(ctx) {
            Some(text) if text.len() > MAX_RESPOND_BODY => {
                body.invalid(ctx, format!("must be at most {MAX_RESPOND_BODY} bytes"));
                None
            }
            Some(_) => modifiers::template(&body, Form::Text, names, ctx),
            None => None,
        },
        None => Template::parse("", names).ok(),
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
    Some(RouteAction::Answer(LocalRoute::Respond {
        status: status?,
        body: body?,
        content_type: content_type?,
        response: ResponseEdits::default(),
    }))
}
