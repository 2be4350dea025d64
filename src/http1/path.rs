//! One spelling for every path: what routes match on and what is forwarded, so that no route can be
//! bypassed by writing its path another way (RFC 3986 sections 6.2.2 and 5.2.4).
//!
//! The path of an origin-form target (the query is kept byte for byte) is rewritten:
//! * a percent-escape of an unreserved character (`A-Z a-z 0-9 - . _ ~`) becomes the character itself
//!   (`/%61dmin` is `/admin`); every other escape keeps its byte, with upper-case hex digits;
//! * `.` and `..` segments are removed (`/a/./b/../c` is `/a/c`; nothing climbs above the root);
//! * empty segments are merged (`//admin` is `/admin`), a trailing slash is kept.
//!
//! Refused, because no single spelling is safe for them: an escape that is not `%` and two hex digits; a
//! dot-segment written with escapes (`%2e%2e`), which some backends decode and resolve after the proxy
//! has matched; a raw `\`, which some backends take for `/` (browsers never send one: they turn it into
//! `/` first); and an encoded `/` or `\` (`%2F`, `%5C`), which backends disagree on, unless the host
//! allows them, in which case they are kept encoded and are never a segment boundary here.

/// Why a path cannot be normalised; each is a 400 for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// `%` not followed by two hex digits.
    BadEscape,
    /// `%2F` or `%5C` where the host does not allow encoded slashes.
    EncodedSlash,
    /// A `.` or `..` segment spelled with a percent-escape.
    EncodedDotSegment,
    /// A raw `\` in the path.
    Backslash,
}

impl PathError {
    pub fn reason(self) -> &'static str {
        match self {
            PathError::BadEscape => "malformed percent-escape in the path",
            PathError::EncodedSlash => "encoded slash in the path",
            PathError::EncodedDotSegment => "encoded dot-segment in the path",
            PathError::Backslash => "backslash in the path",
        }
    }
}

/// What a host allows in its paths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathRules {
    /// Keep `%2F` and `%5C` (encoded) instead of refusing the request.
    pub allow_encoded_slashes: bool,
}

/// Writes the normalised form of `target` (an origin-form path, with its query if any) into `out`,
/// which is cleared first. A target that does not start with `/` (`*`, or an authority) is copied as is.
pub fn normalize(target: &[u8], rules: PathRules, out: &mut Vec<u8>) -> Result<(), PathError> {
    out.clear();
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(at) => target.split_at(at),
        None => (target, &b""[..]),
    };
    if path.first() != Some(&b'/') {
        out.extend_from_slice(target);
        return Ok(());
    }
    out.reserve(target.len());
    // Offsets in `out` where each kept segment begins (its leading '/'), to pop on "..".
    let mut starts: Vec<usize> = Vec::new();
    let mut segments = path[1..].split(|&b| b == b'/').peekable();
    let mut trailing_slash = false;
    while let Some(raw) = segments.next() {
        let last = segments.peek().is_none();
        let start = out.len();
        out.push(b'/');
        let escaped = decode_segment(raw, rules, out)?;
        let segment = &out[start + 1..];
        let dots = match segment {
            b"." => 1,
            b".." => 2,
            _ => 0,
        };
        if dots > 0 && escaped {
            return Err(PathError::EncodedDotSegment);
        }
        if dots > 0 || segment.is_empty() {
            out.truncate(start);
            if dots == 2 {
                if let Some(parent) = starts.pop() {
                    out.truncate(parent);
                }
            }
            // "/a/" and "/a/.." both name a directory: the result keeps its slash.
            trailing_slash = last;
            continue;
        }
        starts.push(start);
        trailing_slash = false;
    }
    if out.is_empty() || trailing_slash {
        out.push(b'/');
    }
    out.extend_from_slice(query);
    Ok(())
}

/// Appends `raw` to `out` with escapes normalised; returns whether it held any escape that was decoded.
fn decode_segment(raw: &[u8], rules: PathRules, out: &mut Vec<u8>) -> Result<bool, PathError> {
    let mut decoded_any = false;
    let mut rest = raw;
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'\\' {
            return Err(PathError::Backslash);
        }
        if b != b'%' {
            out.push(b);
            rest = tail;
            continue;
        }
        let (Some(high), Some(low)) = (
            tail.first().and_then(|&h| hex(h)),
            tail.get(1).and_then(|&l| hex(l)),
        ) else {
            return Err(PathError::BadEscape);
        };
        let byte = high << 4 | low;
        match byte {
            b'/' | b'\\' if !rules.allow_encoded_slashes => return Err(PathError::EncodedSlash),
            _ if is_unreserved(byte) => {
                out.push(byte);
                decoded_any = true;
            }
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.extend_from_slice(&[b'%', HEX[usize::from(high)], HEX[usize::from(low)]]);
            }
        }
        rest = &tail[2..];
    }
    Ok(decoded_any)
}

/// The value of one hexadecimal digit (either case), for percent-decoding.
pub(crate) fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(target: &str) -> Result<String, PathError> {
        norm_with(target, PathRules::default())
    }

    fn norm_with(target: &str, rules: PathRules) -> Result<String, PathError> {
        let mut out = Vec::new();
        normalize(target.as_bytes(), rules, &mut out)?;
        Ok(String::from_utf8(out).expect("ascii in, ascii out"))
    }

    #[test]
    fn paths_already_normal_are_unchanged() {
        for path in [
            "/",
            "/a",
            "/a/",
            "/a/b.c",
            "/a?x=1",
            "/?q=/../",
            "/%C3%A9",
            "/a%20b",
            "/~u/x-y_z",
        ] {
            assert_eq!(norm(path).as_deref(), Ok(path), "{path}");
        }
    }

    #[test]
    fn dot_segments_are_removed_and_never_climb_above_the_root() {
        let cases = [
            ("/a/./b", "/a/b"),
            ("/a/b/../c", "/a/c"),
            ("/a/b/..", "/a/"),
            ("/a/b/.", "/a/b/"),
            ("/..", "/"),
            ("/../../etc/passwd", "/etc/passwd"),
            ("/a/../../b", "/b"),
            ("/.", "/"),
            ("/a/.../b", "/a/.../b"),
            ("/a/..b/c", "/a/..b/c"),
        ];
        for (input, want) in cases {
            assert_eq!(norm(input).as_deref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn empty_segments_are_merged_and_a_trailing_slash_kept() {
        assert_eq!(norm("//admin").as_deref(), Ok("/admin"));
        assert_eq!(norm("/a//b///c").as_deref(), Ok("/a/b/c"));
        assert_eq!(norm("/a//").as_deref(), Ok("/a/"));
        assert_eq!(norm("//").as_deref(), Ok("/"));
    }

    #[test]
    fn unreserved_escapes_are_decoded_and_others_upper_cased() {
        assert_eq!(norm("/%61dmin").as_deref(), Ok("/admin"));
        assert_eq!(norm("/%7Euser").as_deref(), Ok("/~user"));
        assert_eq!(norm("/a%2db").as_deref(), Ok("/a-b"));
        assert_eq!(norm("/a%2fb"), Err(PathError::EncodedSlash));
        assert_eq!(norm("/%c3%a9").as_deref(), Ok("/%C3%A9"));
        assert_eq!(norm("/100%25").as_deref(), Ok("/100%25"));
        assert_eq!(
            norm("/a%3Fb?c").as_deref(),
            Ok("/a%3Fb?c"),
            "an encoded ? stays in the path"
        );
    }

    #[test]
    fn the_query_is_kept_byte_for_byte() {
        assert_eq!(
            norm("/a/../b?x=%2F&y=/../..").as_deref(),
            Ok("/b?x=%2F&y=/../..")
        );
        assert_eq!(norm("/a?").as_deref(), Ok("/a?"));
    }

    #[test]
    fn ambiguous_spellings_are_refused() {
        assert_eq!(norm("/a/%2e%2e/b"), Err(PathError::EncodedDotSegment));
        assert_eq!(norm("/a/.%2E"), Err(PathError::EncodedDotSegment));
        assert_eq!(norm("/%2e/x"), Err(PathError::EncodedDotSegment));
        assert_eq!(norm("/a%2Fb"), Err(PathError::EncodedSlash));
        assert_eq!(norm("/a%5cb"), Err(PathError::EncodedSlash));
        assert_eq!(norm("/a%"), Err(PathError::BadEscape));
        assert_eq!(norm("/a%4"), Err(PathError::BadEscape));
        assert_eq!(norm("/a%zz"), Err(PathError::BadEscape));
        assert_eq!(norm("/public\\..\\admin"), Err(PathError::Backslash));
    }

    #[test]
    fn encoded_slashes_are_kept_encoded_where_the_host_allows_them() {
        let allow = PathRules {
            allow_encoded_slashes: true,
        };
        assert_eq!(norm_with("/a%2fb/../c", allow).as_deref(), Ok("/c"));
        assert_eq!(norm_with("/a%2fb", allow).as_deref(), Ok("/a%2Fb"));
        assert_eq!(norm_with("/x/%5C", allow).as_deref(), Ok("/x/%5C"));
        assert_eq!(
            norm_with("/%2e%2e", allow),
            Err(PathError::EncodedDotSegment)
        );
    }

    #[test]
    fn non_path_targets_are_copied() {
        assert_eq!(norm("*").as_deref(), Ok("*"));
    }

    #[test]
    fn normalising_twice_changes_nothing() {
        let inputs = [
            "/a/./b/../c//d/",
            "/%61/b",
            "/x/..?q",
            "/%7e/%C3",
            "/..//..//a",
        ];
        for input in inputs {
            let once = norm(input).expect(input);
            assert_eq!(norm(&once).as_deref(), Ok(once.as_str()), "{input}");
        }
    }
}
