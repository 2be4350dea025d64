//! Where the Docker daemon listens: a `unix://` socket path or a `tcp://` address, given per backend
//! (`docker_host`) or found the way the `docker` CLI finds it.

use std::fmt;
use std::path::{Path, PathBuf};

/// The port of `tcp://host` without one: Docker's unencrypted port.
const DEFAULT_TCP_PORT: u16 = 2375;

/// Sockets tried in order when neither `docker_host` nor `DOCKER_HOST` is set: the system daemon, then
/// Docker Desktop, Colima and Rancher Desktop (all under the user's home).
const SYSTEM_SOCKET: &str = "/var/run/docker.sock";
const HOME_SOCKETS: [&str; 3] = [
    ".docker/run/docker.sock",
    ".colima/default/docker.sock",
    ".rd/docker.sock",
];

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Unix(PathBuf),
    /// "host:port"
    Tcp(String),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "unix://{}", path.display()),
            Endpoint::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

impl Endpoint {
    /// Parses `unix:///path` or `tcp://host[:port]` (a trailing `/` is allowed after the address).
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        let text = text.trim();
        if let Some(path) = text.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(format!("{text:?} names no socket path"));
            }
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        if let Some(rest) = text.strip_prefix("tcp://") {
            let addr = rest.trim_end_matches('/');
            if addr.is_empty() || addr.contains('/') {
                return Err(format!("{text:?} is not tcp://host:port"));
            }
            return Ok(Endpoint::Tcp(with_default_port(addr)));
        }
        Err(format!(
            "{text:?} is not supported (only unix:// sockets and plain tcp:// addresses are)"
        ))
    }

    /// The backend's `docker_host` if it has one, else the environment's daemon.
    pub fn for_backend(docker_host: Option<&str>) -> Result<Endpoint, String> {
        match docker_host {
            Some(host) => Endpoint::parse(host),
            None => Endpoint::detect(),
        }
    }

    /// `DOCKER_HOST`, else the first socket that exists among the usual places.
    pub fn detect() -> Result<Endpoint, String> {
        let docker_host = std::env::var("DOCKER_HOST").ok();
        let home = std::env::var_os("HOME").map(PathBuf::from);
        detect_from(docker_host.as_deref(), home.as_deref(), |p| p.exists())
    }
}

fn with_default_port(addr: &str) -> String {
    let has_port = match addr.rfind(']') {
        // "[::1]" or "[::1]:2375"
        Some(close) => addr[close..].contains(':'),
        None => addr.contains(':'),
    };
    if has_port {
        addr.to_string()
    } else {
        format!("{addr}:{DEFAULT_TCP_PORT}")
    }
}

/// The detection rule with the environment passed in, so tests need not touch the real one.
pub fn detect_from(
    docker_host: Option<&str>,
    home: Option<&Path>,
    exists: impl Fn(&Path) -> bool,
) -> Result<Endpoint, String> {
    if let Some(host) = docker_host.filter(|h| !h.trim().is_empty()) {
        return Endpoint::parse(host).map_err(|why| format!("DOCKER_HOST {why}"));
    }
    let mut candidates = vec![PathBuf::from(SYSTEM_SOCKET)];
    if let Some(home) = home {
        candidates.extend(HOME_SOCKETS.iter().map(|rel| home.join(rel)));
    }
    if let Some(found) = candidates.iter().find(|path| exists(path)) {
        return Ok(Endpoint::Unix(found.clone()));
    }
    let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    Err(format!(
        "no Docker daemon found: DOCKER_HOST is not set and no socket exists at {} (is Docker running?)",
        tried.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_unix_and_tcp_hosts() {
        assert_eq!(
            Endpoint::parse("unix:///var/run/docker.sock"),
            Ok(Endpoint::Unix(PathBuf::from("/var/run/docker.sock")))
        );
        assert_eq!(
            Endpoint::parse("tcp://10.0.0.2:2376/"),
            Ok(Endpoint::Tcp("10.0.0.2:2376".into()))
        );
        assert_eq!(
            Endpoint::parse("tcp://docker.internal"),
            Ok(Endpoint::Tcp("docker.internal:2375".into()))
        );
        assert_eq!(
            Endpoint::parse("tcp://[::1]"),
            Ok(Endpoint::Tcp("[::1]:2375".into()))
        );
        assert_eq!(
            Endpoint::parse("tcp://[::1]:9"),
            Ok(Endpoint::Tcp("[::1]:9".into()))
        );
        for bad in [
            "unix://",
            "tcp://",
            "tcp://a/b",
            "ssh://me@host",
            "npipe:////./pipe/x",
            "",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
        let shown = Endpoint::parse("unix:///run/d.sock").unwrap().to_string();
        assert_eq!(shown, "unix:///run/d.sock");
    }

    #[test]
    fn docker_host_wins_over_sockets() {
        let found = detect_from(Some("tcp://h:1"), Some(Path::new("/home/u")), |_| true);
        assert_eq!(found, Ok(Endpoint::Tcp("h:1".into())));
        let bad = detect_from(Some("ftp://x"), None, |_| true).unwrap_err();
        assert!(bad.starts_with("DOCKER_HOST "), "{bad}");
    }

    #[test]
    fn sockets_are_tried_in_order() {
        let home = Path::new("/home/u");
        let only = |wanted: &'static str| move |p: &Path| p == Path::new(wanted);
        let cases = [
            ("/var/run/docker.sock", "/var/run/docker.sock"),
            (
                "/home/u/.docker/run/docker.sock",
                "/home/u/.docker/run/docker.sock",
            ),
            (
                "/home/u/.colima/default/docker.sock",
                "/home/u/.colima/default/docker.sock",
            ),
            ("/home/u/.rd/docker.sock", "/home/u/.rd/docker.sock"),
        ];
        for (present, expected) in cases {
            let found = detect_from(None, Some(home), only(present));
            assert_eq!(found, Ok(Endpoint::Unix(PathBuf::from(expected))));
        }
        let both = |p: &Path| p.starts_with("/var/run") || p.starts_with("/home/u/.rd");
        let found = detect_from(Some(""), Some(home), both);
        assert_eq!(found, Ok(Endpoint::Unix(PathBuf::from(SYSTEM_SOCKET))));
    }

    #[test]
    fn nothing_found_names_every_place_tried() {
        let why = detect_from(None, Some(Path::new("/home/u")), |_| false).unwrap_err();
        assert!(why.contains("/var/run/docker.sock"), "{why}");
        assert!(why.contains("/home/u/.rd/docker.sock"), "{why}");
        assert!(why.contains("is Docker running?"), "{why}");
    }
}
