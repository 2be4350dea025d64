//! Where a message body ends, for bodies that are relayed verbatim as they arrive.

use std::fmt;

use super::chunked::ChunkedDecoder;
use super::Framing;

/// Tracks one message body through the bytes that follow its head.
#[derive(Debug, Clone)]
pub enum BodyReader {
    /// `Content-Length`: this many bytes are still to come.
    Length {
        remaining: u64,
    },
    Chunked(ChunkedDecoder),
    /// A response without length: everything until the backend closes.
    UntilClose,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramingError {
    pub reason: &'static str,
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason)
    }
}

impl std::error::Error for FramingError {}

impl BodyReader {
    /// `Framing::None` and `Length(0)` are complete at once.
    pub fn new(framing: Framing) -> Self {
        match framing {
            Framing::None | Framing::Length(0) => BodyReader::Done,
            Framing::Length(remaining) => BodyReader::Length { remaining },
            Framing::Chunked => BodyReader::Chunked(ChunkedDecoder::new()),
            Framing::UntilClose => BodyReader::UntilClose,
        }
    }

    /// How many leading bytes of `input` belong to this body (to forward verbatim). Stops at the body's
    /// end: what follows is the next message.
    pub fn advance(&mut self, input: &[u8]) -> Result<usize, FramingError> {
        match self {
            BodyReader::Length { remaining } => {
                let taken = (*remaining).min(input.len() as u64);
                *remaining -= taken;
                if *remaining == 0 {
                    *self = BodyReader::Done;
                }
                // `taken` is at most `input.len()`, so it fits in a usize.
                Ok(taken as usize)
            }
            BodyReader::Chunked(decoder) => {
                let mut used = 0;
                while used < input.len() && !decoder.is_done() {
                    let decoded = decoder
                        .decode(&input[used..])
                        .map_err(|e| FramingError { reason: e.reason })?;
                    used += decoded.consumed;
                }
                if decoder.is_done() {
                    *self = BodyReader::Done;
                }
                Ok(used)
            }
            BodyReader::UntilClose => Ok(input.len()),
            BodyReader::Done => Ok(0),
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self, BodyReader::Done)
    }

    /// The peer closed: `Ok` if that ends the body (until-close, or already complete), `Err` if the body
    /// was cut short.
    pub fn at_eof(&mut self) -> Result<(), FramingError> {
        match self {
            BodyReader::UntilClose | BodyReader::Done => {
                *self = BodyReader::Done;
                Ok(())
            }
            BodyReader::Length { .. } | BodyReader::Chunked(_) => Err(FramingError {
                reason: "connection closed before the end of the body",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_bodies_are_done_at_once() {
        assert!(BodyReader::new(Framing::None).is_done());
        assert!(BodyReader::new(Framing::Length(0)).is_done());
        let mut done = BodyReader::new(Framing::None);
        assert_eq!(done.advance(b"GET / HTTP/1.1\r\n"), Ok(0));
        assert_eq!(done.at_eof(), Ok(()));
    }

    #[test]
    fn length_bodies_stop_at_their_length() {
        let mut body = BodyReader::new(Framing::Length(5));
        assert_eq!(body.advance(b"ab"), Ok(2));
        assert!(!body.is_done());
        assert_eq!(body.advance(b""), Ok(0));
        assert_eq!(body.advance(b"cdeNEXT"), Ok(3));
        assert!(body.is_done());
        assert_eq!(body.advance(b"NEXT"), Ok(0));
    }

    #[test]
    fn huge_lengths_do_not_overflow() {
        let mut body = BodyReader::new(Framing::Length(u64::MAX));
        assert_eq!(body.advance(&[0; 1000]), Ok(1000));
        assert!(matches!(body, BodyReader::Length { remaining } if remaining == u64::MAX - 1000));
    }

    #[test]
    fn chunked_bodies_stop_after_the_trailer_section() {
        let input = b"3\r\nabc\r\n0\r\nT: v\r\n\r\nGET /";
        let mut body = BodyReader::new(Framing::Chunked);
        assert_eq!(body.advance(&input[..4]), Ok(4));
        assert_eq!(body.advance(&input[4..]), Ok(input.len() - 4 - 5));
        assert!(body.is_done());
        assert_eq!(body.advance(b"GET /"), Ok(0));
    }

    #[test]
    fn chunked_errors_surface() {
        let mut body = BodyReader::new(Framing::Chunked);
        assert!(body.advance(b"3\r\nabcX").is_err());
    }

    #[test]
    fn until_close_takes_everything_and_ends_at_eof() {
        let mut body = BodyReader::new(Framing::UntilClose);
        assert_eq!(body.advance(b"anything at all"), Ok(15));
        assert!(!body.is_done());
        assert_eq!(body.at_eof(), Ok(()));
        assert!(body.is_done());
    }

    #[test]
    fn eof_inside_a_delimited_body_is_an_error() {
        let mut body = BodyReader::new(Framing::Length(3));
        body.advance(b"ab").unwrap();
        assert!(body.at_eof().is_err());
        let mut body = BodyReader::new(Framing::Chunked);
        body.advance(b"3\r\nabc\r\n").unwrap();
        assert!(body.at_eof().is_err());
    }
}
