//! An access-log line made from arbitrary client bytes is one line of printable ASCII, and in the JSON
//! format one valid object, whatever the method, target, host, referer and user agent held.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spawngate::access_log::line_from_bytes;
use spawngate::config::AccessLogFormat;
use spawngate::json::Json;

fuzz_target!(|data: &[u8]| {
    for format in [AccessLogFormat::Combined, AccessLogFormat::Json] {
        let line = line_from_bytes(data, format);
        let (last, body) = line.split_last().expect("a line is never empty");
        assert_eq!(*last, b'\n');
        assert!(body.iter().all(|&b| (0x20..=0x7e).contains(&b)), "{line:?}");
        if format == AccessLogFormat::Json {
            assert!(Json::parse(body).is_ok(), "{}", String::from_utf8_lossy(body));
        }
    }
});
