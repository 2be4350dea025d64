//! [`ForwardPlan`]: what a route does to the requests it forwards beyond what every request gets, as
//! owned, immutable data (built once from config, shared by the route table, read by the writer).
//!
//! A plan can only say things that keep the forwarded head well-formed, so its parts are built through
//! checking constructors: a path prefix is an absolute path without query or fragment, a field edit
//! names a token the proxy does not interpret itself and carries a value without control characters.
//! Framing, `Host`, connection management, `Expect`, `X-Forwarded-*` and `X-Request-ID` are the
//! writer's own and cannot be edited: a plan that could touch them could smuggle a body past the proxy
//! or forge what the proxy vouches for.

use std::borrow::Cow;
use std::fmt;

use regex_lite::Captures;

use super::edits::{EditableName, FieldEdit, HeaderEdits, ResponseEdits};
use super::template::{Template, Vars};

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
    /// What the route changes in the backend's response heads.
    pub response: ResponseEdits,
}

impl ForwardPlan {
    /// Whether the client's fields named `name` are kept out of the forwarded head (set or removed).
    #[inline]
    pub(super) fn replaces(&self, name: &[u8]) -> bool {
        let named = |edit: &EditableName| edit.as_str().as_bytes().eq_ignore_ascii_case(name);
        self.remove_headers.iter().any(named)
            || self.set_headers.iter().any(|e| named_edit(e, name))
    }

    /// The request edits as one [`HeaderEdits`] (for merging and the admin view).
    pub fn request_edits(&self) -> HeaderEdits {
        HeaderEdits {
            set: self.set_headers.clone(),
            add: self.add_headers.clone(),
            remove: self.remove_headers.clone(),
        }
    }

    /// Replaces the request edits.
    pub fn set_request_edits(&mut self, edits: HeaderEdits) {
        self.set_headers = edits.set;
        self.add_headers = edits.add;
        self.remove_headers = edits.remove;
    }
}

fn named_edit(edit: &FieldEdit, name: &[u8]) -> bool {
    edit.name().as_bytes().eq_ignore_ascii_case(name)
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
/// `/api/` and `/api/x` but not `/apix` (unless the prefix itself ends with `/`), byte for byte
/// (case-sensitive, no percent-decoding). A path it does not match is left alone. The query string is
/// always kept.
///
/// Two entry points: a route table's lookup calls [`PathEdit::edit_path`] on the normalised path it
/// matched (with the route's captures) and gives the writer the result as
/// [`ForwardInfo::target`](super::ForwardInfo::target); without one, the writer edits the target the
/// client sent (`write_target`), where a `Rewrite`, which needs captures, changes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PathEdit {
    #[default]
    Keep,
    /// `/api/x?q` becomes `/x?q`; a path that was only the prefix becomes `/`. The forwarded head
    /// says `X-Forwarded-Prefix: /api`.
    StripPrefix(PathPrefix),
    /// `/api/x?q` becomes `{with}/x?q`; a path that was only the prefix becomes `with`.
    ReplacePrefix {
        prefix: PathPrefix,
        with: PathPrefix,
    },
    /// The path becomes the template (a [`Form::Path`](super::Form::Path) over `{path}` and the
    /// route's `path_regex` captures); the query is kept.
    Rewrite(Template),
}

impl PathEdit {
    /// Writes the edited form of a normalised path (no query; starts with `/`) into `out`: what a
    /// route table forwards, with the query appended by the caller. `captures` are the route's
    /// `path_regex` groups over `normalised_path` (a `Rewrite` renders absent ones empty).
    pub fn edit_path(
        &self,
        normalised_path: &[u8],
        captures: Option<&Captures>,
        out: &mut Vec<u8>,
    ) {
        let rooted = normalised_path.first() == Some(&b'/');
        match self {
            PathEdit::Keep => write_rooted(normalised_path, rooted, out),
            PathEdit::StripPrefix(prefix) => {
                edit_prefix(normalised_path, rooted, prefix, "/", out);
            }
            PathEdit::ReplacePrefix { prefix, with } => {
                edit_prefix(normalised_path, rooted, prefix, with.as_str(), out);
            }
            PathEdit::Rewrite(template) => {
                let vars = Vars {
                    path: normalised_path,
                    captures,
                    ..Vars::default()
                };
                template.render(&vars, out);
            }
        }
    }

    /// Writes the request target as the backend gets it: in origin form (an absolute-form target's
    /// path may be empty or lack its leading `/`), edited. `*` is never edited. Returns whether a
    /// prefix edit applied (the prefix matched).
    #[inline]
    pub(super) fn write_target(&self, target: &[u8], out: &mut Vec<u8>) -> bool {
        let rooted = matches!(target.first(), Some(b'/' | b'*'));
        match self {
            PathEdit::Keep | PathEdit::Rewrite(_) => {
                write_rooted(target, rooted, out);
                false
            }
            PathEdit::StripPrefix(prefix) => write_edited(target, rooted, prefix, "/", out),
            PathEdit::ReplacePrefix { prefix, with } => {
                write_edited(target, rooted, prefix, with.as_str(), out)
            }
        }
    }

    /// The prefix a forwarded head names in `X-Forwarded-Prefix`: a stripped one other than `/`.
    pub(super) fn forwarded_prefix(&self) -> Option<&str> {
        match self {
            PathEdit::StripPrefix(prefix) if prefix.as_str() != "/" => Some(prefix.as_str()),
            _ => None,
        }
    }
}

/// A prefix edit of a path without query: `with` in place of the prefix when it matches.
fn edit_prefix(
    path: &[u8],
    rooted: bool,
    prefix: &PathPrefix,
    with: &str,
    out: &mut Vec<u8>,
) -> bool {
    match after_prefix(path, rooted, prefix.0.as_bytes()) {
        Some(rest) => {
            join(with.as_bytes(), rest, out);
            true
        }
        None => {
            write_rooted(path, rooted, out);
            false
        }
    }
}

/// A path edit of a whole target: `with` in place of the prefix when it matches, the query kept.
fn write_edited(
    target: &[u8],
    rooted: bool,
    prefix: &PathPrefix,
    with: &str,
    out: &mut Vec<u8>,
) -> bool {
    if target == b"*" {
        out.push(b'*');
        return false;
    }
    let query_at = target.iter().position(|&b| b == b'?');
    let (path, query) = target.split_at(query_at.unwrap_or(target.len()));
    let edited = edit_prefix(path, rooted, prefix, with, out);
    out.extend_from_slice(query);
    edited
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
            return Err(PlanError::from("a path prefix must start with '/'"));
        }
        let allowed = |b: u8| b.is_ascii_graphic() && b != b'?' && b != b'#';
        if !path.bytes().all(allowed) {
            return Err(PlanError::from(
                "a path prefix must be visible ASCII without '?' or '#'",
            ));
        }
        Ok(PathPrefix(path.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a plan part was refused; config validation reports it with the key and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError(pub Cow<'static, str>);

impl From<&'static str> for PlanError {
    fn from(why: &'static str) -> Self {
        PlanError(Cow::Borrowed(why))
    }
}

impl From<String> for PlanError {
    fn from(why: String) -> Self {
        PlanError(Cow::Owned(why))
    }
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PlanError {}
