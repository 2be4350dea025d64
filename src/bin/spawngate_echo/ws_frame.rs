//! WebSocket frames (RFC 6455 section 5.2): header decoding from bytes, payload unmasking, and writing
//! the unmasked frames a server sends.

use std::io::{self, BufRead, Write};

/// Longest frame header: 2 fixed bytes, an 8-byte extended length and a 4-byte masking key.
const MAX_HEADER_BYTES: usize = 14;
/// Largest payload a control frame may carry (section 5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    fn from_bits(bits: u8) -> Option<Opcode> {
        match bits {
            0x0 => Some(Opcode::Continuation),
            0x1 => Some(Opcode::Text),
            0x2 => Some(Opcode::Binary),
            0x8 => Some(Opcode::Close),
            0x9 => Some(Opcode::Ping),
            0xA => Some(Opcode::Pong),
            _ => None,
        }
    }

    fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    pub fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub fin: bool,
    pub opcode: Opcode,
    /// Present on every frame a client sends; absent on a server's.
    pub mask: Option<[u8; 4]>,
    pub payload_len: u64,
}

/// A header that breaks the framing rules; the connection must be failed with close code 1002.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameError(pub &'static str);

/// How many header bytes follow the first two, as announced by them.
fn rest_len(first_two: [u8; 2]) -> usize {
    let length_bytes = match first_two[1] & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask_bytes = if first_two[1] & 0x80 != 0 { 4 } else { 0 };
    length_bytes + mask_bytes
}

/// Decodes a frame header from the front of `bytes`: `Ok(None)` while more bytes are needed, otherwise
/// the header and how many bytes it took.
pub fn parse_header(bytes: &[u8]) -> Result<Option<(FrameHeader, usize)>, FrameError> {
    let [b0, b1, ..] = *bytes else {
        return Ok(None);
    };
    let total = 2 + rest_len([b0, b1]);
    if bytes.len() < total {
        return Ok(None);
    }
    if b0 & 0x70 != 0 {
        // No extension was negotiated, so no reserved bit may be set.
        return Err(FrameError("reserved bits set"));
    }
    let opcode = Opcode::from_bits(b0 & 0x0f).ok_or(FrameError("unknown opcode"))?;
    let fin = b0 & 0x80 != 0;
    let mut at = 2;
    let payload_len = match b1 & 0x7f {
        126 => {
            at += 2;
            u64::from(u16::from_be_bytes([bytes[2], bytes[3]]))
        }
        127 => {
            at += 8;
            let mut raw = [0u8; 8];
            raw.copy_from_slice(&bytes[2..10]);
            let len = u64::from_be_bytes(raw);
            if len >> 63 != 0 {
                return Err(FrameError("64-bit length with its top bit set"));
            }
            len
        }
        short => u64::from(short),
    };
    let mask = if b1 & 0x80 != 0 {
        Some([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
    } else {
        None
    };
    if opcode.is_control() {
        if !fin {
            return Err(FrameError("fragmented control frame"));
        }
        if payload_len > MAX_CONTROL_PAYLOAD as u64 {
            return Err(FrameError("control frame longer than 125 bytes"));
        }
    }
    let header = FrameHeader {
        fin,
        opcode,
        mask,
        payload_len,
    };
    Ok(Some((header, total)))
}

/// Reads the next frame header. `Ok(None)` if the stream ends cleanly before a frame starts.
pub fn read_header(
    reader: &mut impl BufRead,
) -> io::Result<Option<Result<FrameHeader, FrameError>>> {
    let mut raw = [0u8; MAX_HEADER_BYTES];
    let mut first = [0u8; 1];
    loop {
        match reader.read(&mut first) {
            Ok(0) => return Ok(None),
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    raw[0] = first[0];
    reader.read_exact(&mut raw[1..2])?;
    let total = 2 + rest_len([raw[0], raw[1]]);
    reader.read_exact(&mut raw[2..total])?;
    Ok(Some(parse_header(&raw[..total]).and_then(|parsed| {
        parsed
            .map(|(header, _)| header)
            .ok_or(FrameError("short header"))
    })))
}

/// Removes (or applies: XOR is its own inverse) a masking key; `offset` is where `data` starts within
/// the frame's payload.
pub fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, byte) in data.iter_mut().enumerate() {
        *byte ^= key[(offset + i) % 4];
    }
}

/// The header of an unmasked frame carrying `len` payload bytes; returns the bytes and how many are used.
pub fn encode_header(fin: bool, opcode: Opcode, len: u64) -> ([u8; MAX_HEADER_BYTES], usize) {
    let mut raw = [0u8; MAX_HEADER_BYTES];
    raw[0] = if fin { 0x80 } else { 0 } | opcode.bits();
    let used = if len < 126 {
        raw[1] = len as u8;
        2
    } else if let Ok(short) = u16::try_from(len) {
        raw[1] = 126;
        raw[2..4].copy_from_slice(&short.to_be_bytes());
        4
    } else {
        raw[1] = 127;
        raw[2..10].copy_from_slice(&len.to_be_bytes());
        10
    };
    (raw, used)
}

/// Writes one unmasked frame (the caller flushes).
pub fn write_frame(
    writer: &mut impl Write,
    fin: bool,
    opcode: Opcode,
    payload: &[u8],
) -> io::Result<()> {
    let (header, used) = encode_header(fin, opcode, payload.len() as u64);
    writer.write_all(&header[..used])?;
    writer.write_all(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_rfc_examples() {
        // Section 5.7: a masked "Hello" from a client.
        let masked = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (header, used) = parse_header(&masked).unwrap().unwrap();
        assert_eq!(used, 6);
        assert!(header.fin);
        assert_eq!(header.opcode, Opcode::Text);
        assert_eq!(header.payload_len, 5);
        let mut payload = masked[6..].to_vec();
        apply_mask(&mut payload, header.mask.unwrap(), 0);
        assert_eq!(payload, b"Hello");
        // A 256-byte unmasked binary frame uses the 16-bit length.
        let (header, used) = parse_header(&[0x82, 0x7e, 0x01, 0x00]).unwrap().unwrap();
        assert_eq!((used, header.payload_len, header.mask), (4, 256, None));
    }

    #[test]
    fn needs_the_whole_header() {
        assert_eq!(parse_header(&[]), Ok(None));
        assert_eq!(parse_header(&[0x82]), Ok(None));
        assert_eq!(parse_header(&[0x82, 0xfe, 0x01, 0x00, 1, 2, 3]), Ok(None));
        assert_eq!(parse_header(&[0x82, 0x7f, 0, 0, 0, 0, 0, 1]), Ok(None));
    }

    #[test]
    fn refuses_what_the_framing_rules_forbid() {
        assert!(parse_header(&[0xc1, 0x80, 0, 0, 0, 0]).is_err(), "RSV1");
        assert!(parse_header(&[0x83, 0x80, 0, 0, 0, 0]).is_err(), "opcode 3");
        assert!(
            parse_header(&[0x09, 0x80, 0, 0, 0, 0]).is_err(),
            "fragmented ping"
        );
        assert!(
            parse_header(&[0x89, 0xfe, 0, 126, 0, 0, 0, 0]).is_err(),
            "long ping"
        );
        let mut huge = vec![0x82, 0xff, 0x80];
        huge.extend_from_slice(&[0; 11]);
        assert!(parse_header(&huge).is_err(), "top length bit");
    }

    #[test]
    fn encodes_each_length_form_and_reads_it_back() {
        for len in [0u64, 125, 126, 65_535, 65_536, 16 << 20] {
            let (raw, used) = encode_header(true, Opcode::Binary, len);
            let (header, parsed_used) = parse_header(&raw[..used]).unwrap().unwrap();
            assert_eq!(parsed_used, used);
            assert_eq!(header.payload_len, len);
            assert_eq!(header.mask, None);
        }
    }

    #[test]
    fn reads_headers_from_a_stream() {
        let mut input: &[u8] = &[0x89, 0x80, 1, 2, 3, 4, 0x02];
        let header = read_header(&mut input).unwrap().unwrap().unwrap();
        assert_eq!(header.opcode, Opcode::Ping);
        assert_eq!(header.mask, Some([1, 2, 3, 4]));
        assert!(read_header(&mut input).is_err(), "a frame cut short");
        let mut empty: &[u8] = &[];
        assert!(read_header(&mut empty).unwrap().is_none());
    }
}
