//! Parsing and validation (stub; being written).
use std::fmt;
use std::path::Path;

use super::Config;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub key: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.0 {
            writeln!(
                f,
                "{}:{}: {}: {}",
                e.file,
                e.line.unwrap_or(0),
                e.key,
                e.message
            )?;
        }
        Ok(())
    }
}

pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: path.display().to_string(),
            line: None,
            key: String::new(),
            message: e.to_string(),
        }])
    })?;
    parse(path, &text)
}

pub fn parse(_path: &Path, _text: &str) -> Result<Config, ConfigErrors> {
    todo!()
}
