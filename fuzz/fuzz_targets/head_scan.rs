//! Parsing a head only when `HeadScan` says the new bytes can change the answer gives the answer that
//! parsing on every read gives, for requests and responses, however the bytes are split across reads
//! (an error inside the fields may come later: when the head ends or a limit is reached).
//! The first byte picks the message kind and seeds where the reads end.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spawngate::http1::head_scan::HeadScan;
use spawngate::http1::request::parse_request;
use spawngate::http1::response::parse_response;
use spawngate_fuzz::Cuts;

/// The first answer that is not "incomplete": a head's length, or an error's text.
type Answer = Option<Result<usize, String>>;

fn parse(buf: &[u8], response: bool) -> Answer {
    if response {
        match parse_response(buf, false) {
            Ok(None) => None,
            Ok(Some(head)) => Some(Ok(head.len)),
            Err(e) => Some(Err(e.reason.to_string())),
        }
    } else {
        match parse_request(buf) {
            Ok(None) => None,
            Ok(Some(head)) => Some(Ok(head.len)),
            Err(e) => Some(Err(format!("{:?}", e.code))),
        }
    }
}

/// Reads ending at `ends` (sorted, the last at the input's end); `gated` parses only when the scan asks.
fn answer(input: &[u8], ends: &[usize], response: bool, gated: bool) -> Answer {
    let mut scan = HeadScan::default();
    ends.iter().find_map(|&end| {
        let worth = scan.worth_parsing(&input[..end]);
        if gated && !worth {
            return None;
        }
        parse(&input[..end], response)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    let response = seed & 1 == 1;
    if input.is_empty() {
        return;
    }
    // Reads that end at up to 31 points chosen by the first byte, and at the end of the input.
    let mut ends = Cuts::seeded(seed).points(usize::from(seed % 32), input.len());
    ends.retain(|&end| end > 0);
    ends.push(input.len());
    ends.dedup();
    // Where the reads end changes when an answer comes, never what it is; gating must not change it.
    // It may only delay an error inside the fields until the head ends or a limit is reached, so where
    // the input stops before that, parsing every read may have an error where the gated parse has none.
    let gated = answer(input, &ends, response, true);
    let every_read = answer(input, &ends, response, false);
    match (&gated, &every_read) {
        (None, None | Some(Err(_))) => {}
        _ => assert_eq!(gated, every_read),
    }
});
