//! Header field names the proxy acts on, and the comma-separated list syntax (RFC 9110 section 5.6.1).
//!
//! Names are matched case-insensitively by length first, so the common case (a name we do not care about)
//! costs one comparison of lengths and at most one of bytes.

/// A header field name the proxy treats specially; everything else is `Other` and passes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldName {
    Host,
    ContentLength,
    TransferEncoding,
    Connection,
    KeepAlive,
    ProxyConnection,
    Te,
    Upgrade,
    Expect,
    XRequestId,
    XForwardedFor,
    XForwardedHost,
    XForwardedProto,
    Other,
}

impl FieldName {
    pub fn classify(name: &[u8]) -> FieldName {
        let candidates: &[(&[u8], FieldName)] = match name.len() {
            2 => &[(b"te", FieldName::Te)],
            4 => &[(b"host", FieldName::Host)],
            6 => &[(b"expect", FieldName::Expect)],
            7 => &[(b"upgrade", FieldName::Upgrade)],
            10 => &[
                (b"connection", FieldName::Connection),
                (b"keep-alive", FieldName::KeepAlive),
            ],
            12 => &[(b"x-request-id", FieldName::XRequestId)],
            14 => &[(b"content-length", FieldName::ContentLength)],
            15 => &[(b"x-forwarded-for", FieldName::XForwardedFor)],
            16 => &[
                (b"proxy-connection", FieldName::ProxyConnection),
                (b"x-forwarded-host", FieldName::XForwardedHost),
            ],
            17 => &[
                (b"transfer-encoding", FieldName::TransferEncoding),
                (b"x-forwarded-proto", FieldName::XForwardedProto),
            ],
            _ => return FieldName::Other,
        };
        candidates
            .iter()
            .find(|(known, _)| name.eq_ignore_ascii_case(known))
            .map_or(FieldName::Other, |&(_, field)| field)
    }

    /// Fields that describe one connection and are never forwarded as received (RFC 9110 section 7.6.1).
    /// `Transfer-Encoding` is not here: the body is relayed verbatim, so its framing header stays with it.
    pub fn is_hop_by_hop(self) -> bool {
        matches!(
            self,
            FieldName::Connection
                | FieldName::KeepAlive
                | FieldName::ProxyConnection
                | FieldName::Te
                | FieldName::Upgrade
        )
    }
}

/// The elements of a comma-separated list value with the optional whitespace around each trimmed.
/// Empty elements are yielded as empty slices; callers decide whether to skip or refuse them.
pub fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(trim_ows)
}

pub fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// `tchar` from RFC 9110 section 5.6.2.
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// Whether a list-valued field contains `token` (case-insensitive) as one of its elements.
pub fn list_contains(value: &[u8], token: &[u8]) -> bool {
    list_elements(value).any(|element| element.eq_ignore_ascii_case(token))
}

/// The connection options that change what the proxy does, from every `Connection` field of a head.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionOptions {
    pub close: bool,
    pub keep_alive: bool,
    pub upgrade: bool,
}

impl ConnectionOptions {
    pub fn add(&mut self, value: &[u8]) {
        for option in list_elements(value) {
            if option.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if option.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            } else if option.eq_ignore_ascii_case(b"upgrade") {
                self.upgrade = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_classified_case_insensitively() {
        assert_eq!(FieldName::classify(b"Host"), FieldName::Host);
        assert_eq!(FieldName::classify(b"HOST"), FieldName::Host);
        assert_eq!(FieldName::classify(b"hosts"), FieldName::Other);
        assert_eq!(FieldName::classify(b"TE"), FieldName::Te);
        assert_eq!(
            FieldName::classify(b"Transfer-Encoding"),
            FieldName::TransferEncoding
        );
        assert_eq!(
            FieldName::classify(b"X-Forwarded-Proto"),
            FieldName::XForwardedProto
        );
        assert_eq!(FieldName::classify(b"keep-Alive"), FieldName::KeepAlive);
        assert_eq!(
            FieldName::classify(b"Proxy-Connection"),
            FieldName::ProxyConnection
        );
        assert_eq!(FieldName::classify(b"x-request-id"), FieldName::XRequestId);
        assert_eq!(FieldName::classify(b"Content-Type"), FieldName::Other);
        assert_eq!(FieldName::classify(b""), FieldName::Other);
    }

    #[test]
    fn list_elements_trim_whitespace_and_keep_empty_ones() {
        let elements: Vec<&[u8]> = list_elements(b" a ,\tb,, c\t").collect();
        assert_eq!(elements, [&b"a"[..], b"b", b"", b"c"]);
        assert_eq!(trim_ows(b" \t "), b"");
    }

    #[test]
    fn connection_options_are_tokens_in_any_case_across_fields() {
        let mut options = ConnectionOptions::default();
        options.add(b"Keep-Alive, X-Custom");
        options.add(b"UPGRADE");
        assert_eq!(
            options,
            ConnectionOptions {
                close: false,
                keep_alive: true,
                upgrade: true
            }
        );
        let mut options = ConnectionOptions::default();
        options.add(b"closed, upgrades");
        assert_eq!(options, ConnectionOptions::default());
        assert!(list_contains(b"x-a, X-B", b"x-b"));
    }
}
