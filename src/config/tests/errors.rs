//! Invalid configs: unknown keys, wrong types, missing keys, syntax; all problems at once, in order.

use std::path::Path;

use super::{assert_error, errors, single_error, FILE};
use crate::config::{load, parse, ConfigError};

#[test]
fn unknown_keys_are_named_with_a_suggestion() {
    single_error(
        "[server]\nprot = 1\n",
        2,
        "server.prot",
        "did you mean `port`?",
    );
    single_error("[sever]\n", 1, "sever", "did you mean `server`?");
    single_error(
        "[defaults]\n\nidle_timeout = 5\n",
        3,
        "defaults.idle_timeout",
        "`idle_timeout_secs`",
    );
    single_error(
        "[backends.a]\ncommand = \"x\"\nport = 1\nfoo = 2\n",
        4,
        "backends.a.foo",
        "unknown key",
    );
}

#[test]
fn wrong_types_say_what_was_expected() {
    single_error(
        "[server]\nport = \"80\"\n",
        2,
        "server.port",
        "must be an integer, found a string",
    );
    single_error(
        "server = 5\n",
        1,
        "server",
        "must be a table, found an integer",
    );
    single_error(
        "[[backends]]\nx = 1\n",
        1,
        "backends",
        "must be a table, found an array",
    );
    single_error(
        "[server]\nbind = 127\n",
        2,
        "server.bind",
        "must be a string",
    );
    single_error(
        "[backends.a]\ncommand = \"x\"\nport = 1\nargs = [\"ok\", 2]\n",
        4,
        "backends.a.args[1]",
        "must be a string, found an integer",
    );
    single_error(
        "[backends.a]\ncommand = \"x\"\nport = 1.5\n",
        3,
        "backends.a.port",
        "found a float",
    );
}

#[test]
fn missing_required_keys_point_at_the_table() {
    let found = errors("\n[backends.\"a.b\"]\nargs = []\n");
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_error(
        &found,
        2,
        "backends.\"a.b\".port",
        "required key is missing",
    );
    assert_error(
        &found,
        2,
        "backends.\"a.b\".command",
        "required key is missing",
    );
    single_error(
        "[backends.d]\ntype = \"docker\"\nport = 80\n",
        1,
        "backends.d.image",
        "required key is missing",
    );
}

#[test]
fn syntax_errors_have_lines() {
    let found = errors("[server]\nport = 80\nbind = \"127.0.0.1\n");
    assert!(!found.is_empty());
    assert_eq!(found[0].line, Some(3), "{found:#?}");
    assert_eq!(found[0].key, "");
    let found = errors("[server]\nport = 1\nport = 2\n");
    assert_eq!(found[0].line, Some(3), "{found:#?}");
}

#[test]
fn every_problem_is_reported_in_file_order() {
    let text = concat!(
        "[server]\n",               // 1
        "port = -1\n",              // 2
        "colour = \"blue\"\n",      // 3
        "[defaults]\n",             // 4
        "health_path = \"x\"\n",    // 5
        "[backends.\"b.local\"]\n", // 6
        "type = \"docker\"\n",      // 7
        "port = 0\n",               // 8
        "memory = \"12q\"\n",       // 9
        "[backends.\"a.local\"]\n", // 10
        "command = \"x\"\n",        // 11
        "port = \"3000\"\n",        // 12
    );
    let found = errors(text);
    let summary: Vec<(Option<usize>, &str)> =
        found.iter().map(|e| (e.line, e.key.as_str())).collect();
    assert_eq!(
        summary,
        [
            (Some(2), "server.port"),
            (Some(3), "server.colour"),
            (Some(5), "defaults.health_path"),
            (Some(6), "backends.\"b.local\".image"),
            (Some(8), "backends.\"b.local\".port"),
            (Some(9), "backends.\"b.local\".memory"),
            (Some(12), "backends.\"a.local\".port"),
        ]
    );
}

#[test]
fn display_is_file_line_key_message() {
    let error = ConfigError {
        file: "a.toml".into(),
        line: Some(3),
        key: "server.port".into(),
        message: "bad".into(),
    };
    assert_eq!(error.to_string(), "a.toml:3: server.port: bad");
    let all = parse(Path::new(FILE), "[server]\nport = \"x\"\nbind = 1\n").unwrap_err();
    assert_eq!(
        all.to_string(),
        "test.toml:2: server.port: must be an integer, found a string\n\
         test.toml:3: server.bind: must be a string, found an integer\n"
    );
    let unreadable = ConfigError {
        line: None,
        key: String::new(),
        ..error
    };
    assert_eq!(unreadable.to_string(), "a.toml: bad");
}

#[test]
fn load_reports_unreadable_files() {
    let missing =
        std::env::temp_dir().join(format!("spawngate-missing-{}.toml", std::process::id()));
    let found = load(&missing).unwrap_err().0;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].line, None);
    assert!(found[0].message.contains("cannot open"), "{found:?}");

    let binary = std::env::temp_dir().join(format!("spawngate-binary-{}.toml", std::process::id()));
    std::fs::write(&binary, b"[server]\nport = 1\n\xff\xfe\n").unwrap();
    let found = load(&binary).unwrap_err().0;
    std::fs::remove_file(&binary).unwrap();
    assert_eq!(found[0].line, Some(3));
    assert!(found[0].message.contains("UTF-8"));
}

#[test]
fn a_flood_of_problems_is_cut_short() {
    let text: String = (0..5000).map(|i| format!("unknown_{i} = 1\n")).collect();
    let found = errors(&text);
    assert_eq!(found.len(), 201);
    assert_eq!(found[0].line, Some(1));
    assert_eq!(found[200].line, None);
    assert_eq!(found[200].message, "4800 more problems not shown");
}

/// `parse` is a fuzz target; every prefix of a rich config, and some odd inputs, must not panic.
#[test]
fn never_panics_on_truncated_or_odd_input() {
    let full = super::good::FULL;
    for end in (0..=full.len()).filter(|i| full.is_char_boundary(*i)) {
        let _ = parse(Path::new(FILE), &full[..end]);
    }
    let odd = [
        "a = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]",
        "backends = { a = { port = 9223372036854775807, command = \"x\" } }",
        "[backends.a]\ntype = \"docker\"\nimage = \"i\"\nport = 1\nmemory = \"99999999999999999999999999999t\"",
        "[backends.a]\ntype = \"docker\"\nimage = \"i\"\nport = 1\ncpus = \"99999999999999999999.5\"",
        "[backends.a]\ntype = \"docker\"\nimage = \"i\"\nport = 1\ncpus = 1e308",
        "[backends.a]\ntype = \"docker\"\nimage = \"i\"\nport = 1\ncpus = nan",
        "\u{feff}[server]\r\nport = 1\r\n",
        "\0\0\0",
        "[a.b.c.d.e.f]\n[a]\nb.c.d = 1",
    ];
    for text in odd {
        let _ = parse(Path::new(FILE), text);
    }
}
