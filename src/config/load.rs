//! Reading a config file: TOML syntax, then every section, collecting all problems with file, line and key.

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use toml::de::DeTable;

use super::reader::{Ctx, Section};
use super::{backend, hosts, pools, server, sessions, timings, tls, BackendConfig, Config};

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based line of the offending key or value; `None` when the file could not be read at all.
    pub line: Option<usize>,
    /// Dotted key path as TOML writes it (`backends."myapp.localhost".port`); empty for syntax errors
    /// and unreadable files.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    /// `{file}:{line}: {key}: {message}`, leaving out the parts that are unknown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in a config file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    /// One problem per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for error in &self.0 {
            writeln!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Largest config file read; far beyond any real config, it keeps a wrong path (a log, a device) from
/// being read into memory.
const MAX_FILE_BYTES: u64 = 16 << 20;

/// Reads, parses and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let file_error = |message: String| {
        ConfigErrors(vec![ConfigError {
            file: path.display().to_string(),
            line: None,
            key: String::new(),
            message,
        }])
    };
    let file = std::fs::File::open(path).map_err(|e| file_error(format!("cannot open: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| file_error(format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(file_error(format!(
            "file is larger than {MAX_FILE_BYTES} bytes; is this the config file?"
        )));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..offset]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        ConfigErrors(vec![ConfigError {
            file: path.display().to_string(),
            line: Some(line),
            key: String::new(),
            message: "not valid UTF-8 (TOML files must be UTF-8)".into(),
        }])
    })?;
    parse(path, &text)
}

/// Parses and validates config `text`; `path` is recorded in the result and names the file in errors.
/// Never panics, whatever the input.
///
/// With TOML syntax errors only those are reported: checking keys of a half-parsed document would
/// mostly report follow-on mistakes.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
    let mut ctx = Ctx::new(path.display().to_string(), text);
    let (document, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        for error in syntax_errors {
            let span = error.span().unwrap_or(0..0);
            ctx.report(&span, "", error.message());
        }
        return Err(finish_errors(ctx));
    }

    let mut root = Section::new(String::new(), document.span(), document.get_ref());
    let mut server_section = root.take("server").and_then(|item| item.section(&mut ctx));
    let https = server_section.as_mut().map(tls::take_listener);
    let server = server::read(server_section, &mut ctx);
    let tls = tls::read(
        https.unwrap_or_default(),
        root.take("tls"),
        &server,
        &mut ctx,
    );

    let defaults = match root
        .take("defaults")
        .and_then(|item| item.section(&mut ctx))
    {
        Some(mut section) => {
            let defaults = timings::read(&mut section, &mut ctx, &timings::builtin());
            section.finish(&mut ctx);
            defaults
        }
        None => timings::builtin(),
    };

    let backends_section = root
        .take("backends")
        .and_then(|item| item.section(&mut ctx));
    let mut backends = backend::read_all(backends_section, &defaults, &server, &mut ctx);
    let pools_section = root.take("pools").and_then(|item| item.section(&mut ctx));
    let pools = pools::read_all(pools_section, &defaults, &server, &backends, &mut ctx);
    let hosts_section = root.take("hosts").and_then(|item| item.section(&mut ctx));
    let hosts = hosts::read_all(hosts_section, &names(&backends), &names(&pools), &mut ctx);
    let sessions_section = root
        .take("sessions")
        .and_then(|item| item.section(&mut ctx));
    let others = sessions::Others {
        backends: &backends,
        pools: &pools,
        hosts: &hosts,
    };
    let sessions = sessions::read_all(sessions_section, &defaults, &server, &others, &mut ctx);
    backends.extend(pools);
    backends.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    root.finish(&mut ctx);

    if !ctx.errors.is_empty() {
        return Err(finish_errors(ctx));
    }
    Ok(Config {
        path: path.to_path_buf(),
        server,
        backends: backends.into_iter().map(Arc::new).collect(),
        hosts,
        sessions,
        tls,
    })
}

fn names(backends: &[BackendConfig]) -> Vec<&str> {
    backends.iter().map(|b| b.hostname.as_str()).collect()
}

/// The collected errors in file order (sections are visited in key order, not file order).
fn finish_errors(ctx: Ctx) -> ConfigErrors {
    let mut errors = ctx.errors;
    errors.sort_by_key(|e| e.line);
    if ctx.suppressed > 0 {
        errors.push(ConfigError {
            file: ctx.file,
            line: None,
            key: String::new(),
            message: format!("{} more problems not shown", ctx.suppressed),
        });
    }
    ConfigErrors(errors)
}
