//! [`Template`]: a configured text with placeholders filled in per request: a redirect's `location`, a
//! fixed response's `body`, a `rewrite` path and header edit values.
//!
//! Placeholders are `{host}`, `{path}`, `{query}`, the route's `path_regex` captures by number (`{1}`)
//! or name (`{id}`), and for header values `{client_ip}`, `{request_id}` and (response edits)
//! `{instance}`; which ones a text may use depends on its [`Form`], checked when the config is read so
//! a mistake is a config error, never a request-time surprise. `{{` and `}}` stand for literal braces
//! (the escape `format!` uses, so operators already know it, and no other character becomes special).
//!
//! What a form allows in its literal text is checked at parse time; what a placeholder brings in comes
//! from the request, so rendering filters it: bytes a form cannot carry (control bytes everywhere, and
//! outside visible ASCII wherever the result is a URI or a field value) are dropped, never escaped, so a
//! rendered value can never end a header line or smuggle a second one. Two forms also fix the shape of
//! the result (see [`Form::Location`] and [`Form::Path`]).

use std::fmt;

use regex_lite::Captures;

/// Where a template is used: which placeholders it may hold, what its literal text may contain and what
/// rendering guarantees about the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// A fixed response's body: `{host}`, `{path}`, `{query}`, captures; any literal text.
    Text,
    /// A redirect's `Location`: as `Text`, literal text visible ASCII. When the template does not start
    /// with literal text that fixes the origin itself (a scheme such as `https://`, or `//`), the result
    /// is a path: its leading run of `/` and `\` becomes exactly one `/` (one is added if missing). So
    /// `{path}`, `/{1}` or `{1}` can never render as `//evil.example` or `https://evil.example`,
    /// which a browser would follow off-site, whatever the request's path or captures hold.
    Location,
    /// A `rewrite`: `{path}` and captures only (the query is kept as it was). The literal text starts
    /// with `/`, is visible ASCII without `?` or `#`; the result starts with exactly one `/`, as above.
    Path,
    /// A request header edit's value: `{client_ip}`, `{request_id}`, `{host}`; visible ASCII, spaces
    /// and tabs, without leading or trailing whitespace (also trimmed from the result).
    RequestField,
    /// A response header edit's value: as `RequestField`, and `{instance}` (what answered) and `{slot}`
    /// (which instance of its pool: 0 for a `[backends]` entry).
    ResponseField,
}

impl Form {
    fn is_field(self) -> bool {
        matches!(self, Form::RequestField | Form::ResponseField)
    }

    /// Whether a byte a placeholder brings in is written.
    #[inline]
    fn keeps(self, b: u8) -> bool {
        match self {
            Form::Text => b >= 0x20 && b != 0x7f,
            Form::Location => b.is_ascii_graphic(),
            Form::Path => b.is_ascii_graphic() && b != b'?' && b != b'#',
            Form::RequestField | Form::ResponseField => b == b' ' || b.is_ascii_graphic(),
        }
    }

    fn allows(self, var: Var) -> bool {
        match var {
            Var::Host => self != Form::Path,
            Var::Path | Var::Capture(_) => !self.is_field(),
            Var::Query => matches!(self, Form::Text | Form::Location),
            Var::ClientIp | Var::RequestId => self.is_field(),
            Var::Instance | Var::Slot => self == Form::ResponseField,
        }
    }

    fn placeholders(self) -> &'static str {
        match self {
            Form::Text | Form::Location => {
                "{host}, {path}, {query} and the path_regex's captures ({1}, {name})"
            }
            Form::Path => "{path} and the path_regex's captures ({1}, {name}); the query is kept",
            Form::RequestField => "{client_ip}, {request_id} and {host}",
            Form::ResponseField => "{client_ip}, {request_id}, {host}, {instance} and {slot}",
        }
    }
}

/// The capture groups of a route's `path_regex`, for checking a template's `{1}` and `{name}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureNames {
    /// Groups, the whole match (group 0) included; 0 when the route has no `path_regex`.
    len: usize,
    /// Named groups with their numbers.
    named: Vec<(String, usize)>,
}

impl CaptureNames {
    /// A route without `path_regex`: no captures.
    pub fn none() -> CaptureNames {
        CaptureNames::default()
    }

    /// `names[i]` is group `i`'s name, if it has one (group 0 never does).
    pub fn new<'n>(names: impl IntoIterator<Item = Option<&'n str>>) -> CaptureNames {
        let mut out = CaptureNames::default();
        for (index, name) in names.into_iter().enumerate() {
            out.len = index + 1;
            if let Some(name) = name {
                out.named.push((name.to_string(), index));
            }
        }
        out
    }

    pub fn has_regex(&self) -> bool {
        self.len > 0
    }

    /// Groups, the whole match (group 0) included; 0 without a `path_regex`.
    pub fn groups(&self) -> usize {
        self.len
    }

    fn named(&self, name: &str) -> Option<usize> {
        self.named.iter().find(|(n, _)| n == name).map(|&(_, i)| i)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    Host,
    Path,
    Query,
    ClientIp,
    RequestId,
    Instance,
    Slot,
    /// A group of the route's `path_regex`, by number.
    Capture(usize),
}

impl Var {
    fn builtin(name: &str) -> Option<Var> {
        Some(match name {
            "host" => Var::Host,
            "path" => Var::Path,
            "query" => Var::Query,
            "client_ip" => Var::ClientIp,
            "request_id" => Var::RequestId,
            "instance" => Var::Instance,
            "slot" => Var::Slot,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(Box<str>),
    Var(Var),
}

/// A parsed template; see the module doc. Immutable, built from config, rendered per request.
#[derive(Clone, PartialEq, Eq)]
pub struct Template {
    /// As written, for the admin view and messages.
    text: Box<str>,
    form: Form,
    parts: Box<[Part]>,
    /// `Location` only: the result is made a path (see [`Form::Location`]).
    path_shaped: bool,
}

/// What a request gives the placeholders. Fields a form cannot use may be left empty
/// (`..Vars::default()`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Vars<'a> {
    /// The host the request named, without its port (`{host}` is written lower-case, without a
    /// trailing dot).
    pub host: &'a [u8],
    /// The normalised path, without the query.
    pub path: &'a [u8],
    /// The query with its leading `?`, or empty when the target had none.
    pub query: &'a [u8],
    /// The route's `path_regex` captures over `path`; a group that did not take part renders empty.
    pub captures: Option<&'a Captures<'a>>,
    pub client_ip: &'a [u8],
    pub request_id: &'a [u8],
    /// What answered (the backend or pool name), for response edits.
    pub instance: &'a [u8],
    /// Which instance of its pool answered (decimal; `0` for a `[backends]` entry).
    pub slot: &'a [u8],
}

impl Template {
    /// A `respond.body`: [`Form::Text`].
    pub fn parse(text: &str, names: &CaptureNames) -> Result<Template, String> {
        Template::parse_as(text, Form::Text, names)
    }

    /// A template of any form; `names` are the route's captures (none for header values).
    pub fn parse_as(text: &str, form: Form, names: &CaptureNames) -> Result<Template, String> {
        check_literal_text(text, form)?;
        let parts = parse_parts(text, form, names)?;
        if form == Form::Path
            && !matches!(parts.first(), Some(Part::Literal(l)) if l.starts_with('/'))
        {
            return Err("must start with '/'".into());
        }
        let path_shaped = match parts.first() {
            Some(Part::Literal(lit)) => lit.starts_with('/') && !lit.starts_with("//"),
            Some(Part::Var(_)) => true,
            None => false,
        };
        Ok(Template {
            text: text.into(),
            form,
            parts: parts.into_boxed_slice(),
            path_shaped,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn form(&self) -> Form {
        self.form
    }

    /// No placeholder: what it renders is its text (with `{{` and `}}` unescaped).
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// Whether rendering reads [`Vars::client_ip`] (so a writer formats the address only then).
    pub fn uses_client_ip(&self) -> bool {
        self.parts.contains(&Part::Var(Var::ClientIp))
    }

    /// Appends the rendered text to `out`. Never fails: what a placeholder cannot supply is empty.
    pub fn render(&self, vars: &Vars, out: &mut Vec<u8>) {
        let start = out.len();
        for part in self.parts.iter() {
            match part {
                Part::Literal(text) => out.extend_from_slice(text.as_bytes()),
                Part::Var(var) => self.substitute(*var, vars, out),
            }
        }
        match self.form {
            Form::Path => root(out, start),
            Form::Location if self.path_shaped => root(out, start),
            Form::RequestField | Form::ResponseField => trim_whitespace(out, start),
            Form::Text | Form::Location => {}
        }
    }

    fn substitute(&self, var: Var, vars: &Vars, out: &mut Vec<u8>) {
        let value: &[u8] = match var {
            Var::Host => {
                let host = vars.host.strip_suffix(b".").unwrap_or(vars.host);
                let kept = host.iter().filter(|&&b| self.form.keeps(b));
                out.extend(kept.map(u8::to_ascii_lowercase));
                return;
            }
            Var::Path => vars.path,
            Var::Query => vars.query,
            Var::ClientIp => vars.client_ip,
            Var::RequestId => vars.request_id,
            Var::Instance => vars.instance,
            Var::Slot => vars.slot,
            Var::Capture(index) => {
                let group = vars.captures.and_then(|c| c.get(index));
                group.map_or(&b""[..], |m| m.as_str().as_bytes())
            }
        };
        if value.iter().all(|&b| self.form.keeps(b)) {
            out.extend_from_slice(value);
        } else {
            out.extend(value.iter().copied().filter(|&b| self.form.keeps(b)));
        }
    }
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Template({:?}, {:?})", self.form, self.text)
    }
}

/// What a form's literal text may contain (placeholders included: their names are ASCII).
fn check_literal_text(text: &str, form: Form) -> Result<(), String> {
    let bytes = text.as_bytes();
    match form {
        Form::Text => Ok(()),
        Form::Location if !bytes.iter().all(u8::is_ascii_graphic) => {
            Err("must be visible ASCII without spaces (percent-encode the rest)".into())
        }
        Form::Path if !bytes.iter().all(|&b| Form::Path.keeps(b)) => {
            Err("must be visible ASCII without '?' or '#' (percent-encode the rest)".into())
        }
        Form::RequestField | Form::ResponseField => {
            let visible = |b: &u8| b.is_ascii_graphic() || *b == b' ' || *b == b'\t';
            if !bytes.iter().all(visible) {
                return Err("a header value must be visible ASCII, spaces and tabs".into());
            }
            let padded = |b: Option<&u8>| matches!(b, Some(b' ' | b'\t'));
            if padded(bytes.first()) || padded(bytes.last()) {
                return Err("a header value must not start or end with whitespace".into());
            }
            Ok(())
        }
        Form::Location | Form::Path => Ok(()),
    }
}

fn parse_parts(text: &str, form: Form, names: &CaptureNames) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(['{', '}']) {
        literal.push_str(&rest[..at]);
        let (brace, after) = (&rest[at..at + 1], &rest[at + 1..]);
        if let Some(after) = after.strip_prefix(brace) {
            literal.push_str(brace);
            rest = after;
            continue;
        }
        if brace == "}" {
            return Err("unmatched `}` (write `}}` for a literal brace)".into());
        }
        let Some(end) = after.find('}') else {
            return Err("unclosed `{` (write `{{` for a literal brace)".into());
        };
        let var = placeholder(&after[..end], form, names)?;
        if !literal.is_empty() {
            parts.push(Part::Literal(std::mem::take(&mut literal).into()));
        }
        parts.push(Part::Var(var));
        rest = &after[end + 1..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        parts.push(Part::Literal(literal.into()));
    }
    Ok(parts)
}

/// What `{name}` stands for in `form`, or why it cannot be used there.
fn placeholder(name: &str, form: Form, names: &CaptureNames) -> Result<Var, String> {
    let allowed = form.placeholders();
    let is_name = |s: &str| {
        s.bytes()
            .enumerate()
            .all(|(i, b)| b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()))
    };
    if name.is_empty() || !(is_name(name) || name.bytes().all(|b| b.is_ascii_digit())) {
        return Err(format!(
            "`{{{name}}}` is not a placeholder (write `{{{{` for a literal brace)"
        ));
    }
    if let Some(var) = Var::builtin(name) {
        if !form.allows(var) {
            return Err(format!("`{{{name}}}` cannot be used here; use {allowed}"));
        }
        if names.named(name).is_some() {
            return Err(format!(
                "`{{{name}}}` is ambiguous: the path_regex has a capture of that name too; rename it"
            ));
        }
        return Ok(var);
    }
    if form.is_field() {
        return Err(format!("unknown placeholder `{{{name}}}`; use {allowed}"));
    }
    if !names.has_regex() {
        return Err(format!(
            "`{{{name}}}` names a capture, but the route has no path_regex; use {allowed}"
        ));
    }
    let index = match name.parse::<usize>() {
        Ok(index) if index < names.len => Some(index),
        Ok(_) => None,
        Err(_) => names.named(name),
    };
    index
        .map(Var::Capture)
        .ok_or_else(|| format!("the route's path_regex has no capture `{name}`"))
}

/// Makes what was written from `start` on begin with exactly one `/`: a run of `/` and `\` there
/// becomes one `/`, and a missing one is added.
fn root(out: &mut Vec<u8>, start: usize) {
    let run = out[start..]
        .iter()
        .take_while(|&&b| b == b'/' || b == b'\\')
        .count();
    match run {
        0 => out.insert(start, b'/'),
        1 => out[start] = b'/',
        _ => {
            out[start] = b'/';
            out.drain(start + 1..start + run);
        }
    }
}

fn trim_whitespace(out: &mut Vec<u8>, start: usize) {
    while matches!(out.last(), Some(b' ' | b'\t')) && out.len() > start {
        out.pop();
    }
    let lead = out[start..]
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    if lead > 0 {
        out.drain(start..start + lead);
    }
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
