//! How one request ended, whichever protocol carried it: the one record metrics (and the access log)
//! take, built once per protocol where its exchange ends.

use std::time::Duration;

use crate::error::ErrorCode;

/// The client protocol a request came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1 = 0,
    H2 = 1,
}

impl Protocol {
    pub const ALL: [Protocol; 2] = [Protocol::Http1, Protocol::H2];

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http1 => "http1",
            Protocol::H2 => "h2",
        }
    }
}

/// How one request (HTTP/1 exchange, h2 stream, or an answer the proxy gave itself) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeEnd {
    pub protocol: Protocol,
    /// The status the client was given: the backend's (101 for a tunnel) or the proxy's error answer;
    /// `None` when the connection was cut before a response head went out.
    pub status: Option<u16>,
    /// Set when the proxy answered in the backend's place.
    pub code: Option<ErrorCode>,
    /// Request body bytes taken from the client for the backend.
    pub bytes_in: u64,
    /// Response bytes written to the client (HTTP/1: head and body as sent; h2: body).
    pub bytes_out: u64,
    /// From the request head to the end of the response.
    pub duration: Duration,
    /// From the request head to the backend's response head; `None` without one.
    pub head_wait: Option<Duration>,
    /// How long the request was held while its backend started; `None` if it was not.
    pub cold: Option<Duration>,
}

/// The `class` label: which hundred the status is in, or `none` when no response went out.
pub const CLASSES: [&str; 6] = ["none", "1xx", "2xx", "3xx", "4xx", "5xx"];

pub fn class_index(status: Option<u16>) -> usize {
    match status {
        Some(s @ 100..=599) => usize::from(s / 100),
        _ => 0,
    }
}

/// Every [`ErrorCode`], in declaration order, so a code's index is `code as usize`.
pub const CODES: &[ErrorCode] = ErrorCode::ALL;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_has_its_own_index() {
        for (index, code) in CODES.iter().enumerate() {
            assert_eq!(*code as usize, index, "{code}");
        }
    }

    #[test]
    fn classes_by_hundred() {
        assert_eq!(CLASSES[class_index(Some(101))], "1xx");
        assert_eq!(CLASSES[class_index(Some(204))], "2xx");
        assert_eq!(CLASSES[class_index(Some(599))], "5xx");
        assert_eq!(CLASSES[class_index(None)], "none");
        assert_eq!(CLASSES[class_index(Some(700))], "none");
    }
}
