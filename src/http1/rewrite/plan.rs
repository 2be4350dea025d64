//! [`ForwardPlan`]: what a route does to the requests it forwards beyond what every request gets, as
//! owned, immutable data (built once from config, shared by the route table, read by the writer).
//!
//! A plan can only say things that keep the forwarded head well-formed, so its parts are built through
//! checking constructors: a path prefix is an absolute path without query or fragment, a field edit
//! names a token the proxy does not interpret itself and carries a value without control characters.
//! Framing, `Host`, connection management, `Expect`, `X-Forwarded-*` and `X-Request-ID` are the
//! writer's own and cannot be edited: a plan that could touch them could smuggle a body past the proxy
//! or forge what the proxy vouches for.

use std::fmt;

use super::super::fields::{is_token, FieldName};

/// Everything a route changes in the heads it forwards. `ForwardPlan::default()` changes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardPlan {
    /// `X-Forwarded-Proto`: how the client reached the proxy.
    pub proto: Proto,
    /// What happens to the request target's path (never to its query).
    pub path: PathEdit,
    /// Written once each; the client's fields of these names are not forwarded.
    pub set_headers: Vec<FieldEdit>,
    /// Written in addition to any client fields of the same names.
    pub add_headers: Vec<FieldEdit>,
    /// The client's fields of these names are not forwarded.
    pub remove_headers: Vec<EditableName>,
}

impl ForwardPlan {
    /// Whether the client's fields named `name` are kept out of the forwarded head (set or removed).
    pub(super) fn replaces(&self, name: &[u8]) -> bool {
        let named = |edit: &EditableName| edit.0.as_bytes().eq_ignore_ascii_case(name);
        self.remove_headers.iter().any(named) || self.set_headers.iter().any(|e| named(&e.name))
    }
}

/// The protocol the client spoke to the proxy, for `X-Forwarded-Proto`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Proto {
    #[default]
    Http,
    Https,
}

impl Proto {
    pub fn as_bytes(self) -> &'static [u8] {
        match self {
            Proto::Http => b"http",
            Proto::Https => b"https",
        }
    }
}

/// An edit of the request target's path. A prefix matches whole segments: `/api` matches `/api`,
/// `/api/` and `/api/x` but not `/apix` (unless the prefix itself ends with `/`), byte for byte, as the
/// client encoded it (case-sensitive, no percent-decoding). A path it does not match is left alone.
/// The query string is always kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PathEdit {
    #[default]
    Keep,
    /// `/api/x?q` becomes `/x?q`; a path that was only the prefix becomes `/`.
    StripPrefix(PathPrefix),
    /// `/api/x?q` becomes `{with}/x?q`; a path that was only the prefix becomes `with`.
    ReplacePrefix {
        prefix: PathPrefix,
        with: PathPrefix,
    },
}

impl PathEdit {
    /// Writes the request target as the backend gets it: in origin form (an absolute-form target's
    /// path may be empty or lack its leading `/`), edited. `*` is never edited.
    #[inline]
    pub(super) fn write_target(&self, target: &[u8], out: &mut Vec<u8>) {
        let rooted = matches!(target.first(), Some(b'/' | b'*'));
        match self {
            PathEdit::Keep => write_rooted(target, rooted, out),
            PathEdit::StripPrefix(prefix) => write_edited(target, rooted, prefix, "/", out),
            PathEdit::ReplacePrefix { prefix, with } => {
                write_edited(target, rooted, prefix, with.as_str(), out)
            }
        }
    }
}

/// A path edit at work: `with` in place of the prefix when it matches, the query kept.
fn write_edited(target: &[u8], rooted: bool, prefix: &PathPrefix, with: &str, out: &mut Vec<u8>) {
    if target == b"*" {
        return out.push(b'*');
    }
    let query_at = target.iter().position(|&b| b == b'?');
    let (path, query) = target.split_at(query_at.unwrap_or(target.len()));
    match after_prefix(path, rooted, prefix.0.as_bytes()) {
        Some(rest) => join(with.as_bytes(), rest, out),
        None => write_rooted(path, rooted, out),
    }
    out.extend_from_slice(query);
}

#[inline]
fn write_rooted(target: &[u8], rooted: bool, out: &mut Vec<u8>) {
    if !rooted {
        out.push(b'/');
    }
    out.extend_from_slice(target);
}

/// What follows `prefix` in `path` when the prefix covers whole segments. `rooted` is false when the
/// path lacks the leading `/` the forwarded target gets, which the prefix's own leading `/` stands for.
fn after_prefix<'p>(path: &'p [u8], rooted: bool, prefix: &[u8]) -> Option<&'p [u8]> {
    let expected = if rooted {
        prefix
    } else {
        prefix.strip_prefix(b"/").unwrap_or(prefix)
    };
    let rest = path.strip_prefix(expected)?;
    let whole_segments = rest.is_empty() || rest.starts_with(b"/") || prefix.ends_with(b"/");
    whole_segments.then_some(rest)
}

/// Writes `with` followed by the rest of the path, with exactly one `/` between them.
fn join(with: &[u8], rest: &[u8], out: &mut Vec<u8>) {
    if rest.is_empty() {
        return out.extend_from_slice(with);
    }
    let mut base = with;
    while let [head @ .., b'/'] = base {
        base = head;
    }
    out.extend_from_slice(base);
    if !rest.starts_with(b"/") {
        out.push(b'/');
    }
    out.extend_from_slice(rest);
}

/// An absolute path for [`PathEdit`]: starts with `/`, visible ASCII, no query or fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPrefix(String);

impl PathPrefix {
    pub fn new(path: &str) -> Result<PathPrefix, PlanError> {
        if !path.starts_with('/') {
            return Err(PlanError("a path prefix must start with '/'"));
        }
        let allowed = |b: u8| b.is_ascii_graphic() && b != b'?' && b != b'#';
        if !path.bytes().all(allowed) {
            return Err(PlanError(
                "a path prefix must be visible ASCII without '?' or '#'",
            ));
        }
        Ok(PathPrefix(path.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A field name a plan may set, add or remove: a token (RFC 9110 section 5.1) the proxy does not
/// interpret itself. Matched case-insensitively; written as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditableName(String);

impl EditableName {
    pub fn new(name: &str) -> Result<EditableName, PlanError> {
        if !is_token(name.as_bytes()) {
            return Err(PlanError(
                "a field name must be a token (RFC 9110 section 5.1)",
            ));
        }
        if FieldName::classify(name.as_bytes()) != FieldName::Other {
            return Err(PlanError(
                "framing, Host, connection, Expect, X-Forwarded-* and X-Request-ID fields are the proxy's own",
            ));
        }
        Ok(EditableName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A field a plan writes: an [`EditableName`] and a value of visible ASCII, spaces and tabs, without
/// leading or trailing whitespace (RFC 9110 section 5.5, minus obs-text that backends read differently).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldEdit {
    name: EditableName,
    value: String,
}

impl FieldEdit {
    pub fn new(name: &str, value: &str) -> Result<FieldEdit, PlanError> {
        let name = EditableName::new(name)?;
        let bytes = value.as_bytes();
        let visible = |b: &u8| b.is_ascii_graphic() || *b == b' ' || *b == b'\t';
        if !bytes.iter().all(visible) {
            return Err(PlanError(
                "a field value must be visible ASCII, spaces and tabs",
            ));
        }
        let padded = |b: Option<&u8>| matches!(b, Some(b' ' | b'\t'));
        if padded(bytes.first()) || padded(bytes.last()) {
            return Err(PlanError(
                "a field value must not start or end with whitespace",
            ));
        }
        Ok(FieldEdit {
            name,
            value: value.to_owned(),
        })
    }

    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    pub fn value(&self) -> &str {
        &self.value
    }
}

/// Why a plan part was refused; config validation reports it with the key and line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanError(pub &'static str);

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for PlanError {}
