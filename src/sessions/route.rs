//! What a request thread knows of the sessions: for each session hostname an immutable
//! [`SessionRoute`], replaced whole whenever the registry changes it (a connect adds a credential, a
//! trade spends a token, the session ends), and the templates' hostname spaces, so a name inside one
//! never falls through to a wildcard host.

use std::collections::HashMap;
use std::sync::Arc;

use super::secret::{self, Secret};
use super::EndReason;
use crate::config::sessions::{Access, HostPattern};
use crate::msg::Host;
use crate::upstream::BackendId;

/// Credentials kept per session; a connect beyond this many drops the oldest.
pub const MAX_CREDENTIALS: usize = 64;

/// What one connect handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// In the URL the API hands out (`/.spawngate/auth?token=`), or sent by a program as
    /// `X-Spawngate-Token`. Spent once traded for the cookie.
    pub token: Secret,
    /// The `sg_s` cookie value a trade sets.
    pub cookie: Secret,
    /// `user` of the connect, sent to the backend as `X-Spawngate-User`.
    pub user: Option<Box<str>>,
    /// Traded at `/.spawngate/auth`: the token no longer opens anything, the cookie does.
    pub spent: bool,
}

/// One session as the request threads route it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRoute {
    pub id: Arc<str>,
    /// Its backend's name (`session/{id}`), for logs and error messages.
    pub name: Host,
    pub hostname: Box<str>,
    pub backend: BackendId,
    pub access: Access,
    /// The access cookie is `Secure` (`public_url` is https).
    pub secure_cookie: bool,
    /// `X-Spawngate-Secret` on every forwarded request (the session's backend secret, as text).
    pub secret: Box<str>,
    /// Oldest first, at most [`MAX_CREDENTIALS`].
    pub credentials: Vec<Credential>,
    /// Set once the session has ended: its credentials get 410 with this reason.
    pub ended: Option<EndReason>,
}

/// How a presented credential relates to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented {
    /// The token of credential `index` (not spent).
    Token(usize),
    /// The cookie of credential `index`.
    Cookie(usize),
}

impl SessionRoute {
    /// The credential whose unspent token is `token` (text form); every credential is compared, in
    /// constant time each, so the time taken says nothing about which one matched.
    pub fn token(&self, token: &[u8]) -> Option<usize> {
        let token = secret::from_text(token)?;
        let mut found = None;
        for (index, credential) in self.credentials.iter().enumerate() {
            if secret::equal(&credential.token, &token) && !credential.spent {
                found = Some(index);
            }
        }
        found
    }

    /// The credential whose cookie is `cookie` (text form).
    pub fn cookie(&self, cookie: &[u8]) -> Option<usize> {
        let cookie = secret::from_text(cookie)?;
        let mut found = None;
        for (index, credential) in self.credentials.iter().enumerate() {
            if secret::equal(&credential.cookie, &cookie) {
                found = Some(index);
            }
        }
        found
    }
}

/// A change the registry publishes to each request thread's [`SessionHosts`].
#[derive(Debug, Clone)]
pub enum SessionUpdate {
    /// A session's route, new or replacing the one of that hostname.
    Put(Arc<SessionRoute>),
    /// The tombstone of this hostname has expired: forget it.
    Forget(Box<str>),
    /// The templates' hostname spaces (at start and after each reload).
    Spaces(Arc<[HostPattern]>),
}

/// What a host lookup finds among the sessions.
#[derive(Debug)]
pub enum Found<'a> {
    Session(&'a Arc<SessionRoute>),
    /// In a template's hostname space, but no session has that name: answered exactly like a session
    /// without a valid credential, so the answer tells nothing.
    NoSuchSession,
    /// Not a session hostname.
    NotSession,
}

/// One request thread's copy of the session routes.
#[derive(Debug, Default)]
pub struct SessionHosts {
    hosts: HashMap<Box<str>, Arc<SessionRoute>>,
    spaces: Arc<[HostPattern]>,
}

impl SessionHosts {
    pub fn apply(&mut self, update: SessionUpdate) {
        match update {
            SessionUpdate::Put(route) => {
                self.hosts.insert(route.hostname.clone(), route);
            }
            SessionUpdate::Forget(host) => {
                self.hosts.remove(&host);
            }
            SessionUpdate::Spaces(spaces) => self.spaces = spaces,
        }
    }

    /// Looks `host` (normalised) up. Cheap when there are no sessions and no templates: one emptiness
    /// test, so hosts without sessions pay nothing.
    pub fn find(&self, host: &str) -> Found<'_> {
        if self.spaces.is_empty() && self.hosts.is_empty() {
            return Found::NotSession;
        }
        if let Some(route) = self.hosts.get(host) {
            return Found::Session(route);
        }
        if self.spaces.iter().any(|space| space.in_space(host)) {
            return Found::NoSuchSession;
        }
        Found::NotSession
    }

    /// Marks credential `index` of the session at `host` spent, until the registry's own update comes.
    pub fn spend(&mut self, host: &str, index: usize) {
        if let Some(route) = self.hosts.get_mut(host) {
            if let Some(credential) = Arc::make_mut(route).credentials.get_mut(index) {
                credential.spent = true;
            }
        }
    }

    pub fn get(&self, host: &str) -> Option<&Arc<SessionRoute>> {
        self.hosts.get(host)
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }
}
