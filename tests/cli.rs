//! The `spawngate` command line, run as a real process: `check`, `--version`, `--help` and bad arguments.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A config file in the temp directory, removed when dropped.
struct TempConfig(PathBuf);

impl TempConfig {
    fn new(contents: &str) -> TempConfig {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "spawngate-cli-{}-{}.toml",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, contents).expect("write temp config");
        TempConfig(path)
    }

    fn display(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn spawngate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spawngate"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run spawngate")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const GOOD: &str = r#"
[server]
port = 0
admin_port = 0

[backends."one.localhost"]
command = "spawngate-echo"
port = 3101

[backends."two.localhost"]
type = "docker"
image = "nginx:alpine"
port = 3102
memory = "128m"
"#;

#[test]
fn check_accepts_a_good_config() {
    let config = TempConfig::new(GOOD);
    let output = spawngate(&["check", &config.display()]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    assert_eq!(
        stdout(&output),
        format!("ok: {} (2 backends)\n", config.display())
    );
    assert_eq!(stderr(&output), "");
}

#[test]
fn check_names_file_line_and_key_of_every_problem() {
    let config = TempConfig::new(concat!(
        "[server]\n",
        "port = 8080\n",
        "[backends.\"myapp.localhost\"]\n",
        "command = \"node\"\n",
        "port = 0\n",
        "[backends.\"box.localhost\"]\n",
        "type = \"docker\"\n",
        "image = \"x\"\n",
        "port = 3000\n",
        "memory = \"12q\"\n",
        "colour = \"red\"\n",
    ));
    let output = spawngate(&["check", &config.display()]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "");
    let text = stderr(&output);
    let file = config.display();
    for expected in [
        format!(
            "{file}:5: backends.\"myapp.localhost\".port: must be between 1 and 65535, found 0"
        ),
        format!("{file}:10: backends.\"box.localhost\".memory: invalid memory size \"12q\""),
        format!("{file}:11: backends.\"box.localhost\".colour: unknown key"),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in:\n{text}");
    }
    assert!(text.contains("3 problems found"), "{text}");
}

#[test]
fn check_names_every_route_table_problem_with_its_line() {
    let config = TempConfig::new(concat!(
        "[backends.\"app.test\"]\n",
        "command = \"app\"\n",
        "port = 3001\n",
        "[hosts.\"app.test\"]\n",
        "aliases = [\"www.app.test\", \"*.*.app.test\"]\n",
        "[[hosts.\"app.test\".routes]]\n",
        "path_prefix = \"/api\"\n",
        "to = \"app.test\"\n",
        "[[hosts.\"app.test\".routes]]\n",
        "path = \"/api/x\"\n",
        "methods = [\"GET\"]\n",
        "to = \"app.test\"\n",
        "[[hosts.\"app.test\".routes]]\n",
        "path = \"/b\"\n",
        "to = \"nowhere\"\n",
        "[[hosts.\"app.test\".routes]]\n",
        "path = \"/c\"\n",
        "to = \"app.test\"\n",
        "strip_prefix = true\n",
        "[[hosts.\"app.test\".routes]]\n",
        "path_regex = \"/d/(\"\n",
        "respond = { status = 200 }\n",
    ));
    let output = spawngate(&["check", &config.display()]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    let file = config.display();
    for expected in [
        format!("{file}:5: hosts.\"app.test\".aliases: \"*.*.app.test\""),
        format!(
            "{file}:9: hosts.\"app.test\".routes[1]: can never match: the route on line 6 matches"
        ),
        format!("{file}:13: hosts.\"app.test\".routes[2].to: `to = \"nowhere\"` names no backend"),
        format!("{file}:19: hosts.\"app.test\".routes[3].strip_prefix: needs a path_prefix"),
        format!(
            "{file}:21: hosts.\"app.test\".routes[4].path_regex: not a valid regular expression"
        ),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in:\n{text}");
    }
    assert!(text.contains("5 problems found"), "{text}");

    let good = TempConfig::new(concat!(
        "[backends.\"app.test\"]\n",
        "command = \"app\"\n",
        "port = 3001\n",
        "[[hosts.\"site.test\".routes]]\n",
        "to = \"app.test\"\n",
    ));
    let output = spawngate(&["check", &good.display()]);
    assert_eq!(
        stdout(&output),
        format!("ok: {} (1 backend, 1 route table)\n", good.display())
    );
}

#[test]
fn check_reports_toml_syntax_errors_with_their_line() {
    let config = TempConfig::new("[server]\nport = 80\nbind = \"127.0.0.1\n");
    let output = spawngate(&["check", &config.display()]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.starts_with(&format!("{}:3: ", config.display())),
        "{text}"
    );
}

#[test]
fn check_reports_a_missing_file() {
    let missing =
        std::env::temp_dir().join(format!("spawngate-cli-missing-{}.toml", std::process::id()));
    let output = spawngate(&["check", &missing.display().to_string()]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.starts_with(&format!("{}: cannot open", missing.display())),
        "{text}"
    );
}

#[test]
fn running_with_an_invalid_config_fails_before_starting() {
    let config = TempConfig::new("[server]\nport = -1\n");
    let output = spawngate(&[&config.display()]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.contains(&format!(
            "{}:2: server.port: must not be negative",
            config.display()
        )),
        "{text}"
    );
}

#[test]
fn version_and_help() {
    for flag in ["--version", "-V"] {
        let output = spawngate(&[flag]);
        assert_eq!(output.status.code(), Some(0));
        assert_eq!(
            stdout(&output),
            format!(
                "spawngate {} (commit {}, {}, features: {})\n",
                env!("CARGO_PKG_VERSION"),
                env!("SPAWNGATE_GIT_COMMIT"),
                env!("SPAWNGATE_TARGET"),
                match (cfg!(feature = "tls"), cfg!(feature = "acme")) {
                    (false, _) => "none",
                    (true, false) => "tls",
                    (true, true) => "tls acme",
                }
            )
        );
    }
    for flag in ["--help", "-h"] {
        let output = spawngate(&[flag]);
        assert_eq!(output.status.code(), Some(0));
        let text = stdout(&output);
        for needle in [
            "spawngate CONFIG.toml",
            "spawngate check CONFIG.toml",
            "RUST_LOG",
            "SIGHUP",
            "SIGTERM",
        ] {
            assert!(text.contains(needle), "help lacks {needle:?}:\n{text}");
        }
    }
}

#[test]
fn bad_arguments_print_usage_and_exit_2() {
    for args in [
        &[][..],
        &["--bogus"],
        &["check"],
        &["a.toml", "b.toml"],
        &["check", "a", "b"],
    ] {
        let output = spawngate(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert_eq!(stdout(&output), "", "{args:?}");
        assert!(
            stderr(&output).contains("Usage:"),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}
