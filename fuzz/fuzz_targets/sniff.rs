//! `sniff` never panics and only says HTTP/2 for the complete preface.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spawngate::http1::detect::{sniff, Sniff, H2_PREFACE};

fuzz_target!(|data: &[u8]| {
    match sniff(data) {
        Sniff::Http2 => assert!(data.starts_with(H2_PREFACE)),
        Sniff::NeedMore => assert!(data.len() < H2_PREFACE.len() && H2_PREFACE.starts_with(data)),
        Sniff::Http1 => assert!(!H2_PREFACE.starts_with(&data[..data.len().min(H2_PREFACE.len())])),
    }
});
