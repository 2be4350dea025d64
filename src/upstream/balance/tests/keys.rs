//! A request's part: the key each `hash_on` takes from an HTTP/1 head or an h2 stream, sticky cookies,
//! the cookie and query parsers, and the keyed hash with its seeds (pinned for hard affinity).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{with_head, Fields};
use crate::upstream::balance::{
    cookie_value, hash_bytes, key_seed, owner_slot, query_value, random_seed, request_key,
    sticky_slot, HashOn, HashOver, STABLE_SEED,
};

fn sticky(head_fields: &str) -> Option<u16> {
    let head = format!("GET / HTTP/1.1\r\nHost: a.test{head_fields}");
    with_head(&head, |source| sticky_slot("sg", source))
}

#[test]
fn sticky_cookies_name_a_slot_in_decimal() {
    assert_eq!(sticky("\r\nCookie: sg=2"), Some(2));
    assert_eq!(sticky("\r\nCookie: a=1; sg=3; b=x"), Some(3));
    assert_eq!(sticky("\r\nCookie: a=1;sg=4"), Some(4));
    assert_eq!(sticky("\r\nCookie:   sg=5  ;  a=1"), Some(5));
    assert_eq!(sticky("\r\nCookie: sg = 6"), Some(6));
    assert_eq!(sticky("\r\nCookie: sg=\"7\""), Some(7));
    assert_eq!(sticky("\r\ncookie: sg=8"), Some(8));
    assert_eq!(sticky("\r\nCookie: sg=09"), Some(9));
    assert_eq!(sticky("\r\nCookie: sg=65535"), Some(65535));
    // Several fields: the first cookie of the name wins, wherever it is.
    assert_eq!(sticky("\r\nCookie: a=1\r\nCookie: b=2; sg=10"), Some(10));
    assert_eq!(sticky("\r\nCookie: sg=11\r\nCookie: sg=12"), Some(11));
    assert_eq!(sticky("\r\nCookie: sg=13; sg=14"), Some(13));
}

#[test]
fn sticky_cookies_that_name_no_slot_are_ignored() {
    for bad in [
        "",
        "\r\nCookie: a=1",
        "\r\nCookie: SG=1",
        "\r\nCookie: xsg=1; sgx=2",
        "\r\nCookie: sg",
        "\r\nCookie: sg=",
        "\r\nCookie: sg=\"\"",
        "\r\nCookie: sg=\"",
        "\r\nCookie: sg=x",
        "\r\nCookie: sg=1x",
        "\r\nCookie: sg=-1",
        "\r\nCookie: sg=+1",
        "\r\nCookie: sg=1.0",
        "\r\nCookie: sg=65536",
        "\r\nCookie: sg=99999999999999999999",
        "\r\nCookie: sg=http://127.0.0.1:9000",
        "\r\nX-Cookie: sg=1",
    ] {
        assert_eq!(sticky(bad), None, "{bad:?}");
    }
    // A first cookie of the name that is not a number is the answer; a later one is not consulted.
    assert_eq!(sticky("\r\nCookie: sg=x; sg=1"), None);
}

#[test]
fn cookie_values_are_split_on_semicolons_and_unquoted() {
    assert_eq!(cookie_value(b"a=b; c=d", b"c"), Some(&b"d"[..]));
    assert_eq!(cookie_value(b"a=b=c", b"a"), Some(&b"b=c"[..]));
    assert_eq!(cookie_value(b";;a=;", b"a"), Some(&b""[..]));
    assert_eq!(cookie_value(b"a=\"q\"", b"a"), Some(&b"q"[..]));
    assert_eq!(cookie_value(b"\ta=1\t", b"a"), Some(&b"1"[..]));
    assert_eq!(cookie_value(b"", b"a"), None);
    assert_eq!(cookie_value(b"a", b"a"), None);
    assert_eq!(cookie_value(b"=1", b""), Some(&b"1"[..]));
}

#[test]
fn query_values_are_raw() {
    fn q<'t>(target: &'t str, name: &str) -> Option<&'t str> {
        query_value(target.as_bytes(), name.as_bytes()).map(|v| std::str::from_utf8(v).unwrap())
    }
    assert_eq!(q("/p?a=1&b=2", "a"), Some("1"));
    assert_eq!(q("/p?a=1&b=2", "b"), Some("2"));
    assert_eq!(q("/p?a=1&a=2", "a"), Some("1"), "the first wins");
    assert_eq!(q("/p?a=1&b=2", "c"), None);
    assert_eq!(q("/p", "a"), None);
    assert_eq!(q("/p?", "a"), None);
    assert_eq!(q("/p?&&a=3&", "a"), Some("3"));
    assert_eq!(q("/p?a=", "a"), Some(""));
    assert_eq!(q("/p?a", "a"), Some(""));
    assert_eq!(q("/p?a=x=y", "a"), Some("x=y"));
    assert_eq!(q("/p?a=%41+b", "a"), Some("%41+b"), "not decoded");
    assert_eq!(q("/p?%61=1", "a"), None, "names not decoded either");
    assert_eq!(q("/p?%61=1", "%61"), Some("1"));
    assert_eq!(q("/p?a=1#b=2", "b"), None);
    assert_eq!(q("/p?a=1#x", "a"), Some("1"));
    assert_eq!(q("?a=4", "a"), Some("4"));
    assert_eq!(q("/p?x=1?a=5", "x"), Some("1?a=5"));
    assert_eq!(q("/p?=6", ""), Some("6"));
}

fn key_of(on: &HashOn, head: &str) -> Option<u64> {
    let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    with_head(head, |source| request_key(on, source, ip, 99))
}

#[test]
fn header_keys_take_the_first_value_by_any_case() {
    let on = HashOn::Header("x-tenant".into());
    let a = key_of(&on, "GET / HTTP/1.1\r\nHost: h\r\nX-Tenant: acme");
    assert!(a.is_some());
    assert_eq!(
        a,
        key_of(
            &on,
            "GET / HTTP/1.1\r\nHost: h\r\nx-tenant: acme\r\nX-Tenant: b"
        )
    );
    assert_ne!(
        a,
        key_of(&on, "GET / HTTP/1.1\r\nHost: h\r\nX-Tenant: acme2")
    );
    assert_eq!(
        key_of(&on, "GET / HTTP/1.1\r\nHost: h\r\nX-Other: acme"),
        None
    );
    assert_eq!(a, Some(hash_bytes(99, b"acme")));
}

#[test]
fn path_keys_leave_out_the_query() {
    let on = HashOn::Path;
    let key = |target: &str| key_of(&on, &format!("GET {target} HTTP/1.1\r\nHost: h"));
    assert_eq!(key("/x?a=1"), key("/x?a=2"));
    assert_eq!(key("/x?a=1"), key("/x"));
    assert_ne!(key("/x"), key("/y"));
    assert_ne!(key("/x"), key("/x/"));
    assert_eq!(key("/x"), Some(hash_bytes(99, b"/x")));
    assert_eq!(key("http://h?q"), key("/"), "absolute form without a path");
}

#[test]
fn query_and_cookie_keys_are_absent_without_the_parameter() {
    let on = HashOn::Query("t".into());
    let head = |target: &str| format!("GET {target} HTTP/1.1\r\nHost: h");
    assert_eq!(key_of(&on, &head("/x?t=1")), Some(hash_bytes(99, b"1")));
    assert_eq!(key_of(&on, &head("/x?u=1")), None);
    let on = HashOn::Cookie("sid".into());
    let with = "GET / HTTP/1.1\r\nHost: h\r\nCookie: a=b; sid=\"abc\"";
    assert_eq!(key_of(&on, with), Some(hash_bytes(99, b"abc")));
    assert_eq!(
        key_of(&on, "GET / HTTP/1.1\r\nHost: h\r\nCookie: a=b"),
        None
    );
}

#[test]
fn ip_keys_hash_the_peer_and_mapped_v4_is_v4() {
    let source_key = |ip: IpAddr| {
        with_head("GET / HTTP/1.1\r\nHost: h", |source| {
            request_key(&HashOn::Ip, source, ip, 5)
        })
    };
    let v4 = source_key(Ipv4Addr::new(10, 1, 2, 3).into());
    assert_eq!(
        v4,
        source_key(Ipv4Addr::new(10, 1, 2, 3).to_ipv6_mapped().into())
    );
    assert_ne!(v4, source_key(Ipv4Addr::new(10, 1, 2, 4).into()));
    assert_ne!(
        source_key(Ipv6Addr::LOCALHOST.into()),
        source_key(Ipv4Addr::LOCALHOST.into())
    );
}

#[test]
fn h2_cookie_crumbs_are_searched_like_separate_fields() {
    let request = Fields {
        target: "/a?b=c",
        fields: vec![
            ("cookie", "a=1"),
            ("cookie", "sg=2"),
            ("x-k", "v"),
            ("cookie", "sid=z"),
        ],
    };
    assert_eq!(sticky_slot("sg", &request), Some(2));
    let key = |on: HashOn| request_key(&on, &request, Ipv4Addr::LOCALHOST.into(), 1);
    assert_eq!(key(HashOn::Cookie("sid".into())), Some(hash_bytes(1, b"z")));
    assert_eq!(key(HashOn::Header("x-k".into())), Some(hash_bytes(1, b"v")));
    assert_eq!(key(HashOn::Query("b".into())), Some(hash_bytes(1, b"c")));
    assert_eq!(key(HashOn::Path), Some(hash_bytes(1, b"/a")));
}

#[test]
fn keys_depend_on_the_seed_except_for_hard_affinity() {
    assert_ne!(hash_bytes(1, b"tenant"), hash_bytes(2, b"tenant"));
    assert_eq!(key_seed(HashOver::Ready, 1), 1);
    assert_eq!(key_seed(HashOver::Slots, 1), key_seed(HashOver::Slots, 2));
    assert_eq!(key_seed(HashOver::Slots, 1), STABLE_SEED);
    // Hard affinity must not move keys between releases: pin a few owners.
    let owners: Vec<_> = [
        "acme",
        "globex",
        "initech",
        "umbrella",
        "hooli",
        "",
        "tenant-1234",
    ]
    .iter()
    .map(|t| owner_slot(Some(hash_bytes(STABLE_SEED, t.as_bytes())), 8))
    .collect();
    assert_eq!(owners, PINNED_OWNERS);
    assert_ne!(random_seed(), random_seed());
}

/// The owners of those tenants among eight slots, as first released.
const PINNED_OWNERS: [Option<u16>; 7] = [
    Some(0),
    Some(0),
    Some(0),
    Some(3),
    Some(4),
    Some(2),
    Some(1),
];

#[test]
fn the_hash_separates_lengths_and_spreads_bits() {
    assert_ne!(hash_bytes(0, b"a"), hash_bytes(0, b"a\0"));
    assert_ne!(hash_bytes(0, b""), hash_bytes(0, b"\0"));
    assert_ne!(hash_bytes(0, b"12345678"), hash_bytes(0, b"12345678\0"));
    let mut seen = HashSet::new();
    let mut ones = [0u32; 64];
    for i in 0..10_000 {
        let h = hash_bytes(3, format!("k{i}").as_bytes());
        assert!(seen.insert(h));
        for (bit, count) in ones.iter_mut().enumerate() {
            *count += ((h >> bit) & 1) as u32;
        }
    }
    for count in ones {
        // Each bit set in half of them: 5,000, standard deviation 50.
        assert!((4750..=5250).contains(&count), "{count}");
    }
}
