//! Configuration: the typed model every other module reads, loaded from TOML.
//!
//! `load` parses a file, merges `[defaults]` into each backend and validates every value, reporting *all*
//! problems at once with file, line and key (see `ConfigErrors`). The rest of the crate only ever sees a
//! fully valid `Config`.

mod backend;
mod diff;
mod docker;
pub mod hosts;
mod item;
mod load;
pub mod pools;
mod reader;
pub mod routes;
mod server;
pub mod sessions;
#[cfg(test)]
mod tests;
mod timings;
mod tls;
mod units;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use diff::{diff, ConfigDiff};
pub use load::{load, parse, ConfigError, ConfigErrors};
pub use tls::{AcmeChallenge, AcmeConfig, CertificateFile, TlsConfig};

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from (used for reload and in messages).
    pub path: PathBuf,
    pub server: ServerConfig,
    /// `[backends]` entries and `[pools]`, sorted by name (a Host, or a pool name, which has no '.');
    /// names are unique and lower-case.
    pub backends: Vec<Arc<BackendConfig>>,
    /// `[hosts."HOST"]` route tables, in file order.
    pub hosts: Vec<hosts::HostConfig>,
    /// `[sessions.NAME]` templates, sorted by name.
    pub sessions: Vec<Arc<sessions::SessionTemplate>>,
    /// `https_port` and `[tls]`; `None` without them (only cleartext HTTP).
    pub tls: Option<TlsConfig>,
}

/// `[server]`: listeners, the upstream pool and the proxy-wide limits.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub bind: IpAddr,
    /// 0 asks the OS for a free port (the chosen port is logged).
    pub port: u16,
    pub admin_bind: IpAddr,
    /// 0 asks the OS for a free port (the chosen port is logged).
    pub admin_port: u16,
    pub pool_max_idle_per_host: usize,
    pub pool_idle_timeout: Duration,
    pub pid_file: Option<PathBuf>,
    pub limits: Limits,
    /// `admin_token_file`: the admin API's bearer token, read from this file (trimmed) at load and on
    /// every reload. `None`: the admin API is open (allowed only on a loopback `admin_bind`).
    pub admin_token: Option<AdminToken>,
    /// `access_log`: where one line per request goes (a reload applies a change).
    pub access_log: AccessLogTarget,
    /// `access_log_format` (a reload applies a change).
    pub access_log_format: AccessLogFormat,
}

/// `access_log = "off" | "stderr" | "/path"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTarget {
    Off,
    Stderr,
    /// Appended to (created 0640); reopened on SIGUSR1. Relative to the working directory.
    File(PathBuf),
}

/// `access_log_format = "combined" | "json"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLogFormat {
    /// Apache's combined format with the proxy's fields as `key=value` after it.
    Combined,
    /// One JSON object per line.
    Json,
}

/// The admin API's bearer token. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(pub Box<[u8]>);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

/// Proxy-wide resource limits (all `[server]` keys; see the README's Security section).
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Client connections open at once; accepting pauses at the limit.
    pub max_connections: usize,
    /// Largest request body forwarded (413 above it); `None` = unlimited.
    pub max_request_body_bytes: Option<u64>,
    /// Time a client has to send a complete request head (408 after it).
    pub header_read_timeout: Duration,
    /// Time a keep-alive client connection may sit idle between requests.
    pub keepalive_timeout: Duration,
    /// Requests held per backend while it starts (503 above it).
    pub max_held_requests: usize,
}

/// Lifecycle and probing settings: `[defaults]`, overridable per backend.
#[derive(Debug, Clone, PartialEq)]
pub struct Timings {
    pub idle_timeout: Duration,
    pub startup_timeout: Duration,
    pub health_check_interval: Duration,
    /// Always starts with '/'.
    pub health_path: String,
    pub request_timeout: Duration,
    pub shutdown_grace_period: Duration,
    pub drain_timeout: Duration,
    pub ready_health_check_interval: Duration,
    /// At least 1.
    pub unhealthy_threshold: u32,
    /// `socket_activation`: the supervisor binds a local instance's listener and passes it as fd 3
    /// (`LISTEN_FDS=1`); requests are routed at once and wait in its backlog. Local processes only.
    pub socket_activation: bool,
    /// `watchdog_secs`: a ready local instance that goes this long without sending `WATCHDOG=1` to its
    /// `NOTIFY_SOCKET` is treated as unhealthy. `None`: no watchdog.
    pub watchdog: Option<Duration>,
    /// `server_timing`: a response that waited for its backend to start says how long, in
    /// `Server-Timing: cold-start;dur=<ms>`. On unless turned off.
    pub server_timing: bool,
}

/// One `[backends."host"]` table or one `[pools.NAME]`, with `[defaults]` already merged in: a set of
/// instances run under one name and one set of timings.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendConfig {
    /// Its name: for a `[backends]` entry the Host it answers for (lower-case, no port), for a pool the
    /// pool's name (no '.', so never a Host).
    pub hostname: String,
    /// A `[backends]` entry's one instance: where it listens on 127.0.0.1 (for Docker: the container
    /// port, published on 127.0.0.1:port). A pool's first instance's port (0 for a socket or address).
    pub port: u16,
    /// A `[backends]` entry's one instance (a pool's instances each carry their own).
    pub kind: BackendKind,
    /// The `env` table, in file order. `PORT` and `SERVERLESS_PROXY_READY_URL` are added at start.
    pub env: Vec<(String, String)>,
    pub timings: Timings,
    /// `Some` for a `[pools.NAME]`: its instances, balancing and scaling. `None`: a `[backends]` entry,
    /// one instance started on demand and routed by its Host.
    pub pool: Option<Arc<pools::PoolConfig>>,
    /// `Some` for a session's backend, made at run time from a `[sessions.NAME]` template.
    pub session: Option<Arc<sessions::SessionTag>>,
}

impl BackendConfig {
    /// A `[pools]` entry (not routed by a Host of its own).
    pub fn is_pool(&self) -> bool {
        self.pool.is_some()
    }

    /// How its instances are judged ready and alive (`http` for a `[backends]` entry).
    pub fn health(&self) -> pools::Health {
        self.pool.as_ref().map_or(pools::Health::Http, |p| p.health)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum BackendKind {
    Local(LocalSpec),
    Docker(DockerSpec),
    /// A fixed address (`address = "host:port"` or `"unix:/path"`) run by someone else: never started
    /// or stopped, only probed.
    External,
}

/// `type = "local"` (the default): a child process.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalSpec {
    pub command: String,
    pub args: Vec<String>,
    pub working_dir: Option<PathBuf>,
}

/// `type = "docker"`: a container run through the Docker Engine API.
#[derive(Debug, Clone, PartialEq)]
pub struct DockerSpec {
    pub image: String,
    /// Given, or `spawngate-{hostname}` with characters Docker rejects replaced by '-'.
    pub container_name: String,
    pub pull_policy: PullPolicy,
    /// Bytes.
    pub memory: Option<u64>,
    /// Billionths of a CPU (Docker's `NanoCpus`).
    pub nano_cpus: Option<u64>,
    pub network: Option<String>,
    /// `unix:///path` or `tcp://host:port`; `None` = auto-detect.
    pub docker_host: Option<String>,
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    Never,
    IfNotPresent,
}

impl Config {
    pub fn backend(&self, hostname: &str) -> Option<&Arc<BackendConfig>> {
        self.backends
            .binary_search_by(|b| b.hostname.as_str().cmp(hostname))
            .ok()
            .map(|i| &self.backends[i])
    }
}
