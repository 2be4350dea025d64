//! A strict decoder for the chunked transfer coding (RFC 9112 section 7.1), one state per byte class.
//!
//! The proxy forwards chunked bodies verbatim, so the decoder's job is to find exactly where the body
//! ends and to refuse anything another parser could read differently:
//! * the size is 1 to 16 hex digits (16 fit a u64, so no overflow), with no sign, `0x` or leading space;
//! * extensions are `;name[=token|"quoted"]` with optional whitespace only where the grammar's BWS allows
//!   it (around `;` and `=`, never before the line's end), at most [`MAX_EXTENSION_BYTES`] per chunk line;
//! * every line ends in CRLF; a bare CR or bare LF is an error, and chunk data is followed by exactly CRLF;
//! * each trailer line must look like a field (`name: value`), at most [`MAX_TRAILER_BYTES`] in all.
//!
//! The decoder keeps no input: it can be fed any split of the body and reaches the same result.

use super::fields::is_tchar;

/// Extension bytes allowed on one chunk line: real extensions are a few bytes; this stops a peer from
/// making us scan unbounded framing with no payload.
pub const MAX_EXTENSION_BYTES: usize = 4 * 1024;
/// Trailer section bytes allowed after the last chunk, for the same reason.
pub const MAX_TRAILER_BYTES: usize = 16 * 1024;
/// Hex digits in a chunk size: 16 is every u64 and no more.
const MAX_SIZE_DIGITS: u8 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the chunk size; `digits` read so far.
    Size {
        size: u64,
        digits: u8,
    },
    /// Whitespace after the size, which only a `;` may follow.
    SizeSpace {
        size: u64,
    },
    /// After `;`: optional whitespace, then an extension name.
    ExtBeforeName {
        size: u64,
    },
    ExtName {
        size: u64,
    },
    /// Whitespace after a name: `=`, `;` or the line's end may follow.
    ExtAfterName {
        size: u64,
    },
    /// After `=`: optional whitespace, then a token or a quoted string.
    ExtBeforeValue {
        size: u64,
    },
    ExtToken {
        size: u64,
    },
    ExtQuoted {
        size: u64,
    },
    ExtQuotedEscape {
        size: u64,
    },
    /// Right after a quoted string's closing quote.
    ExtQuotedEnd {
        size: u64,
    },
    /// Whitespace after a value: `;` or the line's end may follow.
    ExtAfterValue {
        size: u64,
    },
    /// Saw the CR ending a chunk line.
    SizeLf {
        size: u64,
    },
    Data {
        remaining: u64,
    },
    DataCr,
    DataLf,
    /// At the start of a trailer line or of the final empty line.
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    FinalLf,
    Done,
}

#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// Bytes of the current chunk line's extensions, or of the whole trailer section.
    budget_used: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkError {
    pub reason: &'static str,
}

/// The outcome of one [`ChunkedDecoder::decode`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Leading bytes of the input used (framing and payload alike); the rest belongs to the next call.
    pub consumed: usize,
    /// Payload bytes found, as a range within the input.
    pub data: Option<std::ops::Range<usize>>,
    /// The body is complete: last chunk and trailer section read.
    pub done: bool,
}

fn fail<T>(reason: &'static str) -> Result<T, ChunkError> {
    Err(ChunkError { reason })
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder {
            state: State::Size { size: 0, digits: 0 },
            budget_used: 0,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes framing and at most one run of payload from `input`; `data` is that payload's range
    /// within `input`. Call again with the rest. `done` after the last chunk and the trailer section's
    /// final CRLF; bytes after that are not consumed.
    pub fn decode(&mut self, input: &[u8]) -> Result<Decoded, ChunkError> {
        let mut pos = 0;
        while pos < input.len() {
            match self.state {
                State::Done => break,
                State::Data { remaining } => {
                    let available = (input.len() - pos) as u64;
                    let run = remaining.min(available) as usize;
                    self.state = if remaining == run as u64 {
                        State::DataCr
                    } else {
                        State::Data {
                            remaining: remaining - run as u64,
                        }
                    };
                    return Ok(Decoded {
                        consumed: pos + run,
                        data: Some(pos..pos + run),
                        done: false,
                    });
                }
                _ => {
                    self.state = self.step(input[pos])?;
                    pos += 1;
                }
            }
        }
        Ok(Decoded {
            consumed: pos,
            data: None,
            done: self.is_done(),
        })
    }

    /// One framing byte: the next state.
    fn step(&mut self, b: u8) -> Result<State, ChunkError> {
        use State::*;
        if self.counts_against_extensions() {
            self.spend(MAX_EXTENSION_BYTES, "chunk extensions too long")?;
        } else if self.in_trailer() {
            self.spend(MAX_TRAILER_BYTES, "trailer section too long")?;
        }
        let is_space = b == b' ' || b == b'\t';
        Ok(match (self.state, b) {
            (Size { size, digits }, _) if b.is_ascii_hexdigit() => {
                if digits == MAX_SIZE_DIGITS {
                    return fail("chunk size has too many digits");
                }
                let digit = u64::from(hex_value(b));
                Size {
                    size: size << 4 | digit,
                    digits: digits + 1,
                }
            }
            (Size { digits: 0, .. }, _) => return fail("chunk size missing"),
            (Size { size, .. }, b'\r') => self.line_end(size),
            (Size { size, .. }, b';') => ExtBeforeName { size },
            (Size { size, .. }, _) if is_space => SizeSpace { size },
            (SizeSpace { size }, _) if is_space => SizeSpace { size },
            (SizeSpace { size }, b';') => ExtBeforeName { size },
            (ExtBeforeName { size }, _) if is_space => ExtBeforeName { size },
            (ExtBeforeName { size } | ExtName { size }, _) if is_tchar(b) => ExtName { size },
            (ExtName { size } | ExtAfterName { size }, _) if is_space => ExtAfterName { size },
            (ExtName { size } | ExtAfterName { size }, b'=') => ExtBeforeValue { size },
            (ExtBeforeValue { size }, _) if is_space => ExtBeforeValue { size },
            (ExtBeforeValue { size }, b'"') => ExtQuoted { size },
            (ExtBeforeValue { size } | ExtToken { size }, _) if is_tchar(b) => ExtToken { size },
            (ExtToken { size } | ExtQuotedEnd { size } | ExtAfterValue { size }, _) if is_space => {
                ExtAfterValue { size }
            }
            (ExtQuoted { size }, b'"') => ExtQuotedEnd { size },
            (ExtQuoted { size }, b'\\') => ExtQuotedEscape { size },
            (ExtQuoted { size } | ExtQuotedEscape { size }, _) if is_space || is_field_text(b) => {
                ExtQuoted { size }
            }
            (
                ExtName { size }
                | ExtAfterName { size }
                | ExtToken { size }
                | ExtQuotedEnd { size }
                | ExtAfterValue { size },
                b';',
            ) => ExtBeforeName { size },
            // The grammar allows whitespace before `;` and `=` only, so not before the line's end.
            (ExtName { size } | ExtToken { size } | ExtQuotedEnd { size }, b'\r') => {
                self.line_end(size)
            }
            (SizeLf { size: 0 }, b'\n') => TrailerStart,
            (SizeLf { size }, b'\n') => Data { remaining: size },
            (DataCr, b'\r') => DataLf,
            (DataLf, b'\n') => Size { size: 0, digits: 0 },
            (DataCr | DataLf, _) => return fail("chunk data not followed by CRLF"),
            (TrailerStart, b'\r') => FinalLf,
            (TrailerStart | TrailerName, _) if is_tchar(b) => TrailerName,
            (TrailerName, b':') => TrailerValue,
            (TrailerValue, b'\r') => TrailerLf,
            (TrailerValue, _) if is_space || is_field_text(b) => TrailerValue,
            (TrailerLf, b'\n') => TrailerStart,
            (FinalLf, b'\n') => Done,
            (TrailerStart | TrailerName | TrailerValue | TrailerLf | FinalLf, _) => {
                return fail("malformed trailer section")
            }
            (SizeLf { .. }, _) => return fail("chunk line not ended by CRLF"),
            _ => return fail("malformed chunk line"),
        })
    }

    fn line_end(&mut self, size: u64) -> State {
        // The extension budget is per chunk line; the trailer budget starts counting after the last one.
        self.budget_used = 0;
        State::SizeLf { size }
    }

    fn counts_against_extensions(&self) -> bool {
        use State::*;
        matches!(
            self.state,
            SizeSpace { .. }
                | ExtBeforeName { .. }
                | ExtName { .. }
                | ExtAfterName { .. }
                | ExtBeforeValue { .. }
                | ExtToken { .. }
                | ExtQuoted { .. }
                | ExtQuotedEscape { .. }
                | ExtQuotedEnd { .. }
                | ExtAfterValue { .. }
        )
    }

    fn in_trailer(&self) -> bool {
        use State::*;
        matches!(
            self.state,
            TrailerStart | TrailerName | TrailerValue | TrailerLf | FinalLf
        )
    }

    fn spend(&mut self, limit: usize, reason: &'static str) -> Result<(), ChunkError> {
        self.budget_used += 1;
        if self.budget_used > limit {
            return fail(reason);
        }
        Ok(())
    }
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

/// Visible ASCII or obs-text: what may appear inside a quoted string or a field value besides whitespace.
fn is_field_text(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) || b >= 0x80
}

#[cfg(test)]
#[path = "chunked_tests.rs"]
mod tests;
