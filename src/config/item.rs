//! One value of the config document ([`Item`]): its key path and position, and the typed readings of it
//! that report a wrong type or value at its line (strings, integers in a range, booleans, lists, tables).

use std::ops::Range;

use toml::de::DeValue;
use toml::Spanned;

use super::reader::{Ctx, Section};

/// One value in the document, with its dotted key path and the position of its key.
pub(super) struct Item<'t, 'i> {
    pub(super) path: String,
    /// The key as written (unquoted).
    pub(super) name: &'t str,
    pub(super) key_span: Range<usize>,
    pub(super) value: &'t Spanned<DeValue<'i>>,
}

impl<'t, 'i> Item<'t, 'i> {
    pub(super) fn span(&self) -> Range<usize> {
        self.value.span()
    }

    /// Reports a bad value at the value's line.
    pub(super) fn invalid(&self, ctx: &mut Ctx, message: impl Into<String>) {
        ctx.report(&self.span(), &self.path, message);
    }

    fn wrong_type(&self, ctx: &mut Ctx, expected: &str) {
        let found = self.value.get_ref().type_str();
        self.invalid(ctx, format!("must be {expected}, found {}", article(found)));
    }

    pub(super) fn as_str(&self, ctx: &mut Ctx) -> Option<&'t str> {
        match self.value.get_ref() {
            DeValue::String(s) => Some(s.as_ref()),
            _ => {
                self.wrong_type(ctx, "a string");
                None
            }
        }
    }

    /// A string that must not be empty nor contain NUL (which no path, argument or variable can hold).
    pub(super) fn text(&self, ctx: &mut Ctx) -> Option<&'t str> {
        let s = self.as_str(ctx)?;
        if s.is_empty() {
            self.invalid(ctx, "must not be empty");
            None
        } else if s.contains('\0') {
            self.invalid(ctx, "must not contain a NUL character");
            None
        } else {
            Some(s)
        }
    }

    pub(super) fn as_int(&self, ctx: &mut Ctx) -> Option<i64> {
        match self.value.get_ref() {
            DeValue::Integer(int) => match i64::from_str_radix(int.as_str(), int.radix()) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.invalid(ctx, "integer is out of range");
                    None
                }
            },
            _ => {
                self.wrong_type(ctx, "an integer");
                None
            }
        }
    }

    /// An integer within `min..=max`; the message names the bounds.
    pub(super) fn uint_in(&self, ctx: &mut Ctx, min: u64, max: u64) -> Option<u64> {
        let n = self.as_int(ctx)?;
        match u64::try_from(n) {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            Err(_) if min == 0 => {
                self.invalid(ctx, "must not be negative");
                None
            }
            _ => {
                self.invalid(ctx, format!("must be between {min} and {max}, found {n}"));
                None
            }
        }
    }

    /// An array of strings, each free of NUL; every bad element is reported with its index.
    pub(super) fn string_list(&self, ctx: &mut Ctx) -> Option<Vec<String>> {
        let DeValue::Array(array) = self.value.get_ref() else {
            self.wrong_type(ctx, "an array of strings");
            return None;
        };
        let mut out = Vec::with_capacity(array.len());
        let mut ok = true;
        for (index, element) in array.iter().enumerate() {
            let path = format!("{}[{index}]", self.path);
            match element.get_ref() {
                DeValue::String(s) if s.contains('\0') => {
                    ctx.report(&element.span(), &path, "must not contain a NUL character");
                    ok = false;
                }
                DeValue::String(s) => out.push(s.to_string()),
                other => {
                    let found = article(other.type_str());
                    ctx.report(
                        &element.span(),
                        &path,
                        format!("must be a string, found {found}"),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    pub(super) fn as_bool(&self, ctx: &mut Ctx) -> Option<bool> {
        match self.value.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(ctx, "true or false");
                None
            }
        }
    }

    /// An array of tables (`[[a.b]]`, or `[{...}, {...}]`), each with its index in its key path; every
    /// element that is not a table is reported.
    pub(super) fn tables(&self, ctx: &mut Ctx) -> Option<Vec<Section<'t, 'i>>> {
        let DeValue::Array(array) = self.value.get_ref() else {
            self.wrong_type(ctx, "an array of tables");
            return None;
        };
        let mut out = Vec::with_capacity(array.len());
        for (index, element) in array.iter().enumerate() {
            let path = format!("{}[{index}]", self.path);
            match element.get_ref() {
                DeValue::Table(table) => out.push(Section::new(path, element.span(), table)),
                other => {
                    let found = article(other.type_str());
                    ctx.report(
                        &element.span(),
                        &path,
                        format!("must be a table, found {found}"),
                    );
                }
            }
        }
        Some(out)
    }

    pub(super) fn section(&self, ctx: &mut Ctx) -> Option<Section<'t, 'i>> {
        match self.value.get_ref() {
            DeValue::Table(table) => Some(Section::new(self.path.clone(), self.span(), table)),
            _ => {
                self.wrong_type(ctx, "a table");
                None
            }
        }
    }
}

pub(super) fn article(type_name: &str) -> String {
    match type_name.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => format!("an {type_name}"),
        _ => format!("a {type_name}"),
    }
}
