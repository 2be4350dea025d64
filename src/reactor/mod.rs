//! Reactor (stub; being written).
use crate::config::Config;

pub fn run(_config: Config) -> std::io::Result<()> {
    Ok(())
}
