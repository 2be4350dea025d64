//! Where an instance listens. Addresses are derived from config in one place, the instance model
//! ([`super::instance`]): every other part of the proxy (both request paths, the health probe, the port
//! check) takes the address an instance spec or a report gives it, so unix sockets and fixed addresses
//! land there and nowhere else.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use super::instance::InstanceSpec;
use crate::config::BackendConfig;

/// The address of one instance: a TCP socket, or a unix-domain socket path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UpstreamAddr {
    Tcp(SocketAddr),
    Unix(Arc<PathBuf>),
}

impl UpstreamAddr {
    /// The address of a backend's first instance (its only one today), from the instance model. For
    /// tables built from config before any report names an instance's address.
    pub fn of(config: &BackendConfig) -> UpstreamAddr {
        InstanceSpec::first(config).addr
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
