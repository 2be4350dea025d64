//! The Engine API client: one `ureq` agent per daemon, the API version agreed with the daemon, bounded
//! replies, and Docker's error bodies turned into messages an operator can act on.
//!
//! Every call blocks, so only the driver's worker threads make them, never the supervisor's loop.

use std::fmt;
use std::time::Duration;

use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::TcpConnector;
use ureq::{Agent, Body, BodyReader};

use super::endpoint::Endpoint;
use super::transport::{SocketResolver, UnixConnector};
use crate::json::Json;

/// The newest API version this client is written against; a newer daemon is spoken to at this version.
const MAX_API: ApiVersion = ApiVersion(1, 43);
/// The oldest it can use: `NanoCpus` (1.25) and `wait?condition=not-running` (1.30) must exist.
const MIN_API: ApiVersion = ApiVersion(1, 30);
/// Connecting to a local socket is instant; a TCP daemon gets a little longer, but a dead one must fail a
/// start within a second or two, not after the startup timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest ordinary call (inspect, create, start, remove). A daemon slower than this is treated as down.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest reply read into memory: a container list on a busy host is the biggest thing asked for.
const MAX_REPLY_BYTES: u64 = 4 << 20;
/// Longest Docker error message kept (they can embed whole registry replies).
const MAX_MESSAGE_CHARS: usize = 1000;
/// Idle connections kept to one daemon: a start, a stop and a log stream can overlap.
const MAX_IDLE_CONNECTIONS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u32, pub u32);

impl ApiVersion {
    pub fn parse(text: &str) -> Option<ApiVersion> {
        let (major, minor) = text.trim().split_once('.')?;
        Some(ApiVersion(major.parse().ok()?, minor.parse().ok()?))
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerError {
    /// No connection to the daemon could be made; the text says why and what to check.
    Unreachable(String),
    /// The daemon answered with an error status and this message.
    Api { status: u16, message: String },
    /// The call did not finish in time.
    Timeout(String),
    /// The daemon accepted the call but reported a failure inside its reply (e.g. a pull).
    Failed(String),
    /// The exchange broke off, or the reply made no sense.
    Broken(String),
}

impl fmt::Display for DockerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DockerError::Unreachable(why)
            | DockerError::Timeout(why)
            | DockerError::Failed(why) => f.write_str(why),
            DockerError::Api { status, message } => write!(f, "{message} (HTTP {status})"),
            DockerError::Broken(why) => write!(f, "the Docker daemon's reply broke off: {why}"),
        }
    }
}

impl DockerError {
    pub fn status(&self) -> Option<u16> {
        match self {
            DockerError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A complete reply whose status was 2xx (or one the caller said it expects).
#[derive(Debug)]
pub struct Reply {
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Result<Json, DockerError> {
        Json::parse(&self.body).map_err(|e| DockerError::Broken(e.to_string()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Delete,
}

/// A connection to one daemon at an agreed API version. Cheap to clone (the agent is shared).
#[derive(Debug, Clone)]
pub struct Docker {
    agent: Agent,
    endpoint: Endpoint,
    /// "http://docker" for a socket (the host part is ignored), "http://host:port" for TCP.
    base: String,
    version: ApiVersion,
}

impl Docker {
    /// Connects to `endpoint` and agrees on the API version (`/_ping`, else `/version`).
    pub fn connect(endpoint: Endpoint) -> Result<Docker, DockerError> {
        let config = Agent::config_builder()
            .http_status_as_error(false)
            // The daemon is addressed directly; an HTTP_PROXY in the environment must not capture it.
            .proxy(None)
            .max_redirects(0)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(CALL_TIMEOUT))
            .max_idle_connections(MAX_IDLE_CONNECTIONS)
            .max_idle_connections_per_host(MAX_IDLE_CONNECTIONS)
            .user_agent(concat!("spawngate/", env!("CARGO_PKG_VERSION")))
            .build();
        let (agent, base) = match &endpoint {
            Endpoint::Unix(path) => (
                Agent::with_parts(config, UnixConnector::new(path.clone()), SocketResolver),
                "http://docker".to_string(),
            ),
            Endpoint::Tcp(addr) => (
                Agent::with_parts(config, TcpConnector::default(), DefaultResolver::default()),
                format!("http://{addr}"),
            ),
        };
        let mut docker = Docker {
            agent,
            endpoint,
            base,
            version: MIN_API,
        };
        docker.version = docker.negotiate()?;
        Ok(docker)
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub fn version(&self) -> ApiVersion {
        self.version
    }

    fn negotiate(&self) -> Result<ApiVersion, DockerError> {
        let ping = self.send(Method::Get, &format!("{}/_ping", self.base), None, None)?;
        let header = ping
            .headers()
            .get("api-version")
            .and_then(|v| v.to_str().ok())
            .and_then(ApiVersion::parse);
        let daemon = match header {
            Some(version) => version,
            None => {
                let reply = self.finish(self.send(
                    Method::Get,
                    &format!("{}/version", self.base),
                    None,
                    None,
                )?)?;
                let json = reply.json()?;
                json.str_at("ApiVersion")
                    .and_then(ApiVersion::parse)
                    .ok_or_else(|| {
                        DockerError::Broken("the daemon did not say its API version".into())
                    })?
            }
        };
        if daemon < MIN_API {
            return Err(DockerError::Unreachable(format!(
                "the Docker daemon at {} speaks API {daemon}; spawngate needs {MIN_API} or newer",
                self.endpoint
            )));
        }
        Ok(daemon.min(MAX_API))
    }

    /// A versioned API call whose whole reply is read (bounded). Any status outside 2xx is an error
    /// carrying Docker's message.
    pub fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<Reply, DockerError> {
        let url = format!("{}/v{}{}", self.base, self.version, path);
        let response = self.send(method, &url, body, timeout)?;
        self.finish(response)
    }

    /// A versioned call whose body is read as it arrives (logs, pull progress, wait), with no time limit
    /// unless `timeout` gives one. A non-2xx status is an error carrying Docker's message.
    pub fn stream(
        &self,
        method: Method,
        path: &str,
        timeout: Option<Duration>,
    ) -> Result<BodyReader<'static>, DockerError> {
        let url = format!("{}/v{}{}", self.base, self.version, path);
        let agent = &self.agent;
        let request = match method {
            Method::Get => agent
                .get(&url)
                .config()
                .timeout_global(timeout)
                .build()
                .call(),
            Method::Post => agent
                .post(&url)
                .config()
                .timeout_global(timeout)
                .build()
                .send_empty(),
            Method::Delete => agent
                .delete(&url)
                .config()
                .timeout_global(timeout)
                .build()
                .call(),
        };
        let response = request.map_err(|e| self.describe(e))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(error_reply(status, response.into_body()));
        }
        Ok(response.into_body().into_reader())
    }

    fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<ureq::http::Response<Body>, DockerError> {
        let timeout = timeout.or(Some(CALL_TIMEOUT));
        let agent = &self.agent;
        let result = match method {
            Method::Get => agent
                .get(url)
                .config()
                .timeout_global(timeout)
                .build()
                .call(),
            Method::Delete => agent
                .delete(url)
                .config()
                .timeout_global(timeout)
                .build()
                .call(),
            Method::Post => {
                let request = agent.post(url).config().timeout_global(timeout).build();
                match body {
                    Some(json) => request
                        .header("Content-Type", "application/json")
                        .send(json),
                    None => request.send_empty(),
                }
            }
        };
        result.map_err(|e| self.describe(e))
    }

    fn finish(&self, response: ureq::http::Response<Body>) -> Result<Reply, DockerError> {
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(error_reply(status, response.into_body()));
        }
        let body = response
            .into_body()
            .with_config()
            .limit(MAX_REPLY_BYTES)
            .read_to_vec()
            .map_err(|e| self.describe(e))?;
        Ok(Reply { body })
    }

    /// A transport error in words: where the daemon was looked for and what to check.
    fn describe(&self, error: ureq::Error) -> DockerError {
        let at = &self.endpoint;
        match error {
            ureq::Error::Io(e) => match e.kind() {
                std::io::ErrorKind::NotFound => DockerError::Unreachable(format!(
                    "cannot reach the Docker daemon at {at}: the socket does not exist (is Docker running?)"
                )),
                std::io::ErrorKind::ConnectionRefused => DockerError::Unreachable(format!(
                    "cannot reach the Docker daemon at {at}: connection refused (is Docker running?)"
                )),
                std::io::ErrorKind::PermissionDenied => DockerError::Unreachable(format!(
                    "cannot reach the Docker daemon at {at}: permission denied (the proxy's user needs \
                     read and write access to the socket, e.g. membership in the `docker` group)"
                )),
                _ => DockerError::Broken(format!("talking to {at}: {e}")),
            },
            ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => DockerError::Unreachable(
                format!("cannot reach the Docker daemon at {at}: {error}"),
            ),
            ureq::Error::Timeout(which) => DockerError::Timeout(format!(
                "the Docker daemon at {at} did not answer in time ({which})"
            )),
            other => DockerError::Broken(format!("talking to {at}: {other}")),
        }
    }
}

/// Reads Docker's `{"message": "..."}` error body (bounded), falling back to the raw text.
fn error_reply(status: u16, body: Body) -> DockerError {
    let bytes = body
        .into_with_config()
        .limit(MAX_REPLY_BYTES)
        .read_to_vec()
        .unwrap_or_default();
    DockerError::Api {
        status,
        message: error_message(status, &bytes),
    }
}

pub fn error_message(status: u16, body: &[u8]) -> String {
    let from_json = Json::parse(body)
        .ok()
        .and_then(|json| json.str_at("message").map(str::to_string));
    let text = match from_json {
        Some(message) => message,
        None => String::from_utf8_lossy(body).trim().to_string(),
    };
    let text = if text.is_empty() {
        format!("the Docker daemon answered {status} with no message")
    } else {
        text
    };
    clip(&text, MAX_MESSAGE_CHARS)
}

/// At most `max` characters of `text`, marked when cut.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
