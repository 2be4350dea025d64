use super::*;

fn parse(text: &str) -> Json {
    Json::parse(text.as_bytes()).unwrap()
}

#[test]
fn reads_the_fields_of_an_inspect_reply() {
    let reply = parse(
        r#"{"Id":"abc","State":{"Status":"exited","Running":false,"ExitCode":3},
            "Config":{"Labels":{"spawngate.managed":"true"}},"Names":["/x"],"Size":null}"#,
    );
    assert_eq!(reply.str_at("Id"), Some("abc"));
    assert_eq!(
        reply.path(&["State", "ExitCode"]).and_then(Json::as_i64),
        Some(3)
    );
    assert_eq!(
        reply.path(&["State", "Running"]).and_then(Json::as_bool),
        Some(false)
    );
    let labels = reply.path(&["Config", "Labels"]).unwrap();
    assert_eq!(labels.str_at("spawngate.managed"), Some("true"));
    assert_eq!(
        reply
            .get("Names")
            .and_then(Json::as_array)
            .map(<[Json]>::len),
        Some(1)
    );
    assert_eq!(reply.get("Size"), Some(&Json::Null));
    assert_eq!(reply.get("Missing"), None);
    assert_eq!(reply.path(&["Id", "deeper"]), None);
}

#[test]
fn numbers_keep_their_text_and_convert_only_when_integral() {
    assert_eq!(parse("-12").as_i64(), Some(-12));
    assert_eq!(parse("9223372036854775807").as_i64(), Some(i64::MAX));
    assert_eq!(parse("9223372036854775808").as_i64(), None);
    assert_eq!(parse("1.5").as_i64(), None);
    assert_eq!(parse("2e3"), Json::Number("2e3".into()));
    for bad in ["01", "-", "1.", "1e", "+1", ".5"] {
        assert!(
            Json::parse(bad.as_bytes()).is_err(),
            "{bad} should be refused"
        );
    }
}

#[test]
fn strings_unescape_including_surrogate_pairs() {
    assert_eq!(
        parse(r#""a\"b\\c\/d\n\t\u00e9\ud83d\ude00""#).as_str(),
        Some("a\"b\\c/d\n\t\u{e9}\u{1F600}")
    );
    // A lone surrogate is replaced, not refused: the text came from a container's output.
    assert_eq!(parse(r#""\ud800x""#).as_str(), Some("\u{FFFD}x"));
    assert_eq!(parse(r#""\udc00""#).as_str(), Some("\u{FFFD}"));
    assert_eq!(Json::parse(b"\"\xff\"").unwrap().as_str(), Some("\u{FFFD}"));
}

#[test]
fn malformed_input_is_an_error_never_a_panic() {
    let cases: &[&[u8]] = &[
        b"",
        b"{",
        b"[1,",
        b"{\"a\" 1}",
        b"{\"a\":1,}",
        b"[1 2]",
        b"\"abc",
        b"\"\\u12\"",
        b"\"\\x\"",
        b"tru",
        b"nul",
        b"{} x",
        b"\"a\nb\"",
        b"\\",
        b"{1:2}",
    ];
    for case in cases {
        assert!(
            Json::parse(case).is_err(),
            "{:?}",
            String::from_utf8_lossy(case)
        );
    }
}

#[test]
fn deep_nesting_is_refused_not_recursed() {
    let deep = "[".repeat(100_000);
    let error = Json::parse(deep.as_bytes()).unwrap_err();
    assert_eq!(error.what, "nested too deeply");
    let fine = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    assert!(Json::parse(fine.as_bytes()).is_ok());
}

#[test]
fn every_prefix_of_a_document_is_handled() {
    let doc = br#"{"a":[1,-2.5e+3,true,false,null,"x\u0041\n"],"b":{"c":{}}}"#;
    assert!(Json::parse(doc).is_ok());
    for end in 0..doc.len() {
        let _ = Json::parse(&doc[..end]);
    }
}

#[test]
fn quote_round_trips() {
    for text in [
        "plain",
        "a\"b\\c",
        "line\nbreak\ttab\r",
        "\u{1}\u{1f}",
        "é😀",
    ] {
        let quoted = quote(text);
        assert_eq!(parse(&quoted).as_str(), Some(text), "{quoted}");
    }
    assert_eq!(quote("\u{1}"), "\"\\u0001\"");
}

#[test]
fn random_json_like_bytes_never_panic() {
    // A fixed xorshift sequence over JSON's own alphabet, so malformed input is mostly near-valid.
    const ALPHABET: &[u8] = b"{}[]:,\"\\/ntrufalse0123456789.eE+-\\u00ffd8\xc3\xa9 \n";
    let mut rng = crate::test_rng::XorShift::new(0x2545_f491_4f6c_dd1d_u64);
    let mut next = || rng.next_u64();
    for _ in 0..20_000 {
        let len = (next() % 40) as usize;
        let input: Vec<u8> = (0..len)
            .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
            .collect();
        if let Ok(value) = Json::parse(&input) {
            let _ = (value.as_i64(), value.path(&["a", "b"]), value.as_array());
        }
    }
}
