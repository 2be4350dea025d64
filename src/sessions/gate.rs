//! What a request to a session hostname gets, decided once for HTTP/1 and h2 alike (stub; being
//! written).

use std::sync::Arc;

use super::route::{Found, SessionRoute};
use crate::error::{ErrorCode, ProxyError};
use crate::http1::rewrite::RequestSource;
use crate::upstream::LocalAnswer;

/// What the proxy adds to a request it forwards to a session's backend: `X-Spawngate-Session`,
/// `X-Spawngate-User` (the credential's user, if any) and `X-Spawngate-Secret`; and, since a stamp is
/// present, every inbound `X-Spawngate-*` field and the `sg_s` cookie pair are removed.
#[derive(Debug, Clone)]
pub struct SessionStamp {
    pub route: Arc<SessionRoute>,
    /// The credential the request presented (none for `access = "hostname"` or `"none"`).
    pub credential: Option<usize>,
}

#[derive(Debug)]
pub enum Gate {
    Forward(SessionStamp),
    /// The proxy answers itself; with `spend`, the request traded that credential's token (the
    /// registry must learn it).
    Answer {
        answer: LocalAnswer,
        spend: Option<usize>,
    },
    Refuse(ProxyError),
}

pub fn check<S: RequestSource>(found: Found<'_>, _request: &S) -> Option<Gate> {
    match found {
        Found::NotSession => None,
        Found::NoSuchSession => Some(Gate::Refuse(ProxyError::new(
            ErrorCode::SessionUnauthorized,
            "a valid session token or cookie is required",
        ))),
        Found::Session(route) => Some(Gate::Forward(SessionStamp {
            route: route.clone(),
            credential: None,
        })),
    }
}
