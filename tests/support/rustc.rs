//! One std-only source file compiled with rustc directly, for tests that need a program cargo does not
//! build as one: `cargo test --all-targets` compiles examples as test harnesses, and the Docker image
//! needs a static binary for another target. rustc alone takes a second where cargo would rebuild the
//! library.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Compiles `source` (relative to the repository root) into `target/test-programs/{name}` with the
/// extra rustc `args`, and returns the binary's path.
pub fn compile_std_program(source: &str, name: &str, args: &[&str]) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out_dir = root.join("target").join("test-programs");
    std::fs::create_dir_all(&out_dir).expect("create target/test-programs");
    // Written under a name of its own, then renamed, so parallel test processes never see half a file.
    let scratch = out_dir.join(format!("{name}.{}", std::process::id()));
    let status = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .args(["--edition", "2021"])
        .args(args)
        .arg("-o")
        .arg(&scratch)
        .arg(root.join(source))
        .status()
        .expect("run rustc");
    assert!(status.success(), "compiling {source} failed");
    let binary = out_dir.join(name);
    std::fs::rename(&scratch, &binary).expect("move the compiled program into place");
    binary
}
