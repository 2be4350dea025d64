//! Reading the names and expiry of a certificate from any bytes never panics, and every name it lists
//! is one an SNI lookup can use: non-empty, lower-case printable ASCII, at most 255 bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spawngate::tls::der::cert_facts;

fuzz_target!(|data: &[u8]| {
    if let Ok(facts) = cert_facts(data) {
        for name in &facts.dns_names {
            assert!(!name.is_empty() && name.len() <= 255);
            assert!(name.bytes().all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase()));
            assert!(!name.ends_with('.'));
        }
    }
});
