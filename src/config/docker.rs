//! The keys of a `type = "docker"` backend.

use std::ops::Range;

use toml::de::DeValue;

use super::backend::optional_list;
use super::reader::{Ctx, Item, Section};
use super::units::{check_container_name, default_container_name, parse_cpus, parse_memory};
use super::{DockerSpec, PullPolicy};

/// Docker refuses smaller memory limits ("Minimum memory limit allowed is 6MB").
const MIN_MEMORY_BYTES: u64 = 6 << 20;

/// Where an explicitly configured `container_name` is (span and key path), for clash reports.
pub(super) type NameAt = (Range<usize>, String);

/// Reads a Docker backend's keys. Returns `None` when any of them is invalid (all are reported).
pub(super) fn read(
    section: &mut Section<'_, '_>,
    ctx: &mut Ctx,
    hostname: &str,
) -> Option<(DockerSpec, Option<NameAt>)> {
    let image = section
        .require(ctx, "image")
        .and_then(|item| image(&item, ctx));
    let mut name_at = None;
    let container_name = match section.take("container_name") {
        None => Some(default_container_name(hostname)),
        Some(item) => {
            name_at = Some((item.span(), item.path.clone()));
            item.text(ctx)
                .and_then(|name| match check_container_name(name) {
                    Ok(()) => Some(name.to_string()),
                    Err(message) => {
                        item.invalid(ctx, message);
                        None
                    }
                })
        }
    };
    let pull_policy = match section.take("pull_policy") {
        None => Some(PullPolicy::IfNotPresent),
        Some(item) => pull_policy(&item, ctx),
    };
    let memory = optional(section.take("memory"), |item| memory(item, ctx));
    let nano_cpus = optional(section.take("cpus"), |item| cpus(item, ctx));
    let network = optional(section.take("network"), |item| network(item, ctx));
    let docker_host = optional(section.take("docker_host"), |item| docker_host(item, ctx));
    let args = optional_list(section, ctx, "args");
    let spec = DockerSpec {
        image: image?,
        container_name: container_name?,
        pull_policy: pull_policy?,
        memory: memory?,
        nano_cpus: nano_cpus?,
        network: network?,
        docker_host: docker_host?,
        args: args?,
    };
    Some((spec, name_at))
}

/// `Some(None)` when absent, `Some(Some(v))` when valid, `None` when invalid.
pub(in crate::config) fn optional<'t, 'i, T>(
    item: Option<Item<'t, 'i>>,
    read: impl FnOnce(&Item<'t, 'i>) -> Option<T>,
) -> Option<Option<T>> {
    match item {
        None => Some(None),
        Some(item) => read(&item).map(Some),
    }
}

/// Text that ends up in a single Docker API field, where whitespace is always a mistake.
fn word(item: &Item<'_, '_>, ctx: &mut Ctx) -> Option<String> {
    let text = item.text(ctx)?;
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        item.invalid(ctx, "must not contain whitespace or control characters");
        return None;
    }
    Some(text.to_string())
}

fn image(item: &Item<'_, '_>, ctx: &mut Ctx) -> Option<String> {
    word(item, ctx)
}

fn network(item: &Item<'_, '_>, ctx: &mut Ctx) -> Option<String> {
    word(item, ctx)
}

fn pull_policy(item: &Item<'_, '_>, ctx: &mut Ctx) -> Option<PullPolicy> {
    match item.as_str(ctx)? {
        "always" => Some(PullPolicy::Always),
        "never" => Some(PullPolicy::Never),
        "if-not-present" => Some(PullPolicy::IfNotPresent),
        other => {
            let message =
                format!("must be \"always\", \"never\" or \"if-not-present\", found \"{other}\"");
            item.invalid(ctx, message);
            None
        }
    }
}

fn memory(item: &Item<'_, '_>, ctx: &mut Ctx) -> Option<u64> {
    let bytes = match item.value.get_ref() {
        DeValue::String(text) => parse_memory(text),
        DeValue::Integer(_) => match item.as_int(ctx).map(u64::try_from) {
            Some(Ok(bytes)) => Ok(bytes),
            Some(Err(_)) => Err("must not be negative".to_string()),
            None => return None,
        },
        other => Err(format!(
            "must be a size like \"512m\" or a number of bytes, found {}",
            super::reader::article(other.type_str())
        )),
    };
    match bytes {
        Ok(bytes) if bytes >= MIN_MEMORY_BYTES => Some(bytes),
        Ok(_) => {
            item.invalid(ctx, "must be at least 6m (Docker's minimum)");
            None
        }
        Err(message) => {
            item.invalid(ctx, message);
            None
        }
    }
}

fn cpus(item: &Item<'_, '_>, ctx: &mut Ctx) -> Option<u64> {
    let nanos = match item.value.get_ref() {
        DeValue::String(text) => parse_cpus(text),
        DeValue::Integer(_) => match item.as_int(ctx) {
            Some(n) => parse_cpus(&n.to_string()),
            None => return None,
        },
        // The float's source text, so "0.1" is exactly 100_000_000 rather than a binary approximation.
        DeValue::Float(float) => parse_cpus(float.as_str()),
        other => Err(format!(
            "must be a number of CPUs like 0.5 or \"2\", found {}",
            super::reader::article(other.type_str())
        )),
    };
    match nanos {
        Ok(nanos) => Some(nanos),
        Err(message) => {
            item.invalid(ctx, message);
            None
        }
    }
}

fn docker_host(item: &Item<'_, '_>, ctx: &mut Ctx) -> Option<String> {
    let text = word(item, ctx)?;
    let rest = text
        .strip_prefix("unix://")
        .or_else(|| text.strip_prefix("tcp://"));
    match rest {
        Some(rest) if !rest.is_empty() => Some(text),
        Some(_) => {
            item.invalid(ctx, "names no socket path or address after the scheme");
            None
        }
        None => {
            let message = "must start with unix:// (a socket path) or tcp:// (host:port)";
            item.invalid(ctx, message);
            None
        }
    }
}
