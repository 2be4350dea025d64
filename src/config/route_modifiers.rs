//! The modifiers of a route (and a host): the path edit (`strip_prefix`, `rewrite_prefix`, `rewrite`),
//! the templates of its answers, `request_headers` / `response_headers` edit tables and the
//! per-route limits (`request_timeout_secs`, `hold_timeout_secs`, `max_request_body_bytes`). Every
//! problem is reported at its key: a forbidden field name at the name, a bad value at the value.

use std::time::Duration;

use toml::de::DeValue;

use super::super::reader::{Ctx, Item, Section};
use super::super::server::MAX_REQUEST_BODY_BYTES;
use super::super::timings::{REQUEST_TIMEOUT_SECS, SECS_PER_DAY};
use super::absolute_path;
use crate::http1::rewrite::{
    CaptureNames, EditableName, FieldEdit, Form, HeaderEdits, PathEdit, PathPrefix, PlanError,
    Template,
};
use crate::upstream::route_match::PathCond;

/// What a route overrides of its backend's and the server's limits; `None` keeps theirs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouteLimits {
    /// Longest wait for the response head (504 after it), instead of the backend's
    /// `request_timeout_secs`.
    pub request_timeout: Option<Duration>,
    /// Longest a request is held while its backend starts or is saturated.
    pub hold_timeout: Option<Duration>,
    /// Largest request body (413 above it), instead of `[server]`'s. `0` in the file means unlimited,
    /// as in `[server]`, and is kept as `u64::MAX` so every value compares the same way.
    pub max_request_body_bytes: Option<u64>,
}

/// `hold_timeout_secs`: 1 s (a shorter hold cannot see a start through) to 1 day, the bounds of
/// `startup_timeout_secs`, which a hold waits on.
const HOLD_TIMEOUT_SECS: (u64, u64) = (1, SECS_PER_DAY);

/// The limit keys of a route, taken so that none is unknown; the items are returned for a route
/// whose action cannot use them, to report each at its line.
pub(super) fn read_limits<'t, 'i>(
    section: &mut Section<'t, 'i>,
    ctx: &mut Ctx,
) -> (RouteLimits, Vec<Item<'t, 'i>>) {
    let mut limits = RouteLimits::default();
    let mut given = Vec::new();
    let mut secs = |section: &mut Section<'t, 'i>, key, (min, max): (u64, u64), ctx: &mut Ctx| {
        let item = section.take(key)?;
        let n = item.uint_in(ctx, min, max);
        given.push(item);
        n.map(Duration::from_secs)
    };
    limits.request_timeout = secs(section, "request_timeout_secs", REQUEST_TIMEOUT_SECS, ctx);
    limits.hold_timeout = secs(section, "hold_timeout_secs", HOLD_TIMEOUT_SECS, ctx);
    if let Some(item) = section.take("max_request_body_bytes") {
        let (min, max) = MAX_REQUEST_BODY_BYTES;
        limits.max_request_body_bytes =
            item.uint_in(ctx, min, max)
                .map(|n| if n == 0 { u64::MAX } else { n });
        given.push(item);
    }
    (limits, given)
}

/// `strip_prefix` or `rewrite_prefix` (on a `path_prefix` route), or `rewrite` (on a `path_regex`
/// route); at most one.
pub(super) fn read_path_edit(
    strip: Option<&Item<'_, '_>>,
    rewrite_prefix: Option<&Item<'_, '_>>,
    rewrite: Option<&Item<'_, '_>>,
    path: Option<&PathCond>,
    names: &CaptureNames,
    ctx: &mut Ctx,
) -> Option<PathEdit> {
    let strip = match strip {
        Some(item) => item.as_bool(ctx)?.then_some(item),
        None => None,
    };
    let mut given: Vec<&Item<'_, '_>> = [strip, rewrite_prefix, rewrite]
        .into_iter()
        .flatten()
        .collect();
    // The one written second is the one to blame.
    given.sort_by_key(|item| item.key_span.start);
    if let [_, second, ..] = given.as_slice() {
        second.invalid(
            ctx,
            "a route has at most one of strip_prefix, rewrite_prefix and rewrite",
        );
        return None;
    }
    // A path condition that was refused has been reported; an edit is not blamed for its absence.
    let path = path?;
    let prefix = match path {
        PathCond::Prefix(prefix) => PathPrefix::new(prefix).ok(),
        _ => None,
    };
    if let Some(item) = rewrite {
        if !matches!(path, PathCond::Regex(_)) {
            item.invalid(ctx, "needs a path_regex condition on the same route");
            return None;
        }
        let text = item.text(ctx)?;
        return match Template::parse_as(text, Form::Path, names) {
            Ok(template) => Some(PathEdit::Rewrite(template)),
            Err(why) => {
                item.invalid(ctx, why);
                None
            }
        };
    }
    let edit = match (strip, rewrite_prefix, prefix) {
        (None, None, _) => return Some(PathEdit::Keep),
        (Some(_), _, Some(prefix)) => PathEdit::StripPrefix(prefix),
        (_, Some(item), Some(prefix)) => {
            // `absolute_path` admits only what a prefix can be; a refusal is still reported, never
            // a route dropped in silence.
            let with = match PathPrefix::new(&absolute_path(item, ctx)?) {
                Ok(with) => with,
                Err(why) => {
                    item.invalid(ctx, why.to_string());
                    return None;
                }
            };
            PathEdit::ReplacePrefix { prefix, with }
        }
        (Some(item), _, None) | (_, Some(item), None) => {
            item.invalid(ctx, "needs a path_prefix condition on the same route");
            return None;
        }
    };
    Some(edit)
}

/// A template of `form` read from `item`, or its problem reported there.
pub(super) fn template(
    item: &Item<'_, '_>,
    form: Form,
    names: &CaptureNames,
    ctx: &mut Ctx,
) -> Option<Template> {
    let text = match form {
        Form::Text => item.as_str(ctx)?,
        _ => item.text(ctx)?,
    };
    match Template::parse_as(text, form, names) {
        Ok(template) => Some(template),
        Err(why) => {
            item.invalid(ctx, why);
            None
        }
    }
}

/// `{ set = { Name = "value" }, add = { Name = "value" or ["v1", "v2"] }, remove = ["Name"] }`.
/// `response` edits may use `{instance}` in their values.
pub(in crate::config) fn read_edits(
    item: &Item<'_, '_>,
    response: bool,
    ctx: &mut Ctx,
) -> Option<HeaderEdits> {
    let errors_before = ctx.errors.len();
    let mut table = item.section(ctx)?;
    let mut edits = HeaderEdits::default();
    if let Some(mut set) = table.take("set").and_then(|set| set.section(ctx)) {
        for entry in set.take_all() {
            let Some(name) = editable(&entry, ctx) else {
                continue;
            };
            if edits
                .set
                .iter()
                .any(|e| e.name().eq_ignore_ascii_case(name.as_str()))
            {
                let message = "is set twice (field names are case-insensitive)";
                ctx.report(&entry.key_span, &entry.path, message);
                continue;
            }
            if let Some(value) = entry.as_str(ctx) {
                edits.set.extend(field(&entry, value, response, ctx));
            }
        }
    }
    if let Some(mut add) = table.take("add").and_then(|add| add.section(ctx)) {
        for entry in add.take_all() {
            if editable(&entry, ctx).is_none() {
                continue;
            }
            let values = match entry.value.get_ref() {
                DeValue::Array(_) => entry.string_list(ctx).unwrap_or_default(),
                _ => entry.as_str(ctx).map(str::to_string).into_iter().collect(),
            };
            for value in values {
                edits.add.extend(field(&entry, &value, response, ctx));
            }
        }
    }
    if let Some(remove) = table.take("remove") {
        for (index, name) in remove
            .string_list(ctx)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            match EditableName::new(name) {
                Ok(name) => edits.remove.push(name),
                Err(why) => {
                    let path = format!("{}[{index}]", remove.path);
                    ctx.report(&remove.span(), &path, forbidden(name, &why));
                }
            }
        }
    }
    table.finish(ctx);
    (ctx.errors.len() == errors_before).then_some(edits)
}

/// The entry's key as a field name an edit may use, or the problem reported at the key.
fn editable(entry: &Item<'_, '_>, ctx: &mut Ctx) -> Option<EditableName> {
    match EditableName::new(entry.name) {
        Ok(name) => Some(name),
        Err(why) => {
            ctx.report(&entry.key_span, &entry.path, forbidden(entry.name, &why));
            None
        }
    }
}

fn forbidden(name: &str, why: &PlanError) -> String {
    format!("`{name}` cannot be edited: {why}")
}

fn field(entry: &Item<'_, '_>, value: &str, response: bool, ctx: &mut Ctx) -> Option<FieldEdit> {
    let edit = if response {
        FieldEdit::response(entry.name, value)
    } else {
        FieldEdit::new(entry.name, value)
    };
    match edit {
        Ok(edit) => Some(edit),
        Err(why) => {
            entry.invalid(ctx, why.to_string());
            None
        }
    }
}
