//! `[server]`: listeners, the upstream pool and the proxy-wide limits.

use std::fs::File;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::reader::{Ctx, Item, Section};
use super::{AccessLogFormat, AccessLogTarget, AdminToken, Limits, ServerConfig};

/// Built-in values of every `[server]` key (SPEC.md).
pub(super) fn builtin() -> ServerConfig {
    ServerConfig {
        bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 8080,
        admin_bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        admin_port: 9999,
        pool_max_idle_per_host: 10,
        pool_idle_timeout: Duration::from_secs(90),
        pid_file: None,
        admin_token: None,
        access_log: AccessLogTarget::Off,
        access_log_format: AccessLogFormat::Combined,
        limits: Limits {
            max_connections: 10_000,
            max_request_body_bytes: Some(1 << 30),
            header_read_timeout: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(75),
            max_held_requests: 1_000,
        },
    }
}

/// `pool_max_idle_per_host`: 0 (no pooling) to 10 000; more idle sockets than that per backend only
/// waste file descriptors.
const POOL_MAX_IDLE_PER_HOST: (u64, u64) = (0, 10_000);
/// `pool_idle_timeout_secs`: 1 s to 1 hour; backends commonly close idle keep-alive sockets well before.
const POOL_IDLE_TIMEOUT_SECS: (u64, u64) = (1, 3_600);
/// `max_connections`: 1 to 1 000 000 client connections (each costs buffers and a file descriptor).
const MAX_CONNECTIONS: (u64, u64) = (1, 1_000_000);
/// `max_request_body_bytes`: 0 means unlimited; TOML integers stop at `i64::MAX`.
pub(super) const MAX_REQUEST_BODY_BYTES: (u64, u64) = (0, i64::MAX as u64);
/// `header_read_timeout_secs`: 1 s to 1 hour.
const HEADER_READ_TIMEOUT_SECS: (u64, u64) = (1, 3_600);
/// `keepalive_timeout_secs`: 1 s to 1 day.
const KEEPALIVE_TIMEOUT_SECS: (u64, u64) = (1, 86_400);
/// `max_held_requests`: 1 to 100 000 requests waiting per backend while it starts.
const MAX_HELD_REQUESTS: (u64, u64) = (1, 100_000);

/// Reads `[server]`; absent or invalid keys keep their built-in value (invalid ones are reported).
pub(super) fn read(section: Option<Section<'_, '_>>, ctx: &mut Ctx) -> ServerConfig {
    let mut out = builtin();
    let Some(mut section) = section else {
        return out;
    };

    if let Some(ip) = section.take("bind").and_then(|item| ip_addr(&item, ctx)) {
        out.bind = ip;
    }
    let admin_bind = section.take("admin_bind");
    if let Some(ip) = admin_bind.as_ref().and_then(|item| ip_addr(item, ctx)) {
        out.admin_bind = ip;
    }
    let port = section.take("port");
    if let Some(n) = port.as_ref().and_then(|item| item.uint_in(ctx, 0, 65_535)) {
        out.port = n as u16;
    }
    let admin_port = section.take("admin_port");
    if let Some(n) = admin_port
        .as_ref()
        .and_then(|item| item.uint_in(ctx, 0, 65_535))
    {
        out.admin_port = n as u16;
    }
    if out.port != 0 && out.port == out.admin_port && binds_overlap(out.bind, out.admin_bind) {
        // The built-in ports differ, so a clash always involves a key the file set.
        if let Some(item) = admin_port.as_ref().or(port.as_ref()) {
            let message = format!("the proxy already listens on port {}", out.port);
            item.invalid(ctx, message);
        }
    }

    let mut number = |key: &'static str, (min, max): (u64, u64)| {
        section
            .take(key)
            .and_then(|item| item.uint_in(ctx, min, max))
    };
    if let Some(n) = number("pool_max_idle_per_host", POOL_MAX_IDLE_PER_HOST) {
        out.pool_max_idle_per_host = to_usize(n);
    }
    if let Some(n) = number("pool_idle_timeout_secs", POOL_IDLE_TIMEOUT_SECS) {
        out.pool_idle_timeout = Duration::from_secs(n);
    }
    let limits = &mut out.limits;
    if let Some(n) = number("max_connections", MAX_CONNECTIONS) {
        limits.max_connections = to_usize(n);
    }
    if let Some(n) = number("max_request_body_bytes", MAX_REQUEST_BODY_BYTES) {
        limits.max_request_body_bytes = (n != 0).then_some(n);
    }
    if let Some(n) = number("header_read_timeout_secs", HEADER_READ_TIMEOUT_SECS) {
        limits.header_read_timeout = Duration::from_secs(n);
    }
    if let Some(n) = number("keepalive_timeout_secs", KEEPALIVE_TIMEOUT_SECS) {
        limits.keepalive_timeout = Duration::from_secs(n);
    }
    if let Some(n) = number("max_held_requests", MAX_HELD_REQUESTS) {
        limits.max_held_requests = to_usize(n);
    }

    if let Some(item) = section.take("pid_file") {
        if let Some(path) = item.text(ctx) {
            out.pid_file = Some(PathBuf::from(path));
        }
    }
    if let Some(item) = section.take("access_log") {
        if let Some(text) = item.text(ctx) {
            out.access_log = match text {
                "off" => AccessLogTarget::Off,
                "stderr" => AccessLogTarget::Stderr,
                path => AccessLogTarget::File(PathBuf::from(path)),
            };
        }
    }
    if let Some(item) = section.take("access_log_format") {
        match item.as_str(ctx) {
            Some("combined") => out.access_log_format = AccessLogFormat::Combined,
            Some("json") => out.access_log_format = AccessLogFormat::Json,
            Some(other) => {
                let message = format!("must be \"combined\" or \"json\", found \"{other}\"");
                item.invalid(ctx, message);
            }
            None => {}
        }
    }
    match (section.take("admin_token_file"), &admin_bind) {
        (Some(item), _) => out.admin_token = admin_token(&item, ctx),
        // Whoever reaches an open admin API can start processes; only this machine may.
        (None, Some(bind)) if !out.admin_bind.to_canonical().is_loopback() => {
            let message = "the admin API on a non-loopback address needs admin_token_file";
            bind.invalid(ctx, message);
        }
        (None, _) => {}
    }
    section.finish(ctx);
    out
}

/// Largest token file read: a token is a few dozen bytes, and the bound keeps a wrong path (a log)
/// from being read into memory.
const MAX_TOKEN_FILE_BYTES: u64 = 4_096;
/// Shortest token accepted: 16 bytes are 128 bits when random.
const MIN_TOKEN_BYTES: usize = 16;

/// `admin_token_file`: the token in the file, surrounding whitespace trimmed. A relative path is
/// relative to the working directory, as `pid_file` is. Messages never show the token.
fn admin_token(item: &Item<'_, '_>, ctx: &mut Ctx) -> Option<AdminToken> {
    let path = item.text(ctx)?;
    let problem = match read_capped(Path::new(path)) {
        Err(message) => message,
        Ok(bytes) => {
            let token = bytes.trim_ascii();
            if token.is_empty() {
                format!("\"{path}\" is empty")
            } else if token.len() < MIN_TOKEN_BYTES {
                format!(
                    "the token in \"{path}\" is {} bytes; at least {MIN_TOKEN_BYTES} are needed",
                    token.len()
                )
            } else if !token.iter().all(|b| b.is_ascii_graphic()) {
                // It travels in an `Authorization: Bearer` field, which holds nothing else.
                format!("the token in \"{path}\" must be printable ASCII without spaces")
            } else {
                return Some(AdminToken(token.into()));
            }
        }
    };
    item.invalid(ctx, problem);
    None
}

/// The file's bytes, or why they cannot be had. Only a regular file is read: a FIFO would block the
/// load (and a reload runs on the reactor).
fn read_capped(path: &Path) -> Result<Vec<u8>, String> {
    let cannot = |e: std::io::Error| format!("cannot read \"{}\": {e}", path.display());
    // Checked before opening: opening a FIFO for reading blocks until a writer comes.
    if !std::fs::metadata(path).map_err(cannot)?.is_file() {
        return Err(format!("\"{}\" is not a regular file", path.display()));
    }
    let file = File::open(path).map_err(cannot)?;
    let mut bytes = Vec::new();
    file.take(MAX_TOKEN_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_TOKEN_FILE_BYTES {
        return Err(format!(
            "\"{}\" is larger than {MAX_TOKEN_FILE_BYTES} bytes; is this the token file?",
            path.display()
        ));
    }
    Ok(bytes)
}

pub(super) fn ip_addr(item: &Item<'_, '_>, ctx: &mut Ctx) -> Option<IpAddr> {
    let text = item.as_str(ctx)?;
    match text.parse() {
        Ok(ip) => Some(ip),
        Err(_) => {
            item.invalid(
                ctx,
                format!(
                    "\"{text}\" is not an IP address (e.g. \"127.0.0.1\", \"0.0.0.0\", \"::\")"
                ),
            );
            None
        }
    }
}

/// Whether listening on both addresses with one port would collide.
pub(super) fn binds_overlap(a: IpAddr, b: IpAddr) -> bool {
    a == b || a.is_unspecified() || b.is_unspecified()
}

/// The bounds above all fit in 32 bits, so this never saturates in practice.
fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}
