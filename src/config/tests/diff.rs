//! Reload diffs.

use super::ok;
use crate::config::{diff, ConfigDiff};

const OLD: &str = r#"
[server]
port = 8080
[backends.keep]
command = "x"
port = 1
[backends.change]
command = "x"
port = 2
[backends.gone]
command = "x"
port = 3
"#;

#[test]
fn identical_configs_have_an_empty_diff() {
    let d = diff(&ok(OLD), &ok(OLD));
    assert!(d.is_empty(), "{d:?}");
}

#[test]
fn added_removed_changed_and_server_keys() {
    let new = r#"
[server]
port = 8081
max_held_requests = 5
[defaults]
idle_timeout_secs = 600
[backends.keep]
command = "x"
port = 1
[backends.change]
command = "x"
port = 2
idle_timeout_secs = 5
[backends.aardvark]
command = "x"
port = 4
[backends.zebra]
command = "x"
port = 5
"#;
    let d = diff(&ok(OLD), &ok(new));
    assert_eq!(
        d,
        ConfigDiff {
            added: vec!["aardvark".into(), "zebra".into()],
            removed: vec!["gone".into()],
            changed: vec!["change".into()],
            server_changed: vec!["port", "max_held_requests"],
        }
    );
}

#[test]
fn a_changed_default_changes_every_backend_that_inherits_it() {
    let new = OLD.replace(
        "[backends.keep]",
        "[defaults]\nstartup_timeout_secs = 9\n[backends.keep]",
    );
    let d = diff(&ok(OLD), &ok(&new));
    assert_eq!(d.changed, ["change", "gone", "keep"]);
    assert!(d.added.is_empty() && d.removed.is_empty() && d.server_changed.is_empty());
}
