//! Parsing any text as a config file never panics.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = spawngate::config::parse(Path::new("fuzz.toml"), text);
    }
});
