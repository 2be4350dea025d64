//! Where an instance listens. This is the one place that turns a backend's config into an address: every
//! other part of the proxy (both request paths, the health probe, the port check) takes the address the
//! instance model gives it, so unix sockets and fixed addresses land here and nowhere else.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::BackendConfig;

/// The address of one instance: a TCP socket, or a unix-domain socket path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UpstreamAddr {
    Tcp(SocketAddr),
    Unix(Arc<PathBuf>),
}

impl UpstreamAddr {
    /// The address of the instance a backend's config describes: today every backend is one local process
    /// or container published on loopback at its `port`.
    pub fn of(config: &BackendConfig) -> UpstreamAddr {
        UpstreamAddr::Tcp(SocketAddr::from((Ipv4Addr::LOCALHOST, config.port)))
    }

    /// The TCP address, if this is one.
    pub fn tcp(&self) -> Option<SocketAddr> {
        match self {
            UpstreamAddr::Tcp(addr) => Some(*addr),
            UpstreamAddr::Unix(_) => None,
        }
    }
}

impl fmt::Display for UpstreamAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamAddr::Tcp(addr) => write!(f, "{addr}"),
            UpstreamAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}
