//! Reads `[sessions.NAME]`: each template's name and its own keys, its instance (`instance`), then the
//! checks across templates and against the rest of the file (`checks`).

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use regex_lite::Regex;
use toml::de::DeValue;

use super::{
    checks, instance, pattern, Access, Evict, HostVar, SessionTemplate, StartPolicy, Unhealthy,
};
use crate::config::docker::optional;
use crate::config::hosts::HostConfig;
use crate::config::reader::{join_key, Ctx, Item, Section};
use crate::config::timings::SECS_PER_DAY;
use crate::config::{BackendConfig, ServerConfig, Timings};

/// What the rest of the file holds that a template must not clash with (read before `[sessions]`).
pub(in crate::config) struct Others<'a> {
    /// `[backends]` entries: their hosts and ports.
    pub(in crate::config) backends: &'a [BackendConfig],
    /// `[pools]`: their instances' ports.
    pub(in crate::config) pools: &'a [BackendConfig],
    /// `[hosts]`: their names and aliases.
    pub(in crate::config) hosts: &'a [HostConfig],
}

/// Where a value is written (its key's span and its key path), for problems found later.
pub(super) type At = (Range<usize>, String);

/// A template as read, with the keys the checks across templates point at.
pub(super) struct ReadTemplate {
    pub(super) template: SessionTemplate,
    pub(super) hostname_at: At,
    pub(super) host_ports_at: At,
}

/// A key a connect may name when the template gives no `key_pattern`: short, lower-case, and safe in a
/// path, a container name and a log line.
pub(super) const DEFAULT_KEY_PATTERN: &str = "^[a-z0-9][a-z0-9._-]{0,127}$";
/// Longest `key_pattern`: far beyond any sane one, it bounds the compiled program.
const MAX_KEY_PATTERN_LEN: usize = 1_024;
/// `lifetime_secs`: 1 s to 365 days (as `idle_timeout_secs`, so no deadline overflows a timer).
const LIFETIME_SECS: (u64, u64) = (1, 365 * SECS_PER_DAY);
/// `max_running`: sessions of one template at once.
const MAX_RUNNING: (u64, u64) = (1, 10_000);
/// `tombstone_secs`: 0 (forgotten at once) to a day.
const TOMBSTONE_SECS: (u64, u64) = (0, SECS_PER_DAY);
const DEFAULT_TOMBSTONE: Duration = Duration::from_secs(300);

/// Reads every template, sorted by name. `others` are the sections read before: a template's ports and
/// hostnames must not clash with theirs.
pub(in crate::config) fn read_all(
    sessions: Option<Section<'_, '_>>,
    defaults: &Timings,
    server: &ServerConfig,
    others: &Others<'_>,
    ctx: &mut Ctx,
) -> Vec<Arc<SessionTemplate>> {
    let Some(mut sessions) = sessions else {
        return Vec::new();
    };
    let mut read = Vec::new();
    for item in sessions.take_all() {
        let named = check_name(item.name);
        if let Err(message) = &named {
            ctx.report(&item.key_span, &item.path, message.as_str());
        }
        // A template with a bad name is still read, so all its problems show at once.
        if let (Some(template), Ok(())) = (read_one(&item, defaults, server, ctx), named) {
            read.push(template);
        }
    }
    checks::ports(&read, server, others, ctx);
    checks::spaces(&read, others, ctx);
    let mut out: Vec<_> = read.into_iter().map(|r| Arc::new(r.template)).collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Template names appear in URLs (`/sessions/NAME`) and container names.
fn check_name(name: &str) -> Result<(), String> {
    crate::config::units::check_name(name, "template")
}

fn read_one(
    item: &Item<'_, '_>,
    defaults: &Timings,
    server: &ServerConfig,
    ctx: &mut Ctx,
) -> Option<ReadTemplate> {
    let mut section = item.section(ctx)?;
    let DeValue::Table(table) = item.value.get_ref() else {
        return None;
    };
    let hostname_item = section.require(ctx, "hostname");
    let hostname = hostname_item
        .as_ref()
        .and_then(|h| parsed(h, ctx, pattern::host_pattern));
    let public_url = match section.take("public_url") {
        Some(url) => parsed(&url, ctx, pattern::url_pattern),
        None => pattern::default_url(server.port)
            .map_err(|message| {
                let key = join_key(section.path(), "public_url");
                ctx.report(&section.span(), &key, message);
            })
            .ok(),
    };
    let access_item = section.take("access");
    let access = choice(
        access_item.as_ref(),
        ctx,
        &[
            ("token", Access::Token),
            ("hostname", Access::Hostname),
            ("none", Access::None),
        ],
        Access::Token,
    );
    let by_key = hostname.as_ref().is_some_and(|h| h.var == HostVar::Key);
    if let (true, Some(Access::Hostname | Access::None), Some(at)) = (by_key, access, &access_item)
    {
        // A key is the app's name for a user or a document: anyone may guess it, unlike an id.
        let message = "{key} in hostname needs access = \"token\": a key may be guessable";
        at.invalid(ctx, message);
    }
    let start = choice(
        section.take("start").as_ref(),
        ctx,
        &[
            ("on_create", StartPolicy::OnCreate),
            ("on_request", StartPolicy::OnRequest),
        ],
        StartPolicy::OnCreate,
    );
    let key_pattern = match section.take("key_pattern") {
        Some(pattern) => read_key_pattern(&pattern, ctx),
        None => Some(anchored(DEFAULT_KEY_PATTERN).expect("the default key pattern compiles")),
    };
    let allow_env = match section.take("allow_env") {
        Some(list) => read_allow_env(&list, ctx),
        None => Some(Vec::new()),
    };
    let lifetime = optional(section.take("lifetime_secs"), |secs| {
        let (min, max) = LIFETIME_SECS;
        secs.uint_in(ctx, min, max).map(Duration::from_secs)
    });
    let max_running = optional(section.take("max_running"), |n| {
        let (min, max) = MAX_RUNNING;
        n.uint_in(ctx, min, max).map(|n| n as u32)
    });
    let evict = choice(
        section.take("evict").as_ref(),
        ctx,
        &[
            ("idle_lru", Evict::IdleLru),
            ("lru", Evict::Lru),
            ("never", Evict::Never),
        ],
        Evict::IdleLru,
    );
    let unhealthy = choice(
        section.take("unhealthy").as_ref(),
        ctx,
        &[("end", Unhealthy::End), ("restart", Unhealthy::Restart)],
        Unhealthy::End,
    );
    let tombstone = match section.take("tombstone_secs") {
        Some(secs) => {
            let (min, max) = TOMBSTONE_SECS;
            secs.uint_in(ctx, min, max).map(Duration::from_secs)
        }
        None => Some(DEFAULT_TOMBSTONE),
    };
    let host_ports_item = section.require(ctx, "host_ports");
    let host_ports = host_ports_item
        .as_ref()
        .and_then(|p| parsed(p, ctx, pattern::port_range));
    let instance = instance::read(&mut section, table, item.name, defaults, ctx);
    section.finish(ctx);
    let at = |item: Option<Item<'_, '_>>| item.map(|i| (i.key_span, i.path));
    let instance = instance?;
    let template = SessionTemplate {
        name: item.name.to_string(),
        hostname: hostname?,
        public_url: public_url?,
        access: access?,
        start: start?,
        key_pattern: key_pattern?,
        allow_env: allow_env?,
        idle_timeout: instance.timings.idle_timeout,
        lifetime: lifetime?,
        max_running: max_running?,
        evict: evict?,
        unhealthy: unhealthy?,
        tombstone: tombstone?,
        host_ports: host_ports?,
        instance: Arc::new(instance),
    };
    Some(ReadTemplate {
        template,
        hostname_at: at(hostname_item)?,
        host_ports_at: at(host_ports_item)?,
    })
}

/// A string key read by `parse`, whose message is reported at the value.
fn parsed<T>(
    item: &Item<'_, '_>,
    ctx: &mut Ctx,
    parse: fn(&str) -> Result<T, String>,
) -> Option<T> {
    let text = item.text(ctx)?;
    parse(text)
        .map_err(|message| item.invalid(ctx, message))
        .ok()
}

/// One of `options` by name; `default` when absent.
fn choice<T: Copy>(
    item: Option<&Item<'_, '_>>,
    ctx: &mut Ctx,
    options: &[(&str, T)],
    default: T,
) -> Option<T> {
    let Some(item) = item else {
        return Some(default);
    };
    let text = item.as_str(ctx)?;
    if let Some((_, value)) = options.iter().find(|(name, _)| *name == text) {
        return Some(*value);
    }
    let names: Vec<String> = options
        .iter()
        .map(|(name, _)| format!("\"{name}\""))
        .collect();
    let listed = match names.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    item.invalid(ctx, format!("must be {listed}, found \"{text}\""));
    None
}

fn read_key_pattern(item: &Item<'_, '_>, ctx: &mut Ctx) -> Option<Regex> {
    let text = item.text(ctx)?;
    if text.len() > MAX_KEY_PATTERN_LEN {
        item.invalid(ctx, format!("must be at most {MAX_KEY_PATTERN_LEN} bytes"));
        return None;
    }
    match anchored(text) {
        Ok(regex) => Some(regex),
        Err(e) => {
            item.invalid(ctx, format!("not a valid regular expression: {e}"));
            None
        }
    }
}

/// `text` matching whole keys only. Always wrapped in `^(?:...)$`, which changes nothing for an
/// anchored pattern and anchors every branch of `^a|b$` (which a look at its ends would take as
/// anchored). Compiled alone first: an unbalanced `a)|(b` would otherwise escape the group.
fn anchored(text: &str) -> Result<Regex, regex_lite::Error> {
    Regex::new(text)?;
    Regex::new(&format!("^(?:{text})$"))
}

/// `allow_env = ["NOTEBOOK_ID"]`: variable names, none of them spawngate's own, none twice.
fn read_allow_env(item: &Item<'_, '_>, ctx: &mut Ctx) -> Option<Vec<String>> {
    let names = item.string_list(ctx)?;
    // `string_list` gave every element, so the array lines up with `names`.
    let DeValue::Array(array) = item.value.get_ref() else {
        return None;
    };
    let mut ok = true;
    for (index, (name, element)) in names.iter().zip(array.iter()).enumerate() {
        let mut chars = name.chars();
        let well_formed = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        let problem = if !well_formed {
            Some(format!(
                "\"{name}\" is no variable name (letters, digits and '_', not starting with a digit)"
            ))
        } else if instance::reserved_env(name) {
            Some(format!("{name} is set by spawngate for every session"))
        } else if names[..index].contains(name) {
            Some(format!("{name} is listed twice"))
        } else {
            None
        };
        if let Some(message) = problem {
            let path = format!("{}[{index}]", item.path);
            ctx.report(&element.span(), &path, message);
            ok = false;
        }
    }
    ok.then_some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_patterns_match_whole_keys() {
        let regex = anchored("^a|b$").unwrap();
        assert!(regex.is_match("a") && regex.is_match("b"));
        assert!(!regex.is_match("ax") && !regex.is_match("xb"));
        let regex = anchored("[a-z]+").unwrap();
        assert!(regex.is_match("abc") && !regex.is_match("abc-1"));
        assert!(anchored("a)|(b").is_err(), "no escaping the group");
        let default = anchored(DEFAULT_KEY_PATTERN).unwrap();
        assert!(default.is_match("nb-7731") && default.is_match("a.b_c"));
        assert!(!default.is_match("-a") && !default.is_match("A") && !default.is_match(""));
        assert!(default.is_match(&"a".repeat(128)) && !default.is_match(&"a".repeat(129)));
    }

    #[test]
    fn template_names() {
        assert!(check_name("kernel_2-x").is_ok());
        for bad in ["", "Kernel", "a.b", "a b", &"a".repeat(64)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
