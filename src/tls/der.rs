//! The two facts the certificate store needs from an X.509 certificate that rustls does not give out:
//! its DNS names (subjectAltName `dNSName` entries) and its expiry (`notAfter`).
//!
//! rustls' `webpki` can only *check* a name against a certificate, not list them, and the store needs
//! the list: it maps names to configurations before any client asks (exact names before wildcards),
//! and logs what each file covers. A full X.509 parser (`x509-parser`) would add a dependency for two
//! fields, so this is a small DER walker over the few structures on the path to them, strict about
//! lengths and never panicking (fuzzed: `fuzz_targets/cert_names.rs`). Every name it lists is
//! confirmed with webpki before the store routes it (`certs.rs`), so a misreading can only drop a name,
//! never claim one the certificate does not cover.

/// Why a certificate could not be read.
pub type DerError = &'static str;

/// What the store uses of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    /// The `dNSName` entries, lower-cased, trailing dot removed, in certificate order (`*.example.com`
    /// for a wildcard). Entries that are not printable ASCII are skipped.
    pub dns_names: Vec<String>,
    /// `notAfter` in Unix seconds.
    pub not_after: i64,
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BOOLEAN: u8 = 0x01;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
/// `[0] EXPLICIT Version`.
const VERSION: u8 = 0xA0;
/// `[3] EXPLICIT Extensions`.
const EXTENSIONS: u8 = 0xA3;
/// `GeneralName ::= ... dNSName [2] IA5String` (implicit, primitive).
const DNS_NAME: u8 = 0x82;
/// id-ce-subjectAltName, 2.5.29.17.
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1D, 0x11];

/// Longest DNS name kept (RFC 1035: 253 characters, 255 octets on the wire).
const MAX_NAME_LEN: usize = 255;
/// Names kept per certificate; real certificates carry at most a few hundred (public CAs cap at 100).
const MAX_NAMES: usize = 1_000;

/// Reads the DNS names and expiry of one DER certificate.
pub fn cert_facts(der: &[u8]) -> Result<CertFacts, DerError> {
    let (certificate, _) = expect(der, SEQUENCE)?;
    let (tbs, _) = expect(certificate, SEQUENCE)?;
    let mut rest = tbs;
    if peek(rest) == Some(VERSION) {
        rest = skip(rest)?;
    }
    rest = expect(rest, INTEGER)?.1; // serialNumber
    rest = expect(rest, SEQUENCE)?.1; // signature
    rest = expect(rest, SEQUENCE)?.1; // issuer
    let (validity, after_validity) = expect(rest, SEQUENCE)?;
    rest = expect(after_validity, SEQUENCE)?.1; // subject
    rest = expect(rest, SEQUENCE)?.1; // subjectPublicKeyInfo

    let not_after = {
        let after_not_before = skip(validity)?;
        let (tag, value, _) = tlv(after_not_before)?;
        time(tag, value)?
    };

    let mut dns_names = Vec::new();
    // Optional issuerUniqueID [1] and subjectUniqueID [2], then extensions [3], in that order.
    while !rest.is_empty() {
        let (tag, value, next) = tlv(rest)?;
        if tag == EXTENSIONS {
            let (extensions, _) = expect(value, SEQUENCE)?;
            read_extensions(extensions, &mut dns_names)?;
        }
        rest = next;
    }
    Ok(CertFacts {
        dns_names,
        not_after,
    })
}

fn read_extensions(mut extensions: &[u8], names: &mut Vec<String>) -> Result<(), DerError> {
    while !extensions.is_empty() {
        let (extension, next) = expect(extensions, SEQUENCE)?;
        extensions = next;
        let (oid, mut rest) = expect(extension, OID)?;
        if peek(rest) == Some(BOOLEAN) {
            rest = skip(rest)?; // critical
        }
        let (value, _) = expect(rest, OCTET_STRING)?;
        if oid == SUBJECT_ALT_NAME {
            let (mut general_names, _) = expect(value, SEQUENCE)?;
            while !general_names.is_empty() {
                let (tag, name, next) = tlv(general_names)?;
                general_names = next;
                if tag == DNS_NAME && names.len() < MAX_NAMES {
                    if let Some(name) = dns_name(name) {
                        names.push(name);
                    }
                }
            }
        }
    }
    Ok(())
}

/// A `dNSName` as the store keys it, or `None` for what no SNI can match.
fn dns_name(bytes: &[u8]) -> Option<String> {
    let bytes = bytes.strip_suffix(b".").unwrap_or(bytes);
    let printable = bytes.iter().all(|b| b.is_ascii_graphic());
    if bytes.is_empty() || bytes.len() > MAX_NAME_LEN || !printable {
        return None;
    }
    Some(String::from_utf8_lossy(bytes).to_ascii_lowercase())
}

/// `UTCTime` (`YYMMDDHHMMSSZ`, years 1950–2049) or `GeneralizedTime` (`YYYYMMDDHHMMSSZ`), as RFC 5280
/// 4.1.2.5 requires them: in UTC, with seconds, without fractions.
fn time(tag: u8, value: &[u8]) -> Result<i64, DerError> {
    let digits = match (tag, value.split_last()) {
        (UTC_TIME | GENERALIZED_TIME, Some((b'Z', digits))) => digits,
        _ => return Err("notAfter is not a UTC time"),
    };
    let number = |range: std::ops::Range<usize>| -> Result<i64, DerError> {
        let part = digits.get(range).ok_or("notAfter is too short")?;
        part.iter().try_fold(0i64, |n, d| match d {
            b'0'..=b'9' => Ok(n * 10 + i64::from(d - b'0')),
            _ => Err("notAfter has a non-digit"),
        })
    };
    let (year, at) = match (tag, digits.len()) {
        (UTC_TIME, 12) => {
            let yy = number(0..2)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, 2)
        }
        (GENERALIZED_TIME, 14) => (number(0..4)?, 4),
        _ => return Err("notAfter has the wrong length"),
    };
    let month = number(at..at + 2)?;
    let day = number(at + 2..at + 4)?;
    let hour = number(at + 4..at + 6)?;
    let minute = number(at + 6..at + 8)?;
    let second = number(at + 8..at + 10)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return Err("notAfter is not a valid date");
    }
    // A leap second (60) is allowed by the grammar; it counts as the next second.
    if second > 60 {
        return Err("notAfter is not a valid date");
    }
    // In range by the checks above.
    let days = crate::civil::days_from_civil(year, month as u32, day as u32);
    Ok(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

fn peek(input: &[u8]) -> Option<u8> {
    input.first().copied()
}

/// The value of the element at the start of `input` if it has tag `tag`, and what follows it.
fn expect(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), DerError> {
    match tlv(input)? {
        (found, value, rest) if found == tag => Ok((value, rest)),
        _ => Err("unexpected element in the certificate"),
    }
}

fn skip(input: &[u8]) -> Result<&[u8], DerError> {
    Ok(tlv(input)?.2)
}

/// One DER element: (tag, value, rest). Only single-byte tags and definite lengths (all X.509 uses).
fn tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), DerError> {
    let (&tag, rest) = input.split_first().ok_or("truncated certificate")?;
    if tag & 0x1F == 0x1F {
        return Err("multi-byte tags are not used in certificates");
    }
    let (&first, mut rest) = rest.split_first().ok_or("truncated certificate")?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7F);
        // 0x80 is BER's indefinite length; more than 4 length bytes is more than any certificate.
        if count == 0 || count > 4 {
            return Err("bad length in the certificate");
        }
        let bytes = rest.get(..count).ok_or("truncated certificate")?;
        rest = &rest[count..];
        bytes.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b))
    };
    if len > rest.len() {
        return Err("truncated certificate");
    }
    let (value, rest) = rest.split_at(len);
    Ok((tag, value, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_both_encodings() {
        assert_eq!(time(UTC_TIME, b"700101000000Z"), Ok(0));
        assert_eq!(time(UTC_TIME, b"491231235959Z"), Ok(2_524_607_999));
        assert_eq!(
            time(GENERALIZED_TIME, b"20500101000000Z"),
            Ok(2_524_608_000)
        );
        assert_eq!(
            time(GENERALIZED_TIME, b"99991231235959Z"),
            Ok(253_402_300_799)
        );
        for bad in [
            &b"700101000000"[..],
            b"7001010000Z",
            b"701301000000Z",
            b"70010100000aZ",
        ] {
            assert!(time(UTC_TIME, bad).is_err(), "{bad:?}");
        }
        assert!(time(OCTET_STRING, b"700101000000Z").is_err());
    }

    #[test]
    fn lengths_are_checked() {
        assert_eq!(tlv(&[0x30, 0x00]), Ok((0x30, &[][..], &[][..])));
        assert_eq!(
            tlv(&[0x04, 0x81, 0x01, 7, 8]),
            Ok((0x04, &[7][..], &[8][..]))
        );
        assert!(tlv(&[0x30, 0x80]).is_err(), "indefinite length");
        assert!(tlv(&[0x30, 0x02, 0x00]).is_err(), "truncated");
        assert!(
            tlv(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_err(),
            "too many length bytes"
        );
        assert!(tlv(&[0x1F, 0x01, 0x00]).is_err(), "multi-byte tag");
        assert!(tlv(&[]).is_err());
    }

    #[test]
    fn names_are_normalised_or_skipped() {
        assert_eq!(
            dns_name(b"WWW.Example.COM."),
            Some("www.example.com".into())
        );
        assert_eq!(dns_name(b"*.example.com"), Some("*.example.com".into()));
        assert_eq!(dns_name(b""), None);
        assert_eq!(dns_name(b"."), None);
        assert_eq!(dns_name(b"a b"), None);
        assert_eq!(dns_name("é.com".as_bytes()), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for input in [
            &[][..],
            &[0x30],
            &[0x30, 0x03, 0x30, 0x01, 0x00],
            &[0xFF; 8],
        ] {
            assert!(cert_facts(input).is_err(), "{input:?}");
        }
    }
}
