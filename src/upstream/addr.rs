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

/// The address of one instance: a TCP socket, a unix-domain socket path, or (feature `tls`) a TCP socket
/// spoken to over TLS (`address = "https://host:port"`, only for an instance someone else runs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UpstreamAddr {
    Tcp(SocketAddr),
    Unix(Arc<PathBuf>),
    #[cfg(feature = "tls")]
    Tls(Arc<crate::tls::backend::TlsTarget>),
}

impl UpstreamAddr {
    /// The address of a backend's first instance (its only one today), from the instance model. For
    /// tables built from config before any report names an instance's address.
    pub fn of(config: &BackendConfig) -> UpstreamAddr {
        InstanceSpec::first(config).addr
    }

    /// The TCP address, if this is a cleartext one (where a started instance listens).
    pub fn tcp(&self) -> Option<SocketAddr> {
        match self {
            UpstreamAddr::Tcp(addr) => Some(*addr),
            UpstreamAddr::Unix(_) => None,
            #[cfg(feature = "tls")]
            UpstreamAddr::Tls(_) => None,
        }
    }
}

impl fmt::Display for UpstreamAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamAddr::Tcp(addr) => write!(f, "{addr}"),
            UpstreamAddr::Unix(path) => write!(f, "unix:{}", path.display()),
            #[cfg(feature = "tls")]
            UpstreamAddr::Tls(target) => write!(f, "https://{}", target.addr),
        }
    }
}
