//! The conditions of a route and the first-match rule over a host's routes: which route a request takes,
//! or why none does (404, or 405 with the methods that would have matched), and whether an earlier route
//! shadows a later one (a config error: the later route could never be taken).
//!
//! Matching reads the normalised path (`http1::path`, without the query) and the request's method and
//! header fields, through [`RequestSource`] so both protocols are read alike. Within a route the cheap
//! tests run first: method, literal path, header equality, then regular expressions. Expressions are
//! `regex-lite`'s (linear time) and always match the whole path or value.

use regex_lite::{Captures, Regex};

use crate::http1::rewrite::{CaptureNames, RequestSource};

/// What a route requires of the path.
#[derive(Debug, Clone)]
pub enum PathCond {
    Any,
    /// The whole path, exactly.
    Exact(String),
    /// A prefix of whole segments: `/api` matches `/api`, `/api/` and `/api/x`, not `/apix`. `/` matches
    /// every path. Kept without a trailing slash (except `/` itself).
    Prefix(String),
    /// The whole path matches the expression.
    Regex(Pattern),
}

/// A compiled expression that matches whole strings, with the text it was written as (compared when
/// checking for shadowing, since two expressions cannot be compared by meaning).
#[derive(Debug, Clone)]
pub struct Pattern {
    pub text: String,
    anchored: Regex,
    /// Text every match starts with: checked before the expression runs, which turns most misses
    /// into one comparison (`regex-lite` has no prefilter of its own).
    prefix: String,
}

impl Pattern {
    pub fn new(text: &str) -> Result<Pattern, regex_lite::Error> {
        // The text must be a regex on its own first: `a)|(b` would otherwise close the anchoring group
        // and match any path that starts with `a` or ends with `b`.
        Regex::new(text)?;
        let anchored = Regex::new(&format!("^(?:{text})$"))?;
        Ok(Pattern {
            text: text.to_string(),
            anchored,
            prefix: literal_prefix(text),
        })
    }

    pub fn is_match(&self, haystack: &str) -> bool {
        haystack.starts_with(&self.prefix) && self.anchored.is_match(haystack)
    }

    /// The groups of a whole-string match, for templates' `{1}` and `{name}`. The anchoring group added
    /// by [`Pattern::new`] does not capture, so the numbers are those of the text as written.
    pub fn captures<'h>(&self, haystack: &'h str) -> Option<Captures<'h>> {
        self.anchored.captures(haystack)
    }

    /// The groups templates may name (group 0 is the whole match).
    pub fn capture_names(&self) -> CaptureNames {
        CaptureNames::new(self.anchored.capture_names())
    }
}

/// What a route requires of one header field (names compared case-insensitively; a field that appears
/// several times matches if any of its values does).
#[derive(Debug, Clone)]
pub struct HeaderCond {
    /// Lower-case.
    pub name: String,
    pub test: HeaderTest,
}

#[derive(Debug, Clone)]
pub enum HeaderTest {
    Equals(String),
    Regex(Pattern),
    /// `true`: the field is there; `false`: it is not.
    Present(bool),
}

/// Every condition of a route; all must hold. No condition at all matches every request.
#[derive(Debug, Clone)]
pub struct Conditions {
    pub path: PathCond,
    /// Upper-case tokens; `None` is any method.
    pub methods: Option<Vec<String>>,
    pub headers: Vec<HeaderCond>,
}

impl Default for Conditions {
    fn default() -> Self {
        Conditions {
            path: PathCond::Any,
            methods: None,
            headers: Vec::new(),
        }
    }
}

/// How one route judged one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Match,
    /// Everything but the method held: with no later match, the answer is 405.
    WrongMethod,
    NoMatch,
}

/// Which route of a host a request takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// The index of the first route that matched.
    Route(usize),
    /// Some route matched all but the method, and none matched fully: 405 with these methods in `Allow`.
    MethodNotAllowed(Vec<String>),
    /// 404.
    NoRoute,
}

impl Conditions {
    /// Judges a request whose normalised path (no query) is `path`.
    pub fn judge<S: RequestSource>(&self, path: &str, request: &S) -> Verdict {
        // Cheapest and most selective first: most routes a request passes over fail on the path.
        let literal_path_ok = match &self.path {
            PathCond::Any | PathCond::Regex(_) => true,
            PathCond::Exact(exact) => path == exact,
            PathCond::Prefix(prefix) => has_segment_prefix(path, prefix),
        };
        if !literal_path_ok {
            return Verdict::NoMatch;
        }
        let headers_ok = self.headers.iter().all(|cond| header_holds(cond, request));
        if !headers_ok {
            return Verdict::NoMatch;
        }
        if let PathCond::Regex(pattern) = &self.path {
            if !pattern.is_match(path) {
                return Verdict::NoMatch;
            }
        }
        let method_ok = self
            .methods
            .as_ref()
            .is_none_or(|methods| methods.iter().any(|m| m.as_bytes() == request.method()));
        if method_ok {
            Verdict::Match
        } else {
            Verdict::WrongMethod
        }
    }

    /// Why a request does not match, in words, or `None` when it does: for `/routes/explain`.
    pub fn explain<S: RequestSource>(&self, path: &str, request: &S) -> Option<String> {
        if self.judge(path, request) == Verdict::Match {
            return None;
        }
        let path_ok = match &self.path {
            PathCond::Any => true,
            PathCond::Exact(exact) => path == exact,
            PathCond::Prefix(prefix) => has_segment_prefix(path, prefix),
            PathCond::Regex(pattern) => pattern.is_match(path),
        };
        if !path_ok {
            return Some(match &self.path {
                PathCond::Exact(p) => format!("path is not {p}"),
                PathCond::Prefix(p) => format!("path is not under {p}"),
                PathCond::Regex(p) => format!("path does not match {}", p.text),
                PathCond::Any => String::new(),
            });
        }
        if let Some(cond) = self.headers.iter().find(|c| !header_holds(c, request)) {
            return Some(match &cond.test {
                HeaderTest::Equals(v) => format!("header {} is not {v:?}", cond.name),
                HeaderTest::Regex(p) => format!("header {} does not match {}", cond.name, p.text),
                HeaderTest::Present(true) => format!("header {} is absent", cond.name),
                HeaderTest::Present(false) => format!("header {} is present", cond.name),
            });
        }
        let methods = self.methods.as_deref().unwrap_or_default().join(", ");
        Some(format!("method is not one of {methods}"))
    }

    /// Whether every request `later` matches is matched by `self` too, as far as can be proved: regular
    /// expressions are compared by their text only, so a shadow is never claimed that is not certain.
    pub fn shadows(&self, later: &Conditions) -> bool {
        let path = match (&self.path, &later.path) {
            // Every normalised path starts with `/`.
            (PathCond::Any, _) => true,
            (PathCond::Prefix(p), _) if p == "/" => true,
            (PathCond::Prefix(p), PathCond::Exact(x) | PathCond::Prefix(x)) => {
                has_segment_prefix(x, p)
            }
            (PathCond::Exact(a), PathCond::Exact(b)) => a == b,
            (PathCond::Regex(a), PathCond::Regex(b)) => a.text == b.text,
            _ => false,
        };
        let methods = match (&self.methods, &later.methods) {
            (None, _) => true,
            (Some(mine), Some(theirs)) => theirs.iter().all(|m| mine.contains(m)),
            (Some(_), None) => false,
        };
        let headers = self.headers.iter().all(|mine| {
            later
                .headers
                .iter()
                .any(|theirs| same_header_cond(mine, theirs))
        });
        path && methods && headers
    }
}

/// The first route whose conditions all hold, in order.
pub fn select<'a, S: RequestSource>(
    routes: impl IntoIterator<Item = &'a Conditions>,
    path: &str,
    request: &S,
) -> Selection {
    let mut allow: Vec<String> = Vec::new();
    for (index, conditions) in routes.into_iter().enumerate() {
        match conditions.judge(path, request) {
            Verdict::Match => return Selection::Route(index),
            Verdict::WrongMethod => {
                for method in conditions.methods.iter().flatten() {
                    if !allow.contains(method) {
                        allow.push(method.clone());
                    }
                }
            }
            Verdict::NoMatch => {}
        }
    }
    if allow.is_empty() {
        Selection::NoRoute
    } else {
        Selection::MethodNotAllowed(allow)
    }
}

/// The literal text at the start of every string `pattern` matches in full: the characters before the
/// first one with a meaning (an escape, a class, a group, a quantifier), less the last when a quantifier
/// that allows zero follows it. Empty when an alternation at the top level could start a match
/// elsewhere, or when the pattern starts with anything but a literal (flags like `(?i)` included).
fn literal_prefix(pattern: &str) -> String {
    if has_top_level_alternation(pattern) {
        return String::new();
    }
    let mut prefix = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(&c) = chars.peek() {
        if "\\.+*?()|[]{}^$#".contains(c) || c.is_whitespace() {
            break;
        }
        prefix.push(c);
        chars.next();
    }
    if matches!(chars.peek(), Some('?' | '*' | '{')) {
        prefix.pop();
    }
    prefix
}

/// Whether `pattern` has a `|` outside every group and class.
fn has_top_level_alternation(pattern: &str) -> bool {
    let (mut depth, mut in_class, mut escaped) = (0usize, false, false);
    for c in pattern.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ']' if in_class => in_class = false,
            _ if in_class => {}
            '[' => in_class = true,
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            '|' if depth == 0 => return true,
            _ => {}
        }
    }
    false
}

/// `prefix` is `path`'s first whole segments (`prefix` without a trailing slash, or `/`).
pub fn has_segment_prefix(path: &str, prefix: &str) -> bool {
    if prefix == "/" {
        return path.starts_with('/');
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

fn header_holds<S: RequestSource>(cond: &HeaderCond, request: &S) -> bool {
    let mut values = request
        .fields()
        .filter(|f| f.name.eq_ignore_ascii_case(cond.name.as_bytes()))
        .map(|f| f.value);
    match &cond.test {
        HeaderTest::Present(wanted) => values.next().is_some() == *wanted,
        HeaderTest::Equals(expected) => values.any(|v| v == expected.as_bytes()),
        HeaderTest::Regex(pattern) => {
            values.any(|v| std::str::from_utf8(v).is_ok_and(|v| pattern.is_match(v)))
        }
    }
}

fn same_header_cond(a: &HeaderCond, b: &HeaderCond) -> bool {
    a.name == b.name
        && match (&a.test, &b.test) {
            (HeaderTest::Equals(x), HeaderTest::Equals(y)) => x == y,
            (HeaderTest::Regex(x), HeaderTest::Regex(y)) => x.text == y.text,
            (HeaderTest::Present(x), HeaderTest::Present(y)) => x == y,
            _ => false,
        }
}

#[cfg(test)]
#[path = "route_match_tests.rs"]
mod tests;
