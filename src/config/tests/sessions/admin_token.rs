//! `[server] admin_token_file`: read when the config loads, trimmed; too short, empty or unreadable is
//! an error at that key; a non-loopback `admin_bind` needs it.

use std::path::PathBuf;

use super::super::{ok, single_error};
use crate::config::AdminToken;

/// A file in the temporary directory holding `contents`, removed when dropped.
struct TokenFile(PathBuf);

impl TokenFile {
    fn new(name: &str, contents: &[u8]) -> TokenFile {
        let path =
            std::env::temp_dir().join(format!("spawngate-token-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        TokenFile(path)
    }

    /// `[server]` with this file (line 2) and `bind` as `admin_bind` (line 3).
    fn config(&self, bind: &str) -> String {
        format!(
            "[server]\nadmin_token_file = \"{}\"\nadmin_bind = \"{bind}\"\n",
            self.0.display()
        )
    }
}

impl Drop for TokenFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn the_token_is_read_and_trimmed() {
    let file = TokenFile::new("good", b"  0123456789abcdef-XYZ\n\n");
    let config = ok(&file.config("0.0.0.0"));
    assert_eq!(
        config.server.admin_token,
        Some(AdminToken(b"0123456789abcdef-XYZ".to_vec().into()))
    );
    assert_eq!(
        format!("{:?}", config.server.admin_token),
        "Some(AdminToken(..))"
    );
    // Exactly 16 bytes is enough.
    let file = TokenFile::new("sixteen", b"0123456789abcdef");
    assert!(ok(&file.config("127.0.0.1")).server.admin_token.is_some());
    // Without the key there is none.
    assert_eq!(ok("").server.admin_token, None);
}

#[test]
fn a_short_empty_or_unreadable_token_file_is_an_error_at_its_key() {
    let key = "server.admin_token_file";
    let short = TokenFile::new("short", b"0123456789abcde\n");
    single_error(
        &short.config("::1"),
        2,
        key,
        "is 15 bytes; at least 16 are needed",
    );
    let empty = TokenFile::new("empty", b" \n\t\n");
    single_error(&empty.config("::1"), 2, key, "is empty");
    let spaced = TokenFile::new("spaced", b"0123456789 abcdef");
    single_error(
        &spaced.config("::1"),
        2,
        key,
        "must be printable ASCII without spaces",
    );
    let large = TokenFile::new("large", &[b'a'; 5000]);
    single_error(&large.config("::1"), 2, key, "is larger than 4096 bytes");
    let missing = TokenFile(std::env::temp_dir().join("spawngate-no-such-token-file"));
    single_error(&missing.config("::1"), 2, key, "cannot read");
    let directory = TokenFile(std::env::temp_dir());
    single_error(&directory.config("::1"), 2, key, "is not a regular file");
    std::mem::forget(directory);
    single_error(
        "[server]\nadmin_token_file = \"\"\n",
        2,
        key,
        "must not be empty",
    );
}

#[test]
fn a_non_loopback_admin_bind_needs_a_token_file() {
    for bind in ["0.0.0.0", "::", "10.0.0.1"] {
        single_error(
            &format!("[server]\nadmin_bind = \"{bind}\"\n"),
            2,
            "server.admin_bind",
            "the admin API on a non-loopback address needs admin_token_file",
        );
    }
    for bind in ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"] {
        ok(&format!("[server]\nadmin_bind = \"{bind}\"\n"));
    }
    // A token that could not be read is reported once, at its own key.
    let short = TokenFile::new("short-bind", b"short");
    single_error(
        &short.config("0.0.0.0"),
        2,
        "server.admin_token_file",
        "at least 16",
    );
}
