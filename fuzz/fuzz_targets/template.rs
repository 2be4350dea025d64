//! Templates: parsing any text in any form never panics, and rendering whatever a request could hold
//! never panics and keeps each form's promise: a header value has no control byte and no surrounding
//! whitespace; a rewrite is a path starting with exactly one `/`, without `?` or `#`; a location built
//! from a placeholder or a path-relative text is never protocol-relative.
//!
//! Input: a form byte, then the template text, host, path and query separated by NUL bytes. The path
//! is matched by a fixed expression with a numbered and a named group, so captures take part.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use spawngate::http1::rewrite::{Form, Template, Vars};
use spawngate::upstream::route_match::Pattern;

const FORMS: [Form; 5] = [
    Form::Text,
    Form::Location,
    Form::Path,
    Form::RequestField,
    Form::ResponseField,
];

fn pattern() -> &'static Pattern {
    static PATTERN: OnceLock<Pattern> = OnceLock::new();
    PATTERN.get_or_init(|| Pattern::new("/([^/]*)(?P<rest>/.*)?").expect("valid"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let form = FORMS[usize::from(selector) % FORMS.len()];
    let mut parts = rest.splitn(4, |&b| b == 0);
    let text = parts.next().unwrap_or_default();
    let host = parts.next().unwrap_or_default();
    let path = parts.next().unwrap_or_default();
    let query = parts.next().unwrap_or_default();
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let names = pattern().capture_names();
    let Ok(template) = Template::parse_as(text, form, &names) else {
        return;
    };
    let path_text = std::str::from_utf8(path).unwrap_or_default();
    let captures = pattern().captures(path_text);
    let vars = Vars {
        host,
        path,
        query,
        captures: captures.as_ref(),
        client_ip: host,
        request_id: query,
        instance: path,
        slot: query,
    };
    let mut out = b"prefix".to_vec();
    template.render(&vars, &mut out);
    assert!(out.starts_with(b"prefix"), "wrote before its start");
    let out = &out[b"prefix".len()..];
    match form {
        Form::RequestField | Form::ResponseField => {
            let control = |b: &u8| (*b < 0x20 && *b != b'\t') || *b == 0x7f;
            assert!(!out.iter().any(control), "{out:?}");
            let padded = |b: Option<&u8>| matches!(b, Some(b' ' | b'\t'));
            assert!(!padded(out.first()) && !padded(out.last()), "{out:?}");
        }
        Form::Path => {
            assert_eq!(out.first(), Some(&b'/'), "{out:?}");
            assert!(!matches!(out.get(1), Some(b'/' | b'\\')), "{out:?}");
            assert!(out
                .iter()
                .all(|b| b.is_ascii_graphic() && !b"?#".contains(b)));
        }
        Form::Location => {
            assert!(out.iter().all(u8::is_ascii_graphic), "{out:?}");
            let placeholder_first = text.starts_with('{') && !text.starts_with("{{");
            let path_first = text.starts_with('/') && !text.starts_with("//");
            if placeholder_first || path_first {
                // Not fixed by the operator's text: a path, never `//host` or `/\host`.
                assert_eq!(out.first(), Some(&b'/'), "{out:?}");
                assert!(!matches!(out.get(1), Some(b'/' | b'\\')), "{out:?}");
            }
        }
        Form::Text => assert!(!out.contains(&0), "{out:?}"),
    }
});
