//! The example web app (`examples/session_app.rs`) as a test runs it: where the built binary is, and
//! the link its page hands out.

use std::path::PathBuf;

/// `target/debug/examples/session_app`, beside this test's own `target/debug/deps/`; `None` when it was
/// not built (only `cargo test --all-targets` or `cargo build --examples` build it).
pub fn example_app() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.parent()?.join("examples").join("session_app");
    path.exists().then_some(path)
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
