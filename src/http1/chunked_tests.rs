use super::*;

/// What decoding a whole input amounts to: the payload, the bytes consumed, whether the body ended.
type Outcome = Result<(Vec<u8>, usize, bool), ChunkError>;

/// Feeds `input` in the pieces that `cuts` (ascending offsets) make, as a caller reading a socket would.
fn decode_in_pieces(input: &[u8], cuts: &[usize]) -> Outcome {
    let mut decoder = ChunkedDecoder::new();
    let mut payload = Vec::new();
    let mut consumed = 0;
    let mut bounds: Vec<usize> = cuts.to_vec();
    bounds.push(input.len());
    for &end in &bounds {
        // Bytes not consumed by the previous piece are offered again with the next one.
        while consumed < end && !decoder.is_done() {
            let piece = &input[consumed..end];
            let decoded = decoder.decode(piece)?;
            if let Some(data) = decoded.data {
                payload.extend_from_slice(&piece[data]);
            }
            consumed += decoded.consumed;
            assert_eq!(decoded.done, decoder.is_done());
            if decoded.consumed == 0 {
                break;
            }
        }
    }
    Ok((payload, consumed, decoder.is_done()))
}

fn decode_whole(input: &[u8]) -> Outcome {
    decode_in_pieces(input, &[])
}

/// A small deterministic generator, so the random splits are the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % bound.max(1)
    }
}

fn assert_split_invariant(input: &[u8]) -> Outcome {
    let whole = decode_whole(input);
    for cut in 0..=input.len() {
        assert_eq!(
            decode_in_pieces(input, &[cut]),
            whole,
            "cut at {cut} of {input:?}"
        );
    }
    let every_byte: Vec<usize> = (1..input.len()).collect();
    assert_eq!(decode_in_pieces(input, &every_byte), whole, "byte by byte");
    let mut random = Lcg(input.len() as u64);
    for _ in 0..50 {
        let mut cuts: Vec<usize> = (0..random.next(8))
            .map(|_| random.next(input.len() + 1))
            .collect();
        cuts.sort_unstable();
        assert_eq!(decode_in_pieces(input, &cuts), whole, "cuts {cuts:?}");
    }
    whole
}

const VALID: &[(&[u8], &[u8])] = &[
    (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
    (b"0\r\n\r\n", b""),
    (b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n", b"abcdefg"),
    (b"000A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
    (b"a\r\n0123456789\r\n00\r\n\r\n", b"0123456789"),
    (b"0000000000000001\r\nx\r\n0\r\n\r\n", b"x"),
    (b"2;a\r\nhi\r\n0;last\r\n\r\n", b"hi"),
    (b"2;a=b;c=\"q \\\" ;\"\r\nhi\r\n0\r\n\r\n", b"hi"),
    (b"2 ; a = b ;c\r\nhi\r\n0\r\n\r\n", b"hi"),
    (b"2;a=\"\"\r\nhi\r\n0\r\n\r\n", b"hi"),
    (
        b"1\r\n\r\r\n0\r\nX-Trailer: v\r\nChecksum:\r\nY: a b\t\xff\r\n\r\n",
        b"\r",
    ),
];

#[test]
fn valid_bodies_decode_the_same_whatever_the_split() {
    for &(input, payload) in VALID {
        let outcome = assert_split_invariant(input);
        assert_eq!(
            outcome,
            Ok((payload.to_vec(), input.len(), true)),
            "{input:?}"
        );
    }
}

#[test]
fn bytes_after_the_body_are_not_consumed() {
    let input = b"1\r\nz\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
    let outcome = assert_split_invariant(input);
    assert_eq!(outcome, Ok((b"z".to_vec(), 11, true)));
    let mut decoder = ChunkedDecoder::new();
    let mut total = 0;
    while !decoder.is_done() {
        total += decoder.decode(&input[total..]).unwrap().consumed;
    }
    let after = decoder.decode(&input[total..]).unwrap();
    assert_eq!((after.consumed, after.data, after.done), (0, None, true));
}

#[test]
fn incomplete_bodies_are_not_done() {
    let input = b"5\r\nhello\r\n0\r\n\r\n";
    for end in 0..input.len() {
        let outcome = assert_split_invariant(&input[..end]);
        let (_, consumed, done) = outcome.unwrap();
        assert_eq!((consumed, done), (end, false));
    }
}

#[test]
fn at_most_one_run_of_payload_per_call() {
    let input = b"2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n";
    let mut decoder = ChunkedDecoder::new();
    let first = decoder.decode(input).unwrap();
    assert_eq!(
        first,
        Decoded {
            consumed: 5,
            data: Some(3..5),
            done: false
        }
    );
    let second = decoder.decode(&input[5..]).unwrap();
    assert_eq!(
        second,
        Decoded {
            consumed: 7,
            data: Some(5..7),
            done: false
        }
    );
    let last = decoder.decode(&input[12..]).unwrap();
    assert_eq!(
        last,
        Decoded {
            consumed: 7,
            data: None,
            done: true
        }
    );
}

const INVALID: &[&[u8]] = &[
    b"\r\n",
    b" 5\r\nhello\r\n0\r\n\r\n",
    b"+5\r\nhello\r\n",
    b"-5\r\nhello\r\n",
    b"0x5\r\nhello\r\n",
    b"g\r\n",
    b"5\nhello\r\n",
    b"5\rhello\r\n",
    b"5 \r\nhello\r\n",
    b"5\t\r\nhello\r\n",
    b"00000000000000001\r\nx\r\n",
    b"10000000000000000\r\n",
    b"5\r\nhelloX\r\n",
    b"5\r\nhello\n0\r\n\r\n",
    b"5\r\nhello\r\r\n",
    b"5;\r\nhello\r\n",
    b"5;=b\r\nhello\r\n",
    b"5;a=\r\nhello\r\n",
    b"5;a \r\nhello\r\n",
    b"5;a=b \r\nhello\r\n",
    b"5;a=\"x\r\nhello\r\n",
    b"5;a=\"x\"y\r\nhello\r\n",
    b"5;a=b=c\r\nhello\r\n",
    b"5;a\x00\r\nhello\r\n",
    b"0\r\n\n",
    b"0\r\n\r\r",
    b"0\r\nbad line\r\n\r\n",
    b"0\r\n: v\r\n\r\n",
    b"0\r\nX: v\n\r\n",
    b"0\r\nX: v\r\r\n",
    b"0\r\nX: \x00\r\n\r\n",
    b"0\r\n X: v\r\n\r\n",
];

#[test]
fn malformed_bodies_fail_the_same_whatever_the_split() {
    for input in INVALID {
        assert!(assert_split_invariant(input).is_err(), "{input:?}");
    }
}

#[test]
fn extensions_are_bounded_per_line() {
    let mut at_limit = b"1;".to_vec();
    at_limit.resize(MAX_EXTENSION_BYTES + 1, b'x');
    at_limit.extend_from_slice(b"\r\nz\r\n1;");
    at_limit.resize(at_limit.len() + MAX_EXTENSION_BYTES - 1, b'y');
    at_limit.extend_from_slice(b"\r\nz\r\n0\r\n\r\n");
    assert_eq!(
        decode_whole(&at_limit),
        Ok((b"zz".to_vec(), at_limit.len(), true))
    );

    let mut over = b"1;".to_vec();
    over.resize(MAX_EXTENSION_BYTES + 2, b'x');
    over.extend_from_slice(b"\r\nz\r\n0\r\n\r\n");
    assert!(decode_whole(&over).is_err());
}

#[test]
fn trailers_are_bounded_in_total() {
    // One trailer line plus the final CRLF, `value_len` bytes of value.
    let body = |value_len: usize| {
        let mut body = b"0\r\nX-Checksum: ".to_vec();
        body.resize(body.len() + value_len, b'v');
        body.extend_from_slice(b"\r\nY: 1\r\n\r\n");
        body
    };
    let framing_bytes = body(0).len() - b"0\r\n".len();
    let fits = body(MAX_TRAILER_BYTES - framing_bytes);
    assert_eq!(decode_whole(&fits), Ok((Vec::new(), fits.len(), true)));
    let over = body(MAX_TRAILER_BYTES - framing_bytes + 1);
    assert!(decode_whole(&over).is_err());
}

#[test]
fn huge_sizes_count_down_without_overflow() {
    let mut decoder = ChunkedDecoder::new();
    let head = decoder.decode(b"ffffffffffffffff\r\nabc").unwrap();
    assert_eq!(head.data, Some(18..21));
    assert_eq!(
        decoder.state,
        State::Data {
            remaining: u64::MAX - 3
        }
    );
}
