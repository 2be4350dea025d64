//! What a request to a session hostname gets, decided once for HTTP/1 and h2 alike ([`check`]).
//!
//! In order, each step only when the ones before let the request through:
//! 1. The path, read as route tables read it ([`crate::http1::path`]; encoded slashes are kept encoded
//!    rather than refused, since a session host has no table to allow them): a path with no single
//!    reading is 400, because whether it is under `/.spawngate/` could not be decided. `POST` and the
//!    like on `/.spawngate/auth` are 405 with `Allow: GET, HEAD`. These depend on the request alone, so
//!    they are the same whether the session exists or not.
//! 2. `Found::NoSuchSession`: 401 `SESSION_UNAUTHORIZED`, the very error a session gives a request
//!    without a valid credential, so the answer says nothing about which sessions exist.
//! 3. `access = "token"`: the credential, from the `token` of `/.spawngate/auth`, an `sg_s` cookie pair
//!    or `X-Spawngate-Token` (the first valid one, in that order, then field order). None: 401.
//! 4. An ended session: 410 `SESSION_ENDED` naming the reason; except `/.spawngate/status`, which
//!    answers `"state":"ended"` (a page polling it learns the session is over).
//! 5. The path: the backend's (forward, stamped), `/.spawngate/auth` (303 to `next`, setting the cookie
//!    when the query's token was traded), `/.spawngate/status` (200 JSON; other methods 405), anything
//!    else under `/.spawngate` (404 `NOT_FOUND`).
//!
//! `/.spawngate/auth` with no valid `token` but a valid cookie or header (a browser following the link
//! a second time, its token now spent) redirects to `next` without setting anything: the client is
//! already in, and a 401 there would strand it on a dead link.
//!
//! Only [`Gate::Forward`] reaches a backend: callers count activity for nothing else, so the proxy's own
//! paths never keep a session alive. Nothing here logs: the token, the cookie and `next` are secrets or
//! attacker-chosen, and the errors' messages hold neither.

#[path = "cookie.rs"]
pub mod cookie;
#[path = "gate_query.rs"]
pub mod query;

use std::sync::Arc;

use super::route::{Found, SessionRoute};
use crate::config::sessions::Access;
use crate::error::{push_json_string, ErrorCode, ProxyError};
use crate::http1::fields::trim_ows;
use crate::http1::path::{self, PathError, PathRules};
use crate::http1::rewrite::RequestSource;
use crate::upstream::LocalAnswer;

pub use query::MAX_NEXT;

/// The proxy's own path space on a session host (compared without regard to case, so no spelling of
/// it reaches the backend).
pub const NAMESPACE: &[u8] = b"/.spawngate";

/// The header a program sends a token in.
pub const TOKEN_FIELD: &[u8] = b"x-spawngate-token";

/// The prefix of every field the proxy owns on a session's requests: inbound ones are dropped.
pub const FIELD_PREFIX: &[u8] = b"x-spawngate-";

/// At most this many credential candidates (cookie pairs and token fields) are tried per request, so a
/// head stuffed with them costs no more than a few.
const MAX_CANDIDATES: usize = 16;

/// What the proxy adds to a request it forwards to a session's backend: `X-Spawngate-Session`,
/// `X-Spawngate-User` (the credential's user, if any) and `X-Spawngate-Secret`; and, since a stamp is
/// present, every inbound `X-Spawngate-*` field and the `sg_s` cookie pair are removed.
#[derive(Debug, Clone)]
pub struct SessionStamp {
    pub route: Arc<SessionRoute>,
    /// The credential the request presented (none for `access = "hostname"` or `"none"`).
    pub credential: Option<usize>,
}

impl SessionStamp {
    /// The credential's user, if it has one that can be written as a field value.
    pub fn user(&self) -> Option<&str> {
        let credential = self.route.credentials.get(self.credential?)?;
        credential
            .user
            .as_deref()
            .filter(|user| is_field_safe(user))
    }

    /// Appends the proxy's session lines to a forwarded head. Each value is skipped if it holds a
    /// control character: the registry never makes such values, but a head split by one would be
    /// request smuggling, so the writer does not rely on it.
    pub fn write_fields(&self, out: &mut Vec<u8>) {
        let route = &self.route;
        let lines = [
            (&b"X-Spawngate-Session: "[..], Some(&*route.id)),
            (b"X-Spawngate-User: ", self.user()),
            (b"X-Spawngate-Secret: ", Some(&*route.secret)),
        ];
        for (name, value) in lines {
            if let Some(value) = value.filter(|value| is_field_safe(value)) {
                out.extend_from_slice(name);
                out.extend_from_slice(value.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
    }
}

fn is_field_safe(value: &str) -> bool {
    !value.bytes().any(|b| b < 0x20 || b == 0x7f)
}

/// Whether a field is one of the proxy's own on a session (`X-Spawngate-*`, any case).
#[inline]
pub fn is_spawngate_field(name: &[u8]) -> bool {
    name.len() >= FIELD_PREFIX.len()
        && name[..FIELD_PREFIX.len()].eq_ignore_ascii_case(FIELD_PREFIX)
}

#[derive(Debug)]
pub enum Gate {
    /// Forward to the route's backend, with this stamp in [`ForwardInfo::session`].
    ///
    /// [`ForwardInfo::session`]: crate::http1::rewrite::ForwardInfo::session
    Forward(SessionStamp),
    /// The proxy answers itself; with `spend`, the request traded that credential's token (the
    /// registry must learn it).
    Answer {
        answer: LocalAnswer,
        spend: Option<usize>,
    },
    Refuse(ProxyError),
}

/// Where under a session host a request's path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Backend,
    Auth,
    Status,
    /// Anything else in the namespace.
    Other,
}

/// The gate's decision for a request whose host lookup found `found`; `None` for a host that is not a
/// session's (route it as usual).
pub fn check<S: RequestSource>(found: Found<'_>, request: &S) -> Option<Gate> {
    let route = match found {
        Found::NotSession => return None,
        Found::Session(route) => Some(route),
        Found::NoSuchSession => None,
    };
    Some(decide(route, request))
}

fn decide<S: RequestSource>(route: Option<&Arc<SessionRoute>>, request: &S) -> Gate {
    let target = request.target();
    let place = match place_of_target(target) {
        Ok(place) => place,
        Err(why) => return Gate::Refuse(ProxyError::new(ErrorCode::BadRequest, why.reason())),
    };
    let method = request.method();
    let get_or_head = method == b"GET" || method == b"HEAD";
    if place == Place::Auth && !get_or_head {
        return Gate::Refuse(get_or_head_only());
    }
    let Some(route) = route else {
        return Gate::Refuse(unauthorized());
    };
    let query = query::query_of(target);
    let (credential, traded) = match route.access {
        Access::Token => {
            let traded = match place {
                Place::Auth => query::param(query, b"token").and_then(|t| route.token(&t)),
                _ => None,
            };
            match traded.or_else(|| presented(route, request)) {
                Some(index) => (Some(index), traded),
                None => return Gate::Refuse(unauthorized()),
            }
        }
        Access::Hostname | Access::None => (None, None),
    };
    if let (Some(reason), false) = (&route.ended, place == Place::Status) {
        let message = format!("this session has ended: {reason}");
        return Gate::Refuse(ProxyError::new(ErrorCode::SessionEnded, message));
    }
    match place {
        Place::Backend => Gate::Forward(SessionStamp {
            route: route.clone(),
            credential,
        }),
        Place::Auth => Gate::Answer {
            answer: redirect(route, query, traded),
            spend: traded,
        },
        Place::Status if get_or_head => Gate::Answer {
            answer: status(route),
            spend: None,
        },
        Place::Status => Gate::Refuse(get_or_head_only()),
        Place::Other => Gate::Refuse(ProxyError::new(
            ErrorCode::NotFound,
            "no such path under /.spawngate/",
        )),
    }
}

/// The one 401 of session hosts, for a missing session and a missing credential alike.
fn unauthorized() -> ProxyError {
    ProxyError::new(
        ErrorCode::SessionUnauthorized,
        "a valid session token or cookie is required",
    )
}

fn get_or_head_only() -> ProxyError {
    ProxyError::method_not_allowed(&["GET".to_owned(), "HEAD".to_owned()])
}

/// Whether a path (no query) reaches the proxy's own paths in some spelling, or cannot be read: the
/// access log hides such a request's query, which may hold a token.
pub fn may_be_proxy_path(path: &[u8]) -> bool {
    !matches!(place_of_target(path), Ok(Place::Backend))
}

/// Where `target` is, on its normalised path. Paths that cannot reach the namespace in any spelling
/// (no escape, no backslash, no `/.`) skip the normalising copy.
fn place_of_target(target: &[u8]) -> Result<Place, PathError> {
    let end = target
        .iter()
        .position(|&b| b == b'?')
        .unwrap_or(target.len());
    let path = &target[..end];
    // `*` and an absolute-form target without a path (which stands for `/`) are the backend's.
    if path.first() != Some(&b'/') {
        return Ok(Place::Backend);
    }
    let plain = !path.iter().any(|&b| b == b'%' || b == b'\\');
    if plain && !path.windows(2).any(|pair| pair == b"/.") {
        return Ok(Place::Backend);
    }
    let mut normal = Vec::with_capacity(path.len());
    let rules = PathRules {
        allow_encoded_slashes: true,
    };
    path::normalize(path, rules, &mut normal)?;
    Ok(place_of(&normal))
}

/// Where a normalised path (no query) is. `/.spawngate` itself and `/.spawngate%2F...` (a backend that
/// decodes `%2F` would read `/.spawngate/`) are in the namespace, as is every spelling in other case.
fn place_of(path: &[u8]) -> Place {
    let Some((head, rest)) = path.split_at_checked(NAMESPACE.len()) else {
        return Place::Backend;
    };
    if !head.eq_ignore_ascii_case(NAMESPACE) {
        return Place::Backend;
    }
    match rest {
        b"/auth" => Place::Auth,
        b"/status" => Place::Status,
        [] | [b'/', ..] => Place::Other,
        [b'%', b'2', b'F', ..] | [b'%', b'5', b'C', ..] => Place::Other,
        _ => Place::Backend,
    }
}

/// The first valid credential among the request's `sg_s` cookie pairs and `X-Spawngate-Token` fields.
fn presented<S: RequestSource>(route: &SessionRoute, request: &S) -> Option<usize> {
    let mut tried = 0;
    for field in request.fields() {
        if cookie::is_cookie_field(field.name) {
            for value in cookie::session_values(field.value) {
                tried += 1;
                if let Some(index) = route.cookie(value) {
                    return Some(index);
                }
                if tried >= MAX_CANDIDATES {
                    return None;
                }
            }
        } else if field.name.eq_ignore_ascii_case(TOKEN_FIELD) {
            tried += 1;
            if let Some(index) = route.token(trim_ows(field.value)) {
                return Some(index);
            }
            if tried >= MAX_CANDIDATES {
                return None;
            }
        }
    }
    None
}

/// The 303 of `/.spawngate/auth`: to `next`, setting the cookie of the credential whose token was
/// traded. Not cached, and the page it leads to does not pass the token-bearing URL on as a referrer.
fn redirect(route: &SessionRoute, query: &[u8], traded: Option<usize>) -> LocalAnswer {
    let mut fields: Vec<(Box<str>, Vec<u8>)> = Vec::with_capacity(3);
    if let Some(credential) = traded.and_then(|index| route.credentials.get(index)) {
        let text = super::secret::to_text(&credential.cookie);
        let value = cookie::set_cookie(&text, route.secure_cookie);
        fields.push(("Set-Cookie".into(), value));
    }
    fields.push(("Cache-Control".into(), b"no-store".to_vec()));
    fields.push(("Referrer-Policy".into(), b"no-referrer".to_vec()));
    LocalAnswer {
        status: 303,
        location: Some(query::location(query)),
        content_type: None,
        body: Vec::new(),
        fields,
    }
}

/// `GET /.spawngate/status`: `{"session":"<id>","state":"live"|"ended"}`.
fn status(route: &SessionRoute) -> LocalAnswer {
    let mut body = String::with_capacity(64);
    body.push_str("{\"session\":");
    push_json_string(&mut body, &route.id);
    body.push_str(match route.ended {
        Some(_) => ",\"state\":\"ended\"}",
        None => ",\"state\":\"live\"}",
    });
    LocalAnswer {
        status: 200,
        location: None,
        content_type: Some("application/json".into()),
        body: body.into_bytes(),
        fields: vec![("Cache-Control".into(), b"no-store".to_vec())],
    }
}

#[cfg(test)]
#[path = "gate_tests.rs"]
mod tests;
