//! The one place that decides how a message body is delimited (RFC 9112 section 6.3).
//!
//! Disagreement about where a body ends is how requests get smuggled past a proxy, so anything that two
//! reasonable parsers could read differently is refused rather than interpreted:
//! * `Transfer-Encoding` must be exactly one element, `chunked` (any case). Other codings (`gzip`,
//!   `identity`, ...) are refused as unsupported; empty list elements, parameters, quotes, a repeated
//!   `chunked` or `chunked` not last are malformed. So is more than one `Transfer-Encoding` line, since
//!   every list of two or more codings is refused anyway.
//! * `Transfer-Encoding` together with `Content-Length`, or in an HTTP/1.0 message, is malformed.
//! * `Content-Length` must be one field line of 1 or more ASCII digits fitting in a u64: no sign, no
//!   list (`5, 5`), no repeated line even with the same value.

use super::fields::{is_token, list_elements};
use super::{Framing, Version};

/// Why a message's framing was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingFault {
    /// The headers are broken or ambiguous (a request gets 400).
    Malformed(&'static str),
    /// Well-formed, but uses a transfer coding the proxy does not relay (a request gets 501).
    Unsupported(&'static str),
}

impl FramingFault {
    pub fn reason(self) -> &'static str {
        match self {
            FramingFault::Malformed(reason) | FramingFault::Unsupported(reason) => reason,
        }
    }
}

/// The body-related fields of one head, collected while its headers are scanned.
#[derive(Debug, Clone, Copy, Default)]
pub struct BodyFields<'a> {
    transfer_encoding: Option<&'a [u8]>,
    content_length: Option<&'a [u8]>,
    repeated: Option<&'static str>,
}

impl<'a> BodyFields<'a> {
    pub fn add_transfer_encoding(&mut self, value: &'a [u8]) {
        if self.transfer_encoding.replace(value).is_some() {
            self.repeated = Some("more than one Transfer-Encoding field");
        }
    }

    pub fn add_content_length(&mut self, value: &'a [u8]) {
        if self.content_length.replace(value).is_some() {
            self.repeated = Some("more than one Content-Length field");
        }
    }

    pub fn has_transfer_encoding(&self) -> bool {
        self.transfer_encoding.is_some()
    }
}

/// Which message the fields belong to; responses need the request's method and their own status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Request,
    Response { status: u16, request_was_head: bool },
}

/// Decides the framing of a message. Requests never get `UntilClose`; a request without body fields has
/// no body (`Framing::None`).
pub fn decide(fields: &BodyFields, version: Version, role: Role) -> Result<Framing, FramingFault> {
    if let Some(reason) = fields.repeated {
        return Err(FramingFault::Malformed(reason));
    }
    let declared = match (fields.transfer_encoding, fields.content_length) {
        (Some(_), Some(_)) => {
            return Err(FramingFault::Malformed(
                "both Transfer-Encoding and Content-Length",
            ))
        }
        (Some(_), None) if version == Version::Http10 => {
            return Err(FramingFault::Malformed("Transfer-Encoding in HTTP/1.0"))
        }
        (Some(codings), None) => {
            check_chunked_only(codings)?;
            Framing::Chunked
        }
        (None, Some(length)) => Framing::Length(parse_content_length(length)?),
        (None, None) => match role {
            Role::Request => Framing::None,
            Role::Response { .. } => Framing::UntilClose,
        },
    };
    match role {
        Role::Response {
            status,
            request_was_head,
        } if request_was_head || (100..200).contains(&status) || status == 204 || status == 304 => {
            Ok(Framing::None)
        }
        _ => Ok(declared),
    }
}

fn check_chunked_only(codings: &[u8]) -> Result<(), FramingFault> {
    let mut chunked_seen = false;
    let mut chunked_last = false;
    let mut other_seen = false;
    for coding in list_elements(codings) {
        if !is_token(coding) {
            return Err(FramingFault::Malformed(
                "Transfer-Encoding is not a list of plain codings",
            ));
        }
        let is_chunked = coding.eq_ignore_ascii_case(b"chunked");
        if is_chunked && chunked_seen {
            return Err(FramingFault::Malformed("chunked applied more than once"));
        }
        chunked_seen |= is_chunked;
        other_seen |= !is_chunked;
        chunked_last = is_chunked;
    }
    if !chunked_last {
        return Err(FramingFault::Malformed(
            "chunked is not the final transfer coding",
        ));
    }
    if other_seen {
        return Err(FramingFault::Unsupported(
            "transfer codings other than chunked are not supported",
        ));
    }
    Ok(())
}

fn parse_content_length(value: &[u8]) -> Result<u64, FramingFault> {
    const INVALID: FramingFault = FramingFault::Malformed("invalid Content-Length");
    if value.is_empty() {
        return Err(INVALID);
    }
    value.iter().try_fold(0u64, |length, &b| {
        if !b.is_ascii_digit() {
            return Err(INVALID);
        }
        length
            .checked_mul(10)
            .and_then(|l| l.checked_add(u64::from(b - b'0')))
            .ok_or(INVALID)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: Role = Role::Request;

    fn response(status: u16) -> Role {
        Role::Response {
            status,
            request_was_head: false,
        }
    }

    fn fields<'a>(te: &[&'a [u8]], cl: &[&'a [u8]]) -> BodyFields<'a> {
        let mut fields = BodyFields::default();
        te.iter().for_each(|v| fields.add_transfer_encoding(v));
        cl.iter().for_each(|v| fields.add_content_length(v));
        fields
    }

    fn request_framing(te: &[&[u8]], cl: &[&[u8]]) -> Result<Framing, FramingFault> {
        decide(&fields(te, cl), Version::Http11, REQUEST)
    }

    fn is_malformed(result: Result<Framing, FramingFault>) -> bool {
        matches!(result, Err(FramingFault::Malformed(_)))
    }

    #[test]
    fn requests_without_body_fields_have_no_body() {
        assert_eq!(request_framing(&[], &[]), Ok(Framing::None));
        assert_eq!(
            decide(&fields(&[], &[]), Version::Http10, REQUEST),
            Ok(Framing::None)
        );
    }

    #[test]
    fn content_length_must_be_plain_digits() {
        assert_eq!(request_framing(&[], &[b"0"]), Ok(Framing::Length(0)));
        assert_eq!(request_framing(&[], &[b"0042"]), Ok(Framing::Length(42)));
        assert_eq!(
            request_framing(&[], &[b"18446744073709551615"]),
            Ok(Framing::Length(u64::MAX))
        );
        for bad in [
            &b""[..],
            b"+5",
            b"-5",
            b"5 ",
            b"5, 5",
            b"0x10",
            b"1e3",
            b"18446744073709551616",
            b"99999999999999999999999",
        ] {
            assert!(is_malformed(request_framing(&[], &[bad])), "{bad:?}");
        }
    }

    #[test]
    fn repeated_content_length_is_refused_even_when_equal() {
        assert!(is_malformed(request_framing(&[], &[b"5", b"5"])));
        assert!(is_malformed(request_framing(&[], &[b"5", b"6"])));
    }

    #[test]
    fn transfer_encoding_must_be_exactly_chunked() {
        for ok in [&b"chunked"[..], b"Chunked", b"CHUNKED"] {
            assert_eq!(request_framing(&[ok], &[]), Ok(Framing::Chunked));
        }
        for unsupported in [&b"gzip, chunked"[..], b"identity, chunked", b"x ,\tchunked"] {
            assert!(matches!(
                request_framing(&[unsupported], &[]),
                Err(FramingFault::Unsupported(_))
            ));
        }
        for malformed in [
            &b"chunked, chunked"[..],
            b"chunked, gzip",
            b"gzip",
            b"identity",
            b"",
            b"chunked,",
            b", chunked",
            b"\"chunked\"",
            b"chunked;q=1",
            b"chunked ;x",
            b"chun ked",
        ] {
            assert!(
                is_malformed(request_framing(&[malformed], &[])),
                "{malformed:?}"
            );
        }
        assert!(is_malformed(request_framing(
            &[b"chunked", b"chunked"],
            &[]
        )));
        assert!(is_malformed(request_framing(&[b"gzip", b"chunked"], &[])));
    }

    #[test]
    fn transfer_encoding_with_content_length_or_in_http10_is_malformed() {
        assert!(is_malformed(request_framing(&[b"chunked"], &[b"5"])));
        let te = fields(&[b"chunked"], &[]);
        assert!(is_malformed(decide(&te, Version::Http10, REQUEST)));
        assert!(is_malformed(decide(&te, Version::Http10, response(200))));
    }

    #[test]
    fn response_framing_table() {
        let none = fields(&[], &[]);
        let length = fields(&[], &[b"12"]);
        let chunked = fields(&[b"chunked"], &[]);
        let v11 = Version::Http11;
        let v10 = Version::Http10;
        assert_eq!(decide(&none, v11, response(200)), Ok(Framing::UntilClose));
        assert_eq!(decide(&none, v10, response(200)), Ok(Framing::UntilClose));
        assert_eq!(decide(&length, v11, response(200)), Ok(Framing::Length(12)));
        assert_eq!(decide(&length, v10, response(500)), Ok(Framing::Length(12)));
        assert_eq!(decide(&chunked, v11, response(200)), Ok(Framing::Chunked));
        for status in [100, 101, 103, 199, 204, 304] {
            for f in [&none, &length, &chunked] {
                assert_eq!(decide(f, v11, response(status)), Ok(Framing::None));
            }
        }
        let head = Role::Response {
            status: 200,
            request_was_head: true,
        };
        for f in [&none, &length, &chunked] {
            assert_eq!(decide(f, v11, head), Ok(Framing::None));
        }
        // No-body responses still may not carry broken framing fields.
        assert!(decide(&fields(&[], &[b"x"]), v11, head).is_err());
        assert!(decide(&fields(&[b"gzip"], &[]), v11, response(204)).is_err());
    }
}
