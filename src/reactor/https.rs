//! The HTTPS listener (feature `tls`): bound beside the cleartext one when `https_port` is set, with the
//! certificate store its connections choose from; a reload swaps the store, never the listener.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use mio::net::TcpListener;
use mio::{Interest, Registry};

use super::HTTPS_LISTENER;
use crate::config::{Config, TlsConfig};
use crate::tls::store::CertStore;

pub struct Https {
    pub listener: TcpListener,
    /// Shared by `Arc` with connections whose ClientHello has not come yet; a reload replaces it.
    pub store: Arc<CertStore>,
}

impl Https {
    /// Binds the HTTPS listener when the config has one; its certificates were loaded and checked
    /// with the config.
    pub fn bind(config: &Config, registry: &Registry) -> io::Result<Option<Https>> {
        let Some(tls) = config.tls.as_ref() else {
            return Ok(None);
        };
        let store = build_store(tls, crate::tls::store::new_session_cache())?;
        let addr = SocketAddr::new(tls.https_bind, tls.https_port);
        let mut listener = TcpListener::bind(addr).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot listen on {addr} (https): {e}"))
        })?;
        super::bound::raise_backlog(&listener);
        registry.register(&mut listener, HTTPS_LISTENER, Interest::READABLE)?;
        let bound = listener.local_addr()?;
        log::info!("https listening on {bound}");
        Ok(Some(Https {
            listener,
            store: Arc::new(store),
        }))
    }
}

fn build_store(tls: &TlsConfig, cache: crate::tls::store::SessionCache) -> io::Result<CertStore> {
    let now_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (store, warnings) = CertStore::from_config(tls, cache, now_unix)
        .map_err(|e| io::Error::other(format!("TLS certificates: {e}")))?;
    for warning in warnings {
        log::warn!("TLS: {warning}");
    }
    if store.is_empty() {
        return Err(io::Error::other("TLS: no certificate configured"));
    }
    Ok(store)
}
