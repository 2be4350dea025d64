//! Decoding a chunked body in pieces gives exactly what decoding it in one go gives; the first byte
//! seeds where the pieces are cut.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spawngate::http1::chunked::{ChunkError, ChunkedDecoder};
use spawngate_fuzz::Cuts;

/// Payload, bytes consumed, done.
type Outcome = Result<(Vec<u8>, usize, bool), ChunkError>;

fn decode(input: &[u8], cuts: &[usize]) -> Outcome {
    let mut decoder = ChunkedDecoder::new();
    let mut payload = Vec::new();
    let mut consumed = 0;
    for &end in cuts.iter().chain(std::iter::once(&input.len())) {
        while consumed < end && !decoder.is_done() {
            let decoded = decoder.decode(&input[consumed..end])?;
            assert!(decoded.consumed <= end - consumed);
            if let Some(data) = decoded.data {
                assert!(data.end <= decoded.consumed);
                payload.extend_from_slice(&input[consumed + data.start..consumed + data.end]);
            }
            assert!(decoded.consumed > 0 || decoded.done);
            assert_eq!(decoded.done, decoder.is_done());
            consumed += decoded.consumed;
        }
    }
    Ok((payload, consumed, decoder.is_done()))
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    let whole = decode(input, &[]);
    // 0 to 15 cuts, chosen by the first byte.
    let cuts = Cuts::seeded(seed).points(usize::from(seed % 16), input.len());
    assert_eq!(decode(input, &cuts), whole);
    if input.len() <= 512 {
        let every_byte: Vec<usize> = (1..input.len()).collect();
        assert_eq!(decode(input, &every_byte), whole);
    }
});
