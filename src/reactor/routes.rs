//! The routing table: each configured Host, the reactor's view of its lifecycle, the requests held for it
//! and its idle pooled connections.
//!
//! The view is only what the supervisor last reported; the supervisor owns the truth. Whatever the view,
//! a request never waits unboundedly: holds are capped per backend and carry a deadline.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use std::time::Instant;

use crate::backend_view::{BackendView, Verdict};
use crate::config::BackendConfig;
use crate::msg::{Activity, BackendEntry, Host};

pub struct Route {
    pub host: Host,
    pub config: Arc<BackendConfig>,
    pub activity: Arc<Activity>,
    /// Where the running instance listens (a port changed by reload applies from the next start).
    pub addr: SocketAddr,
    /// The lifecycle as last reported, and the admission rules (shared with the h2 worker).
    pub view: BackendView,
    /// Sessions held until the backend is ready: (slab key, serial).
    pub waiting: Vec<(usize, u64)>,
    /// Pooled upstream connections (upstream slab keys), most recently used last.
    pub idle_upstreams: Vec<usize>,
}

impl Route {
    pub fn new(entry: BackendEntry) -> Self {
        let config = entry.config;
        Route {
            host: Host::from(config.hostname.as_str()),
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, config.port)),
            config,
            activity: entry.activity,
            view: BackendView::default(),
            waiting: Vec::new(),
            idle_upstreams: Vec::new(),
        }
    }

    pub fn admit(&mut self, max_held: usize, now: Instant) -> Verdict {
        self.view
            .admit(&self.host, self.waiting.len(), max_held, now)
    }
}

#[derive(Default)]
pub struct Routes {
    map: HashMap<Box<str>, Route>,
}

impl Routes {
    pub fn new(entries: impl IntoIterator<Item = BackendEntry>) -> Self {
        let mut routes = Routes::default();
        for entry in entries {
            routes.insert(entry);
        }
        routes
    }

    pub fn insert(&mut self, entry: BackendEntry) {
        let route = Route::new(entry);
        self.map.insert(Box::from(&*route.host), route);
    }

    pub fn get(&self, host: &str) -> Option<&Route> {
        self.map.get(host)
    }

    pub fn get_mut(&mut self, host: &str) -> Option<&mut Route> {
        self.map.get_mut(host)
    }

    pub fn remove(&mut self, host: &str) -> Option<Route> {
        self.map.remove(host)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.map.values()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Route> {
        self.map.values_mut()
    }

    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.map.len()
    }
}

/// Lower-cases an ASCII host into `scratch` for a table lookup without allocating per request.
pub fn normalize_host<'a>(raw: &[u8], scratch: &'a mut String) -> Option<&'a str> {
    let text = std::str::from_utf8(raw).ok()?;
    scratch.clear();
    scratch.push_str(text.trim_end_matches('.'));
    scratch.make_ascii_lowercase();
    Some(scratch.as_str())
}
