//! The example web app (`examples/session_app.rs`) as a test runs it: where the built binary is,
//! `examples/sessions.toml` made runnable on the test's ports, and the link the app's page hands out.

use std::path::PathBuf;
use std::sync::OnceLock;

use super::super::pools::free_ports;
use super::super::{compile_std_program, echo_bin, free_port};

/// `examples/session_app.rs` built as a program (std-only, so rustc alone builds it): cargo builds
/// examples as test harnesses under `cargo test --all-targets`. Once per test process.
pub fn example_app() -> PathBuf {
    static APP: OnceLock<PathBuf> = OnceLock::new();
    APP.get_or_init(|| compile_std_program("examples/session_app.rs", "session_app", &[]))
        .clone()
}

/// The first `href="..."` of a page, its `&amp;` undone.
pub fn href_of(page: &str) -> String {
    let start = page
        .find("href=\"")
        .unwrap_or_else(|| panic!("no link in {page}"))
        + "href=\"".len();
    let end = page[start..].find('"').expect("a closing quote") + start;
    page[start..end].replace("&amp;", "&")
}

/// `http://host[:port]/path?query` → (host, /path?query).
pub fn split_url(url: &str) -> (String, String) {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.split(':').next().unwrap_or_default().to_string();
    let path = if path.is_empty() { "/" } else { path };
    (host, path.to_string())
}

pub struct Example {
    pub config: String,
    /// The proxy's port (in the links the app hands out).
    pub port: u16,
}

/// `examples/sessions.toml` with this test's ports and binaries in place of the shipped ones.
pub fn runnable_example(app: &std::path::Path) -> Example {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sessions.toml");
    let mut config = std::fs::read_to_string(&path).expect("examples/sessions.toml");
    let (port, admin_port, app_port, rooms) =
        (free_port(), free_port(), free_port(), free_ports(100));
    let swaps = [
        ("port = 8080", format!("port = {port}")),
        ("admin_port = 9999", format!("admin_port = {admin_port}")),
        ("127.0.0.1:9999", format!("127.0.0.1:{admin_port}")),
        ("port = 3000", format!("port = {app_port}")),
        ("{hostname}:8080", format!("{{hostname}}:{port}")),
        ("20000-20099", format!("{rooms}-{}", rooms + 99)),
        (
            "target/debug/examples/session_app",
            app.display().to_string(),
        ),
        ("target/debug/spawngate-echo", echo_bin().to_string()),
    ];
    // Every shipped value becomes a placeholder first: a port put in by one swap must not be taken for
    // a shipped value by a later one (a free port 30017 would otherwise turn into "{app_port}17").
    let placeholder = |i: usize| format!("\u{0}{i}\u{0}");
    for (i, (shipped, _)) in swaps.iter().enumerate() {
        assert!(
            config.contains(shipped),
            "examples/sessions.toml no longer has {shipped:?}"
        );
        config = config.replace(shipped, &placeholder(i));
    }
    for (i, (_, ours)) in swaps.iter().enumerate() {
        config = config.replace(&placeholder(i), ours);
    }
    Example { config, port }
}
