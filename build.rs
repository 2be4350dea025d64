//! Embeds the git commit and the target triple so `spawngate --version` tells which build is running.
//!
//! Both reach the crate as compile-time environment variables. A build outside a git checkout (a source
//! tarball, a container build context without `.git`) still succeeds and reports the commit as "unknown";
//! `SPAWNGATE_GIT_COMMIT` set by the packager takes precedence over asking git.

use std::path::PathBuf;
use std::process::Command;

/// Long enough to be unique in this repository for years, short enough for a one-line version.
const COMMIT_DIGITS: usize = 7;
const COMMIT_OVERRIDE: &str = "SPAWNGATE_GIT_COMMIT";

fn main() {
    println!("cargo:rerun-if-env-changed={COMMIT_OVERRIDE}");
    let commit = match std::env::var(COMMIT_OVERRIDE) {
        Ok(commit) if !commit.trim().is_empty() => commit.trim().to_string(),
        _ => {
            watch_git_head();
            git(&["rev-parse", &format!("--short={COMMIT_DIGITS}"), "HEAD"])
                .unwrap_or_else(|| "unknown".to_string())
        }
    };
    // Cargo always sets TARGET for build scripts; the fallback only guards against running it by hand.
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown-target".to_string());
    println!("cargo:rustc-env=SPAWNGATE_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=SPAWNGATE_TARGET={target}");
}

/// Runs git in the package directory; `None` when git is missing, fails, or prints nothing.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// Re-runs this script when HEAD moves: a new commit, a checkout, or a `git gc` that packs the branch ref.
///
/// Only files that exist are named: Cargo treats a missing one as always changed, which would rebuild
/// the crate on every build.
fn watch_git_head() {
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name]).map(PathBuf::from) {
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
}
