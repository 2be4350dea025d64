use super::*;
use crate::upstream::route_match::Pattern;

fn render(template: &Template, vars: &Vars) -> String {
    let mut out = b"before|".to_vec();
    template.render(vars, &mut out);
    let out = String::from_utf8(out).expect("utf-8");
    out.strip_prefix("before|").expect("kept").to_string()
}

fn vars<'a>(host: &'a str, path: &'a str, query: &'a str) -> Vars<'a> {
    Vars {
        host: host.as_bytes(),
        path: path.as_bytes(),
        query: query.as_bytes(),
        ..Vars::default()
    }
}

fn parse_err(text: &str, form: Form, names: &CaptureNames) -> String {
    match Template::parse_as(text, form, names) {
        Ok(t) => panic!("accepted {t:?}"),
        Err(e) => e,
    }
}

#[test]
fn builtins_and_escaped_braces_render() {
    let t = Template::parse("{{{host}}} {path}{query} }}{{", &CaptureNames::none()).unwrap();
    assert!(!t.is_literal());
    assert_eq!(t.as_str(), "{{{host}}} {path}{query} }}{{");
    let v = vars("App.Test.", "/a/b", "?x=1");
    assert_eq!(render(&t, &v), "{app.test} /a/b?x=1 }{");
    assert_eq!(render(&t, &vars("a", "/", "")), "{a} / }{");
    let literal = Template::parse("ok {{}}", &CaptureNames::none()).unwrap();
    assert!(literal.is_literal());
    assert_eq!(render(&literal, &Vars::default()), "ok {}");
    assert_eq!(
        render(&Template::parse("", &CaptureNames::none()).unwrap(), &v),
        ""
    );
}

#[test]
fn captures_by_number_and_name_and_absent_groups_render_empty() {
    let pattern = Pattern::new("/u/(?P<id>[0-9]+)(/(?P<tab>[a-z]+))?").unwrap();
    let names = pattern.capture_names();
    assert_eq!((names.groups(), CaptureNames::none().groups()), (4, 0));
    let t = Template::parse("{0}|{1}|{id}|{2}|{tab}|{3}", &names).unwrap();
    let caps = pattern.captures("/u/42/posts").unwrap();
    let v = Vars {
        captures: Some(&caps),
        ..Vars::default()
    };
    assert_eq!(render(&t, &v), "/u/42/posts|42|42|/posts|posts|posts");
    let caps = pattern.captures("/u/7").unwrap();
    let v = Vars {
        captures: Some(&caps),
        ..Vars::default()
    };
    assert_eq!(render(&t, &v), "/u/7|7|7|||");
    assert!(pattern.captures("/u/x").is_none());
    // No captures given at all: every group is empty.
    assert_eq!(render(&t, &Vars::default()), "|||||");
}

#[test]
fn parse_errors_name_the_placeholder() {
    let pattern = Pattern::new("/u/(?P<id>[0-9]+)").unwrap();
    let names = pattern.capture_names();
    let none = CaptureNames::none();
    let cases: [(&str, Form, &CaptureNames, &str); 12] = [
        (
            "/o/{name}",
            Form::Path,
            &names,
            "the route's path_regex has no capture `name`",
        ),
        (
            "/o/{2}",
            Form::Path,
            &names,
            "the route's path_regex has no capture `2`",
        ),
        ("/o/{id}", Form::Path, &none, "the route has no path_regex"),
        (
            "/o/{query}",
            Form::Path,
            &names,
            "`{query}` cannot be used here",
        ),
        (
            "/o/{host}",
            Form::Path,
            &names,
            "`{host}` cannot be used here",
        ),
        ("o/{id}", Form::Path, &names, "must start with '/'"),
        ("x{", Form::Text, &none, "unclosed `{`"),
        ("x}", Form::Text, &none, "unmatched `}`"),
        ("{}", Form::Text, &none, "`{}` is not a placeholder"),
        ("{a-b}", Form::Text, &none, "`{a-b}` is not a placeholder"),
        (
            "v={client_ip}",
            Form::Location,
            &none,
            "`{client_ip}` cannot be used here",
        ),
        (
            "{instance}",
            Form::RequestField,
            &none,
            "`{instance}` cannot be used here",
        ),
    ];
    for (text, form, names, wanted) in cases {
        let error = parse_err(text, form, names);
        assert!(error.contains(wanted), "{text:?}: {error}");
    }
    let error = parse_err("{id}", Form::RequestField, &none);
    assert!(error.contains("unknown placeholder `{id}`"), "{error}");
    assert!(
        error.contains("{client_ip}, {request_id} and {host}"),
        "{error}"
    );
    let clash = Pattern::new("/(?P<path>.*)").unwrap().capture_names();
    assert!(parse_err("{path}", Form::Text, &clash).contains("ambiguous"));
}

#[test]
fn literal_text_is_checked_per_form() {
    let none = CaptureNames::none();
    assert!(parse_err("/a b", Form::Location, &none).contains("visible ASCII"));
    assert!(parse_err("/a?b", Form::Path, &none).contains("without '?'"));
    assert!(parse_err("/a#b", Form::Path, &none).contains("without '?'"));
    for bad in ["a\r\nb", " a", "a\t", "é"] {
        assert!(
            Template::parse_as(bad, Form::RequestField, &none).is_err(),
            "{bad:?}"
        );
    }
    let ok = Template::parse_as("a b\tc", Form::ResponseField, &none).unwrap();
    assert_eq!(render(&ok, &Vars::default()), "a b\tc");
    // A body may hold anything.
    assert!(Template::parse("line\r\n\té", &none).is_ok());
}

#[test]
fn a_location_built_from_the_path_is_never_protocol_relative() {
    let names = Pattern::new("/go/(.*)").unwrap().capture_names();
    let location = |text: &str, path: &str, capture_path: &str| {
        let t = Template::parse_as(text, Form::Location, &names).unwrap();
        let pattern = Pattern::new("/go/(.*)").unwrap();
        let caps = pattern.captures(capture_path);
        let v = Vars {
            captures: caps.as_ref(),
            ..vars("a.test", path, "?q")
        };
        render(&t, &v)
    };
    assert_eq!(
        location("{path}{query}", "//evil.example/x", ""),
        "/evil.example/x?q"
    );
    assert_eq!(location("{path}", "/\\evil", ""), "/evil");
    assert_eq!(location("/{1}", "", "/go//evil"), "/evil");
    assert_eq!(location("{1}", "", "/go/https://evil"), "/https://evil");
    assert_eq!(location("{1}", "", "/go/"), "/");
    assert_eq!(location("/new{path}", "/x", ""), "/new/x");
    // Literal text that fixes the origin is the operator's own choice and is left alone.
    assert_eq!(
        location("https://{host}{path}", "//x", ""),
        "https://a.test//x"
    );
    assert_eq!(location("//cdn.test{path}", "/x", ""), "//cdn.test/x");
    assert_eq!(location("new{path}", "/x", ""), "new/x");
}

#[test]
fn substitutions_never_bring_control_bytes_or_break_a_field() {
    let none = CaptureNames::none();
    let field =
        Template::parse_as("{host} {client_ip} {request_id}", Form::RequestField, &none).unwrap();
    assert!(field.uses_client_ip());
    let v = Vars {
        host: b"a\r\nX-Evil: 1\x00\x7f\xff",
        client_ip: b"10.0.0.1",
        request_id: b"\tid\n",
        ..Vars::default()
    };
    assert_eq!(render(&field, &v), "ax-evil: 1 10.0.0.1 id");
    let only = Template::parse_as("{request_id}", Form::ResponseField, &none).unwrap();
    let v = Vars {
        request_id: b"  x  ",
        ..Vars::default()
    };
    assert_eq!(render(&only, &v), "x", "trimmed");
    let path = Template::parse_as("/p/{path}", Form::Path, &none).unwrap();
    assert_eq!(render(&path, &vars("", "a?b#c d\r\n", "")), "/p/abcd");
    let body = Template::parse("{path}", &none).unwrap();
    assert_eq!(render(&body, &vars("", "/é\r\n\x00", "")), "/é");
}

#[test]
fn templates_compare_and_print_by_form_and_text() {
    let none = CaptureNames::none();
    let a = Template::parse_as("/x", Form::Path, &none).unwrap();
    assert_eq!(a, a.clone());
    assert_ne!(a, Template::parse("/x", &none).unwrap());
    assert_eq!(format!("{a:?}"), "Template(Path, \"/x\")");
    assert_eq!(a.form(), Form::Path);
    assert!(!a.uses_client_ip());
}
