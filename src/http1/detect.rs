//! Which protocol a new connection speaks, decided from its first bytes.
//!
//! HTTP/2 with prior knowledge (h2c) always opens with a fixed 24-byte preface (RFC 9113 section 3.4);
//! anything else is treated as HTTP/1. A connection stays undecided only while everything received so far
//! is a strict prefix of that preface, so an HTTP/1 client is recognised by its first differing byte.

/// The client connection preface of HTTP/2.
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniff {
    /// Everything so far matches the start of the HTTP/2 preface: read more before deciding.
    NeedMore,
    /// The complete preface is there (the bytes, preface included, go to the HTTP/2 server).
    Http2,
    /// Anything that is not the preface.
    Http1,
}

pub fn sniff(first_bytes: &[u8]) -> Sniff {
    if first_bytes.len() >= H2_PREFACE.len() {
        if first_bytes.starts_with(H2_PREFACE) {
            Sniff::Http2
        } else {
            Sniff::Http1
        }
    } else if H2_PREFACE.starts_with(first_bytes) {
        Sniff::NeedMore
    } else {
        Sniff::Http1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_strict_prefix_of_the_preface_needs_more() {
        for len in 0..H2_PREFACE.len() {
            assert_eq!(sniff(&H2_PREFACE[..len]), Sniff::NeedMore, "len {len}");
        }
    }

    #[test]
    fn the_complete_preface_is_http2_even_with_frames_after_it() {
        assert_eq!(sniff(H2_PREFACE), Sniff::Http2);
        let mut with_settings = H2_PREFACE.to_vec();
        with_settings.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        assert_eq!(sniff(&with_settings), Sniff::Http2);
    }

    #[test]
    fn http1_is_recognised_at_the_first_differing_byte() {
        assert_eq!(sniff(b"G"), Sniff::Http1);
        assert_eq!(sniff(b"GET / HTTP/1.1\r\n"), Sniff::Http1);
        assert_eq!(sniff(b"PRI * HTTP/1.1\r\n"), Sniff::Http1);
        assert_eq!(sniff(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\r"), Sniff::Http1);
        // A request that happens to use the PRI method but is longer than the preface.
        assert_eq!(sniff(b"PRIX * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Sniff::Http1);
    }
}
