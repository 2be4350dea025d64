//! Typed, position-aware access to a parsed TOML document.
//!
//! Validation walks the span-carrying `DeTable` tree by hand instead of deriving serde types, because serde
//! stops at the first problem while an operator wants every problem in one run. Each lookup records what it
//! found wrong in [`Ctx`] and returns `None`, so callers keep going and fall back to defaults.

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

pub(super) use super::item::{article, Item};
use super::ConfigError;

/// Where errors are collected, and what is needed to turn byte offsets into line numbers.
pub(super) struct Ctx {
    pub(super) file: String,
    /// Byte offset at which each line starts; the first is always 0.
    line_starts: Vec<usize>,
    pub(super) errors: Vec<ConfigError>,
    /// Problems found after `MAX_REPORTED_ERRORS`, only counted.
    pub(super) suppressed: usize,
}

/// Problems reported per file; past this many nobody reads on, and a pathological file (a million
/// unknown keys) must not take minutes to reject.
const MAX_REPORTED_ERRORS: usize = 200;

impl Ctx {
    pub(super) fn new(file: String, text: &str) -> Ctx {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        Ctx {
            file,
            line_starts,
            errors: Vec::new(),
            suppressed: 0,
        }
    }

    /// 1-based line holding byte `offset`.
    pub(super) fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset)
    }

    pub(super) fn is_full(&self) -> bool {
        self.errors.len() >= MAX_REPORTED_ERRORS
    }

    pub(super) fn report(&mut self, span: &Range<usize>, key: &str, message: impl Into<String>) {
        if self.is_full() {
            self.suppressed += 1;
            return;
        }
        let line = Some(self.line_of(span.start));
        self.errors.push(ConfigError {
            file: self.file.clone(),
            line,
            key: key.to_string(),
            message: message.into(),
        });
    }
}

/// `parent.key`, quoting `key` when TOML would need quotes for it (`backends."myapp.localhost"`).
pub(super) fn join_key(parent: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let mut out = String::with_capacity(parent.len() + key.len() + 3);
    if !parent.is_empty() {
        out.push_str(parent);
        out.push('.');
    }
    if bare {
        out.push_str(key);
    } else {
        out.push('"');
        for c in key.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out
}

struct Entry<'t, 'i> {
    key: &'t Spanned<std::borrow::Cow<'i, str>>,
    value: &'t Spanned<DeValue<'i>>,
    taken: bool,
}

/// A table whose keys are looked up by name; whatever nobody asked for is reported as unknown by `finish`.
pub(super) struct Section<'t, 'i> {
    path: String,
    span: Range<usize>,
    /// In file order, so errors and `env` come out in the order the operator wrote them.
    entries: Vec<Entry<'t, 'i>>,
    known: Vec<&'static str>,
}

impl<'t, 'i> Section<'t, 'i> {
    pub(super) fn new(path: String, span: Range<usize>, table: &'t DeTable<'i>) -> Self {
        let mut entries: Vec<Entry<'t, 'i>> = table
            .iter()
            .map(|(key, value)| Entry {
                key,
                value,
                taken: false,
            })
            .collect();
        entries.sort_by_key(|entry| entry.key.span().start);
        Section {
            path,
            span,
            entries,
            known: Vec::new(),
        }
    }

    /// The table's dotted key path.
    pub(super) fn path(&self) -> &str {
        &self.path
    }

    /// Where the table is, for problems about the table as a whole.
    pub(super) fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    fn item(&self, index: usize) -> Item<'t, 'i> {
        let entry = &self.entries[index];
        let name: &'t str = entry.key.get_ref().as_ref();
        Item {
            path: join_key(&self.path, name),
            name,
            key_span: entry.key.span(),
            value: entry.value,
        }
    }

    /// The value under `name`, if present; marks it as a known key either way.
    pub(super) fn take(&mut self, name: &'static str) -> Option<Item<'t, 'i>> {
        self.known.push(name);
        let index = self
            .entries
            .iter()
            .position(|entry| entry.key.get_ref().as_ref() == name)?;
        self.entries[index].taken = true;
        Some(self.item(index))
    }

    /// Like `take`, but a missing key is an error reported at the table's header.
    pub(super) fn require(&mut self, ctx: &mut Ctx, name: &'static str) -> Option<Item<'t, 'i>> {
        let item = self.take(name);
        if item.is_none() {
            let key = join_key(&self.path, name);
            ctx.report(&self.span, &key, "required key is missing");
        }
        item
    }

    /// Every entry, for tables whose keys are data (backend hostnames, environment variables).
    pub(super) fn take_all(&mut self) -> Vec<Item<'t, 'i>> {
        for entry in &mut self.entries {
            entry.taken = true;
        }
        (0..self.entries.len())
            .map(|index| self.item(index))
            .collect()
    }

    /// Reports every key nobody asked for, suggesting the known key it most likely meant.
    pub(super) fn finish(self, ctx: &mut Ctx) {
        for (index, entry) in self.entries.iter().enumerate() {
            if entry.taken {
                continue;
            }
            if ctx.is_full() {
                ctx.suppressed += 1;
                continue;
            }
            let item = self.item(index);
            let message = match closest(item.name, &self.known) {
                Some(known) => format!("unknown key (did you mean `{known}`?)"),
                None => "unknown key".to_string(),
            };
            ctx.report(&item.key_span, &item.path, message);
        }
    }
}

/// The known key a typo most likely meant: a prefix match (`idle_timeout` for `idle_timeout_secs`) or
/// one within two single-character edits.
fn closest<'k>(unknown: &str, known: &[&'k str]) -> Option<&'k str> {
    /// Longer names make the quadratic edit distance pointless; nobody mistypes a key by that much.
    const MAX_COMPARED_LEN: usize = 64;
    if unknown.len() > MAX_COMPARED_LEN || unknown.is_empty() {
        return None;
    }
    let prefix_match = known
        .iter()
        .find(|k| k.starts_with(unknown) || unknown.starts_with(**k));
    if let Some(found) = prefix_match {
        return Some(found);
    }
    known
        .iter()
        .map(|k| (edit_distance(unknown, k), *k))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_quoted_only_when_toml_needs_it() {
        assert_eq!(join_key("", "server"), "server");
        assert_eq!(join_key("backends", "my.host"), "backends.\"my.host\"");
        assert_eq!(join_key("a", "we\"ird"), "a.\"we\\\"ird\"");
        assert_eq!(join_key("a", ""), "a.\"\"");
    }

    #[test]
    fn lines_are_one_based() {
        let ctx = Ctx::new("f".into(), "a\nbb\n\nc");
        assert_eq!(ctx.line_of(0), 1);
        assert_eq!(ctx.line_of(1), 1);
        assert_eq!(ctx.line_of(2), 2);
        assert_eq!(ctx.line_of(5), 3);
        assert_eq!(ctx.line_of(6), 4);
    }

    #[test]
    fn suggestions_catch_typos_and_missing_suffixes() {
        let known = ["idle_timeout_secs", "port", "command"];
        assert_eq!(closest("idle_timeout", &known), Some("idle_timeout_secs"));
        assert_eq!(closest("comand", &known), Some("command"));
        assert_eq!(closest("prot", &known), Some("port"));
        assert_eq!(closest("zzzzzz", &known), None);
    }
}
