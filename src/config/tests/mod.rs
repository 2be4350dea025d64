//! Tests of loading, validation and diff, against whole config texts.

mod backend_tls;
mod diff;
mod errors;
mod good;
mod pool_checks;
mod pool_errors;
mod pool_policy_errors;
mod pools;
mod sessions;
mod tls;
mod values;

use std::path::Path;

use super::{parse, Config, ConfigError};

const FILE: &str = "test.toml";

fn ok(text: &str) -> Config {
    match parse(Path::new(FILE), text) {
        Ok(config) => config,
        Err(errors) => panic!("expected a valid config, got:\n{errors}"),
    }
}

fn errors(text: &str) -> Vec<ConfigError> {
    match parse(Path::new(FILE), text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(errors) => errors.0,
    }
}

/// Asserts that exactly one error names `key` on `line`, with a message containing `needle`.
#[track_caller]
fn assert_error(errors: &[ConfigError], line: usize, key: &str, needle: &str) {
    let found = errors
        .iter()
        .filter(|e| e.line == Some(line) && e.key == key && e.message.contains(needle))
        .count();
    assert_eq!(
        found,
        1,
        "expected one error at line {line} for `{key}` containing {needle:?}; got:\n{}",
        errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A single error, asserted by line, key and part of its message.
#[track_caller]
fn single_error(text: &str, line: usize, key: &str, needle: &str) {
    let errors = errors(text);
    assert_eq!(
        errors.len(),
        1,
        "expected exactly one error, got {errors:#?}"
    );
    assert_error(&errors, line, key, needle);
}
